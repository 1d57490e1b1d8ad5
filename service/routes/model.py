"""The serving model: manifest, provider, session options, batching and limits."""

from __future__ import annotations

from fastapi import APIRouter

from service.dependencies import RuntimeDep, SettingsDep
from service.errors import error_responses
from service.schemas import ModelOut

router = APIRouter(tags=["model"])


@router.get("/model", response_model=ModelOut, responses=error_responses(503))
async def model(runtime: RuntimeDep, settings: SettingsDep) -> ModelOut:
    """The manifest of the bundle being served and how it runs."""
    return ModelOut(
        manifest=runtime.manifest.model_dump(mode="json", by_alias=True),
        provider=runtime.provider,
        session_options=runtime.session_options,
        loaded_at=runtime.loaded_at,
        load_seconds=round(runtime.load_seconds, 3),
        batching={
            "enabled": settings.batching_enabled,
            "max_batch": settings.max_batch,
            "max_wait_ms": settings.max_wait_ms,
            "max_queue": settings.max_queue,
            "workers": settings.batch_workers,
        },
        limits={
            "max_samples": settings.max_samples,
            "max_upload_bytes": settings.max_upload_bytes,
            "max_pixels": settings.max_pixels,
            "max_output_pixels": settings.max_output_pixels,
        },
        classes=list(runtime.classes.names) if runtime.classes.method else [],
        conditional=runtime.classes.conditional,
        label_method=runtime.classes.method,
    )
