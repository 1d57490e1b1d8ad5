"""FastAPI dependencies and their typed aliases: settings, metrics, the model registry, a runtime.

All are ``async def`` reading ``app.state``: FastAPI runs a plain ``def`` dependency in its thread
pool (one thread hop per dependency per request), and ``app.dependency_overrides`` makes it rebuild
every route's dependency tree (pydantic models included) on every request, so neither is used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request

from model_core.bundle import NAME_PATTERN
from service.metrics import Metrics
from service.registry import ModelRegistry
from service.runtime import ModelRuntime
from service.settings import Settings


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (``create_app``; by default ``get_settings()``)."""
    settings: Settings = request.app.state.settings
    return settings


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def get_registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.models
    return registry


async def get_runtime(
    request: Request,
    model: Annotated[
        str | None,
        Query(pattern=NAME_PATTERN, description="the served model to use (GET /models); default: the first one listed"),
    ] = None,
) -> AsyncIterator[ModelRuntime]:
    """The runtime serving ``model`` now, held until the request is done (a hot swap waits for it)."""
    registry: ModelRegistry = request.app.state.models
    runtime = registry.runtime(model)  # 404 for an unknown model, 503 while it has no runtime
    runtime.acquire()
    try:
        yield runtime
    finally:
        runtime.release()


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
RuntimeDep = Annotated[ModelRuntime, Depends(get_runtime)]
