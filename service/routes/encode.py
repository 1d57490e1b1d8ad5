"""The encoder's posterior q(z|x): mu and log sigma^2, and a sample z on request."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from service import latents
from service.dependencies import MetricsDep, RuntimeDep, SettingsDep
from service.errors import error_responses
from service.labels import Label
from service.responses import Seed, image_input, observe_density
from service.schemas import EncodeOut
from service.uploads import image_rows

router = APIRouter(tags=["autoencode"])


@router.post(
    "/encode",
    response_model=EncodeOut,
    response_model_exclude_none=True,
    responses=error_responses(400, 404, 413, 415, 422, 503),
    openapi_extra=image_input("file", raw=True),
)
async def encode(
    request: Request,
    runtime: RuntimeDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    sample: Annotated[bool, Query(description="also draw z ~ q(z|x)")] = False,
    seed: Seed = None,
    label: Label = None,
) -> EncodeOut:
    """mu and logvar of the image (and z with its seed when sample=true), with mu's log density and typicality
    under the fitted prior when the bundle has one; a conditional model needs its ``label``."""
    y = runtime.classes.network_labels(label, 1)
    x = await image_rows(request, runtime.manifest.preprocessing, settings, ("file",))
    mu, logvar = await runtime.encode(x, y)  # (1, Z) each
    density = observe_density(runtime, metrics, mu, logvar)
    out = EncodeOut(mu=mu[0].tolist(), logvar=logvar[0].tolist(), model_version=runtime.version)
    if density is not None:
        out.log_density, out.typicality = float(density[0][0]), float(density[1][0])
    if sample:
        out.seed = latents.seed_or_new(seed)
        out.z = latents.posterior(mu, logvar, out.seed)[0].tolist()
    return out
