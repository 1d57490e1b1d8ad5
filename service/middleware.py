"""ASGI middleware: the request body's size limit and deadline (enforced while reading) and the HTTP metrics.

Both are plain ASGI callables rather than ``BaseHTTPMiddleware``, so they neither buffer bodies
nor break streaming and cancellation.
"""

from __future__ import annotations

import asyncio
import time

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import BadRequest, BodyTimeout, PayloadTooLarge, error_response
from service.metrics import Metrics, route_label

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes``: from Content-Length at once, else as the bytes arrive; and
    bodies that have not arrived whole within ``timeout_s`` (0: no deadline).

    Starlette reads bodies without a limit; here every ``http.request`` message is counted, and
    the read that crosses the limit raises ``PayloadTooLarge`` (413) inside the route, so an
    endless chunked upload never sits in memory. A body that trickles in or stalls raises
    ``BodyTimeout`` (408, connection closed) at its deadline, so it cannot hold a connection, a
    task and a spooled upload file forever (VAEGAN_BODY_TIMEOUT_S, docs/security.md).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 0.0) -> None:
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            problem: BadRequest | PayloadTooLarge | None = None
            if not declared.isdigit():
                problem = BadRequest(f"invalid Content-Length {declared[:40]!r}")
            elif int(declared) > self.max_bytes:
                problem = PayloadTooLarge(f"the body is {declared} bytes; the limit is {self.max_bytes}")
            if problem is not None:
                response = error_response(problem.status_code, problem.code, problem.detail, {"Connection": "close"})
                await response(scope, receive, send)
                return
        received, complete = 0, False
        deadline = time.monotonic() + self.timeout_s

        async def next_message() -> Message:
            """receive(), within the body's deadline while the body is incomplete (not after: a
            route may wait for the client to disconnect)."""
            if complete or not self.timeout_s:
                return await receive()
            try:
                return await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                raise BodyTimeout(
                    f"the body did not arrive within {self.timeout_s:g} s (VAEGAN_BODY_TIMEOUT_S)",
                    {"Connection": "close"},
                ) from None

        async def limited_receive() -> Message:
            nonlocal received, complete
            message = await next_message()
            if message["type"] == "http.request":
                complete = not message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > self.max_bytes:  # close after the 413, or the server would drain the rest
                    raise PayloadTooLarge(
                        f"the body exceeds the limit of {self.max_bytes} bytes", {"Connection": "close"}
                    )
            return message

        await self.app(scope, limited_receive, send)


class MetricsMiddleware:
    """Count every response by route template, method and status; time it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # unless the app starts a response

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.metrics.in_flight.dec()
            route = route_label(scope)
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.request_latency.labels(route, method).observe(time.perf_counter() - start)
