"""bench.quality's Fréchet distance against the closed form between two Gaussians.

FD(N(m_a, S_a), N(m_b, S_b)) = |m_a - m_b|^2 + Tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2) (Heusel et
al. 2017). ``frechet_distance`` fits the Gaussians to samples, so the samples here are built to have
exactly the wanted mean and covariance: seeded noise whitened to mean 0 and covariance I (the same
ddof as np.cov), then coloured by a Cholesky factor and shifted. The expected values come from
formulas that take no matrix square root the way the code does.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.quality.judge import frechet_distance


def gaussian_samples(mean: np.ndarray, cov: np.ndarray, n: int = 500, seed: int = 0) -> np.ndarray:
    """(n, D) samples whose sample mean is ``mean`` and whose np.cov is ``cov``, exactly."""
    x = np.random.default_rng(seed).standard_normal((n, len(mean)))
    x -= x.mean(0)
    x = x @ np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False))).T  # np.cov(x) == I
    return x @ np.linalg.cholesky(cov).T + mean


def rotation(theta: float) -> np.ndarray:
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def test_the_samples_have_the_moments_asked_for() -> None:
    cov = np.array([[2.0, 0.6], [0.6, 0.5]])
    x = gaussian_samples(np.array([1.0, -2.0]), cov)
    np.testing.assert_allclose(x.mean(0), [1.0, -2.0], atol=1e-12)
    np.testing.assert_allclose(np.cov(x, rowvar=False), cov, atol=1e-12)


def test_equal_covariances_leave_the_gap_of_the_means() -> None:
    # S_a = S_b = S: Tr(S + S - 2 (S^1/2 S S^1/2)^1/2) = Tr(2S - 2S) = 0.
    cov = rotation(0.4) @ np.diag([4.0, 0.25]) @ rotation(0.4).T
    a = gaussian_samples(np.array([0.5, 1.0]), cov, seed=1)
    b = gaussian_samples(np.array([-1.0, 3.0]), cov, seed=2)
    assert frechet_distance(a, b) == pytest.approx(1.5**2 + 2.0**2, rel=1e-10)


def test_diagonal_covariances() -> None:
    # Commuting covariances: |dm|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2.
    var_a, var_b = np.array([1.0, 4.0, 9.0, 0.25]), np.array([4.0, 1.0, 9.0, 1.0])
    m_a, m_b = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0, 3.0])
    a = gaussian_samples(m_a, np.diag(var_a), seed=3)
    b = gaussian_samples(m_b, np.diag(var_b), seed=4)
    expected = ((m_a - m_b) ** 2).sum() + ((np.sqrt(var_a) - np.sqrt(var_b)) ** 2).sum()
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-10)  # 5 + (1 + 1 + 0 + 0.25)


def test_two_covariances_that_do_not_commute() -> None:
    # For 2x2 positive definite M, Tr(M^1/2) = sqrt(Tr M + 2 sqrt(det M)); here M = S_a^1/2 S_b S_a^1/2,
    # so Tr M = Tr(S_a S_b) and det M = det S_a det S_b.
    s_a = rotation(0.3) @ np.diag([3.0, 0.5]) @ rotation(0.3).T
    s_b = rotation(1.2) @ np.diag([2.0, 0.2]) @ rotation(1.2).T
    assert not np.allclose(s_a @ s_b, s_b @ s_a)
    m_a, m_b = np.array([1.0, 2.0]), np.array([-0.5, 2.5])
    a, b = gaussian_samples(m_a, s_a, seed=5), gaussian_samples(m_b, s_b, seed=6)
    tr_sqrt = np.sqrt(np.trace(s_a @ s_b) + 2 * np.sqrt(np.linalg.det(s_a) * np.linalg.det(s_b)))
    expected = ((m_a - m_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * tr_sqrt
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-10)
    assert frechet_distance(b, a) == pytest.approx(expected, rel=1e-10)  # a distance: symmetric


def test_identical_distributions_are_at_distance_zero() -> None:
    cov = rotation(0.7) @ np.diag([1.5, 0.1]) @ rotation(0.7).T
    a, b = gaussian_samples(np.zeros(2), cov, seed=7), gaussian_samples(np.zeros(2), cov, seed=8)
    assert abs(frechet_distance(a, b)) < 1e-10
