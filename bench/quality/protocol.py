"""Does the learned similarity beat pixels? VAE vs VAE-GAN on held-out digits, in numbers.

Protocol: preset mnist32, the embedded digits, the same budget (steps, batch, bf16 autocast) for
``--mode vae`` and ``--mode vaegan`` (both ``--recipe default``), seeds 0 and 1. Every run is
trained by the ``vaegan-train`` CLI, exported as a bundle by ``trainer.export`` and scored from its
ONNX files in onnxruntime, so the numbers are those of what users get.

    python -m bench.quality               # final figures: train on 0-7999, score on 8000-9999 only
    python -m bench.quality --ablation    # the ablation table: train on 0-6999, score on 7000-7999
    python -m bench.quality --checkpoint runs/X/checkpoint.pt [--publish pretrained]   # score one run
    python -m bench.quality --bundle pretrained/mnist32-vaegan/VERSION   # score a published bundle as it is
    python -m bench.quality --curve runs/A runs/B   # the steps curve: every snapshot of the runs
    python -m bench.quality --conditional # the class-conditional model, same budget, seeds 0 and 1
    python -m bench.quality --quick       # a reduced budget, same keys, within 90 s

The judge is a small CNN trained on digits 0-7999 (bench/quality/judge.py, cached under
bench/results/); bench/quality/scorer.py scores one bundle with it. Sample keys are measured under
the paper's N(0, I) (no suffix) and, for bundles with one, the fitted prior (suffix ``_fitted``);
nn_ratio is the samples' median distance to the nearest training digit over that of held-out digits
(1: as new as real digits; far below: copies). Bundles with classes are also scored through the
service's /sample?label= and /edit (bench/quality/classes.py). The last line printed is one JSON
object; bench/results/quality*.json holds it.
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
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.quality.curve import curve, plot
from bench.quality.scorer import RESULTS, Scorer
from trainer import checkpoint
from trainer.export import export_checkpoint
from trainer.mnist import HELDOUT_SLICE, TRAIN_SLICE, TUNE_HELDOUT_SLICE, TUNE_TRAIN_SLICE

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "img"
TARGETS = {
    "fd_ratio": "<= 0.3",
    "max_class_share": "<= 0.15",
    "sample_confidence": ">= 0.90",
    "recon_label_kept": ">= 0.96",
}
CLASS_TARGETS = {"label_accuracy (conditional)": ">= 0.97", "label_accuracy (class-mean)": ">= 0.8",
                 "edit_success (conditional)": ">= 0.7"}  # fmt: skip
# The ablation: from the default recipe, each option switched off alone (vaegan-train flags).
# "no decoder EMA" needs no run of its own: the default runs are exported a second time without it.
ABLATION: dict[str, list[str]] = {
    "default": [],
    "dis_passes joint": ["--dis-passes", "joint"],
    "dis_lr_scale 1": ["--dis-lr-scale", "1"],
    "recipe paper": ["--recipe", "paper"],
    "vae": ["--mode", "vae"],
    "generator_loss minimax": ["--generator-loss", "minimax"],
    "gamma 1e-6": ["--gamma", "1e-6"],
}
KEYS = (
    "fd_cls",
    "recon_label_kept",
    "sample_confidence",
    "max_class_share",
    "pixel_mse",
    "label_accuracy",
    "edit_success",
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="reduced budget (<= 90 s), same keys")
    p.add_argument("--ablation", action="store_true", help="the ablation table on the tuning split")
    p.add_argument("--conditional", action="store_true", help="the class-conditional VAE-GAN (--conditional)")
    p.add_argument("--rows", nargs="+", choices=list(ABLATION), help="--ablation: only these rows")
    p.add_argument("--checkpoint", type=Path, help="score this trained checkpoint (no training)")
    p.add_argument("--bundle", type=Path, help="score this bundle folder (models/NAME/VERSION) as it is")
    p.add_argument("--curve", type=Path, nargs="+", help="score every snapshot of these run folders (the steps curve)")
    p.add_argument("--at", type=int, nargs="+", help="--curve: only the snapshots of these steps (and the final)")
    p.add_argument("--no-ema", dest="ema", action="store_false", help="--checkpoint: score the last decoder weights")
    p.add_argument("--tune", action="store_true", help="--checkpoint: score on the tuning split (7000-7999)")
    p.add_argument("--steps", type=int, default=1500, help="optimizer steps of every run")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--no-amp", dest="amp", action="store_false", help="train in float32 (default: bf16 autocast)")
    p.add_argument("--samples", type=int, default=1000, help="prior samples for FD-cls, confidence and histogram")
    p.add_argument("--out", type=Path, help="default: bench/results/quality[_ablation|_checkpoint|_quick].json")
    p.add_argument("--img-dir", type=Path, default=IMAGES)
    p.add_argument("--work", type=Path, help="keep runs and bundles here (default: a temporary folder)")
    p.add_argument("--publish", type=Path, help="export the scored VAE-GAN (first seed) here as mnist32-vaegan")
    a = p.parse_args(argv)
    suffix = (
        "_ablation" if a.ablation else "_curve" if a.curve else "_checkpoint" if a.checkpoint or a.bundle
        else "_conditional" if a.conditional else ""
    )  # fmt: skip
    if a.quick:
        a.steps, a.batch_size, a.seeds, a.samples, a.img_dir = 15, 32, a.seeds[:1], 500, None
        suffix += "_quick"
    a.out = a.out or RESULTS / f"quality{suffix}.json"
    return a


def train(out: Path, flags: list[str], dataset: str, seed: int, a: argparse.Namespace) -> dict[str, Any]:
    """One `vaegan-train` run as a user runs it (a subprocess); its checkpoint and wall time."""
    argv = [
        "--preset", "mnist32", "--dataset", dataset, *flags,
        "--max-steps", str(a.steps), "--batch-size", str(a.batch_size), "--seed", str(seed),
        "--out", str(out), "--num-workers", "0", "--eval-images", "500",
        "--checkpoint-every", str(max(500, a.steps // 4)), "--log-every", str(max(1, a.steps // 10)),
    ]  # fmt: skip
    argv += ["--amp"] if a.amp else []
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "trainer", *argv], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"vaegan-train {' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    return {"checkpoint": out / "checkpoint.pt", "train_seconds": time.perf_counter() - start}


def mean_of(runs: list[dict[str, Any]]) -> dict[str, float]:
    keys = [k for k, v in runs[0].items() if isinstance(v, float)]
    return {k: float(np.mean([r[k] for r in runs])) for k in keys}


def run_rows(rows: dict[str, list[str]], dataset: str, scorer: Scorer, a: argparse.Namespace, work: Path) -> dict:
    """Train, export and score each row on every seed; the default rows also without the EMA."""
    results: dict[str, list[dict[str, Any]]] = {}
    for name, flags in rows.items():
        for seed in a.seeds:
            tag = name.replace(" ", "_")
            run = train(work / f"{tag}-seed{seed}", flags, dataset, seed, a)
            ckpt = run.pop("checkpoint")
            images = a.img_dir / f"quality_{tag}" if a.img_dir is not None and seed == a.seeds[0] else None
            bundle = export_checkpoint(ckpt, work / "models", f"{tag}-seed{seed}")
            results.setdefault(name, []).append({"seed": seed, **scorer(bundle, images), **run})
            if name in ("vaegan", "cvaegan") and a.publish is not None and seed == a.seeds[0]:
                publish(ckpt, a.publish, results[name][-1])
            if name in ("default", "vaegan") and "--decoder-ema" not in flags:
                plain = export_checkpoint(ckpt, work / "models", f"{tag}-noema-seed{seed}", use_ema=False)
                results.setdefault(f"{name}, no decoder EMA", []).append({"seed": seed, **scorer(plain), **run})
            for row in (name, f"{name}, no decoder EMA"):
                if row in results and results[row][-1]["seed"] == seed:
                    sys.stderr.write(f"{row} seed {seed}: {json.dumps(results[row][-1])}\n")
    return {name: {"mean": mean_of(runs), "runs": runs} for name, runs in results.items()}


def publish(ckpt_path: Path, models_dir: Path, result: dict[str, Any]) -> Path:
    """Export the scored checkpoint again as models_dir/mnist32-vaegan (or -cvaegan), its quality figures
    in the manifest."""
    ckpt = checkpoint.load(ckpt_path)
    ckpt["eval"] = {**(ckpt.get("eval") or {}), **{f"quality_{k}": v for k, v in result.items() if k in KEYS}}
    path = ckpt_path.with_name("checkpoint-published.pt")
    checkpoint.save_atomic(ckpt, path)
    conditional = ckpt["model_config"].get("num_classes", 0) > 0
    return export_checkpoint(path, models_dir, "mnist32-cvaegan" if conditional else "mnist32-vaegan")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    a = parse_args(argv)
    start = time.perf_counter()
    tuning = a.ablation or a.tune
    scorer = Scorer(
        TUNE_HELDOUT_SLICE if tuning else HELDOUT_SLICE, a.samples, TUNE_TRAIN_SLICE if tuning else TRAIN_SLICE
    )
    summary: dict[str, Any] = {"judge": scorer.judge}
    with tempfile.TemporaryDirectory(prefix="quality-") as tmp:
        work = a.work or Path(tmp)
        if a.curve:
            summary["rows"] = curve(a.curve, scorer, work, a.at)
            if a.img_dir is not None:
                plot(summary["rows"], scorer.judge["fd_floor_real_vs_real"], a.img_dir / "steps_curve.png")
        elif a.bundle is not None:  # a published bundle as it is, e.g. pretrained/mnist32-vaegan/VERSION
            summary.update(scorer(a.bundle, a.img_dir / "quality_pretrained" if a.img_dir and not a.tune else None))
        elif a.checkpoint is not None:  # one finished run
            ckpt_path = a.checkpoint  # the export fits class means and prior when the checkpoint lacks them
            bundle = export_checkpoint(ckpt_path, work / "models", "scored", use_ema=a.ema)
            result = scorer(bundle, a.img_dir / "quality_pretrained" if a.img_dir and not a.tune else None)
            if a.publish is not None:
                publish(ckpt_path, a.publish, result)
            summary.update(result)
        elif a.conditional:
            summary["rows"] = run_rows({"cvaegan": ["--conditional"]}, "embedded-mnist", scorer, a, work)
            summary.update(summary["rows"]["cvaegan"]["mean"])
            summary["targets"] = {**TARGETS, **CLASS_TARGETS}
        elif a.ablation:
            rows = {k: v for k, v in ABLATION.items() if not a.rows or k in a.rows}
            summary["rows"] = run_rows(rows, "embedded-mnist:tune", scorer, a, work)
        else:
            rows = run_rows({"vae": ["--mode", "vae"], "vaegan": []}, "embedded-mnist", scorer, a, work)
            vae, vaegan = rows["vae"]["mean"], rows["vaegan"]["mean"]
            summary.update({"fd_ratio": vaegan["fd_cls"] / vae["fd_cls"], "fd_over_floor": vaegan["fd_over_floor"]})
            summary.update({k: vaegan[k] for k in ("max_class_share", "sample_confidence", "recon_label_kept")})
            summary.update({"targets": TARGETS, "rows": rows})
    summary["budget"] = {"steps": a.steps, "batch_size": a.batch_size, "amp": a.amp, "seeds": a.seeds}
    summary["split"] = "train 0-6999, score 7000-7999" if tuning else "train 0-7999, score 8000-9999"
    summary["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__}
    summary["seconds"] = time.perf_counter() - start
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
