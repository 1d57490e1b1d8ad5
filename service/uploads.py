"""Request bodies in: images (multipart fields or one raw image body) and JSON documents.

The body limit is enforced by ``BodyLimitMiddleware`` while these functions read; here the media
type is checked (415), the multipart form is bounded in files and fields, and the JSON is parsed
by pydantic (depth-limited, NaN and infinities refused) so that any bad document is a 422.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from model_core.bundle import Preprocessing
from service.errors import InvalidParameter, PayloadTooLarge, UnsupportedMediaType, validation_text
from service.imaging import MEDIA_TYPES, finish_input, probe
from service.settings import Settings

Model = TypeVar("Model", bound=BaseModel)
MULTIPART = "multipart/form-data"
JSON = "application/json"
_PART_TYPES = frozenset({*MEDIA_TYPES, "application/octet-stream", ""})  # "" : a part without Content-Type
_IMAGE_TYPES_TEXT = ", ".join(sorted({*MEDIA_TYPES} - {"image/x-ms-bmp"}))


def media_type(request: Request) -> str:
    """The request's Content-Type without parameters, lower case ("" when absent)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_images(request: Request, fields: tuple[str, ...]) -> list[bytes]:
    """The bytes of each image ``fields`` names: multipart files, or (one field) a raw image body."""
    kind = media_type(request)
    if kind == MULTIPART:
        return await _read_multipart(request, fields)
    if kind in MEDIA_TYPES and len(fields) == 1:
        return [await request.body()]
    expected = f"{MULTIPART} with file fields {', '.join(fields)}"
    if len(fields) == 1:
        expected = f"{MULTIPART} (field {fields[0]!r}) or a raw image body ({_IMAGE_TYPES_TEXT})"
    raise UnsupportedMediaType(f"Content-Type {kind or '(none)'!r} is not accepted here; send {expected}")


async def _read_multipart(request: Request, fields: tuple[str, ...]) -> list[bytes]:
    form = await request.form(max_files=len(fields), max_fields=len(fields) + 8)
    try:
        images = []
        for field in fields:
            part = form.get(field)
            if not isinstance(part, UploadFile):
                raise InvalidParameter(f"multipart field {field!r} is missing or not a file")
            part_type = (part.content_type or "").split(";", 1)[0].strip().lower()
            if part_type not in _PART_TYPES:
                raise UnsupportedMediaType(f"file {field!r} has type {part_type!r}; send one of {_IMAGE_TYPES_TEXT}")
            images.append(await part.read())
        return images
    finally:
        await form.close()


async def read_json(request: Request, model: type[Model], max_bytes: int) -> Model:
    """The body parsed as ``model``; 415 unless it is JSON, 413 over ``max_bytes``, 422 with pydantic's reasons.

    ``max_bytes`` is what the largest valid body can take (the route computes it from its limits):
    parsing builds a Python float per number, ~15x the body's size in memory, so a body over it is
    refused from its Content-Length, or once read, before any parsing.
    """
    if media_type(request) != JSON:
        raise UnsupportedMediaType(f"Content-Type {media_type(request) or '(none)'!r}; send {JSON}")
    body = await read_body(request, max_bytes)
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidParameter(validation_text(exc.errors())) from None


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body; 413 from its Content-Length, or once read, when it is over ``max_bytes``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"the body is {declared} bytes; this route takes at most {max_bytes}")
    body = await request.body()
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"the body is {len(body)} bytes; this route takes at most {max_bytes}")
    return body


async def image_rows(request: Request, spec: Preprocessing, settings: Settings, fields: tuple[str, ...]) -> np.ndarray:
    """The uploaded images as model input, (len(fields), C, H, W) float32.

    Each header is checked on the event loop (cheap: nothing is decompressed); an image of at most
    ``settings.inline_pixels`` is then decoded there too, a larger one in a worker thread. For the small
    images these models take, the hop to a thread and back costs more than the decoding.
    """
    blobs = await read_images(request, fields)
    rows = []
    for blob in blobs:
        img = probe(blob, settings.max_pixels)
        if img.width * img.height <= settings.inline_pixels:
            rows.append(finish_input(img, spec))
        else:
            async with request.app.state.large_decodes:  # VAEGAN_MAX_LARGE_DECODES at once: bounded memory
                rows.append(await run_in_threadpool(finish_input, img, spec))
    return np.stack(rows)


def json_body_limit(rows: int, numbers: int, arrays: int = 1, rest: int = 1024) -> int:
    """The most bytes a JSON body of ``rows`` rows of ``numbers`` numbers, in ``arrays`` arrays a row, needs.

    32 characters a number (``-1.2345678901234567e-05, `` is 25), 96 a row of each array (brackets, a
    label), ``rest`` for the rest: generous for any valid body, tiny beside what parsing a larger one
    costs. The latent routes: one array (a latent and its label) a row, 1 KiB; the Open Inference
    Protocol: one a tensor, 4 KiB for the tensors' names, shapes and datatypes.
    """
    return rest + rows * (numbers * 32 + 96 * arrays)
