"""Exact resume: a run killed by SIGKILL after a checkpoint, then resumed, ends bit-identical."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tiny_runs import REPO, module_env, run_modules, tiny_args

LOSS_KEYS = ("enc_loss", "dec_loss", "dis_loss", "kl", "llike", "gan", "dis_acc_real", "dis_acc_fake")
AFTER_KILL = 3  # steps the resumed run trains past the checkpoint it resumes from


def losses(run: Path) -> list[tuple[float, ...]]:
    """(step, losses...) of every metrics.jsonl line; JSON floats round-trip bit for bit."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], *(r[k] for k in LOSS_KEYS)) for r in records]


def kill_after_first_checkpoint(out: Path) -> int:
    """Start a long run, SIGKILL it once checkpoint.pt exists; return the checkpoint's step."""
    args = tiny_args(out, "--max-steps", "1000", "--checkpoint-every", "2", "--log-every", "1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainer", *args],
        cwd=REPO,
        env=module_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while not (out / "checkpoint.pt").exists():
            assert proc.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return torch.load(out / "checkpoint.pt", weights_only=True)["step"]


@pytest.mark.slow
def test_sigkill_then_resume_matches_the_uninterrupted_run(tmp_path: Path) -> None:
    killed = tmp_path / "killed"
    step = kill_after_first_checkpoint(killed)
    total = str(step + AFTER_KILL)

    resume = ("--resume", str(killed / "checkpoint.pt"))
    resumed, straight = run_modules(  # side by side: neither reads the other's folder
        ("trainer", tiny_args(killed, "--max-steps", total, "--log-every", "1", *resume)),
        ("trainer", tiny_args(tmp_path / "straight", "--max-steps", total, "--log-every", "1")),
    )
    assert resumed.returncode == 0, resumed.stderr
    assert straight.returncode == 0, straight.stderr

    assert losses(killed) == losses(tmp_path / "straight")  # every step, bit for bit
    assert len(losses(killed)) == step + AFTER_KILL
    a = torch.load(killed / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    for name in ("encoder", "decoder", "discriminator"):
        for key, tensor in a["models"][name].items():
            assert torch.equal(tensor, b["models"][name][key]), f"{name}.{key}"
    assert a["eval"] == b["eval"]
