"""Checkpoints: a plain dict that loads with ``torch.load(weights_only=True)``, written atomically.

Besides the networks and optimizers it holds every random state and the data position, so a
resumed run continues exactly where the checkpoint left off.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model_core.serialization import CHECKPOINT_FORMAT_VERSION, CheckpointReadError, read_checkpoint
from trainer.config import TrainingError, UsageError

FORMAT_VERSION = CHECKPOINT_FORMAT_VERSION
# Changing these would change what the saved weights or the data position mean.
MUST_MATCH = ("preset", "dataset", "seed", "batch_size", "mode")


def capture_rng() -> dict[str, Any]:
    """Python, numpy, torch and CUDA random states, as tensors and plain types."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": [int(k) for k in keys],
            "pos": pos,
            "has_gauss": has_gauss,
            "cached_gaussian": gauss,
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Undo ``capture_rng``."""
    random.setstate(state["python"])
    n = state["numpy"]
    keys = np.asarray(n["keys"], dtype=np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_atomic(checkpoint: dict[str, Any], path: Path) -> None:
    """Write to a temp file beside ``path``, fsync, then rename over it: never half a checkpoint."""
    try:  # a read-only or full folder fails here already
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise TrainingError(f"cannot write checkpoint {path}: {exc}; the previous one is intact") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TrainingError(f"cannot write checkpoint {path}: {exc}; the previous one is intact") from exc


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself (POSIX); skipped where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint with weights_only=True; UsageError when it is missing or not ours."""
    try:
        checkpoint = read_checkpoint(path)
    except CheckpointReadError as exc:
        raise UsageError(f"--resume {path}: {exc}") from None
    return checkpoint


def check_resumable(checkpoint: dict[str, Any], train_config: dict[str, Any], model_config: dict[str, Any]) -> None:
    """Refuse (UsageError) to resume a checkpoint made with another model or data stream."""
    if checkpoint["model_config"] != model_config:
        changed = sorted(k for k in model_config if checkpoint["model_config"].get(k) != model_config[k])
        raise UsageError(
            f"cannot resume: the checkpoint's model config differs from preset "
            f"{train_config['preset']!r} in {', '.join(changed)} (it was trained as {checkpoint['preset']!r})"
        )
    saved = checkpoint["train_config"]
    for key in MUST_MATCH:
        if saved.get(key) != train_config[key]:
            raise UsageError(
                f"cannot resume: the checkpoint has {key}={saved.get(key)!r}, this run asks for {train_config[key]!r}"
            )
