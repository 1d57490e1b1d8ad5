"""Images from the prior: Dec(z_p), z_p ~ N(0, temperature^2 I), repeatable by seed; by class too.

A class is honoured as the bundle allows (service/classes.py): a conditional decoder gets its
label; an unconditional bundle with class means shifts z_p to the class's mean latent.
"""

# No ``from __future__ import annotations``: n's annotation reads the factory's ``settings``, which
# FastAPI could not resolve from a string annotation.

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response

from service import latents
from service.classes import Classes, Label
from service.dependencies import MetricsDep, RuntimeDep
from service.errors import InvalidParameter
from service.responses import OutputOptions, check_output, image_response, output_options, responses
from service.runtime import ModelRuntime
from service.settings import Settings

DEFAULT_N = 16
DEFAULT_PER_CLASS = 8
MAX_PER_CLASS = 64
Seed = Annotated[int | None, Query(ge=0, lt=latents.SEED_LIMIT, description="drawn when absent")]
Temperature = Annotated[float, Query(gt=0, le=10, allow_inf_nan=False, description="prior std")]


async def class_samples(
    runtime: ModelRuntime, classes: Classes, indices: np.ndarray, z: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Decode prior latents z (N, Z) as the classes ``indices`` (N,); returns (images, the latents decoded)."""
    if classes.require_method() == "conditional":
        return await runtime.decode(z, classes.onehot(indices)), z
    assert classes.means is not None
    shifted = (classes.means[indices] + z).astype(np.float32)  # z_p around the class's mean latent
    return await runtime.decode(shifted), shifted


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
        seed: Seed = None,
        temperature: Temperature = 1.0,
        label: Label = None,
    ) -> Response:
        """n samples as a PNG grid (or JSON), of one class when ``label`` is given; the seed used is
        echoed (X-Seed header, JSON field), and how the label was honoured (X-Label-Method)."""
        if n > settings.max_samples:  # only the default can get here: FastAPI does not validate defaults
            raise InvalidParameter(f"n is {n}; the limit is {settings.max_samples} (VAEGAN_MAX_SAMPLES)")
        classes = runtime.classes
        method = classes.require_method() if label is not None else None
        check_output(runtime, settings, n, options)
        seed = latents.new_seed() if seed is None else seed
        z = latents.prior(seed, n, runtime.manifest.latent_dim, temperature)  # (n, Z)
        if label is None and not classes.conditional:
            images = await runtime.decode(z)
            return await image_response(request, runtime, metrics, images, options, latents=z, seed=seed)
        if label is None:  # a conditional decoder always needs labels: uniform ones, from the same seed
            indices = np.random.default_rng([seed, 1]).integers(len(classes.names), size=n)
            method = "conditional"
        else:
            indices = np.full(n, classes.index(label))
        images, z = await class_samples(runtime, classes, indices, z)
        names = [classes.names[i] for i in indices]
        return await image_response(
            request, runtime, metrics, images, options, latents=z, seed=seed, labels=names, label_method=method
        )

    return router


def build_grid_router(settings: Settings) -> APIRouter:
    """The /sample/grid router of an app: its size is bounded by the app's VAEGAN_MAX_SAMPLES."""
    router = APIRouter(tags=["generate"])

    @router.get("/sample/grid", response_class=Response, responses=responses(422, 503, images=True))
    async def sample_grid(
        request: Request,
        runtime: RuntimeDep,
        metrics: MetricsDep,
        per_class: Annotated[
            int, Query(ge=1, le=MAX_PER_CLASS, description="samples in each class's row")
        ] = DEFAULT_PER_CLASS,
        seed: Seed = None,
        temperature: Temperature = 1.0,
        scale: Annotated[int, Query(ge=1, le=8, description="integer enlargement, nearest neighbour")] = 1,
    ) -> Response:
        """One row per class, the same z down each column (vae-gan-tf's result picture); JSON names each row."""
        classes = runtime.classes
        method = classes.require_method("/sample/grid")
        n = len(classes.names) * per_class
        if n > settings.max_samples:
            raise InvalidParameter(
                f"{len(classes.names)} classes x per_class {per_class} = {n} images; "
                f"the limit is {settings.max_samples} (VAEGAN_MAX_SAMPLES)"
            )
        options = OutputOptions(per_class, scale)
        check_output(runtime, settings, n, options)
        seed = latents.new_seed() if seed is None else seed
        columns = latents.prior(seed, per_class, runtime.manifest.latent_dim, temperature)  # (per_class, Z)
        indices = np.repeat(np.arange(len(classes.names)), per_class)  # row k: class k
        images, z = await class_samples(runtime, classes, indices, np.tile(columns, (len(classes.names), 1)))
        names = [classes.names[i] for i in indices]
        return await image_response(
            request, runtime, metrics, images, options, latents=z, seed=seed, labels=names, label_method=method
        )

    return router
