"""One APIRouter per resource; ``routers(settings)`` is what ``create_app`` includes.

/sample and /decode are built per app: their limits come from its settings and are declared on
the routes, so FastAPI both enforces and documents them.
"""

from fastapi import APIRouter

from service.routes import (
    decode,
    edit,
    encode,
    health,
    inference_protocol,
    interpolate,
    metrics,
    model,
    reconstruct,
    sample,
    similarity,
)
from service.settings import Settings


def routers(settings: Settings) -> tuple[APIRouter, ...]:
    """The routers of an app created with ``settings``, in the order they are included."""
    return (
        health.router,
        model.router,
        metrics.router,
        sample.build_grid_router(settings),  # before /sample's router: the more specific path first
        sample.build_router(settings),
        reconstruct.router,
        encode.router,
        decode.build_router(settings),
        interpolate.router,
        similarity.router,
        edit.router,
        inference_protocol.router,
    )
