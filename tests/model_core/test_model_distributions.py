"""The diagonal Gaussian posterior: KL against Monte Carlo, reparameterised sampling, mode, gradients."""

from __future__ import annotations

import math

import torch
from torch.distributions import Normal

from model_core.distributions import DiagonalGaussian


def _params(seed: int, batch: int = 3, latent: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(batch, latent, generator=g, dtype=torch.float64)
    logvar = torch.randn(batch, latent, generator=g, dtype=torch.float64) * 0.8
    return mu, logvar


def test_kl_matches_a_monte_carlo_estimate() -> None:
    mu, logvar = _params(0)
    q = DiagonalGaussian(mu, logvar)
    n = 200_000
    g = torch.Generator().manual_seed(1)
    eps = torch.randn(n, *mu.shape, generator=g, dtype=torch.float64)  # (N, B, Z)
    z = mu + torch.exp(0.5 * logvar) * eps
    posterior = Normal(mu, torch.exp(0.5 * logvar))
    prior = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    log_ratio = (posterior.log_prob(z) - prior.log_prob(z)).sum(-1)  # (N, B): log q(z) - log p(z)

    estimate = log_ratio.mean(0)  # (B,)
    stderr = log_ratio.std(0) / math.sqrt(n)  # the estimate's standard error, from the same samples

    kl = q.kl()
    assert kl.shape == (3,)
    assert torch.all((kl - estimate).abs() < 5 * stderr), (kl, estimate, stderr)
    assert torch.all(kl > 0)


def test_kl_is_zero_at_the_prior_and_positive_elsewhere() -> None:
    zero = torch.zeros(2, 5)
    assert torch.equal(DiagonalGaussian(zero, zero).kl(), torch.zeros(2))
    assert torch.all(DiagonalGaussian(zero + 0.1, zero).kl() > 0)
    assert torch.all(DiagonalGaussian(zero, zero - 0.1).kl() > 0)


def test_sample_has_the_posterior_mean_and_variance() -> None:
    mu, logvar = _params(2, batch=1)
    n = 100_000
    q = DiagonalGaussian(mu.expand(n, -1), logvar.expand(n, -1))
    z = q.sample(torch.Generator().manual_seed(3))  # (N, Z)
    var = logvar.exp().squeeze(0)

    # Standard errors: sigma / sqrt(N) for the mean, sigma^2 * sqrt(2 / N) for the variance.
    assert torch.all((z.mean(0) - mu.squeeze(0)).abs() < 5 * var.sqrt() / math.sqrt(n))
    assert torch.all((z.var(0) - var).abs() < 5 * var * math.sqrt(2 / n))


def test_sample_is_reproducible_with_a_generator() -> None:
    q = DiagonalGaussian(*_params(4))
    a = q.sample(torch.Generator().manual_seed(5))
    b = q.sample(torch.Generator().manual_seed(5))
    c = q.sample(torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_mode_is_mu() -> None:
    mu, logvar = _params(7)
    assert torch.equal(DiagonalGaussian(mu, logvar).mode(), mu)


def test_gradients_flow_through_sample_to_mu_and_logvar() -> None:
    mu, logvar = _params(8)
    mu.requires_grad_(True)
    logvar.requires_grad_(True)
    z = DiagonalGaussian(mu, logvar).sample(torch.Generator().manual_seed(9))
    z.sum().backward()

    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(9), dtype=mu.dtype)
    # z = mu + exp(logvar / 2) * eps, so dz/dmu = 1 and dz/dlogvar = exp(logvar / 2) * eps / 2.
    assert mu.grad is not None and logvar.grad is not None
    assert torch.allclose(mu.grad, torch.ones_like(mu))
    assert torch.allclose(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * eps)


def test_extreme_logvar_keeps_kl_and_samples_finite() -> None:
    mu = torch.zeros(1, 3)
    logvar = torch.tensor([[-1e4, 0.0, 1e4]])
    q = DiagonalGaussian(mu, logvar)
    assert torch.isfinite(q.kl()).all()
    assert torch.isfinite(q.sample(torch.Generator().manual_seed(0))).all()
