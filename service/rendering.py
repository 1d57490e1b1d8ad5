"""Model output to HTTP bodies: PNG (one image, or a grid) or JSON with base64 PNGs.

Images leave the decoder as (N, C, H, W) floats in the manifest's ``value_range``; they become
uint8 here and are laid out ``nrow`` to a row, each enlarged by an integer ``scale``
(model_core.images: the conversion and the grid the trainer's PNGs use too).
"""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

from model_core.images import enlarge, from_value_range, grid_shape, make_grid
from service.errors import InvalidParameter

# zlib level of the PNGs: 1 is the cheapest that still compresses (docs/benchmarks.md, "Serving").
PNG_COMPRESS_LEVEL = 1
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def to_uint8(images: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """(N, C, H, W) floats in ``value_range`` to (N, H, W, C) uint8, the layout PNGs are written in."""
    return from_value_range(images, value_range).transpose(0, 2, 3, 1)


def check_output_size(n: int, height: int, width: int, nrow: int, scale: int, max_pixels: int) -> None:
    """Refuse a grid larger than ``max_pixels`` before any work is done."""
    h, w = grid_shape(n, height, width, nrow, scale)
    if h * w > max_pixels:
        raise InvalidParameter(
            f"the output would be {w}x{h} = {w * h} pixels; the limit is {max_pixels} (lower n, nrow or scale)"
        )


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type and data (PNG spec, section 5.3)."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(image: np.ndarray) -> bytes:
    """(H, W, C) uint8, C in {1, 3}, as PNG bytes (8-bit greyscale or RGB).

    Written here rather than by Pillow: every scanline with filter type 0 (none), one zlib stream.
    For these small outputs Pillow's per-call overhead and adaptive filtering cost 2-3x the time
    for larger files (docs/benchmarks.md, "Serving").
    """
    height, width, channels = image.shape
    scanlines = np.zeros((height, 1 + width * channels), np.uint8)  # column 0: the filter byte, 0
    scanlines[:, 1:] = image.reshape(height, width * channels)
    header = struct.pack(">IIBBBBB", width, height, 8, 0 if channels == 1 else 2, 0, 0, 0)  # colour type 0 / 2
    idat = zlib.compress(scanlines.tobytes(), PNG_COMPRESS_LEVEL)
    return _PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def png_grid(images: np.ndarray, nrow: int, scale: int) -> bytes:
    """(N, H, W, C) uint8 as one PNG: the image itself when N is 1, else a grid."""
    if len(images) == 1:
        return png(enlarge(images[0], scale))
    return png(make_grid(images, nrow, scale))


def png_list(images: np.ndarray, scale: int) -> list[str]:
    """(N, H, W, C) uint8 as base64 PNG strings, one per image."""
    return [base64.b64encode(png(enlarge(image, scale))).decode("ascii") for image in images]


def wants_json(accept: str | None) -> bool:
    """True when ``Accept`` prefers application/json to image/png (q-values honoured)."""
    if not accept:
        return False
    quality: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        quality[media.lower()] = max(q, quality.get(media.lower(), 0.0))
    json_q = quality.get("application/json", 0.0)
    if "image/png" in quality:  # named explicitly: a tie goes to PNG
        return json_q > quality["image/png"]
    wildcard_q = max(quality.get("image/*", 0.0), quality.get("*/*", 0.0))
    return json_q > 0 and json_q >= wildcard_q
