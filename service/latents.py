"""Latent-space operations in numpy: prior samples, posterior samples, interpolation paths."""

from __future__ import annotations

import secrets

import numpy as np

SEED_LIMIT = 2**53  # seeds stay exact as JSON numbers in any client
SLERP_PARALLEL = 1e-6  # below this angle slerp degenerates to lerp


def new_seed() -> int:
    """A fresh seed for a request that did not send one (echoed back so it can be replayed)."""
    return secrets.randbelow(2**32)


def seed_or_new(seed: int | None) -> int:
    """The request's seed, or a fresh one (``new_seed``) when it sent none."""
    return new_seed() if seed is None else seed


def noise(seed: int, n: int, dim: int, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(eps (n, dim) float32 ~ N(0, temperature^2 I), u (n,) ~ U(0, 1)), the same for the same seed.

    Every prior draws from these (service/priors.py): the standard prior's z_p is eps itself, a
    fitted mixture picks its component by u. eps is drawn first, so it is what /sample decoded
    before bundles carried a fitted prior.
    """
    rng = np.random.default_rng(seed)
    eps = (rng.standard_normal((n, dim), dtype=np.float32) * np.float32(temperature)).astype(np.float32)
    return eps, rng.random(n)


def prior(seed: int, n: int, dim: int, temperature: float = 1.0) -> np.ndarray:
    """z_p ~ N(0, temperature^2 I), (n, dim) float32, the same for the same seed: the paper's prior."""
    return noise(seed, n, dim, temperature)[0]


def posterior(mu: np.ndarray, logvar: np.ndarray, seed: int) -> np.ndarray:
    """z = mu + sigma * eps with eps ~ N(0, I): the reparameterisation (Kingma & Welling 2014, Eq. 10)."""
    eps = np.random.default_rng(seed).standard_normal(mu.shape, dtype=np.float32)
    return (mu + np.exp(0.5 * logvar) * eps).astype(np.float32)


def interpolate(a: np.ndarray, b: np.ndarray, steps: int, method: str = "linear") -> np.ndarray:
    """``steps`` latents from a to b inclusive, (steps, Z): straight, or along the great circle (slerp)."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float64)[:, None]  # (steps, 1)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if method == "slerp":
        # White 2016, "Sampling Generative Networks": follows the shell where N(0, I) mass lies.
        cos = np.dot(a64, b64) / max(np.linalg.norm(a64) * np.linalg.norm(b64), 1e-12)
        omega = np.arccos(np.clip(cos, -1.0, 1.0))
        if omega > SLERP_PARALLEL:
            path = (np.sin((1 - t) * omega) * a64 + np.sin(t * omega) * b64) / np.sin(omega)
            return path.astype(np.float32)
    return ((1 - t) * a64 + t * b64).astype(np.float32)
