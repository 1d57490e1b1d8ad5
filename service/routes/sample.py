"""Images from the prior: Dec(z_p), z_p ~ N(0, temperature^2 I), repeatable by seed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from service import latents
from service.dependencies import MetricsDep, RuntimeDep, SettingsDep
from service.errors import InvalidParameter
from service.responses import OutputOptions, check_output, image_response, output_options, responses

router = APIRouter(tags=["generate"])


@router.get("/sample", response_class=Response, responses=responses(422, 503, images=True))
async def sample(
    request: Request,
    runtime: RuntimeDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    options: Annotated[OutputOptions, Depends(output_options)],
    n: Annotated[int, Query(ge=1, description="number of images, 1..VAEGAN_MAX_SAMPLES")] = 16,
    seed: Annotated[int | None, Query(ge=0, lt=latents.SEED_LIMIT, description="drawn when absent")] = None,
    temperature: Annotated[float, Query(gt=0, le=10, allow_inf_nan=False, description="prior std")] = 1.0,
) -> Response:
    """n samples as a PNG grid (or JSON); the seed used is echoed (X-Seed header, JSON field)."""
    if n > settings.max_samples:
        raise InvalidParameter(f"n is {n}; the limit is {settings.max_samples} (VAEGAN_MAX_SAMPLES)")
    check_output(runtime, settings, n, options)
    seed = latents.new_seed() if seed is None else seed
    z = latents.prior(seed, n, runtime.manifest.latent_dim, temperature)  # (n, Z)
    images = await runtime.decode(z)
    return await image_response(request, runtime, metrics, images, options, latents=z, seed=seed)
