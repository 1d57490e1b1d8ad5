"""Reconstruction: Dec(mu(x)), or Dec(z) with z ~ q(z|x) when sample=true."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from service import latents
from service.dependencies import MetricsDep, RuntimeDep, SettingsDep
from service.labels import Label
from service.responses import (
    OutputOptions,
    Seed,
    image_input,
    image_response,
    observe_density,
    output_options,
    responses,
)
from service.uploads import image_rows

router = APIRouter(tags=["autoencode"])


@router.post(
    "/reconstruct",
    response_class=Response,
    responses=responses(400, 404, 413, 415, 422, 503, images=True),
    openapi_extra=image_input("file", raw=True),
)
async def reconstruct(
    request: Request,
    runtime: RuntimeDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    options: Annotated[OutputOptions, Depends(output_options)],
    sample: Annotated[bool, Query(description="decode a posterior sample instead of its mean")] = False,
    seed: Seed = None,
    label: Label = None,
) -> Response:
    """The image through the encoder and decoder, as PNG (or JSON with the latent, and mu's log density
    under the fitted prior); a conditional model needs the image's ``label``."""
    y = runtime.classes.network_labels(label, 1)  # (1, K) or None
    x = await image_rows(request, runtime.manifest.preprocessing, settings, ("file",))  # (1, C, H, W)
    if not sample:
        z, logvar, images = await runtime.reconstruct(x, y)  # z: mu (1, Z)
        density = observe_density(runtime, metrics, z, logvar)
        return await image_response(request, runtime, metrics, images, options, latents=z, density=density)
    mu, logvar = await runtime.encode(x, y)
    density = observe_density(runtime, metrics, mu, logvar)
    seed = latents.seed_or_new(seed)
    z = latents.posterior(mu, logvar, seed)
    images = await runtime.decode(z, y)
    return await image_response(request, runtime, metrics, images, options, latents=z, seed=seed, density=density)
