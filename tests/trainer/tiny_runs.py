"""Tiny CPU runs of vaegan-train for the trainer tests, in process or as a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.checkout import REPO, checkout_env

# The smallest run that exercises everything: the tiny preset (mnist32's architecture at test widths),
# batch 4, a few steps, 8 held-out images, a prior of 2.
TINY = [
    "--preset",
    "tiny",
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


def module_env() -> dict[str, str]:
    """A ``python -m`` subprocess's environment: this one (one thread, tests/conftest.py), the repository importable."""
    return checkout_env()


def run_modules(*runs: tuple[str, list[str]], timeout: float = 300) -> list[subprocess.CompletedProcess[str]]:
    """``python -m MODULE ARGS`` for each (MODULE, ARGS) from the repository root, all started at once (each
    spends seconds importing torch, and there are two cores), text output captured; in the order given."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=REPO,
            env=module_env(),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for module, args in runs
    ]
    done = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=timeout)
            done.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    return done


def run_module(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m trainer ARGS`` from the repository root, text output captured."""
    return run_modules(("trainer", args), timeout=timeout)[0]
