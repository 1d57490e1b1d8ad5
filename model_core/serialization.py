"""Reading checkpoints safely: ``torch.load(weights_only=True)`` with one-line reasons on refusal."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch


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
