"""``create_app(settings)``: the FastAPI application, its lifespan, middleware and routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from service.errors import install_error_handlers
from service.lifecycle import ModelManager
from service.metrics import Metrics
from service.middleware import BodyLimitMiddleware, MetricsMiddleware
from service.routes import ROUTERS
from service.settings import Settings, get_settings

log = logging.getLogger(__name__)

DESCRIPTION = """REST inference for a VAE-GAN (Larsen et al., ICML 2016) exported as an ONNX bundle.

Errors are always JSON: `{"error": code, "detail": text}`. Image routes answer PNG by default and
JSON (base64 PNGs and latents) with `Accept: application/json`. See docs/api.md.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load, verify and warm up the model before serving; drain and release it on shutdown."""
    manager: ModelManager = app.state.models
    await manager.start()
    if not manager.ready:
        log.error("serving without a model: %s", manager.reason)
    try:
        yield
    finally:
        await manager.stop()


def document_limits(app: FastAPI, settings: Settings) -> None:
    """Write the settings' limits into the OpenAPI schema, so clients (and fuzzers) see the real bounds."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()  # built once and cached by FastAPI; patching again is harmless
        for parameter in schema["paths"]["/sample"]["get"]["parameters"]:
            if parameter["name"] == "n":
                parameter["schema"]["maximum"] = settings.max_samples
        decode = schema["paths"]["/decode"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        decode["properties"]["z"]["maxItems"] = min(settings.max_samples, decode["properties"]["z"]["maxItems"])
        runtime = app.state.models.current
        if runtime is not None:  # the latent width of the model serving now (it may change on reload)
            ends = schema["paths"]["/interpolate"]["post"]["requestBody"]["content"]["application/json"]["schema"]
            for row in (decode["properties"]["z"]["items"], ends["properties"]["a"], ends["properties"]["b"]):
                row["minItems"] = row["maxItems"] = runtime.manifest.latent_dim
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app for ``settings`` (default: the environment); nothing is loaded until its lifespan runs."""
    settings = settings or get_settings()
    app = FastAPI(title="vaegan", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = Metrics(max_batch=settings.max_batch)
    app.state.models = ModelManager(settings, app.state.metrics)

    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    document_limits(app, settings)

    # Outermost last: metrics see every answer, the body limit applies before any route reads.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Accept"],
            expose_headers=["X-Seed", "X-Model-Version", "Retry-After"],
        )
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app
