"""Images from the prior: Dec(z_p), z_p ~ N(0, temperature^2 I), repeatable by seed."""

# No ``from __future__ import annotations``: n's annotation reads the factory's ``settings``, which
# FastAPI could not resolve from a string annotation.

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from service import latents
from service.dependencies import MetricsDep, RuntimeDep
from service.errors import InvalidParameter
from service.responses import OutputOptions, check_output, image_response, output_options, responses
from service.settings import Settings

DEFAULT_N = 16


def build_router(settings: Settings) -> APIRouter:
    """The /sample router of an app: n is declared with its VAEGAN_MAX_SAMPLES, which FastAPI checks and documents."""
    router = APIRouter(tags=["generate"])

    @router.get("/sample", response_class=Response, responses=responses(422, 503, images=True))
    async def sample(
        request: Request,
        runtime: RuntimeDep,
        metrics: MetricsDep,
        options: Annotated[OutputOptions, Depends(output_options)],
        n: Annotated[
            int, Query(ge=1, le=settings.max_samples, description="number of images, 1..VAEGAN_MAX_SAMPLES")
        ] = DEFAULT_N,
        seed: Annotated[int | None, Query(ge=0, lt=latents.SEED_LIMIT, description="drawn when absent")] = None,
        temperature: Annotated[float, Query(gt=0, le=10, allow_inf_nan=False, description="prior std")] = 1.0,
    ) -> Response:
        """n samples as a PNG grid (or JSON); the seed used is echoed (X-Seed header, JSON field)."""
        if n > settings.max_samples:  # only the default can get here: FastAPI does not validate defaults
            raise InvalidParameter(f"n is {n}; the limit is {settings.max_samples} (VAEGAN_MAX_SAMPLES)")
        check_output(runtime, settings, n, options)
        seed = latents.new_seed() if seed is None else seed
        z = latents.prior(seed, n, runtime.manifest.latent_dim, temperature)  # (n, Z)
        images = await runtime.decode(z)
        return await image_response(request, runtime, metrics, images, options, latents=z, seed=seed)

    return router
