"""Fixtures of the service tests: a tiny exported mnist32 bundle (two versions) and app clients."""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
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


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with mnist/v1 (LATEST) and mnist/v2 (published, not LATEST); never modified."""
    models_dir = tmp_path_factory.mktemp("models")
    export_mnist32(models_dir, "v1", seed=0)
    export_mnist32(models_dir, "v2", seed=1, update_latest=False)
    return models_dir


@pytest.fixture
def models_dir(bundles: Path, tmp_path: Path) -> Path:
    """A private copy of ``bundles`` that a test may change (publish, tamper with)."""
    return Path(shutil.copytree(bundles, tmp_path / "models"))


def settings_for(models_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"models_dir": models_dir, "model_name": NAME, "inference_threads": 2}
    return Settings(**{**values, **overrides})


ClientFactory = Callable[..., AbstractContextManager[TestClient]]


@pytest.fixture
def make_client(bundles: Path) -> ClientFactory:
    """``with make_client(max_batch=1, models_dir=...) as client:`` runs the app's lifespan."""

    @contextmanager
    def factory(models_dir: Path | None = None, **overrides: Any) -> Iterator[TestClient]:
        app = create_app(settings_for(models_dir or bundles, **overrides))
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client

    return factory


@pytest.fixture(scope="module")
def client(bundles: Path) -> Iterator[TestClient]:
    """One app on the v1 bundle, shared by a module's read-only tests."""
    app = create_app(settings_for(bundles, max_wait_ms=1.0))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def image_bytes(mode: str = "L", size: tuple[int, int] = (28, 28), fmt: str = "PNG", **save: Any) -> bytes:
    """An image of ``mode`` with some structure (a gradient), encoded as ``fmt``."""
    gradient = Image.linear_gradient("L").resize(size)
    sixteen_bit = Image.fromarray(np.asarray(gradient).astype("<u2") * 257)  # the same picture in 16 bits
    img = sixteen_bit if mode == "I;16" else gradient.convert(mode)
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **save)
    return buffer.getvalue()
