"""A path through latent space between two images (their posterior means) or two latents."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from service import latents
from service.dependencies import MetricsDep, RuntimeDep, SettingsDep
from service.labels import Label
from service.responses import OutputOptions, check_output, image_input, image_response, output_options, responses
from service.routes.decode import latent_matrix
from service.schemas import InterpolateLatents
from service.uploads import JSON, image_rows, json_body_limit, media_type, read_json

router = APIRouter(tags=["generate"])
MAX_STEPS = 64

_BODY = image_input("a", "b", raw=False)
_BODY["requestBody"]["content"][JSON] = {"schema": InterpolateLatents.model_json_schema()}


@router.post(
    "/interpolate",
    response_class=Response,
    responses=responses(400, 404, 413, 415, 422, 503, images=True),
    openapi_extra=_BODY,
)
async def interpolate(
    request: Request,
    runtime: RuntimeDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    options: Annotated[OutputOptions, Depends(output_options)],
    steps: Annotated[int, Query(ge=2, le=MAX_STEPS, description="images on the path, ends included")] = 8,
    method: Annotated[Literal["linear", "slerp"], Query(description="straight line or great circle")] = "linear",
    label: Label = None,
) -> Response:
    """Decode ``steps`` latents from a to b: a PNG strip (or JSON). Send multipart images a and b, or JSON
    latents; a conditional model needs the ``label`` its path is encoded and decoded with."""
    classes = runtime.classes
    classes.network_labels(label, 1)  # 422 before reading the body when the label is missing or stray
    if media_type(request) == JSON:
        ends = await read_json(request, InterpolateLatents, json_body_limit(2, runtime.manifest.latent_dim))
        pair = latent_matrix([ends.a, ends.b], runtime.manifest.latent_dim, 2)  # (2, Z)
    else:
        x = await image_rows(request, runtime.manifest.preprocessing, settings, ("a", "b"))
        pair, _ = await runtime.encode(x, classes.network_labels(label, 2))  # posterior means, (2, Z)
    if "nrow" not in request.query_params:  # a strip by default
        options = OutputOptions(steps, options.scale)
    check_output(runtime, settings, steps, options)
    z = latents.interpolate(pair[0], pair[1], steps, method)  # (steps, Z)
    images = await runtime.decode(z, classes.network_labels(label, steps))
    return await image_response(request, runtime, metrics, images, options, latents=z)
