"""run.json: how a run was made, so its folder alone tells it (options, code, versions, hardware)."""

from __future__ import annotations

import json
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from trainer.config import TrainConfig

RUN_JSON = "run.json"
REPO = Path(__file__).resolve().parent.parent


def git_commit() -> dict[str, Any] | None:
    """The checkout's commit and whether it had uncommitted changes; None outside a git checkout."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def versions() -> dict[str, str | None]:
    """Python, torch, CUDA and onnxruntime as this process has them (None: absent)."""

    def installed(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "onnxruntime": installed("onnxruntime") or installed("onnxruntime-gpu"),
        "scikit-learn": installed("scikit-learn"),
    }


def write_run_json(cfg: TrainConfig, device: torch.device, world: int) -> Path:
    """Write run.json into the run folder (a resumed run rewrites it, naming the checkpoint it resumed)."""
    record = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": cfg.to_dict(),
        "resumed_from": None if cfg.resume is None else str(cfg.resume),
        "git": git_commit(),
        "versions": versions(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or None,
        "world_size": world,
        "host": platform.node(),
    }
    path = cfg.out / RUN_JSON
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return path
