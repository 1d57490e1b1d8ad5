"""Latents to images: Dec(z) for each row of z."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field, create_model

from service.dependencies import MetricsDep, RuntimeDep
from service.errors import InvalidParameter
from service.labels import Classes
from service.responses import OutputOptions, check_output, image_response, output_options, responses
from service.schemas import MAX_LATENT_ROWS, DecodeRequest, LatentRow
from service.settings import Settings
from service.uploads import JSON, json_body_limit, read_json


def latent_matrix(rows: list[list[float]], latent_dim: int, max_rows: int) -> np.ndarray:
    """Validated (N, Z) float32 from JSON rows: the model's width, at most ``max_rows``."""
    if len(rows) > max_rows:
        raise InvalidParameter(f"{len(rows)} latents; the limit is {max_rows} (VAEGAN_MAX_SAMPLES)")
    widths = {len(row) for row in rows}
    if widths != {latent_dim}:
        raise InvalidParameter(f"every latent needs {latent_dim} values (the model's latent_dim); got {sorted(widths)}")
    return np.asarray(rows, dtype=np.float32)


def row_labels(classes: Classes, labels: list[str | int] | None, rows: int) -> np.ndarray | None:
    """One-hot labels (rows, K) from a body's labels (one, or one per row) for a conditional model."""
    if labels is None or not classes.conditional:
        return classes.network_labels(None if labels is None else str(labels[0]), rows, "labels")
    if len(labels) not in (1, rows):
        raise InvalidParameter(f"labels: {len(labels)} given for {rows} latents; send one, or one per latent")
    indices = [classes.index(str(value), "labels") for value in labels]
    return classes.onehot(indices * rows if len(indices) == 1 else indices)


def request_body(max_rows: int) -> dict[str, Any]:
    """The documented requestBody: ``DecodeRequest`` with at most ``max_rows`` rows (VAEGAN_MAX_SAMPLES)."""
    bounded = create_model(
        "DecodeRequest",
        __base__=DecodeRequest,
        __doc__=DecodeRequest.__doc__,
        z=(Annotated[list[LatentRow], Field(min_length=1, max_length=min(max_rows, MAX_LATENT_ROWS))], ...),
    )
    return {"requestBody": {"required": True, "content": {JSON: {"schema": bounded.model_json_schema()}}}}


def build_router(settings: Settings) -> APIRouter:
    """The /decode router of an app, its body documented with the app's VAEGAN_MAX_SAMPLES."""
    router = APIRouter(tags=["generate"])

    @router.post(
        "/decode",
        response_class=Response,
        responses=responses(404, 413, 415, 422, 503, images=True),
        openapi_extra=request_body(settings.max_samples),
    )
    async def decode(
        request: Request,
        runtime: RuntimeDep,
        metrics: MetricsDep,
        options: Annotated[OutputOptions, Depends(output_options)],
    ) -> Response:
        """Decode ``{"z": [[...], ...]}`` to a PNG grid (or JSON); a conditional model also needs
        ``"labels"``: one class (name or index) for every row, or one per row."""
        # Parsed with the widest row bound, so that too many rows get the message naming the setting;
        # the bytes are bounded by what VAEGAN_MAX_SAMPLES rows (and one more) can take.
        limit = json_body_limit(settings.max_samples + 1, runtime.manifest.latent_dim)
        body = await read_json(request, DecodeRequest, limit)
        z = latent_matrix(body.z, runtime.manifest.latent_dim, settings.max_samples)
        check_output(runtime, settings, len(z), options)
        images = await runtime.decode(z, row_labels(runtime.classes, body.labels, len(z)))
        return await image_response(request, runtime, metrics, images, options, latents=z)

    return router
