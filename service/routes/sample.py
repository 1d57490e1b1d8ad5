"""Images from a prior: Dec(z), z from the bundle's fitted prior or the paper's N(0, I), repeatable by seed.

service/priors.py draws z: ``prior=fitted`` (the default when the bundle has one) or ``standard``,
by class too as the bundle allows: a conditional decoder gets its label; an unconditional bundle
draws from the class's own mixture, or shifts z_p to the class's mean latent.
"""

# No ``from __future__ import annotations``: n's annotation reads the factory's ``settings``, which
# FastAPI could not resolve from a string annotation.

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response

from service import latents
from service.dependencies import MetricsDep, RuntimeDep
from service.errors import InvalidParameter
from service.labels import Label
from service.priors import Draw, PriorQuery
from service.responses import (
    DrawnSeed,
    OutputOptions,
    Scale,
    check_output,
    image_response,
    output_options,
    responses,
)
from service.runtime import ModelRuntime
from service.settings import Settings

DEFAULT_N = 16
DEFAULT_PER_CLASS = 8
MAX_PER_CLASS = 64
Temperature = Annotated[float, Query(gt=0, le=10, allow_inf_nan=False, description="prior std")]


async def decode_draw(runtime: ModelRuntime, draw: Draw, indices: np.ndarray | None) -> np.ndarray:
    """Decode the drawn latents, with one-hot labels of ``indices`` when the decoder is conditional."""
    labels = runtime.classes.onehot(indices) if indices is not None and runtime.classes.conditional else None
    return await runtime.decode(draw.z, labels)


def build_router(settings: Settings) -> APIRouter:
    """The /sample router of an app: n is declared with its VAEGAN_MAX_SAMPLES, which FastAPI checks and documents."""
    router = APIRouter(tags=["generate"])

    @router.get("/sample", response_class=Response, responses=responses(404, 422, 503, images=True))
    async def sample(
        request: Request,
        runtime: RuntimeDep,
        metrics: MetricsDep,
        options: Annotated[OutputOptions, Depends(output_options)],
        n: Annotated[
            int, Query(ge=1, le=settings.max_samples, description="number of images, 1..VAEGAN_MAX_SAMPLES")
        ] = DEFAULT_N,
        seed: DrawnSeed = None,
        temperature: Temperature = 1.0,
        label: Label = None,
        prior: PriorQuery = None,
    ) -> Response:
        """n samples as a PNG grid (or JSON), of one class when ``label`` is given; the seed used is
        echoed (X-Seed header, JSON field), the prior drawn from (X-Prior) and how the label was
        honoured (X-Label-Method)."""
        if n > settings.max_samples:  # only the default can get here: FastAPI does not validate defaults
            raise InvalidParameter(f"n is {n}; the limit is {settings.max_samples} (VAEGAN_MAX_SAMPLES)")
        classes, priors = runtime.classes, runtime.priors
        chosen = priors.choose(prior)
        if label is not None:
            classes.require_method()
        check_output(runtime, settings, n, options)
        seed = latents.seed_or_new(seed)
        eps, u = latents.noise(seed, n, runtime.manifest.latent_dim, temperature)  # (n, Z), (n,)
        if label is not None:
            indices: np.ndarray | None = np.full(n, classes.index(label))
        elif classes.conditional:  # a conditional decoder always needs labels: uniform ones, from the same seed
            indices = np.random.default_rng([seed, 1]).integers(len(classes.names), size=n)
        else:
            indices = None
        draw = priors.draw(chosen, eps, u, indices)
        images = await decode_draw(runtime, draw, indices)
        names = None if indices is None else [classes.names[i] for i in indices]
        return await image_response(
            request, runtime, metrics, images, options, latents=draw.z, seed=seed, labels=names,
            label_method=draw.label_method, prior=draw.prior,
        )  # fmt: skip

    return router


def build_grid_router(settings: Settings) -> APIRouter:
    """The /sample/grid router of an app: its size is bounded by the app's VAEGAN_MAX_SAMPLES."""
    router = APIRouter(tags=["generate"])

    @router.get("/sample/grid", response_class=Response, responses=responses(404, 422, 503, images=True))
    async def sample_grid(
        request: Request,
        runtime: RuntimeDep,
        metrics: MetricsDep,
        per_class: Annotated[
            int, Query(ge=1, le=MAX_PER_CLASS, description="samples in each class's row")
        ] = DEFAULT_PER_CLASS,
        seed: DrawnSeed = None,
        temperature: Temperature = 1.0,
        scale: Scale = 1,
        prior: PriorQuery = None,
    ) -> Response:
        """One row per class, the same noise down each column (vae-gan-tf's result picture); JSON names each row."""
        classes, priors = runtime.classes, runtime.priors
        classes.require_method("/sample/grid")
        chosen = priors.choose(prior)
        n = len(classes.names) * per_class
        if n > settings.max_samples:
            raise InvalidParameter(
                f"{len(classes.names)} classes x per_class {per_class} = {n} images; "
                f"the limit is {settings.max_samples} (VAEGAN_MAX_SAMPLES)"
            )
        options = OutputOptions(per_class, scale)
        check_output(runtime, settings, n, options)
        seed = latents.seed_or_new(seed)
        eps, u = latents.noise(seed, per_class, runtime.manifest.latent_dim, temperature)  # one column each
        rows = len(classes.names)
        indices = np.repeat(np.arange(rows), per_class)  # row k: class k
        draw = priors.draw(chosen, np.tile(eps, (rows, 1)), np.tile(u, rows), indices)
        images = await decode_draw(runtime, draw, indices)
        names = [classes.names[i] for i in indices]
        return await image_response(
            request, runtime, metrics, images, options, latents=draw.z, seed=seed, labels=names,
            label_method=draw.label_method, prior=draw.prior,
        )  # fmt: skip

    return router
