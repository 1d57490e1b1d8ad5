"""``create_app(settings)``: the FastAPI application, its lifespan, middleware and routers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from service.auth import KEY_HEADER, ApiKeyMiddleware
from service.errors import install_error_handlers
from service.labels import LABEL_HEADER
from service.metrics import Metrics
from service.middleware import BodyLimitMiddleware, MetricsMiddleware
from service.playground import mount_playground
from service.priors import PRIOR_HEADER
from service.registry import ModelRegistry
from service.requestlog import REQUEST_ID_HEADER, RequestIdMiddleware
from service.responses import SEED_HEADER, VERSION_HEADER
from service.routes import routers
from service.settings import Settings, get_settings
from service.uploads import JSON

log = logging.getLogger(__name__)

DESCRIPTION = """REST inference for a VAE-GAN (Larsen et al., ICML 2016) exported as an ONNX bundle.

Errors are always JSON: `{"error": code, "detail": text, "request_id": id}`. Image routes answer PNG by default and
JSON (base64 PNGs and latents) with `Accept: application/json`. See docs/api.md.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load, verify and warm up the models before serving; drain and release them on shutdown."""
    registry: ModelRegistry = app.state.models
    # Uploads over VAEGAN_INLINE_PIXELS are decoded in threads, this many at once (bounded memory).
    app.state.large_decodes = asyncio.Semaphore(app.state.settings.max_large_decodes)
    await registry.start()
    if not registry.ready:
        log.error("not ready: %s", registry.reason)
    try:
        yield
    finally:
        await registry.stop()


def document_latent_width(app: FastAPI) -> None:
    """Write the served models' latent width into /openapi.json (when they share one), so clients see it.

    Every other limit is declared on its route (``Query(le=...)``, ``openapi_extra``); this one
    belongs to the model serving now, which a hot swap can change after the routes are declared,
    so it is set on FastAPI's cached schema whenever the schema is asked for.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()  # built once and cached by FastAPI; setting the width again is harmless
        registry: ModelRegistry = app.state.models
        widths = {m.current.manifest.latent_dim for m in registry.managers.values() if m.current is not None}
        for row in _latent_rows(schema):
            if len(widths) == 1:  # models of different widths: each route checks its model's own
                row["minItems"] = row["maxItems"] = next(iter(widths))
            else:
                row.pop("minItems", None)
                row.pop("maxItems", None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _latent_rows(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The schemas of the JSON latent rows: /decode's z rows, /interpolate's ends a and b."""

    def body(path: str) -> dict[str, Any]:
        content = schema["paths"][path]["post"]["requestBody"]["content"]
        properties: dict[str, Any] = content[JSON]["schema"]["properties"]
        return properties

    return [body("/decode")["z"]["items"], body("/interpolate")["a"], body("/interpolate")["b"]]


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app for ``settings`` (default: the environment); nothing is loaded until its lifespan runs."""
    settings = settings or get_settings()
    app = FastAPI(
        title="vaegan",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs" if settings.docs else None,  # VAEGAN_DOCS=false: no /docs, /redoc, /openapi.json
        redoc_url="/redoc" if settings.docs else None,
        openapi_url="/openapi.json" if settings.docs else None,
    )
    app.state.settings = settings
    app.state.metrics = Metrics(max_batch=settings.max_batch)
    app.state.models = ModelRegistry(settings, app.state.metrics)

    install_error_handlers(app)
    for router in routers(settings):
        app.include_router(router)
    if settings.playground:
        mount_playground(app)
    document_latent_width(app)

    # Outermost last: metrics see every answer, the body limit applies before any route reads.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes, timeout_s=settings.body_timeout_s)
    app.add_middleware(ApiKeyMiddleware, keys=settings.keys())  # before the body is read; preflights pass
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Accept", REQUEST_ID_HEADER, "Authorization", KEY_HEADER],
            expose_headers=[SEED_HEADER, VERSION_HEADER, PRIOR_HEADER, LABEL_HEADER, REQUEST_ID_HEADER, "Retry-After"],
        )
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestIdMiddleware)  # outermost: every answer, even a refused body, carries the id
    return app
