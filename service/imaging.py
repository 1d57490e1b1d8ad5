"""Uploaded bytes to model input: bounded decoding, then the trainer's preprocessing, repeated.

Decoding is guarded before any pixel is decompressed: only PNG, JPEG, WebP, BMP and GIF are
opened, and the pixel count is read from the header. Preprocessing follows the manifest's
``preprocessing`` record in the trainer's order (trainer/imaging.py; this module may not import it):

1. EXIF orientation applied; any Pillow mode to "L" or "RGB" (16-bit scaled, alpha on black).
2. crop (top, left, h, w), only when the image is exactly ``crop_source`` (H, W).
3. Gaussian blur of ``blur_sigma`` (separable, radius ceil(4 sigma), symmetric edges).
4. resize to ``fit`` (h, w) with ``resize_filter``; ``invert`` flips the content.
5. pad (top, bottom, left, right) with the background 0; scale u8 to ``value_range``.
"""

from __future__ import annotations

import io
import logging
import math

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from model_core.bundle import Preprocessing
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
RESIZE_FILTERS = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "lanczos": Image.Resampling.LANCZOS,
    "nearest": Image.Resampling.NEAREST,
}
_ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode ``data`` (first frame only), refusing oversized images from their header."""
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
        return ImageOps.exif_transpose(img)
    except Exception:  # a malformed EXIF block must not cost the upload
        log.debug("ignoring an unreadable EXIF orientation", exc_info=True)
        return img


def to_channels(img: Image.Image, channels: int) -> Image.Image:
    """Any Pillow mode to "L" (1 channel) or "RGB" (3), 8 bits per channel, alpha on black."""
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        scale = 1.0 if img.mode == "F" else 255.0 / 65535.0  # 16-bit samples to 8 bits
        values = np.clip(np.round(np.asarray(img, dtype=np.float64) * scale), 0, 255)
        img = Image.fromarray(values.astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")  # keeps the palette's transparency
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        background = Image.new("RGBA", img.size, (0, 0, 0, 255))  # black: -1 in model units
        img = Image.alpha_composite(background, img.convert("RGBA"))
    target = "L" if channels == 1 else "RGB"
    if img.mode == target:
        return img
    rgb = img.convert("RGB")  # CMYK, YCbCr, 1, LAB, HSV ... go through RGB
    return rgb.convert("L") if target == "L" else rgb


def _blur_axis(x: np.ndarray, taps: np.ndarray, axis: int) -> np.ndarray:
    """Correlate ``x`` with ``taps`` along ``axis``; ``x`` is already padded by len(taps) // 2."""
    size = x.shape[axis] - len(taps) + 1
    out = np.zeros_like(x.take(np.arange(size), axis=axis))
    for offset, weight in enumerate(taps):
        out += weight * x.take(np.arange(offset, offset + size), axis=axis)
    return out


def gaussian_blur(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """The trainer's blur of (H, W, C) uint8: separable, radius ceil(4 sigma), symmetric edges."""
    radius = math.ceil(4 * sigma)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    padded = np.pad(pixels.astype(np.float64), ((radius, radius), (radius, radius), (0, 0)), mode="symmetric")
    blurred = _blur_axis(_blur_axis(padded, taps, axis=0), taps, axis=1)  # (H, W, C)
    return np.clip(blurred.round(), 0, 255).astype(np.uint8)


def preprocess(img: Image.Image, spec: Preprocessing) -> np.ndarray:
    """One decoded image to model input: (C, H, W) float32 in ``spec.value_range``."""
    img = to_channels(img, spec.channels)
    if spec.crop is not None and spec.crop_source is not None and (img.height, img.width) == spec.crop_source:
        top, left, h, w = spec.crop
        img = img.crop((left, top, left + w, top + h))
    if spec.blur_sigma:
        blurred = gaussian_blur(np.asarray(img).reshape(img.height, img.width, -1), spec.blur_sigma)
        img = Image.fromarray(blurred[:, :, 0] if img.mode == "L" else blurred)  # (H, W[, C])
    fit_h, fit_w = spec.fit
    if (img.height, img.width) != (fit_h, fit_w):
        img = img.resize((fit_w, fit_h), RESIZE_FILTERS[spec.resize_filter])
    pixels = np.asarray(img).reshape(fit_h, fit_w, -1).transpose(2, 0, 1)  # (C, h, w) uint8
    if spec.invert:
        pixels = 255 - pixels
    top, bottom, left, right = spec.pad
    pixels = np.pad(pixels, ((0, 0), (top, bottom), (left, right)))  # (C, H, W), background 0
    low, high = spec.value_range
    return (pixels.astype(np.float32) * ((high - low) / 255.0) + low).astype(np.float32)


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
