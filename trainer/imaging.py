"""Image preprocessing driven by one plain dict, the ``preprocessing`` record of a checkpoint.

The same dict goes into the bundle manifest, so the service reproduces these steps without trainer
code. The pipeline, in order, for any Pillow image:

1. channels: to "L" (1) or "RGB" (3); 16-bit and float modes scaled to 8 bits, alpha composited
   on black (the background, -1 in model units).
2. crop [top, left, height, width], only when the image is exactly ``crop_source`` [H, W].
3. blur: a Gaussian of ``blur_sigma`` (separable, radius ceil(4 sigma), symmetric edges).
4. fit: resize to ``fit`` [h, w] with ``resize_filter``.
5. pad [top, bottom, left, right] with background 0, i.e. -1 in model units.
6. value: x = u8 / 127.5 - 1, in ``value_range`` [-1, 1].
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

RESIZE_FILTERS = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "lanczos": Image.Resampling.LANCZOS,
}
MNIST_SIZE = 28
# Larsen et al. 2016, Sec. 4: CelebA rows 40-188, cols 15-163, blur, bicubic resize to 64x64.
CELEBA_SOURCE = (218, 178)  # (H, W) of the aligned CelebA images
CELEBA_CROP = (40, 15, 148, 148)  # (top, left, height, width)


def preprocessing_spec(
    channels: int,
    size: int,
    fit: int | None = None,
    crop: tuple[int, int, int, int] | None = None,
    crop_source: tuple[int, int] | None = None,
    blur_sigma: float | None = None,
) -> dict[str, Any]:
    """The ``preprocessing`` dict for square ``size`` outputs, content fitted to ``fit`` then padded."""
    fit = size if fit is None else fit
    top, left = (size - fit) // 2, (size - fit) // 2
    return {
        "channels": channels,
        "height": size,
        "width": size,
        "value_range": [-1.0, 1.0],
        "fit": [fit, fit],
        "pad": [top, size - fit - top, left, size - fit - left],
        "resize_filter": "bicubic",
        "crop": list(crop) if crop is not None else None,
        "crop_source": list(crop_source) if crop_source is not None else None,
        "blur_sigma": blur_sigma,
        "invert": False,
    }


def mnist_spec(channels: int, size: int) -> dict[str, Any]:
    """28x28 digits: padded to 32 (background) for mnist32, resized for larger presets."""
    fit = MNIST_SIZE if MNIST_SIZE <= size <= MNIST_SIZE + 4 else size
    return preprocessing_spec(channels, size, fit=fit)


def celeba_spec(channels: int, size: int) -> dict[str, Any]:
    """The paper's CelebA crop, with the blur that anti-aliases the 148 -> size downscale."""
    sigma = math.sqrt(CELEBA_CROP[2] / size) / 2  # sqrt(148/64)/2 ~ 0.76 for paper64
    return preprocessing_spec(channels, size, crop=CELEBA_CROP, crop_source=CELEBA_SOURCE, blur_sigma=sigma)


def to_channels(img: Image.Image, channels: int) -> Image.Image:
    """Any Pillow mode to "L" (channels 1) or "RGB" (channels 3), 8 bits per channel."""
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        scale = 1.0 if img.mode == "F" else 255.0 / 65535.0  # 16-bit range to 8-bit
        values = np.asarray(img, dtype=np.float64) * scale
        img = Image.fromarray(np.clip(values.round(), 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")  # honours the palette's transparency
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info:
        black = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(black, img.convert("RGBA"))
    target = "L" if channels == 1 else "RGB"
    if img.mode == target:
        return img
    return img.convert("RGB").convert(target) if target == "L" else img.convert("RGB")


def gaussian_blur(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of (H, W, C) uint8, radius ceil(4 sigma), symmetric edges."""
    radius = math.ceil(4 * sigma)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    x = np.pad(pixels.astype(np.float64), ((radius, radius), (radius, radius), (0, 0)), mode="symmetric")
    x = sum(w * x[i : i + pixels.shape[0]] for i, w in enumerate(taps))  # rows: (H, W + 2r, C)
    x = sum(w * x[:, i : i + pixels.shape[1]] for i, w in enumerate(taps))  # cols: (H, W, C)
    return np.clip(np.asarray(x).round(), 0, 255).astype(np.uint8)


def preprocess(img: Image.Image, spec: dict[str, Any]) -> np.ndarray:
    """Apply ``spec`` to one image: (C, H, W) uint8; model input is u8 / 127.5 - 1."""
    img = to_channels(img, spec["channels"])
    if spec["crop"] is not None and [img.height, img.width] == spec["crop_source"]:
        top, left, h, w = spec["crop"]
        img = img.crop((left, top, left + w, top + h))
    if spec["blur_sigma"]:
        blurred = gaussian_blur(np.asarray(img).reshape(img.height, img.width, -1), spec["blur_sigma"])
        img = Image.fromarray(blurred[:, :, 0] if img.mode == "L" else blurred)  # (H, W[, C])
    fit_h, fit_w = spec["fit"]
    if (img.height, img.width) != (fit_h, fit_w):
        img = img.resize((fit_w, fit_h), RESIZE_FILTERS[spec["resize_filter"]])
    pixels = np.asarray(img).reshape(fit_h, fit_w, -1).transpose(2, 0, 1)  # (C, h, w)
    top, bottom, left, right = spec["pad"]
    return np.pad(pixels, ((0, 0), (top, bottom), (left, right)))  # (C, H, W), background 0
