"""Shared fixtures for the model_core tests: a tiny configuration that runs in milliseconds."""

from __future__ import annotations

import pytest
from tiny_models import TINY_16

from model_core.config import ModelConfig


@pytest.fixture
def tiny_config() -> ModelConfig:
    """The suite's tiny configuration at 16x16 (tests/tiny_models.py)."""
    return TINY_16
