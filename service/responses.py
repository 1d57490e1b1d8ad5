"""Shared pieces of the image routes: query parameters, output options, PNG-or-JSON responses, OpenAPI bodies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from fastapi import Query, Request, Response
from starlette.concurrency import run_in_threadpool

from service import latents, rendering
from service.errors import error_responses
from service.labels import LABEL_HEADER, Method
from service.metrics import Metrics, route_label
from service.priors import PRIOR_HEADER, PriorName
from service.runtime import ModelRuntime
from service.schemas import EditInfo, ImagesOut
from service.settings import Settings
from service.uploads import JSON, MULTIPART

MAX_NROW = 64
MAX_SCALE = 8
SEED_HEADER = "X-Seed"  # the seed a route drew from (docs/api.md)
VERSION_HEADER = "X-Model-Version"


def _seed(description: str | None = None) -> Any:
    """A seed query parameter, below SEED_LIMIT so that it stays exact as a JSON number."""
    return Query(ge=0, lt=latents.SEED_LIMIT, description=description)


Seed = Annotated[int | None, _seed()]  # a posterior sample's seed (/encode, /reconstruct)
DrawnSeed = Annotated[int | None, _seed("drawn when absent")]  # a prior sample's seed (/sample, /sample/grid)
Scale = Annotated[int, Query(ge=1, le=MAX_SCALE, description="integer enlargement, nearest neighbour")]


@dataclass(frozen=True)
class OutputOptions:
    nrow: int
    scale: int


async def output_options(
    nrow: Annotated[int, Query(ge=1, le=MAX_NROW, description="images per grid row (PNG output)")] = 8,
    scale: Scale = 1,
) -> OutputOptions:
    return OutputOptions(nrow, scale)


def check_output(runtime: ModelRuntime, settings: Settings, n: int, options: OutputOptions) -> None:
    """422 before any inference when the requested grid would be too large."""
    image = runtime.manifest.image
    rendering.check_output_size(n, image.height, image.width, options.nrow, options.scale, settings.max_output_pixels)


def _encode(
    images: np.ndarray, value_range: tuple[float, float], options: OutputOptions, as_json: bool
) -> bytes | list[str]:
    pixels = rendering.to_uint8(images, value_range)  # (N, H, W, C)
    if as_json:
        return rendering.png_list(pixels, options.scale)
    return rendering.png_grid(pixels, options.nrow, options.scale)


async def _encode_off_loop(
    settings: Settings, runtime: ModelRuntime, images: np.ndarray, options: OutputOptions, as_json: bool
) -> bytes | list[str]:
    """``_encode`` on the event loop for small outputs, on a worker thread for the rest."""
    value_range = runtime.manifest.preprocessing.value_range
    n, _, height, width = images.shape
    if n * height * width * options.scale**2 <= settings.inline_pixels:  # small: encoded without a thread hop
        return _encode(images, value_range, options, as_json)
    return await run_in_threadpool(_encode, images, value_range, options, as_json)


def _headers(
    runtime: ModelRuntime, seed: int | None, label_method: Method | None, prior: PriorName | None
) -> dict[str, str]:
    """The model version, and the seed, label method and prior where the route has them."""
    headers = {VERSION_HEADER: runtime.version}
    if seed is not None:
        headers[SEED_HEADER] = str(seed)
    if label_method is not None:
        headers[LABEL_HEADER] = label_method
    if prior is not None:
        headers[PRIOR_HEADER] = prior
    return headers


def observe_density(
    runtime: ModelRuntime, metrics: Metrics, mu: np.ndarray, logvar: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """(log density, typicality) of posteriors (N, Z each) under the fitted prior, each observed in
    vaegan_input_typicality; None when the bundle has no fitted prior."""
    density = runtime.priors.log_density(mu, logvar)
    if density is not None:
        histogram = metrics.input_typicality.labels(runtime.model)
        for value in density[1]:
            histogram.observe(float(value))
    return density


async def image_response(
    request: Request,
    runtime: ModelRuntime,
    metrics: Metrics,
    images: np.ndarray,
    options: OutputOptions,
    *,
    latents: np.ndarray | None = None,
    seed: int | None = None,
    labels: list[str] | None = None,
    label_method: Method | None = None,
    edit: EditInfo | None = None,
    prior: PriorName | None = None,
    density: tuple[np.ndarray, np.ndarray] | None = None,
) -> Response:
    """(N, C, H, W) model output as a PNG (one image or a grid), or JSON on Accept: application/json.

    ``label_method`` and ``prior`` are also sent as headers (X-Label-Method, X-Prior), so a PNG says
    how a label was honoured and where z came from. ``density``: (log density, typicality) of the
    inputs' latents under the fitted prior (JSON only).
    """
    as_json = rendering.wants_json(request.headers.get("accept"))
    encoded = await _encode_off_loop(request.app.state.settings, runtime, images, options, as_json)
    route = route_label(request.scope)  # never request.url: a query that is not UTF-8 must not fail here
    metrics.images.labels(route).inc(len(images))
    headers = _headers(runtime, seed, label_method, prior)
    if isinstance(encoded, list):
        body = ImagesOut(
            images=encoded,
            latents=latents.tolist() if latents is not None else None,
            seed=seed,
            labels=labels,
            label_method=label_method,
            edit=edit,
            prior=prior,
            log_density=None if density is None else density[0].tolist(),
            typicality=None if density is None else density[1].tolist(),
            model_version=runtime.version,
        )
        return Response(body.model_dump_json(exclude_none=True), media_type=JSON, headers=headers)
    return Response(encoded, media_type="image/png", headers=headers)


IMAGE_OUTPUT: dict[int | str, dict[str, Any]] = {
    200: {
        "model": ImagesOut,
        "description": "A PNG (one image, or a grid of several); JSON with base64 PNGs on Accept: application/json",
        "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def image_input(*fields: str, raw: bool) -> dict[str, Any]:
    """OpenAPI requestBody for images sent as multipart files (and, for one, as a raw body)."""
    binary = {"type": "string", "format": "binary"}
    content: dict[str, Any] = {
        MULTIPART: {
            "schema": {
                "type": "object",
                "properties": {field: binary for field in fields},
                "required": list(fields),
            }
        }
    }
    if raw:
        raw_types = ("image/png", "image/jpeg", "image/webp", "image/bmp", "image/gif")
        content.update({media: {"schema": binary} for media in raw_types})
    return {"requestBody": {"required": True, "content": content}}


def responses(*statuses: int, images: bool = False) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route: the image output (if any) and its error statuses."""
    return {**(IMAGE_OUTPUT if images else {}), **error_responses(*statuses)}
