"""Fixtures of the whole suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_intra_op_thread() -> Iterator[None]:
    """Run torch on one thread: the suite's models are tiny, and on a loaded 2-core box more threads spin
    against each other (a 3-step trainer run took 4x longer on two). Subprocesses get OMP_NUM_THREADS=1
    (tests/trainer/tiny_runs.py)."""
    import torch  # here, not at the top: tests that need no torch collect without it

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
