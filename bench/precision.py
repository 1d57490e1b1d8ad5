"""Training precision on this machine: float32 against bf16 autocast steps/s of the default recipe.

The same mnist32 VAE-GAN step as ``vaegan-train --recipe default`` (channels-last, as the trainer
runs it) is timed in float32 and under ``--amp`` (bf16 autocast on a CPU), on one fixed batch of 64
digits, in interleaved rounds; the key is the median bf16 steps/s over the median float32 steps/s.
Key (last line, one JSON object): ``bf16_over_fp32_steps``.
Run: ``python -m bench.precision [--quick] [--threads N] [--out bench/results/precision.json]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from bench import report
from model_core.config import PRESETS, ObjectiveConfig
from model_core.vaegan import VAEGAN
from trainer.datasets import digits_in_model_range
from trainer.mnist import TRAIN_SLICE, load_embedded_mnist
from trainer.recipes import OBJECTIVE_OPTIONS, RECIPES

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="2 rounds of 5 steps")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--rounds", type=int)
    p.add_argument("--steps", type=int, help="timed steps per round and precision")
    p.add_argument("--out", type=Path, default=Path("bench/results/precision.json"))
    return p.parse_args(argv)


def steps_per_s(dtype: torch.dtype | None, x: torch.Tensor, steps: int) -> float:
    """A fresh seeded model, two warm-up steps, then ``steps`` timed Algorithm 1 steps."""
    torch.manual_seed(0)
    objective = ObjectiveConfig(**{k: RECIPES["default"][k] for k in OBJECTIVE_OPTIONS})
    model = VAEGAN(PRESETS["mnist32"], objective).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizers, generator = model.make_optimizers(), torch.Generator().manual_seed(0)
    for _ in range(2):
        model.train_step(x, optimizers, generator, autocast_dtype=dtype)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_step(x, optimizers, generator, autocast_dtype=dtype)
    return steps / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    rounds, steps = args.rounds or (2 if args.quick else 4), args.steps or (5 if args.quick else 20)
    torch.set_num_threads(args.threads)
    images, _ = load_embedded_mnist()
    x = digits_in_model_range(images[TRAIN_SLICE][:64]).contiguous(memory_format=torch.channels_last)
    samples: dict[str, list[float]] = {name: [] for name in PRECISIONS}
    started = time.perf_counter()
    for r in range(rounds):
        for name in PRECISIONS if r % 2 == 0 else reversed(PRECISIONS):
            samples[name].append(steps_per_s(PRECISIONS[name], x, steps))
            print(f"round {r} {name} {samples[name][-1]:.3f} steps/s", flush=True)
    medians = {name: statistics.median(v) for name, v in samples.items()}
    setup = {"preset": "mnist32", "recipe": "default", "batch_size": 64, "channels_last": True, "threads": args.threads}
    summary = {
        "bf16_over_fp32_steps": round(medians["bf16"] / medians["fp32"], 3),
        "steps_per_s": {k: round(v, 3) for k, v in medians.items()},
        "images_per_s": {k: round(v * 64, 1) for k, v in medians.items()},
        "rounds_steps_per_s": {k: [round(s, 3) for s in v] for k, v in samples.items()},
        "setup": {**setup, "rounds": rounds, "steps_per_round": steps},
        "machine": report.machine(torch=torch.__version__),
        "seconds": round(time.perf_counter() - started, 1),
    }
    report.emit(summary, args.out)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
