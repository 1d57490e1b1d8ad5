"""The paper's point as an API: distance in the discriminator's feature space vs. in pixels."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request

from service.dependencies import RuntimeDep, SettingsDep
from service.distances import pair_distances
from service.errors import error_responses
from service.responses import image_input
from service.schemas import SimilarityOut
from service.uploads import image_rows

router = APIRouter(tags=["similarity"])


@router.post(
    "/similarity",
    response_model=SimilarityOut,
    responses=error_responses(400, 404, 413, 415, 422, 503),
    openapi_extra=image_input("a", "b", raw=False),
)
async def similarity(request: Request, runtime: RuntimeDep, settings: SettingsDep) -> SimilarityOut:
    """Learned (Dis_l) and pixel distances between multipart images a and b."""
    x = await image_rows(request, runtime.manifest.preprocessing, settings, ("a", "b"))  # (2, C, H, W)
    features = await runtime.features(x)  # (2, F)
    return SimilarityOut(**asdict(pair_distances(features, x)), model_version=runtime.version)
