"""Helpers of the service tests, imported explicitly: the mnist32 test bundle, settings, test images."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from service.settings import Settings
from tests.checkout import REPO
from trainer.preprocessing_specs import mnist_spec

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

MNIST32_PREPROCESSING = mnist_spec(1, 32)  # the record the trainer writes for mnist32, as a checkpoint's dict
NAME = "mnist"
PRETRAINED = REPO / "pretrained"  # the published mnist32 VAE-GANs: small, trained, in the repository
PRETRAINED_NAME = "mnist32-vaegan"  # unconditional, with class means and a fitted prior
CONDITIONAL_NAME = "mnist32-cvaegan"  # conditional, no fitted prior


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


DIGITS = tuple(str(d) for d in range(10))


def export_digits(
    models_dir: Path, name: str, conditional: bool, means: np.ndarray | None, prior: tuple[Any, Any] | None = None
) -> Path:
    """A random-weight mnist32 bundle (seed 3): conditional (10 digits) or not, with class means or not,
    with a fitted prior (LatentPrior, PriorInfo) or not."""
    import torch

    from model_core.config import PRESETS
    from model_core.export import export_bundle
    from model_core.vaegan import VAEGAN

    torch.manual_seed(3)
    config = replace(PRESETS["mnist32"], num_classes=10) if conditional else PRESETS["mnist32"]
    return export_bundle(
        VAEGAN(config).eval(),
        models_dir,
        name,
        preset="mnist32",
        dataset="embedded-mnist",
        preprocessing=MNIST32_PREPROCESSING,
        training={"epochs": 1, "steps": 1, "seed": 3, "mode": "vaegan", "gamma": 0.1},
        class_names=DIGITS if conditional or means is not None else (),
        class_means=means,
        prior=prior,
    )


def serve(models_dir: Path, name: str) -> Iterator[TestClient]:
    """A client of the app serving ``models_dir/name`` (for a module fixture: ``yield from serve(...)``)."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    app = create_app(settings_for(models_dir, model_name=name, max_wait_ms=1.0))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


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
