"""Liveness and readiness, under our names and the KServe / Open Inference Protocol ones."""

from __future__ import annotations

from fastapi import APIRouter

from service.dependencies import RegistryDep, SettingsDep
from service.errors import NotReady, error_responses
from service.registry import ModelRegistry
from service.schemas import KServeLive, KServeReady, Live, Ready

router = APIRouter(tags=["health"])


def _require_ready(registry: ModelRegistry, retry_after_s: int) -> Ready:
    runtime = registry.current
    if not registry.ready or runtime is None:
        raise NotReady(registry.reason, {"Retry-After": str(retry_after_s)})
    models = {name: manager.current.version for name, manager in registry.managers.items() if manager.current}
    return Ready(model=runtime.model, version=runtime.version, models=models)


@router.get("/healthz", response_model=Live)
async def healthz() -> Live:
    """The process is up and its event loop answers."""
    return Live()


@router.get("/readyz", response_model=Ready, responses=error_responses(503))
async def readyz(registry: RegistryDep, settings: SettingsDep) -> Ready:
    """200 once every configured model is verified, loaded and warmed up; 503 with the reason before
    (naming each model that is not), when one failed, and from SIGTERM on."""
    return _require_ready(registry, settings.retry_after_s)


@router.get("/v2/health/live", response_model=KServeLive)
async def kserve_live() -> KServeLive:
    """Open Inference Protocol liveness."""
    return KServeLive(live=True)


@router.get("/v2/health/ready", response_model=KServeReady, responses=error_responses(503))
async def kserve_ready(registry: RegistryDep, settings: SettingsDep) -> KServeReady:
    """Open Inference Protocol readiness (503 with the reason when not ready)."""
    _require_ready(registry, settings.retry_after_s)
    return KServeReady(ready=True)
