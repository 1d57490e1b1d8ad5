"""The ``preprocessing`` record each dataset is given, as the plain dict a checkpoint holds.

The dict has the fields of the manifest's record (model_core.bundle.Preprocessing), which the
export copies into the bundle; the pipeline that applies it is model_core.preprocessing, the
one the service runs too.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from model_core.bundle import Preprocessing
from model_core.preprocessing import preprocess_u8

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
    record = Preprocessing.model_validate(
        {
            "channels": channels,
            "height": size,
            "width": size,
            "fit": (fit, fit),
            "pad": (top, size - fit - top, left, size - fit - left),
            "resize_filter": "bicubic",
            "crop": crop,
            "crop_source": crop_source,
            "blur_sigma": blur_sigma,
        }
    )
    return record.model_dump(mode="json")  # JSON types: lists, as the checkpoint always held


def mnist_spec(channels: int, size: int) -> dict[str, Any]:
    """28x28 digits: padded to 32 (background) for mnist32, resized for larger presets."""
    fit = MNIST_SIZE if MNIST_SIZE <= size <= MNIST_SIZE + 4 else size
    return preprocessing_spec(channels, size, fit=fit)


def celeba_spec(channels: int, size: int) -> dict[str, Any]:
    """The paper's CelebA crop, with the blur that anti-aliases the 148 -> size downscale."""
    sigma = math.sqrt(CELEBA_CROP[2] / size) / 2  # sqrt(148/64)/2 ~ 0.76 for paper64
    return preprocessing_spec(channels, size, crop=CELEBA_CROP, crop_source=CELEBA_SOURCE, blur_sigma=sigma)


def preprocess(img: Image.Image, spec: dict[str, Any]) -> np.ndarray:
    """One image through the checkpoint dict ``spec``: (C, H, W) uint8; model input is u8 / 127.5 - 1."""
    return preprocess_u8(img, Preprocessing.model_validate(spec))
