"""The steps curve: one run's snapshots scored as bundles, under both priors, with its KL and Dis's overfitting.

    python -m bench.quality --curve runs/A runs/B    # every snapshots/stepNNNNNN.pt, then checkpoint.pt

Each snapshot (vaegan-train --snapshot-every) is exported as a run stopped at that step would be
(trainer/export.py: the decoder's batch norm recalibrated, the class means and the prior fitted)
and scored by bench.quality's judge. Besides the judge's keys every row has the run's KL at that
step (metrics.jsonl) and the discriminator's share of real logits > 0 on training digits and on
held-out ones (StyleGAN2-ADA's r_t heuristic): a gap between them is Dis memorising its data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer import checkpoint
from trainer.export import export_checkpoint

CURVE_KEYS = ("fd_cls", "fd_cls_fitted", "sample_confidence", "sample_confidence_fitted", "nn_ratio_fitted")


def checkpoints(run: Path, steps: list[int] | None = None) -> list[Path]:
    """The run's snapshots in step order (only ``steps`` when given), then its final checkpoint when it has finished."""
    found = sorted((run / "snapshots").glob("step*.pt"))
    if steps:
        found = [p for p in found if int(p.stem.removeprefix("step")) in steps]
    final = run / "checkpoint.pt"
    if final.is_file() and checkpoint.is_finished(checkpoint.load(final)):
        found.append(final)
    return found


def kl_at(run: Path, step: int) -> float | None:
    """The KL logged at ``step`` (the last record at or before it) in the run's metrics.jsonl."""
    kl = None
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["step"] <= step:
            kl = record.get("kl")
    return kl


@torch.no_grad()
def real_accuracy(path: Path, images: np.ndarray) -> float:
    """The share of ``images`` (model range) whose real/fake logit from the checkpoint's Dis is > 0 (eval mode)."""
    model, _ = checkpoint.load_model(path)
    logits, _ = model.discriminator(torch.from_numpy(np.ascontiguousarray(images)))
    real = logits if logits.ndim == 1 else logits[:, 0]  # a class head's logits follow the real/fake one
    return float((real > 0).float().mean())


def curve(runs: list[Path], scorer: Any, work: Path, steps: list[int] | None = None) -> list[dict[str, Any]]:
    """One row per checkpoint of every run: step, seed, the judge's sample keys, KL and Dis's real accuracies."""
    rows = []
    for run in runs:
        for path in checkpoints(run, steps):
            ckpt = checkpoint.load(path)
            step, seed = int(ckpt["step"]), int(ckpt["train_config"]["seed"])
            bundle = export_checkpoint(path, work / "models", f"{run.name}-step{step}")
            row = {"run": run.name, "seed": seed, "step": step, **scorer(bundle, classes=False), "kl": kl_at(run, step)}
            row["dis_real_train"] = real_accuracy(path, scorer.train[: len(scorer.real)])
            row["dis_real_heldout"] = real_accuracy(path, scorer.real)
            rows.append(row)
            shown = {k: round(row[k], 3) for k in (*CURVE_KEYS, "kl") if row.get(k) is not None}
            print(f"{run.name} step {step}: {shown}", flush=True)
    return rows


def plot(rows: list[dict[str, Any]], floor: float, path: Path) -> None:
    """FD-cls against steps, one line per run and prior, the judge's real-vs-real floor dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for run in sorted({r["run"] for r in rows}):
        mine = sorted((r for r in rows if r["run"] == run), key=lambda r: r["step"])
        steps = [r["step"] for r in mine]
        (line,) = ax.plot(steps, [r["fd_cls"] for r in mine], "--", marker="o", label=f"{run}: N(0, I)")
        if all("fd_cls_fitted" in r for r in mine):
            ax.plot(steps, [r["fd_cls_fitted"] for r in mine], "-", marker="o", color=line.get_color(),
                    label=f"{run}: fitted prior")  # fmt: skip
    ax.axhline(floor, linestyle=":", color="grey", label="real vs real")
    ax.set(xlabel="training steps", ylabel="FD-cls (lower is better)", yscale="log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
