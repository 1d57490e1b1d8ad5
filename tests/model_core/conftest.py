"""Shared fixtures for the model_core tests: a tiny configuration that runs in milliseconds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from tiny_models import TINY_16

from model_core.config import ModelConfig


@pytest.fixture(autouse=True)
def _one_intra_op_thread() -> Iterator[None]:
    """Run on one thread: these models are tiny, and on a loaded 2-core box more threads are ~5x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_config() -> ModelConfig:
    """The suite's tiny configuration at 16x16 (tests/tiny_models.py)."""
    return TINY_16
