"""The playground page: ``GET /`` and ``/playground``, its files under ``/static/`` (service/static/).

Plain HTML, CSS and hand-written ES modules, no build step and nothing fetched from elsewhere, so the page
works offline and calls only the public API. Every answer here carries a strict
Content-Security-Policy: scripts, styles and requests from this origin only (no inline script or
style, no eval), images also from ``blob:`` and ``data:`` URLs (the page shows the API's PNGs
through them), no framing. The API's own answers do not get it: /docs (Swagger UI) needs its CDN.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PATH = "/static"
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",  # a module script must be served as JavaScript, nothing guessed
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidate (ETag): a new release of the page is seen at once
}


class PlaygroundFiles(StaticFiles):
    """Starlette's ``StaticFiles`` on service/static/ (no listing, nothing outside it), with the page's headers."""

    path = STATIC_PATH  # what the request metrics name this mount (route_label reads scope["route"].path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self  # a Mount sets no route: without this every file would count as "<unmatched>"
        await super().__call__(scope, receive, send)

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


router = APIRouter(include_in_schema=False)


@router.api_route("/", methods=["GET", "HEAD"])
@router.api_route("/playground", methods=["GET", "HEAD"])
async def page() -> FileResponse:
    """The playground's HTML; it works even while no model is ready (it says so and retries)."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


def mount_playground(app: FastAPI) -> None:
    """Serve the page and its files on ``app`` (``create_app`` calls this unless VAEGAN_PLAYGROUND=false)."""
    app.include_router(router)
    app.mount(STATIC_PATH, PlaygroundFiles(directory=STATIC_DIR), name="static")
