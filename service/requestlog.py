"""Request ids and the request log: one id per request, echoed, in every error body and log line.

A client's ``X-Request-ID`` is kept when it is a bounded, printable token (so it cannot break a
log line or a header); otherwise the service makes one. The id is the ``X-Request-ID`` header of
every answer, the ``request_id`` of every JSON error body, and a field of every log line written
while the request runs. Each request ends with one access line (logger ``service.access``): id,
method, route template (never the raw path: a ``%0A`` in a URL forges nothing), status, duration,
model version, seed. ``VAEGAN_LOG_FORMAT=json`` makes every log line one JSON object.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from contextvars import ContextVar
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.metrics import route_label

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")  # printable, no spaces, bounded
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
access_log = logging.getLogger("service.access")


def accepted_id(value: str | None) -> str:
    """The client's id when it is a valid token, else a new one (32 hex digits)."""
    if value is not None and _VALID_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Give every HTTP request an id (echoed as X-Request-ID) and write its access line when it ends.

    Every answer also carries ``X-Content-Type-Options: nosniff``: a browser never reads a JSON or
    PNG answer as something else (the playground's files already had it, docs/security.md).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = accepted_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
        token = request_id.set(rid)
        start, answered = time.perf_counter(), Headers()
        status = 500  # unless the app starts a response

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                extra = [(b"x-request-id", rid.encode())]
                if not any(name.lower() == b"x-content-type-options" for name, _ in message["headers"]):
                    extra.append((b"x-content-type-options", b"nosniff"))
                message["headers"] = [*message["headers"], *extra]
                answered = Headers(raw=message["headers"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            fields = {
                "method": scope.get("method"),
                "route": route_label(scope),
                "status": status,
                "duration_ms": round((time.perf_counter() - start) * 1000, 2),
                "model_version": answered.get("x-model-version"),
                "seed": answered.get("x-seed"),
            }
            access_log.info(
                "%s %s %s %.1f ms", fields["method"], fields["route"], status, fields["duration_ms"],
                extra={"fields": fields},
            )  # fmt: skip
            request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Add the current request's id (or None) to every record, for both formats."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)  # escapes every newline and control character


class TextFormatter(logging.Formatter):
    """``time level logger [request id] message``, with any line break in the message escaped."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = None
        text = super().format(record)
        head, sep, tail = text.partition("\nTraceback")  # a traceback keeps its lines
        return head.replace("\r", "\\r").replace("\n", "\\n") + sep + tail


def configure_logging(level: str, fmt: str) -> None:
    """The root handler of vaegan-serve (uvicorn's loggers propagate to it): text or JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
