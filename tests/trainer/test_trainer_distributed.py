"""The same command under torchrun: DDP on CPU with two gloo processes; rank 0 alone writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_runs import run_modules, tiny_args


@pytest.mark.slow
def test_torchrun_two_processes_train_in_step(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    # R1 (the default recipe's) on every step: its gradients are averaged by hand, outside DDP.
    args = tiny_args(out, "--max-steps", "3", "--log-every", "1", "--checkpoint-every", "2", "--r1-every", "1")
    torchrun = ["--standalone", "--nproc-per-node", "2", "-m", "trainer", *args]
    (result,) = run_modules(("torch.distributed.run", torchrun), timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "on cpu x2" in result.stderr
    assert "weights differ" not in result.stderr  # replicas_agree held at the end, R1 steps included
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]  # one writer: rank 0
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 3 and ckpt["data_position"] == {"epoch": 0, "batch": 3, "index": 12}
    assert len(list((out / "samples").glob("*.png"))) == 2
