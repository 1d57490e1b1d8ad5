"""Image preprocessing driven by the manifest's ``preprocessing`` record (docs/bundle.md).

The trainer applies it to its datasets and writes the record into the checkpoint and the bundle;
the service applies the same record to uploads. Both import this module, so there is one pipeline.
It needs numpy and Pillow only: the service image has no torch. The steps, in order:

1. channels: any Pillow mode to "L" (1) or "RGB" (3); 16-bit and float modes scaled to 8 bits
   (band by band), alpha composited on black (the background, -1 in model units).
2. crop (top, left, h, w), only when the image is exactly ``crop_source`` (H, W).
3. blur: a Gaussian of ``blur_sigma`` (separable, radius ceil(4 sigma), symmetric edges), after a
   box reduction of an image over 4x the size the blur was made for.
4. fit: resize to ``fit`` (h, w) with ``resize_filter``.
5. invert: u8 -> 255 - u8 of the content, when ``invert`` is set.
6. pad (top, bottom, left, right) with the background 0.
7. value: u8 scaled linearly onto ``value_range`` (model_core.images.to_value_range).
"""

from __future__ import annotations

import math
from typing import get_args

import numpy as np
from PIL import Image

from model_core.bundle import Preprocessing, ResizeFilter
from model_core.images import to_value_range

RESIZE_FILTERS = {name: Image.Resampling[name.upper()] for name in get_args(ResizeFilter)}
_ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
BAND = 256  # rows converted at a time from 16-bit and float modes
# Before the blur (float64, full size) an image is box-reduced to at most this many times the size
# the blur was made for (the crop, or the fit): a huge upload is not blurred at full resolution.
BLUR_INPUT_SCALE = 4


def to_u8(img: Image.Image, scale: float) -> Image.Image:
    """An "I", "I;16" or "F" image as "L": round(value * scale) clipped to 0..255.

    Band by band (BAND rows): the float64 arithmetic never holds more than a band, so a 4096x4096
    16-bit upload costs its 8-bit result (16 MiB) rather than a full-size float64 copy (128 MiB).
    """
    out = np.empty((img.height, img.width), np.uint8)
    for top in range(0, img.height, BAND):
        band = np.asarray(img.crop((0, top, img.width, min(top + BAND, img.height))), dtype=np.float64)
        out[top : top + len(band)] = np.clip(np.round(band * scale), 0, 255)
    return Image.fromarray(out, "L")


def to_channels(img: Image.Image, channels: int) -> Image.Image:
    """Any Pillow mode to "L" (1 channel) or "RGB" (3), 8 bits per channel, alpha on black."""
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        img = to_u8(img, 1.0 if img.mode == "F" else 255.0 / 65535.0)  # 16-bit samples to 8 bits
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
    x = np.moveaxis(x, axis, 0)  # a view: the slices below are views too, no copies
    size = x.shape[0] - len(taps) + 1
    out = np.zeros_like(x[:size])
    for offset, weight in enumerate(taps):  # tap by tap, in order: another order could round some pixels differently
        out += weight * x[offset : offset + size]
    return np.moveaxis(out, 0, axis)


def gaussian_blur(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of (H, W, C) uint8, radius ceil(4 sigma), symmetric edges."""
    radius = math.ceil(4 * sigma)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    padded = np.pad(pixels.astype(np.float64), ((radius, radius), (radius, radius), (0, 0)), mode="symmetric")
    blurred = _blur_axis(_blur_axis(padded, taps, axis=0), taps, axis=1)  # (H, W, C)
    return np.clip(blurred.round(), 0, 255).astype(np.uint8)


def crop(img: Image.Image, spec: Preprocessing) -> Image.Image:
    """``spec.crop`` of ``img`` when ``img`` is exactly ``spec.crop_source``; any other size as it is."""
    if spec.crop is None or spec.crop_source is None or (img.height, img.width) != spec.crop_source:
        return img
    top, left, h, w = spec.crop
    return img.crop((left, top, left + w, top + h))


def shrink_for_blur(img: Image.Image, spec: Preprocessing) -> Image.Image:
    """``img`` box-reduced by an integer factor when it is over BLUR_INPUT_SCALE times the blur's intended size.

    The blur exists to anti-alias the resize to ``fit`` (the paper's CelebA crop is blurred, then
    resized to 64x64); an image several times larger than the crop it was made for loses nothing to
    a box reduction first, and the float64 blur then works on a bounded image.
    """
    intended_h, intended_w = (spec.crop[2], spec.crop[3]) if spec.crop is not None else spec.fit
    factor = min(img.height // (BLUR_INPUT_SCALE * intended_h), img.width // (BLUR_INPUT_SCALE * intended_w))
    return img.reduce(factor) if factor > 1 else img


def blur(img: Image.Image, sigma: float) -> Image.Image:
    """``gaussian_blur`` of an "L" or "RGB" image."""
    blurred = gaussian_blur(np.asarray(img).reshape(img.height, img.width, -1), sigma)  # (H, W, C)
    return Image.fromarray(blurred[:, :, 0] if img.mode == "L" else blurred)  # (H, W[, C])


def fit(img: Image.Image, size: tuple[int, int], resize_filter: ResizeFilter) -> np.ndarray:
    """``img`` resized to ``size`` (h, w) unless it already is: (C, h, w) uint8."""
    fit_h, fit_w = size
    if (img.height, img.width) != (fit_h, fit_w):
        img = img.resize((fit_w, fit_h), RESIZE_FILTERS[resize_filter])
    return np.asarray(img).reshape(fit_h, fit_w, -1).transpose(2, 0, 1)  # (C, h, w)


def pad(pixels: np.ndarray, sides: tuple[int, int, int, int]) -> np.ndarray:
    """(C, h, w) -> (C, H, W): ``sides`` (top, bottom, left, right) filled with the background 0."""
    top, bottom, left, right = sides
    if min(sides) < 0:
        raise ValueError(f"negative padding {sides}")
    channels, height, width = pixels.shape
    out = np.zeros((channels, top + height + bottom, left + width + right), pixels.dtype)  # (C, H, W)
    out[:, top : top + height, left : left + width] = pixels  # np.pad does the same, ~20x slower at this size
    return out


def preprocess_u8(img: Image.Image, spec: Preprocessing) -> np.ndarray:
    """Steps 1-6 on one image: (C, H, W) uint8, what the trainer stores."""
    img = to_channels(img, spec.channels)
    img = crop(img, spec)
    if spec.blur_sigma:
        img = blur(shrink_for_blur(img, spec), spec.blur_sigma)
    pixels = fit(img, spec.fit, spec.resize_filter)  # (C, h, w)
    if spec.invert:
        pixels = 255 - pixels  # before the padding: the background stays background
    return pad(pixels, spec.pad)


def preprocess(img: Image.Image, spec: Preprocessing) -> np.ndarray:
    """Every step on one image: the model input (C, H, W) float32 in ``spec.value_range``."""
    return to_value_range(preprocess_u8(img, spec), spec.value_range)
