"""Random fitted priors for tests: Gaussian mixtures with a valid shape, seeded (model_core/bundle/prior.py)."""

from __future__ import annotations

import numpy as np

from model_core.bundle import LatentPrior, Mixture, PriorInfo


def random_mixture(rng: np.random.Generator, m: int, dim: int) -> Mixture:
    """Weights of a Dirichlet draw, locs spread apart, lower-triangular factors with a positive diagonal."""
    tril = np.tril(rng.normal(scale=0.3, size=(m, dim, dim)))
    idx = np.arange(dim)
    tril[:, idx, idx] = rng.uniform(0.3, 1.0, size=(m, dim))
    return Mixture(
        weights=rng.dirichlet(np.ones(m)).astype(np.float32),
        locs=rng.normal(scale=3.0, size=(m, dim)).astype(np.float32),
        scale_tril=tril.astype(np.float32),
    )


def random_prior(dim: int, seed: int = 0, m: int = 3, classes: int = 2, mk: int = 2) -> LatentPrior:
    """A prior over ``dim`` latents: one mixture of ``m``, ``classes`` of ``mk``, a reference of 101."""
    rng = np.random.default_rng(seed)
    per_class = tuple(random_mixture(rng, mk, dim) for _ in range(classes))
    reference = np.sort(rng.normal(size=101)).astype(np.float32)
    return LatentPrior(random_mixture(rng, m, dim), per_class, reference)


def info_of(prior: LatentPrior) -> PriorInfo:
    """Its manifest entry."""
    return PriorInfo(
        components=prior.mixture.components,
        class_components=prior.classes[0].components if prior.classes else 0,
        selection="test",
        fit_size=10,
        heldout_size=2,
    )
