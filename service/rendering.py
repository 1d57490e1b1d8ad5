"""Model output to HTTP bodies: PNG (one image, or a grid) or JSON with base64 PNGs.

Images leave the decoder as (N, C, H, W) floats in the manifest's ``value_range``; they become
uint8 here, are laid out ``nrow`` to a row with a 2-pixel gap (torchvision's ``make_grid``
convention), and enlarged by an integer ``scale`` (nearest neighbour, so small digits stay crisp).
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np
from PIL import Image

from service.errors import InvalidParameter

GRID_PADDING = 2  # pixels between and around grid cells
PNG_COMPRESS_LEVEL = 3  # zlib level: small outputs, and much cheaper to encode than the default 6


def to_uint8(images: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """(N, C, H, W) floats in ``value_range`` to (N, H, W, C) uint8."""
    low, high = value_range
    scaled = (np.nan_to_num(images, nan=low) - low) * (255.0 / (high - low))
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def enlarge(image: np.ndarray, scale: int) -> np.ndarray:
    """(H, W, C) to (H*scale, W*scale, C) by repeating pixels."""
    if scale == 1:
        return image
    return image.repeat(scale, axis=0).repeat(scale, axis=1)


def grid_shape(n: int, height: int, width: int, nrow: int, scale: int) -> tuple[int, int]:
    """(H, W) in pixels of the grid ``make_grid`` would draw for n cells, enlarged by ``scale``."""
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    return (
        rows * (height * scale + GRID_PADDING) + GRID_PADDING,
        cols * (width * scale + GRID_PADDING) + GRID_PADDING,
    )


def check_output_size(n: int, height: int, width: int, nrow: int, scale: int, max_pixels: int) -> None:
    """Refuse a grid larger than ``max_pixels`` before any work is done."""
    h, w = grid_shape(n, height, width, nrow, scale)
    if h * w > max_pixels:
        raise InvalidParameter(
            f"the output would be {w}x{h} = {w * h} pixels; the limit is {max_pixels} (lower n, nrow or scale)"
        )


def grid(images: np.ndarray, nrow: int, scale: int = 1) -> np.ndarray:
    """(N, H, W, C) uint8 cells to one (H', W', C) image, ``nrow`` cells per row."""
    n, height, width, channels = images.shape
    cell_h, cell_w = height * scale + GRID_PADDING, width * scale + GRID_PADDING
    out_h, out_w = grid_shape(n, height, width, nrow, scale)
    canvas = np.zeros((out_h, out_w, channels), dtype=np.uint8)
    cols = min(nrow, n)
    for i, image in enumerate(images):
        top = (i // cols) * cell_h + GRID_PADDING
        left = (i % cols) * cell_w + GRID_PADDING
        canvas[top : top + height * scale, left : left + width * scale] = enlarge(image, scale)
    return canvas


def png(image: np.ndarray) -> bytes:
    """(H, W, C) uint8, C in {1, 3}, as PNG bytes ("L" or "RGB")."""
    mode = "L" if image.shape[2] == 1 else "RGB"
    buffer = io.BytesIO()
    Image.fromarray(image[:, :, 0] if mode == "L" else image, mode).save(
        buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL
    )
    return buffer.getvalue()


def png_grid(images: np.ndarray, nrow: int, scale: int) -> bytes:
    """(N, H, W, C) uint8 as one PNG: the image itself when N is 1, else a grid."""
    if len(images) == 1:
        return png(enlarge(images[0], scale))
    return png(grid(images, nrow, scale))


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
