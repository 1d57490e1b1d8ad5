"""Uploaded bytes to model input: bounded decoding, then the manifest's preprocessing.

Decoding is guarded before any pixel is decompressed: only PNG, JPEG, WebP, BMP and GIF are
opened, and the pixel count is read from the header. The EXIF orientation is applied, then the
``preprocessing`` record runs through model_core.preprocessing, the pipeline the trainer used.
"""

from __future__ import annotations

import io
import logging

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from model_core.bundle import Preprocessing
from model_core.preprocessing import preprocess
from service.errors import BadImage, PayloadTooLarge

log = logging.getLogger(__name__)

FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")  # Pillow plugins allowed to parse uploads
MEDIA_TYPES = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/webp": "WEBP",
    "image/bmp": "BMP",
    "image/x-ms-bmp": "BMP",
    "image/gif": "GIF",
}


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode ``data`` (first frame only), refusing oversized images from their header."""
    return decode(probe(data, max_pixels))


def probe(data: bytes, max_pixels: int) -> Image.Image:
    """``data``'s header, checked: the format is allowed and the pixel count within the limit.

    Nothing is decompressed yet (Pillow opens lazily), so this is cheap for any upload and the
    caller can choose where ``decode`` runs from ``img.size``.
    """
    if not data:
        raise BadImage("the image is empty (0 bytes)")
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as exc:
        raise PayloadTooLarge(f"image refused before decoding: {exc}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise BadImage("cannot decode the image: not a valid PNG, JPEG, WebP, BMP or GIF file") from None
    width, height = img.size
    if width * height > max_pixels:
        raise PayloadTooLarge(f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}")
    if width == 0 or height == 0:
        raise BadImage(f"image has no pixels ({width}x{height})")
    return img


def decode(img: Image.Image) -> Image.Image:
    """The pixels of a ``probe``d image, upright."""
    try:
        img.load()
    except Image.DecompressionBombError as exc:
        raise PayloadTooLarge(f"image refused while decoding: {exc}") from None
    except Exception:  # Pillow's decoders raise many types on truncated or corrupt data
        raise BadImage(f"cannot decode the {img.format} image: the data is truncated or corrupt") from None
    return upright(img)


def upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag, if any (a broken EXIF block is ignored)."""
    try:
        ImageOps.exif_transpose(img, in_place=True)  # in place: no copy of an image already upright
    except Exception:  # a malformed EXIF block must not cost the upload
        log.debug("ignoring an unreadable EXIF orientation", exc_info=True)
    return img


def check_preprocessing(spec: Preprocessing) -> str | None:
    """Why ``spec`` cannot produce (C, height, width) inputs, or None when it can."""
    top, bottom, left, right = spec.pad
    fit_h, fit_w = spec.fit
    if (fit_h + top + bottom, fit_w + left + right) != (spec.height, spec.width):
        return f"preprocessing fit {spec.fit} + pad {spec.pad} does not give {spec.height}x{spec.width}"
    if spec.value_range[0] >= spec.value_range[1]:
        return f"preprocessing value_range {spec.value_range} is empty"
    return None


def load_input(data: bytes, spec: Preprocessing, max_pixels: int) -> np.ndarray:
    """Uploaded bytes to one model input row (C, H, W) float32; the whole guarded path."""
    return preprocess(open_image(data, max_pixels), spec)


def finish_input(img: Image.Image, spec: Preprocessing) -> np.ndarray:
    """A ``probe``d image to one model input row (C, H, W) float32: ``load_input`` after the probe."""
    return preprocess(decode(img), spec)
