"""The paper's point as an API: distance in the discriminator's feature space vs. in pixels."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Request

from service.dependencies import RuntimeDep, SettingsDep
from service.errors import error_responses
from service.responses import image_input
from service.schemas import SimilarityOut
from service.uploads import image_rows

router = APIRouter(tags=["similarity"])


@router.post(
    "/similarity",
    response_model=SimilarityOut,
    responses=error_responses(400, 413, 415, 422, 503),
    openapi_extra=image_input("a", "b", raw=False),
)
async def similarity(request: Request, runtime: RuntimeDep, settings: SettingsDep) -> SimilarityOut:
    """Learned (Dis_l) and pixel distances between multipart images a and b."""
    x = await image_rows(request, runtime.manifest.preprocessing, settings.max_pixels, ("a", "b"))  # (2, C, H, W)
    features = (await runtime.features(x)).astype(np.float64)  # (2, F)
    pixels = x.reshape(2, -1).astype(np.float64)  # (2, C*H*W)
    # Larsen et al. 2016, Eq. 6-7: -log p(Dis_l(a) | Dis_l(b)) = 1/2 ||Dis_l(a) - Dis_l(b)||^2 + const.
    learned_sq = float(np.sum((features[0] - features[1]) ** 2))
    pixel_sq = float(np.sum((pixels[0] - pixels[1]) ** 2))
    return SimilarityOut(
        learned_distance=0.5 * learned_sq,
        pixel_distance=0.5 * pixel_sq,
        learned_mse=learned_sq / features.shape[1],
        pixel_mse=pixel_sq / pixels.shape[1],
        features=features.shape[1],
        pixels=pixels.shape[1],
        model_version=runtime.version,
    )
