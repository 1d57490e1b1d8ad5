"""What one bundle scores: its ONNX networks on the split's held-out digits and on fixed prior latents.

``Scorer`` holds the judge (bench/quality/judge.py), the held-out digits of the split, the training
digits (how far samples are from copies of them) and the seeded noise every bundle decodes, so two
bundles are compared on the same inputs. Sample keys are measured under the paper's N(0, I) (no
suffix) and, for bundles with one, under the fitted prior (suffix ``_fitted``), from the same noise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image

from bench.quality.classes import class_scores
from bench.quality.judge import DigitClassifier, classify, frechet_distance, load_or_train_classifier, score
from model_core.bundle import load_bundle
from model_core.images import enlarge, from_value_range, make_grid, one_hot
from service.labels import Classes
from service.priors import Priors
from trainer.datasets import digits_in_model_range
from trainer.mnist import TRAIN_SLICE, load_embedded_mnist

RESULTS = Path(__file__).resolve().parents[1] / "results"
LABEL_SAMPLES_PER_CLASS = 100  # 1,000 labelled samples
EDIT_IMAGES = 500


class OnnxModel:
    """encoder.onnx and decoder.onnx of one bundle in onnxruntime (with one-hot labels when conditional)."""

    def __init__(self, bundle: Path) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.enc = ort.InferenceSession(str(bundle / "encoder.onnx"), opts, providers=["CPUExecutionProvider"])
        self.dec = ort.InferenceSession(str(bundle / "decoder.onnx"), opts, providers=["CPUExecutionProvider"])
        self.classes = json.loads((bundle / "manifest.json").read_text()).get("num_classes", 0)

    def _feeds(self, name: str, rows: np.ndarray, labels: np.ndarray | None, i: int) -> dict[str, np.ndarray]:
        feeds = {name: rows[i : i + 250]}
        if self.classes:
            assert labels is not None, "a conditional bundle needs labels"
            feeds["label"] = one_hot(labels[i : i + 250], self.classes)
        return feeds

    def reconstruct(self, x: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Dec(mu(x)): what the service's /reconstruct returns (with the digits' labels when conditional)."""
        mus = [self.enc.run(["mu"], self._feeds("image", x, labels, i))[0] for i in range(0, len(x), 250)]
        return self.decode(np.concatenate(mus), labels)

    def decode(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        runs = [self.dec.run(["image"], self._feeds("z", z, labels, i))[0] for i in range(0, len(z), 250)]
        return np.concatenate(runs)


def grid(images: np.ndarray, cols: int, path: Path) -> None:
    """Tile (N, 1, H, W) images in [-1, 1] into one PNG, cols wide, 2x enlarged (the gaps too)."""
    canvas = make_grid(from_value_range(images).transpose(0, 2, 3, 1), cols)[:, :, 0]  # (H', W')
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(enlarge(canvas, 2)).save(path)


def nearest_distances(samples: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Euclidean pixel distance (model range) from each sample (N, 1, H, W) to its nearest training image."""
    a, b = samples.reshape(len(samples), -1).astype(np.float64), train.reshape(len(train), -1).astype(np.float64)
    b_sq = (b**2).sum(1)
    nearest = [
        np.sqrt(np.maximum((a[i : i + 250] ** 2).sum(1)[:, None] - 2 * a[i : i + 250] @ b.T + b_sq[None], 0).min(1))
        for i in range(0, len(a), 250)
    ]
    return np.concatenate(nearest)


class Scorer:
    """The judge, the held-out digits of the split and the fixed prior latents every bundle decodes."""

    def __init__(self, heldout: slice, samples: int, train: slice = TRAIN_SLICE) -> None:
        images, labels = load_embedded_mnist()
        x = digits_in_model_range(images).numpy()  # (10000, 1, 32, 32): the trainer's inputs
        self.clf: DigitClassifier = load_or_train_classifier(
            RESULTS / "classifier.pt", x[TRAIN_SLICE], labels[TRAIN_SLICE]
        )
        self.real, self.labels = x[heldout], labels[heldout]
        self.train = x[train]  # the run's training digits: how far samples are from copies of them
        self.heldout_nearest = float(np.median(nearest_distances(self.real[:samples], self.train)))
        feats, probs = classify(self.clf, self.real)
        half = len(self.real) // 2
        self.judge = {
            "heldout_accuracy": float((probs.argmax(1) == self.labels).mean()),
            "fd_floor_real_vs_real": frechet_distance(feats[:half], feats[half:]),
        }
        self.samples = samples
        count = max(samples, len(self.real))  # FD-cls compares as many samples as held-out digits
        self.z = np.random.default_rng(1234).standard_normal((count, 32)).astype(np.float32)
        self.u = np.random.default_rng(5678).random(count)  # the fitted prior's component draws
        self.z_labels = np.random.default_rng(4321).integers(10, size=count)  # uniform, for conditional bundles
        self.judge["heldout_nearest_training_distance"] = self.heldout_nearest

    def samples_scores(self, samples: np.ndarray, recon: np.ndarray, suffix: str = "") -> dict[str, Any]:
        """FD-cls, confidence, class shares and the nearest-neighbour ratio of decoded prior samples."""
        result = score(self.clf, self.real, self.labels, recon, samples[: self.samples], samples[: len(self.real)])
        result["fd_over_floor"] = result["fd_cls"] / self.judge["fd_floor_real_vs_real"]
        # Median distance to the nearest training digit, over that of held-out digits: 1 is as new as
        # real digits are; well below 1, copies of the training set.
        nearest = float(np.median(nearest_distances(samples[: self.samples], self.train)))
        result["nn_ratio"] = nearest / self.heldout_nearest
        if suffix:
            result = {f"{k}{suffix}": v for k, v in result.items() if k not in ("recon_label_kept", "pixel_mse")}
        return result

    def __call__(self, bundle: Path, img_prefix: Path | None = None, classes: bool = True) -> dict[str, Any]:
        """Every key under the paper's N(0, I) (no suffix) and, when the bundle has one, the fitted prior (_fitted)."""
        onnx = OnnxModel(bundle)
        labels = (self.labels, self.z_labels) if onnx.classes else (None, None)
        recon, samples = onnx.reconstruct(self.real, labels[0]), onnx.decode(self.z, labels[1])
        result = self.samples_scores(samples, recon)
        fitted = fitted_draw(bundle, self.z, self.u, labels[1])
        if fitted is not None:
            fitted_samples = onnx.decode(fitted, labels[1])
            result.update(self.samples_scores(fitted_samples, recon, "_fitted"))
        per_class = LABEL_SAMPLES_PER_CLASS if self.samples >= 1000 else 10
        if classes:
            edits = min(EDIT_IMAGES, self.samples)
            result.update(class_scores(bundle, self.clf, self.real, self.labels, per_class, edits))
        if img_prefix is not None:
            grid(samples[:64], 8, img_prefix.with_name(img_prefix.name + "_samples.png"))
            if fitted is not None:
                grid(fitted_samples[:64], 8, img_prefix.with_name(img_prefix.name + "_samples_fitted.png"))
            pairs = np.stack([self.real[:32], recon[:32]], 1).reshape(64, *self.real.shape[1:])  # x, Dec(mu(x)), ...
            grid(pairs, 8, img_prefix.with_name(img_prefix.name + "_recon.png"))
        return result


def fitted_draw(bundle: Path, eps: np.ndarray, u: np.ndarray, labels: np.ndarray | None) -> np.ndarray | None:
    """The latents the service's fitted prior draws from noise (eps, u) (service/priors.py); None without one."""
    loaded = load_bundle(bundle, check_graphs=False)
    priors = Priors.of(loaded, Classes.of(loaded))
    return None if priors.fitted is None else priors.draw("fitted", eps, u, labels).z
