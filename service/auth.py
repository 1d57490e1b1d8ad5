"""API keys (``VAEGAN_API_KEYS``, ``VAEGAN_API_KEYS_FILE``; docs/security.md).

With keys set, every request needs one, as ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``,
except the health probes (an orchestrator has no key), the playground's page and its static files
(they hold no data: the page asks the person for a key and sends it with every API call) and CORS
preflights. A refusal is 401 with the JSON error body and ``WWW-Authenticate: Bearer``. Keys are
compared with ``hmac.compare_digest`` against every configured key, so the time taken tells nothing
about how much of a key was right, nor which key.
"""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import error_response

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/", "/playground"})
OPEN_PREFIX = "/static/"
KEY_HEADER = "X-API-Key"


def presented_key(headers: Headers) -> bytes | None:
    """The key a request carries (Bearer token, else X-API-Key), as bytes; None without one."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip().encode("utf-8", "surrogateescape")
    key = headers.get(KEY_HEADER)
    return key.encode("utf-8", "surrogateescape") if key else None


def is_open(path: str) -> bool:
    """Whether ``path`` answers without a key."""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIX)


class ApiKeyMiddleware:
    """Refuse (401) a request without one of ``keys``, unless its path is open; no keys: every request passes."""

    def __init__(self, app: ASGIApp, keys: list[str]) -> None:
        self.app = app
        self.keys = [key.encode() for key in keys]

    def accepts(self, presented: bytes | None) -> bool:
        """Constant-time: every key is compared in full, whatever matched before."""
        if presented is None:
            return False
        matched = False
        for key in self.keys:
            matched |= hmac.compare_digest(presented, key)
        return matched

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or scope["method"] == "OPTIONS" or is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        presented = presented_key(Headers(scope=scope))
        if self.accepts(presented):
            await self.app(scope, receive, send)
            return
        why = "no API key" if presented is None else "an unknown API key"
        detail = f"{why}: send one as 'Authorization: Bearer KEY' or '{KEY_HEADER}: KEY'"
        response = error_response(401, "unauthorized", detail, {"WWW-Authenticate": 'Bearer realm="vaegan"'})
        await response(scope, receive, send)
