"""Tiny CPU runs of vaegan-train for the trainer tests, in process or as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The smallest run that exercises everything: mnist32, batch 4, a few steps, 8 held-out images, a prior of 2.
TINY = [
    "--preset",
    "mnist32",
    "--batch-size",
    "4",
    "--num-workers",
    "0",
    "--device",
    "cpu",
    "--eval-images",
    "8",
    "--seed",
    "3",
    "--prior-components",  # a fixed size: choosing among CANDIDATES takes ~10 s a run
    "2",
]


def tiny_args(out: Path, *extra: str, dataset: str = "embedded-mnist") -> list[str]:
    """CLI arguments of a tiny run into ``out``."""
    return [*TINY, "--dataset", dataset, "--out", str(out), *extra]


def run_module(args: list[str], timeout: float = 300, **kwargs) -> subprocess.CompletedProcess[str]:
    """``python -m trainer ARGS`` from the repository root, text output captured."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "trainer", *args],
        cwd=REPO,
        env=env,
        text=True,
        capture_output=True,
        timeout=timeout,
        **kwargs,
    )
