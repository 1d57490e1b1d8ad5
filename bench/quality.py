"""Does the learned similarity beat pixels? VAE vs VAE-GAN on held-out digits, in numbers.

Protocol (issue 8): preset mnist32, the embedded digits (train 0-7999, score only 8000-9999), the
same budget (steps, batch) for ``--mode vae`` and ``--mode vaegan``, several seeds. Each run is
trained by the ``vaegan-train`` CLI, exported as a bundle by ``model_core.export`` and scored from
its ONNX files in onnxruntime, so the numbers are those of what users get (eval-mode batch norm).

    python -m bench.quality            # the full protocol (see docs/benchmarks.md for its duration)
    python -m bench.quality --quick    # a reduced budget, same keys, within 90 s

The judge is a small CNN trained on the train split (bench/quality_metrics.py, cached under
bench/results/). The last line printed is one JSON object; bench/results/quality.json holds it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image

from bench.quality_metrics import classify, frechet_distance, load_or_train_classifier, score
from model_core.config import ObjectiveConfig
from model_core.export import export_checkpoint, load_checkpoint
from model_core.vaegan import recalibrate_batchnorm
from trainer.mnist import HELDOUT_SLICE, TRAIN_SLICE, load_embedded_mnist, to_model_range

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
IMAGES = ROOT / "docs" / "img"
MODES = ("vae", "vaegan")
TARGETS = {
    "fd_ratio": "<= 0.7",
    "recon_label_kept": ">= 0.95",
    "sample_confidence": ">= 0.90",
    "max_class_share": "<= 0.2",
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="reduced budget (<= 90 s), same keys")
    p.add_argument("--steps", type=int, default=600, help="optimizer steps of every run")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--gamma", type=float, default=0.1, help="vaegan: weight of L_llike for the decoder")
    p.add_argument("--generator-loss", default="nonsaturating", choices=["minimax", "nonsaturating"])
    p.add_argument("--pixel-sigma", type=float, default=0.3, help="vae: std of the pixel Gaussian")
    p.add_argument(
        "--recalibrate-bn",
        type=int,
        default=50,
        help="batches of 128 prior latents that re-estimate the decoder's BN statistics before export (0: off)",
    )
    p.add_argument("--fd-images", type=int, default=2000, help="held-out digits and prior samples for FD-cls")
    p.add_argument("--samples", type=int, default=1000, help="prior samples for confidence and histogram")
    p.add_argument("--out", type=Path, default=RESULTS / "quality.json")
    p.add_argument("--img-dir", type=Path, default=IMAGES)
    p.add_argument("--work", type=Path, help="keep runs and bundles here (default: a temporary folder)")
    p.add_argument("--publish", type=Path, help="also export the first seed's VAE-GAN here as mnist32-vaegan")
    a = p.parse_args(argv)
    if a.quick:
        a.steps, a.batch_size, a.seeds = 15, 32, a.seeds[:1]
        a.fd_images, a.samples, a.recalibrate_bn = 500, 500, min(a.recalibrate_bn, 5)
        if a.out == RESULTS / "quality.json":
            a.out = RESULTS / "quality_quick.json"
        a.img_dir = None
    return a


# Train, recalibrate, export: what `vaegan-train --export-to` does, with the BN pass in between.


def train_argv(mode: str, seed: int, a: argparse.Namespace, out: Path) -> list[str]:
    """The `vaegan-train` flags of one run."""
    argv = [
        "--preset", "mnist32", "--dataset", "embedded-mnist", "--mode", mode,
        "--max-steps", str(a.steps), "--batch-size", str(a.batch_size), "--seed", str(seed),
        "--out", str(out), "--num-workers", "0", "--eval-images", "500",
        "--checkpoint-every", str(a.steps), "--log-every", str(max(1, a.steps // 4)),
    ]  # fmt: skip
    if mode == "vaegan":
        argv += ["--gamma", str(a.gamma), "--generator-loss", a.generator_loss]
    if cli_has_flag("--recalibrate-bn"):  # the trainer recalibrates (its default is on): say how much
        argv += ["--recalibrate-bn", str(a.recalibrate_bn)]
    return argv


def cli_has_flag(flag: str) -> bool:
    from trainer.cli import build_parser

    return any(flag in action.option_strings for action in build_parser()._actions)


def train(mode: str, seed: int, a: argparse.Namespace, work: Path) -> Path:
    """One `vaegan-train` run (a subprocess, as a user runs it); returns its checkpoint."""
    out = work / f"{mode}-seed{seed}"
    argv = train_argv(mode, seed, a, out)
    if mode == "vae" and a.pixel_sigma != 1.0:
        if not cli_has_flag("--pixel-sigma"):
            return train_in_process(argv, a.pixel_sigma, out)
        argv += ["--pixel-sigma", str(a.pixel_sigma)]
    done = subprocess.run([sys.executable, "-m", "trainer", *argv], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"vaegan-train {' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    return out / "checkpoint.pt"


def train_in_process(argv: list[str], pixel_sigma: float, out: Path) -> Path:
    """The trainer's own parser and loop, with ObjectiveConfig.pixel_sigma set (no CLI flag for it yet)."""
    from trainer.cli import parse_args as train_args
    from trainer.config import TrainConfig
    from trainer.loop import train as train_loop

    @dataclass(frozen=True)
    class SigmaTrainConfig(TrainConfig):
        pixel_sigma: float = 1.0

        @property
        def objective(self) -> ObjectiveConfig:
            return replace(super().objective, pixel_sigma=self.pixel_sigma)

    cfg = train_args(argv)
    train_loop(SigmaTrainConfig(**{f.name: getattr(cfg, f.name) for f in fields(cfg)}, pixel_sigma=pixel_sigma))
    return out / "checkpoint.pt"


