"""One APIRouter per resource; ``ROUTERS`` is what ``create_app`` includes."""

from service.routes import decode, encode, health, interpolate, metrics, model, reconstruct, sample, similarity

ROUTERS = (
    health.router,
    model.router,
    metrics.router,
    sample.router,
    reconstruct.router,
    encode.router,
    decode.router,
    interpolate.router,
    similarity.router,
)
