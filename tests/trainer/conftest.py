"""Fixtures of the trainer tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_runs import tiny_args


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished 3-step run (vaegan mode), shared by the tests that inspect its files."""
    from trainer.cli import main

    out = tmp_path_factory.mktemp("tiny") / "run"
    assert main(tiny_args(out, "--max-steps", "3", "--log-every", "1", "--checkpoint-every", "2")) == 0
    return out
