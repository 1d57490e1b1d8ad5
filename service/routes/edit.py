"""Class edits of an image: Larsen et al. 2016, Sec. 5's attribute vectors, or a conditional decoder's label.

Unconditional bundle (with class means m_k): z = mu(x); frame s decodes z + s * (m_to - m_from) for
strengths s over [0, 2]; ``from`` defaults to the class whose mean is nearest to z. Conditional
bundle: z = mu(x, from) keeps the image's style, and frame s decodes it with the label
(1 - s) * onehot(from) + s * onehot(to), s over [0, 1]; ``from`` defaults to the class whose
reconstruction is nearest to the image (analysis by synthesis: the model itself classifies).
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response

from service.dependencies import MetricsDep, RuntimeDep, SettingsDep
from service.labels import MAX_LABEL_LENGTH, Classes, class_query
from service.responses import OutputOptions, check_output, image_input, image_response, output_options, responses
from service.runtime import ModelRuntime
from service.schemas import EditInfo
from service.uploads import image_rows

router = APIRouter(tags=["latent arithmetic"])
MAX_STEPS = 32
MAX_STRENGTH = {"class-mean": 2.0, "conditional": 1.0}


async def conditional_source(runtime: ModelRuntime, classes: Classes, x: np.ndarray) -> int:
    """The class under whose label the model reconstructs ``x`` (1, C, H, W) best (pixel MSE)."""
    k = len(classes.names)
    labels = classes.onehot(np.arange(k))  # (K, K)
    images = np.repeat(x, k, axis=0)  # (K, C, H, W)
    mu, _ = await runtime.encode(images, labels)
    recon = await runtime.decode(mu, labels)
    return int(np.argmin(((recon - images) ** 2).reshape(k, -1).mean(axis=1)))


@router.post(
    "/edit",
    response_class=Response,
    responses=responses(400, 404, 413, 415, 422, 503, images=True),
    openapi_extra=image_input("file", raw=True),
)
async def edit(
    request: Request,
    runtime: RuntimeDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    options: Annotated[OutputOptions, Depends(output_options)],
    to: Annotated[str, class_query("8")],
    source: Annotated[
        str | None, Query(alias="from", max_length=MAX_LABEL_LENGTH, description="a class; default: inferred")
    ] = None,
    steps: Annotated[int, Query(ge=2, le=MAX_STEPS, description="frames, strength 0 to the maximum")] = 5,
) -> Response:
    """The image moved from class ``from`` towards class ``to``: a PNG strip over strengths (or JSON)."""
    classes = runtime.classes
    method = classes.require_method("/edit")
    target = classes.index(to, "to")
    given = None if source is None else classes.index(source, "from")
    if "nrow" not in request.query_params:  # a strip by default
        options = OutputOptions(steps, options.scale)
    check_output(runtime, settings, steps, options)
    x = await image_rows(request, runtime.manifest.preprocessing, settings, ("file",))  # (1, C, H, W)
    strengths = np.linspace(0.0, MAX_STRENGTH[method], steps, dtype=np.float32)  # (steps,)
    if method == "conditional":
        start = given if given is not None else await conditional_source(runtime, classes, x)
        z, _ = await runtime.encode(x, classes.onehot([start]))  # (1, Z): the image's style
        z = np.repeat(z, steps, axis=0)
        onehots = classes.onehot([start, target])  # (2, K)
        labels = (1 - strengths[:, None]) * onehots[0] + strengths[:, None] * onehots[1]  # (steps, K)
        images = await runtime.decode(z, labels.astype(np.float32))
    else:
        assert classes.means is not None
        mu, _ = await runtime.encode(x)  # (1, Z)
        start = given if given is not None else int(np.argmin(((classes.means - mu) ** 2).sum(axis=1)))
        direction = classes.means[target] - classes.means[start]  # the attribute vector, (Z,)
        z = (mu + strengths[:, None] * direction).astype(np.float32)  # (steps, Z)
        images = await runtime.decode(z)
    info = EditInfo(source=classes.names[start], target=classes.names[target], strengths=strengths.tolist())
    return await image_response(request, runtime, metrics, images, options, latents=z, label_method=method, edit=info)