def recalibrate_checkpoint(ckpt_path: Path, batches: int, seed: int) -> Path:
    """A copy of the checkpoint whose decoder BN statistics are averaged over prior batches."""
    model, ckpt = load_checkpoint(ckpt_path)
    if (ckpt.get("eval") or {}).get("bn_recalibrated_batches"):
        return ckpt_path  # the trainer did it already
    gen = torch.Generator().manual_seed(10_000 + seed)
    z = (torch.randn(128, model.config.latent_dim, generator=gen) for _ in range(batches))
    recalibrate_batchnorm(model.decoder, z)
    ckpt["models"]["decoder"] = model.decoder.state_dict()
    ckpt["eval"] = {**(ckpt.get("eval") or {}), "bn_recalibrated_batches": batches}  # lands in the manifest
    path = ckpt_path.with_name("checkpoint-recalibrated.pt")
    torch.save(ckpt, path)
    return path


def publish(ckpt_path: Path, models_dir: Path, result: dict[str, Any]) -> Path:
    """Export the scored checkpoint again as models_dir/mnist32-vaegan, its quality figures in the manifest."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    figures = {f"quality_{k}": v for k, v in result.items() if isinstance(v, float)}
    ckpt["eval"] = {**(ckpt.get("eval") or {}), **figures}
    path = ckpt_path.with_name("checkpoint-published.pt")
    torch.save(ckpt, path)
    return export_checkpoint(path, models_dir, "mnist32-vaegan")


# Score a bundle from its ONNX files.


class OnnxModel:
    """encoder.onnx and decoder.onnx of one bundle in onnxruntime."""

    def __init__(self, bundle: Path) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.enc = ort.InferenceSession(str(bundle / "encoder.onnx"), opts, providers=["CPUExecutionProvider"])
        self.dec = ort.InferenceSession(str(bundle / "decoder.onnx"), opts, providers=["CPUExecutionProvider"])
        self.latent_dim = int(json.loads((bundle / "manifest.json").read_text())["latent_dim"])

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """Dec(mu(x)): what the service's /reconstruct returns."""
        out = []
        for i in range(0, len(x), 250):
            mu = self.enc.run(["mu"], {"image": x[i : i + 250]})[0]
            out.append(self.dec.run(["image"], {"z": mu})[0])
        return np.concatenate(out)

    def decode(self, z: np.ndarray) -> np.ndarray:
        return np.concatenate([self.dec.run(["image"], {"z": z[i : i + 250]})[0] for i in range(0, len(z), 250)])


