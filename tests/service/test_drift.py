"""The drift signal (docs/api.md, "Drift"): the fitted prior's log density of mu(x) tells held-out digits
from inputs unlike the training data, on the published pretrained VAE-GAN."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from service.settings import Settings
from tests.service.helpers import PRETRAINED, PRETRAINED_NAME
from trainer.mnist import HELDOUT_SLICE, load_embedded_mnist

PER_KIND = 60


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), "L").save(buffer, format="PNG")
    return buffer.getvalue()


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counted half: the area under the ROC curve."""
    diff = positive[:, None] - negative[None]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = Settings(models_dir=PRETRAINED, model_name=PRETRAINED_NAME, batching=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def log_densities(client: TestClient, images: np.ndarray) -> np.ndarray:
    values = []
    for image in images:
        r = client.post("/encode", content=png(image), headers={"Content-Type": "image/png"})
        assert r.status_code == 200, r.text
        values.append(r.json()["log_density"])
    return np.asarray(values)


def test_heldout_digits_score_above_inverted_noise_and_blank_inputs(client: TestClient) -> None:
    digits, _ = load_embedded_mnist()
    heldout = digits[HELDOUT_SLICE][:PER_KIND]  # (N, 28, 28) uint8, never trained on
    rng = np.random.default_rng(0)
    unlike = {
        "inverted": 255 - digits[HELDOUT_SLICE][PER_KIND : 2 * PER_KIND],
        "noise": rng.integers(0, 256, size=(PER_KIND, 28, 28)),
        "blank": np.concatenate([np.zeros((PER_KIND // 2, 28, 28)), np.full((PER_KIND // 2, 28, 28), 255)]),
    }
    real = log_densities(client, heldout)
    for kind, images in unlike.items():
        assert auroc(real, log_densities(client, images)) >= 0.95, kind
    typical = client.post("/encode", content=png(heldout[0]), headers={"Content-Type": "image/png"}).json()
    assert 0.0 <= typical["typicality"] <= 1.0
