"""FastAPI dependencies and their typed aliases: settings, metrics, the model manager, a runtime.

All are ``async def`` reading ``app.state``: FastAPI runs a plain ``def`` dependency in its thread
pool (one thread hop per dependency per request), and ``app.dependency_overrides`` makes it rebuild
every route's dependency tree (pydantic models included) on every request, so neither is used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from service.errors import NotReady
from service.lifecycle import ModelManager
from service.metrics import Metrics
from service.runtime import ModelRuntime
from service.settings import Settings


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (``create_app``; by default ``get_settings()``)."""
    settings: Settings = request.app.state.settings
    return settings


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def get_manager(request: Request) -> ModelManager:
    manager: ModelManager = request.app.state.models
    return manager


async def get_runtime(request: Request) -> AsyncIterator[ModelRuntime]:
    """The runtime serving now, held until the request is done (a hot swap waits for it)."""
    manager: ModelManager = request.app.state.models
    runtime = manager.current
    if runtime is None:
        retry = str(request.app.state.settings.retry_after_s)
        raise NotReady(manager.reason or "no model is loaded", {"Retry-After": retry})
    runtime.acquire()
    try:
        yield runtime
    finally:
        runtime.release()


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ManagerDep = Annotated[ModelManager, Depends(get_manager)]
RuntimeDep = Annotated[ModelRuntime, Depends(get_runtime)]
