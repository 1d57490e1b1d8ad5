"""Every error the service answers with: one JSON shape, ``{"error": code, "detail": text}``.

Routes raise a ``ServiceError`` subclass; the handlers installed by ``install_error_handlers``
turn it, FastAPI's validation errors and Starlette's 404/405 into that shape. No traceback or
exception text from inside the service reaches a client: unexpected errors answer a fixed line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.requestlog import request_id

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str  # a stable machine-readable code, e.g. "payload_too_large"
    detail: str  # what was wrong, for a human
    request_id: str | None = None  # the request's X-Request-ID (service/requestlog.py), to find it in the log


class ProtocolErrorBody(BaseModel):
    """The body of an error under /v2/models: the Open Inference Protocol's ``{"error": text}``."""

    error: str  # what was wrong, for a human (protocol clients raise it as the message)
    code: str | None = None  # the stable code ErrorBody.error would hold
    request_id: str | None = None


class ServiceError(Exception):
    """An error with its HTTP status and code; the message is the detail shown to the client."""

    status_code = 500
    code = "internal_error"

    def __init__(self, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})


class BadImage(ServiceError):
    status_code, code = 400, "undecodable_image"


class BadRequest(ServiceError):
    status_code, code = 400, "bad_request"


class NotFound(ServiceError):
    status_code, code = 404, "not_found"


class BodyTimeout(ServiceError):
    status_code, code = 408, "body_timeout"


class PayloadTooLarge(ServiceError):
    status_code, code = 413, "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status_code, code = 415, "unsupported_media_type"


class InvalidParameter(ServiceError):
    status_code, code = 422, "invalid_parameter"


class InferenceTimeout(ServiceError):
    status_code, code = 504, "inference_timeout"


class NotReady(ServiceError):
    status_code, code = 503, "not_ready"


class Overloaded(ServiceError):
    status_code, code = 503, "overloaded"


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}
_DESCRIPTIONS = {
    400: "The image cannot be decoded, or the body is malformed",
    404: "Not found: an unknown model (the answer names the served ones), or nothing at this path",
    413: "The body or the image is too large (bytes, or pixels read from the image header)",
    415: "Unsupported media type",
    422: "Invalid parameters",
    503: "No model is ready, the service is shutting down, or the queue is full (see Retry-After)",
    504: "The model did not answer within VAEGAN_INFERENCE_TIMEOUT_S",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the error statuses a route can answer."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        documented[status] = {"model": ErrorBody, "description": _DESCRIPTIONS[status]}
        if status == 503:
            retry = {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
            documented[status]["headers"] = {"Retry-After": retry}
    return documented


PROTOCOL_PREFIX = "/v2/models"  # its errors take the protocol's body (ProtocolErrorBody)


def protocol_error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of an Open Inference Protocol route: its statuses with ProtocolErrorBody."""
    documented = error_responses(*statuses)
    for entry in documented.values():
        entry["model"] = ProtocolErrorBody
    return documented


def error_response(
    status_code: int, code: str, detail: str, headers: Mapping[str, str] | None = None, protocol: bool = False
) -> JSONResponse:
    body: BaseModel = ErrorBody(error=code, detail=detail, request_id=request_id.get())
    if protocol:
        body = ProtocolErrorBody(error=detail, code=code, request_id=request_id.get())
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status_code, headers=dict(headers or {}))


def _protocol(request: Request) -> bool:
    return str(request.scope.get("path", "")).startswith(PROTOCOL_PREFIX)


def validation_text(errors: Iterable[Any], limit: int = 5) -> str:
    """'query.n: Input should be less than or equal to 64; ...' from pydantic's error list."""
    errors = list(errors)
    parts = []
    for err in errors[:limit]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid")))
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    return ("; ".join(parts) + more) or "invalid request"


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return error_response(exc.status_code, exc.code, exc.detail, exc.headers, _protocol(request))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, InvalidParameter.code, validation_text(exc.errors()), protocol=_protocol(request))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), exc.headers, _protocol(request))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # The path as repr (not .url, which may not decode): a newline in it cannot start a forged log line.
    log.exception("unhandled error on %s %r", request.method, request.scope.get("path"))
    return error_response(500, "internal_error", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    """Route every error path of ``app`` to the JSON error body."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
