"""Helpers of the service tests, imported explicitly: the mnist32 test bundle, settings, test images."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from service.settings import Settings

MNIST32_PREPROCESSING = {
    "channels": 1,
    "height": 32,
    "width": 32,
    "value_range": [-1.0, 1.0],
    "fit": [28, 28],
    "pad": [2, 2, 2, 2],
    "resize_filter": "bilinear",
    "crop": None,
    "crop_source": None,
    "blur_sigma": None,
    "invert": False,
}
NAME = "mnist"


def export_mnist32(models_dir: Path, version: str, seed: int, update_latest: bool = True) -> Path:
    """A random-weight mnist32 VAEGAN (seeded) exported as ``models_dir/mnist/version``."""
    import torch

    from model_core.config import PRESETS
    from model_core.export import export_bundle
    from model_core.vaegan import VAEGAN

    torch.manual_seed(seed)
    model = VAEGAN(PRESETS["mnist32"]).eval()
    return export_bundle(
        model,
        models_dir,
        NAME,
        preset="mnist32",
        dataset="embedded-mnist",
        preprocessing=MNIST32_PREPROCESSING,
        training={"epochs": 1, "steps": 1, "seed": seed, "mode": "vaegan", "gamma": 1e-6},
        version=version,
        update_latest=update_latest,
    )


def settings_for(models_dir: Path, **overrides: Any) -> Settings:
    """Settings serving ``models_dir/mnist`` with two inference threads, plus ``overrides``."""
    values: dict[str, Any] = {"models_dir": models_dir, "model_name": NAME, "inference_threads": 2}
    return Settings(**{**values, **overrides})


def image_bytes(mode: str = "L", size: tuple[int, int] = (28, 28), fmt: str = "PNG", **save: Any) -> bytes:
    """An image of ``mode`` with some structure (a gradient), encoded as ``fmt``."""
    gradient = Image.linear_gradient("L").resize(size)
    sixteen_bit = Image.fromarray(np.asarray(gradient).astype("<u2") * 257)  # the same picture in 16 bits
    img = sixteen_bit if mode == "I;16" else gradient.convert(mode)
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **save)
    return buffer.getvalue()