def grid(images: np.ndarray, cols: int, path: Path) -> None:
    """Tile (N, 1, H, W) images in [-1, 1] into one PNG, cols wide."""
    n, _, h, w = images.shape
    rows = -(-n // cols)
    canvas = np.zeros((rows * (h + 2) + 2, cols * (w + 2) + 2), dtype=np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        canvas[2 + r * (h + 2) : 2 + r * (h + 2) + h, 2 + c * (w + 2) : 2 + c * (w + 2) + w] = np.clip(
            (img[0] + 1) * 127.5, 0, 255
        ).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).resize((canvas.shape[1] * 2, canvas.shape[0] * 2), Image.NEAREST).save(path)


def mean_of(runs: list[dict[str, Any]]) -> dict[str, float]:
    keys = [k for k, v in runs[0].items() if isinstance(v, float)]
    return {k: float(np.mean([r[k] for r in runs])) for k in keys}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    a = parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()

    # Setup: the digits, the judge and the real-vs-real floor of FD-cls.
    images, labels = load_embedded_mnist()
    x = to_model_range(images)
    x_train, y_train = x[TRAIN_SLICE], labels[TRAIN_SLICE]
    x_test, y_test = x[HELDOUT_SLICE], labels[HELDOUT_SLICE]
    clf = load_or_train_classifier(RESULTS / "classifier.pt", x_train, y_train)
    feats, probs = classify(clf, x_test)
    half = len(x_test) // 2
    judge = {
        "heldout_accuracy": float((probs.argmax(1) == y_test).mean()),
        "fd_floor_real_vs_real": frechet_distance(feats[:half], feats[half:]),  # 1000 vs 1000 held-out
    }
    real, real_labels = x_test[: a.fd_images], y_test[: a.fd_images]
    z = np.random.default_rng(1234).standard_normal((max(a.fd_images, a.samples), 32)).astype(np.float32)

    # Train, export and score every (mode, seed) on the same budget.
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory(prefix="quality-") as tmp:
        work = a.work or Path(tmp)
        for seed in a.seeds:
            for mode in MODES:
                t0 = time.perf_counter()
                ckpt = train(mode, seed, a, work)
                if a.recalibrate_bn and not cli_has_flag("--recalibrate-bn"):
                    ckpt = recalibrate_checkpoint(ckpt, a.recalibrate_bn, seed)
                bundle = export_checkpoint(ckpt, work / "models", f"{mode}-seed{seed}")
                onnx = OnnxModel(bundle)
                recon, samples = onnx.reconstruct(real), onnx.decode(z)
                result = score(clf, real, real_labels, recon, samples[: a.samples], samples[: a.fd_images])
                kl = json.loads((ckpt.parent / "eval.json").read_text()).get("kl")
                runs[mode].append({"seed": seed, **result, "kl": kl, "seconds": time.perf_counter() - t0})
                if a.publish is not None and mode == "vaegan" and seed == a.seeds[0]:
                    publish(ckpt, a.publish, result)
                if a.img_dir is not None and seed == a.seeds[0]:
                    grid(samples[:64], 8, a.img_dir / f"quality_samples_{mode}.png")
                    pairs = np.stack([real[:32], recon[:32]], 1).reshape(64, *real.shape[1:])  # real, recon, ...
                    grid(pairs, 8, a.img_dir / f"quality_recon_{mode}.png")

    # Summary: means over seeds; the targets are checked on the VAE-GAN.
    vae, vaegan = mean_of(runs["vae"]), mean_of(runs["vaegan"])
    summary = {
        "fd_ratio": vaegan["fd_cls"] / vae["fd_cls"],
        "recon_label_kept": vaegan["recon_label_kept"],
        "sample_confidence": vaegan["sample_confidence"],
        "max_class_share": vaegan["max_class_share"],
        "targets": TARGETS,
        "vae": vae,
        "vaegan": vaegan,
        "runs": runs,
        "judge": judge,
        "budget": {"steps": a.steps, "batch_size": a.batch_size, "quick": a.quick},
        "seeds": a.seeds,
        "settings": {
            "preset": "mnist32",
            "dataset": "embedded-mnist (train 0-7999, scored on 8000-9999)",
            "gamma": a.gamma,
            "generator_loss": a.generator_loss,
            "pixel_sigma": a.pixel_sigma,
            "recalibrate_bn_batches": a.recalibrate_bn,
            "fd_images": a.fd_images,
            "samples": a.samples,
            "scored_from": "ONNX bundle in onnxruntime",
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": ort.__version__,
        },
        "seconds": time.perf_counter() - start,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    result = main()
    flat = {k: v for k, v in result.items() if k not in ("runs",)}
    sys.stdout.write(json.dumps(flat) + "\n")
