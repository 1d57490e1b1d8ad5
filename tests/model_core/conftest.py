"""Shared fixtures for the model_core tests: a tiny configuration that runs in milliseconds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

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
    """The Table 1 architecture shrunk to 16x16 grey images, a few channels per layer, latent 4."""
    return ModelConfig(
        image_size=16,
        channels=1,
        latent_dim=4,
        enc_channels=(4, 8, 8),
        enc_fc=16,
        dec_fc_channels=8,
        dec_channels=(8, 4, 4),
        dis_stem=4,
        dis_channels=(4, 8, 8),
        dis_fc=16,
    )
