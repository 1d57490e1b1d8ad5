"""Class figures of a bundle, measured through the service's own routes (in process, TestClient).

- label_accuracy: the judge's label of ``GET /sample?label=k&prior=standard`` equals k, over
  ``per_class`` samples of each of the ten digits (conditional decoder, or class-mean latents of an
  unconditional bundle); label_accuracy_fitted: the same with ``prior=fitted`` (each class's mixture);
- edit_success: the share of held-out digits whose ``POST /edit?to=t&from=y`` frame at strength 1
  the judge classifies as t, with t a seeded random class other than the digit's label y.

Images come back as the PNGs users get (uint8), and are scored in model range like the rest of
bench.quality.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastapi.testclient import TestClient
from PIL import Image

from bench.quality.judge import DigitClassifier, classify
from model_core.images import from_value_range
from service.app import create_app
from service.settings import Settings
from trainer.datasets import to_model_range

JSON = {"Accept": "application/json"}
REQUEST_N = 50  # samples per /sample call (under the default VAEGAN_MAX_SAMPLES)


def decode_pngs(images: list[str]) -> np.ndarray:
    """Base64 PNGs (L, 32x32) -> (N, 1, 32, 32) float32 in [-1, 1]."""
    arrays = [np.asarray(Image.open(io.BytesIO(base64.b64decode(b)))) for b in images]
    pixels = torch.from_numpy(np.stack(arrays)[:, None])  # (N, 1, 32, 32) uint8
    return to_model_range(pixels, torch.device("cpu")).numpy()  # as the judge's digits were converted


def png_bytes(image: np.ndarray) -> bytes:
    """A (1, 32, 32) model-range digit as the 32x32 PNG a user would upload."""
    pixels = from_value_range(image[0])  # (32, 32)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, format="PNG")
    return buffer.getvalue()


def client_for(bundle: Path) -> TestClient:
    """The service on ``bundle`` (models/NAME/VERSION), batching off: one request at a time here."""
    settings = Settings(models_dir=bundle.parent.parent, model_name=bundle.parent.name, batching=False)
    return TestClient(create_app(settings), raise_server_exceptions=True)


def label_accuracy(
    client: TestClient, clf: DigitClassifier, per_class: int, seed: int, prior: str = "standard"
) -> dict[str, Any]:
    """Judge accuracy of /sample?label=k&prior= per class and overall, and the method the bundle used."""
    per_class_acc, method = [], None
    for k in range(10):
        images = []
        for start in range(0, per_class, REQUEST_N):
            n, request_seed = min(REQUEST_N, per_class - start), seed * 1000 + k * 10 + start
            params = {"n": n, "label": str(k), "seed": request_seed, "prior": prior}
            r = client.get("/sample", params=params, headers=JSON)
            r.raise_for_status()
            method = r.headers["X-Label-Method"]
            images.append(decode_pngs(r.json()["images"]))
        _, probs = classify(clf, np.concatenate(images))
        per_class_acc.append(float((probs.argmax(1) == k).mean()))
    return {
        "label_accuracy": float(np.mean(per_class_acc)),
        "label_accuracy_min_class": float(min(per_class_acc)),
        "label_accuracy_per_class": [round(a, 3) for a in per_class_acc],
        "label_method": method,
        "label_samples": per_class * 10,
    }


def edit_success(
    client: TestClient, clf: DigitClassifier, real: np.ndarray, labels: np.ndarray, count: int, seed: int
) -> dict[str, Any]:
    """Share of ``count`` held-out digits whose /edit frame at strength 1 the judge calls the target."""
    rng = np.random.default_rng(seed)
    targets = (labels[:count] + rng.integers(1, 10, size=count)) % 10  # never the digit's own class
    frames = []
    for image, source, target in zip(real[:count], labels[:count], targets, strict=True):
        params = {"to": str(target), "from": str(source), "steps": 3}  # strengths 0, 1, 2 (class-mean) or 0, .5, 1
        r = client.post("/edit", params=params, content=png_bytes(image), headers={"Content-Type": "image/png", **JSON})
        r.raise_for_status()
        body = r.json()
        frames.append(decode_pngs([body["images"][body["edit"]["strengths"].index(1.0)]]))
    _, probs = classify(clf, np.concatenate(frames))
    return {"edit_success": float((probs.argmax(1) == targets).mean()), "edit_images": count}


def class_scores(
    bundle: Path, clf: DigitClassifier, real: np.ndarray, labels: np.ndarray, per_class: int, edits: int, seed: int = 0
) -> dict[str, Any]:
    """label_accuracy (the paper's N(0, I); ``_fitted``: the fitted prior) and edit_success; {} without classes."""
    with client_for(bundle) as client:
        model = client.get("/model").json()
        if model["label_method"] is None:
            return {}
        result = {
            **label_accuracy(client, clf, per_class, seed),
            **edit_success(client, clf, real, labels, edits, seed),
        }
        if model["prior"] is not None:
            fitted = label_accuracy(client, clf, per_class, seed, prior="fitted")
            result.update({f"{k}_fitted": v for k, v in fitted.items() if k != "label_samples"})
        return result
