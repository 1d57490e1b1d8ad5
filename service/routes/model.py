"""The served models: the list (GET /models), and one model's manifest, provider, batching and limits."""

from __future__ import annotations

from pathlib import PurePosixPath

from fastapi import APIRouter

from service.dependencies import RegistryDep, RuntimeDep, SettingsDep
from service.errors import NotFound, error_responses
from service.lifecycle import ModelManager
from service.schemas import ModelOut, ModelsOut, ModelSummary, PriorOut

router = APIRouter(tags=["model"])


def public_dataset(dataset: str) -> str:
    """The manifest's dataset without the trainer's file system: "folder:/home/x/cats" -> "folder:cats"."""
    kind, sep, path = dataset.partition(":")
    if not sep or not path:
        return dataset
    return f"{kind}:{PurePosixPath(path.replace(chr(92), '/')).name or path}"


def summary(manager: ModelManager, default: bool) -> ModelSummary:
    """What /models says of one configured model, loaded or not."""
    runtime = manager.current
    if runtime is None:
        return ModelSummary(name=manager.name, default=default, ready=False, version=None, reason=manager.reason)
    manifest = runtime.manifest
    return ModelSummary(
        name=manager.name,
        default=default,
        ready=manager.ready,
        version=runtime.version,
        reason=manager.reason,
        latent_dim=manifest.latent_dim,
        image=[manifest.image.channels, manifest.image.height, manifest.image.width],
        conditional=runtime.classes.conditional,
        classes=len(runtime.classes.names),
        prior=runtime.priors.default,
        dataset=public_dataset(manifest.dataset),
    )


@router.get("/models", response_model=ModelsOut)
async def models(registry: RegistryDep) -> ModelsOut:
    """Every configured model in VAEGAN_MODEL_NAME's order (the first is the default), loaded or not."""
    return ModelsOut(models=[summary(m, name == registry.default) for name, m in registry.managers.items()])


@router.get("/model", response_model=ModelOut, responses=error_responses(404, 422, 503))
async def model(runtime: RuntimeDep, settings: SettingsDep) -> ModelOut:
    """The manifest of a served model's bundle (``model=``, default the first) and how it runs."""
    manifest = runtime.manifest.model_dump(mode="json", by_alias=True)
    manifest["dataset"] = public_dataset(manifest["dataset"])
    return ModelOut(
        manifest=manifest,
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
        label_method=runtime.priors.label_method,
        prior=None if runtime.manifest.prior is None else runtime.manifest.prior.model_dump(mode="json"),
        default_prior=runtime.priors.default,
    )


@router.get("/model/prior", response_model=PriorOut, responses=error_responses(404, 422, 503))
async def model_prior(runtime: RuntimeDep) -> PriorOut:
    """The fitted prior's parameters, so a client of the raw ONNX files (or of a Triton export) can draw
    the same z: pick component m with probability weights[m], then z = locs[m] + scale_tril[m] @ eps."""
    fitted = runtime.priors.fitted
    if fitted is None:
        raise NotFound("this bundle carries no fitted prior: /sample draws from N(0, I)")
    arrays = {k: v.tolist() for k, v in fitted.arrays().items()}
    return PriorOut(info=runtime.manifest.prior.model_dump(mode="json") if runtime.manifest.prior else {}, **arrays)
