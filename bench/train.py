"""Trainer overhead: ``vaegan-train``'s steps/s against a minimal loop of the same Algorithm 1 step.

Both sides train the same networks (preset mnist32, mode vaegan, the trainer's default objective)
on batches of 64 embedded MNIST digits, on the CPU, with the same ``torch.set_num_threads``:

- ``trainer``: ``trainer.loop.train`` as ``vaegan-train`` runs it (data loader and sampler, the
  uint8-to-float conversion, per-step seeding of z, the loss meter, the progress bar, metrics.jsonl),
  with checkpoints never due during the run and a small final evaluation. Its speed is read from
  its own metrics.jsonl: the steps/s of every --log-every window after the first (the first holds
  start-up and the first steps' allocations); the final evaluation, checkpoint and epoch grids come
  after the last window and are not counted. The run stays within the first epoch, so no epoch
  grid falls inside a window; ``epoch_grid_seconds`` reports what one costs.
- ``minimal``: ``model_core.vaegan.algorithm1_step`` called back to back on pre-made float batches
  (no data loader, no logging, no checkpoints), after two warm-up steps.

The two run one after the other, round after round, in alternating order; the key is the median
trainer steps/s over the median minimal steps/s. Key (last line, one JSON object):
``trainer_over_minimal_loop``. Run: ``python -m bench.train [--quick] [--out bench/results/train.json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench import report
from model_core.config import PRESETS
from model_core.vaegan import VAEGAN, algorithm1_step
from trainer import grids
from trainer.config import TrainConfig
from trainer.datasets import digits_in_model_range
from trainer.loop import train
from trainer.mnist import TRAIN_SLICE, load_embedded_mnist

PRESET = "mnist32"
DATASET = "embedded-mnist"
MINIMAL_WARMUP = 2  # steps before the minimal loop's clock starts (first-step allocations)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="two rounds of 4-step windows (<= 90 s)")
    p.add_argument(
        "--threads", type=int, default=torch.get_num_threads(), help="torch threads, both sides (1 on a busy CPU)"
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--log-every", type=int, help="trainer window in steps (default 4 quick, 20 full)")
    p.add_argument("--windows", type=int, help="timed windows per trainer run (default 1 quick, 2 full)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 2 quick, 3 full)")
    p.add_argument("--out", type=Path, default=Path("bench/results/train.json"), help="also write the JSON here")
    return p.parse_args(argv)


def trainer_config(out: Path, batch_size: int, log_every: int, windows: int) -> TrainConfig:
    """vaegan-train --preset mnist32 --dataset embedded-mnist --device cpu --max-steps (1 + windows) * log_every."""
    steps = (1 + windows) * log_every
    return TrainConfig(
        preset=PRESET,
        dataset=DATASET,
        out=out,
        max_steps=steps,
        batch_size=batch_size,
        device="cpu",
        checkpoint_every=steps + 1,  # never during the run (the final one comes after the last window)
        log_every=log_every,
        eval_images=batch_size,
    )


def trainer_steps_per_s(cfg: TrainConfig) -> float:
    """Run the trainer; steps/s over its metrics.jsonl windows after the first."""
    train(cfg)
    records = [json.loads(line) for line in (cfg.out / "metrics.jsonl").read_text().splitlines()]
    timed = records[1:]
    seconds = sum(cfg.log_every * cfg.batch_size / r["images_per_s"] for r in timed)
    return len(timed) * cfg.log_every / seconds


class MinimalLoop:
    """The same networks, optimizers and objective, stepped on pre-made batches: the bare Algorithm 1."""

    def __init__(self, cfg: TrainConfig) -> None:
        torch.manual_seed(cfg.seed)
        self.model = VAEGAN(PRESETS[cfg.preset], cfg.objective).train()
        self.algorithm1 = self.model.algorithm1(self.model.make_optimizers(cfg.lr))
        self.generator = torch.Generator().manual_seed(cfg.seed)
        images, _ = load_embedded_mnist()
        x = digits_in_model_range(images[TRAIN_SLICE], PRESETS[cfg.preset].image_size)  # (8000, 1, 32, 32)
        self.batches = list(x.split(cfg.batch_size))[:-1]  # whole batches only
        self.next = 0

    def step(self) -> None:
        x = self.batches[self.next % len(self.batches)]
        self.next += 1
        algorithm1_step(self.algorithm1, x, generator=self.generator)

    def steps_per_s(self, warmup: int, steps: int) -> float:
        for _ in range(warmup):
            self.step()
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        return steps / (time.perf_counter() - start)


def epoch_grid_seconds(minimal: MinimalLoop, folder: Path) -> float:
    """What one end-of-epoch pair of grids costs the trainer (excluded from the windows)."""
    m = minimal.model
    heldout = torch.from_numpy(np.zeros((grids.GRID_SIZE, 1, 32, 32), np.uint8))
    start = time.perf_counter()
    m.eval()
    grids.write_epoch_grids(m.decoder, m.encoder, heldout, None, m.config, folder, "bench")
    m.train()
    return time.perf_counter() - start


def interleaved_rounds(
    cfg: TrainConfig, minimal: MinimalLoop, tmp: Path, rounds: int, budget: float
) -> tuple[dict[str, list[float]], int]:
    """Steps/s of the trainer and the minimal loop, their order alternating by round; the rounds run.

    After the first round, fewer rounds (at least one) when the rest would not fit ``budget`` seconds."""
    started = time.perf_counter()
    samples: dict[str, list[float]] = {"trainer": [], "minimal": []}
    steps = (cfg.max_steps or 0) - cfg.log_every  # the trainer's timed windows: all but the first
    r = 0
    while r < rounds:
        round_start = time.perf_counter()
        for side in ("trainer", "minimal") if r % 2 == 0 else ("minimal", "trainer"):
            if side == "trainer":
                value = trainer_steps_per_s(replace(cfg, out=tmp / f"run{r}"))
            else:
                value = minimal.steps_per_s(warmup=MINIMAL_WARMUP, steps=steps)
            samples[side].append(value)
            print(f"round {r} {side:8s} {value:6.3f} steps/s", flush=True)
        r += 1
        if r == 1:  # a busy CPU slows every step: fewer rounds (at least one) rather than past the budget
            rounds = max(1, min(rounds, int((budget - (round_start - started)) / (time.perf_counter() - round_start))))
    return samples, rounds


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    log_every = args.log_every or (4 if args.quick else 20)
    windows = args.windows or (1 if args.quick else 2)
    rounds = args.rounds or (2 if args.quick else 3)
    budget = 80.0 if args.quick else 900.0  # seconds for the rounds
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="vaegan-bench-train-") as tmp:
        cfg = trainer_config(Path(tmp) / "run", args.batch_size, log_every, windows)
        minimal = MinimalLoop(cfg)
        samples, rounds = interleaved_rounds(cfg, minimal, Path(tmp), rounds, budget - (time.perf_counter() - started))
        grid_s = epoch_grid_seconds(minimal, Path(tmp) / "grids")

    medians = {side: statistics.median(v) for side, v in samples.items()}
    print(f"trainer {medians['trainer']:.2f} steps/s, minimal loop {medians['minimal']:.2f} steps/s (medians)")
    summary = {
        "trainer_over_minimal_loop": round(medians["trainer"] / medians["minimal"], 3),
        "steps_per_s": {side: round(v, 3) for side, v in medians.items()},
        "rounds_steps_per_s": {side: [round(x, 3) for x in v] for side, v in samples.items()},
        "epoch_grid_seconds": round(grid_s, 3),
        "setup": {
            "preset": PRESET,
            "dataset": DATASET,
            "mode": cfg.mode,
            "batch_size": args.batch_size,
            "device": "cpu",
            "log_every": log_every,
            "timed_steps_per_round": windows * log_every,
        },
        "threads": args.threads,
        "rounds": rounds,
        "quick": args.quick,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": report.machine(torch=torch.__version__),
    }
    report.emit(summary, args.out)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
