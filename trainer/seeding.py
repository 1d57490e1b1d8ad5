"""Every random draw of a run is a function of its seed, so a resumed run is exact (trainer/loop.py)."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (the initial weights come from torch's global generator)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def step_seed(seed: int, rank: int, step: int) -> int:
    """The seed of one step's z draws: a fixed function of (seed, rank, step)."""
    return ((seed * 1_000_003 + rank) * 1_000_033 + step) % 2**63
