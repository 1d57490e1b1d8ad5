"""Latents to images: Dec(z) for each row of z."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Request, Response

from service.dependencies import MetricsDep, RuntimeDep, SettingsDep
from service.errors import InvalidParameter
from service.responses import OutputOptions, check_output, image_response, output_options, responses
from service.schemas import DecodeRequest
from service.uploads import JSON, read_json

router = APIRouter(tags=["generate"])


def latent_matrix(rows: list[list[float]], latent_dim: int, max_rows: int) -> np.ndarray:
    """Validated (N, Z) float32 from JSON rows: the model's width, at most ``max_rows``."""
    if len(rows) > max_rows:
        raise InvalidParameter(f"{len(rows)} latents; the limit is {max_rows} (VAEGAN_MAX_SAMPLES)")
    widths = {len(row) for row in rows}
    if widths != {latent_dim}:
        raise InvalidParameter(f"every latent needs {latent_dim} values (the model's latent_dim); got {sorted(widths)}")
    return np.asarray(rows, dtype=np.float32)


@router.post(
    "/decode",
    response_class=Response,
    responses=responses(413, 415, 422, 503, images=True),
    openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": DecodeRequest.model_json_schema()}}}},
)
async def decode(
    request: Request,
    runtime: RuntimeDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    options: Annotated[OutputOptions, Depends(output_options)],
) -> Response:
    """Decode ``{"z": [[...], ...]}`` to a PNG grid (or JSON)."""
    body = await read_json(request, DecodeRequest)
    z = latent_matrix(body.z, runtime.manifest.latent_dim, settings.max_samples)
    check_output(runtime, settings, len(z), options)
    images = await runtime.decode(z)
    return await image_response(request, runtime, metrics, images, options, latents=z)
