"""Trainer checkpoints: the format version, and reading them safely (``torch.load(weights_only=True)``)
with one-line reasons on refusal. The trainer writes them, the trainer (--resume) and the export read them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_FORMAT_VERSION = 1  # the "format_version" of the checkpoint dicts trainer/checkpoint.py writes


class CheckpointReadError(Exception):
    """A checkpoint file cannot be read, or holds pickled objects that a vaegan checkpoint never contains."""


def load_weights_only(path: Path) -> Any:
    """Load ``path`` with weights_only=True on the CPU; CheckpointReadError (one line) when refused."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling, zip and torch errors come in many types
        refused = re.search(r"GLOBAL ([\w.]+)", str(exc))  # weights_only met a function or a foreign class
        if refused:
            raise CheckpointReadError(
                f"refused: the file holds pickled Python objects ({refused.group(1)}) that a vaegan checkpoint "
                "never contains; loading them could run code, so it is not loaded"
            ) from None
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointReadError(f"not a readable checkpoint ({first_line})") from None


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint dict of CHECKPOINT_FORMAT_VERSION; CheckpointReadError (one line) when it is not one."""
    if not Path(path).is_file():
        raise CheckpointReadError("no such checkpoint file")
    checkpoint = load_weights_only(path)
    if not isinstance(checkpoint, dict):
        raise CheckpointReadError(f"not a vaegan checkpoint (a {type(checkpoint).__name__}, not a dict)")
    if checkpoint.get("format_version") != CHECKPOINT_FORMAT_VERSION:
        raise CheckpointReadError(
            f"checkpoint format_version {checkpoint.get('format_version')!r}, "
            f"this build reads {CHECKPOINT_FORMAT_VERSION}"
        )
    return checkpoint
