"""Liveness and readiness, under our names and the KServe / Open Inference Protocol ones."""

from __future__ import annotations

from fastapi import APIRouter

from service.dependencies import ManagerDep, SettingsDep
from service.errors import NotReady, error_responses
from service.lifecycle import ModelManager
from service.schemas import KServeLive, KServeReady, Live, Ready

router = APIRouter(tags=["health"])


def _require_ready(manager: ModelManager, retry_after_s: int) -> Ready:
    if not manager.ready or manager.current is None:
        raise NotReady(manager.reason, {"Retry-After": str(retry_after_s)})
    manifest = manager.current.manifest
    return Ready(model=manifest.name, version=manifest.version)


@router.get("/healthz", response_model=Live)
async def healthz() -> Live:
    """The process is up and its event loop answers."""
    return Live()


@router.get("/readyz", response_model=Ready, responses=error_responses(503))
async def readyz(manager: ManagerDep, settings: SettingsDep) -> Ready:
    """200 once a verified model is loaded and warmed up; 503 with the reason before, and from SIGTERM on."""
    return _require_ready(manager, settings.retry_after_s)


@router.get("/v2/health/live", response_model=KServeLive)
async def kserve_live() -> KServeLive:
    """Open Inference Protocol liveness."""
    return KServeLive(live=True)


@router.get("/v2/health/ready", response_model=KServeReady, responses=error_responses(503))
async def kserve_ready(manager: ManagerDep, settings: SettingsDep) -> KServeReady:
    """Open Inference Protocol readiness (503 with the reason when not ready)."""
    _require_ready(manager, settings.retry_after_s)
    return KServeReady(ready=True)
