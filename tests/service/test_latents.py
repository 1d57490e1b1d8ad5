"""service.latents: seeded, tempered prior draws and interpolation paths."""

from __future__ import annotations

import numpy as np
import pytest

from service import latents


def test_prior_is_seeded_and_tempered() -> None:
    a = latents.prior(5, 4, 8)
    np.testing.assert_array_equal(a, latents.prior(5, 4, 8))
    np.testing.assert_allclose(latents.prior(5, 4, 8, temperature=0.5), a * 0.5, rtol=1e-6)
    assert a.dtype == np.float32 and a.shape == (4, 8)


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_interpolation_ends_and_norm(method: str) -> None:
    a, b = np.array([3.0, 0.0], np.float32), np.array([0.0, 3.0], np.float32)
    path = latents.interpolate(a, b, 5, method)
    np.testing.assert_allclose(path[0], a, atol=1e-6)
    np.testing.assert_allclose(path[-1], b, atol=1e-6)
    norms = np.linalg.norm(path, axis=1)
    if method == "slerp":
        np.testing.assert_allclose(norms, 3.0, rtol=1e-5)  # stays on the shell
    else:
        assert norms[2] < 3.0
    parallel = latents.interpolate(a, a * 2, 3, "slerp")  # degenerate angle: falls back to a line
    np.testing.assert_allclose(parallel[1], a * 1.5, rtol=1e-6)
