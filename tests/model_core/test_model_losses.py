"""Each loss term against the same quantity computed another way."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal

from model_core import losses
from model_core.distributions import DiagonalGaussian


def _randn(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _gaussian_nll_without_constant(target: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """-log N(target | mean, I) per example, summed over all but the batch dim, minus (D/2) log 2 pi."""
    d = target[0].numel()
    log_density = Normal(mean, torch.ones_like(mean)).log_prob(target).flatten(1).sum(1)  # (B,)
    return -log_density - 0.5 * d * math.log(2 * math.pi)


def test_feature_llike_is_the_identity_gaussian_nll_of_dis_l() -> None:
    real, recon = _randn(0, 3, 50), _randn(1, 3, 50)
    expected = _gaussian_nll_without_constant(real, recon).mean()
    assert torch.allclose(losses.feature_llike(real, recon), expected)


def test_feature_llike_is_zero_for_identical_features_and_symmetric() -> None:
    a, b = _randn(2, 4, 7), _randn(3, 4, 7)
    assert losses.feature_llike(a, a) == 0
    assert torch.allclose(losses.feature_llike(a, b), losses.feature_llike(b, a))


def test_pixel_llike_is_the_identity_gaussian_nll_of_pixels() -> None:
    x, x_tilde = _randn(4, 3, 2, 5, 5), _randn(5, 3, 2, 5, 5)
    expected = _gaussian_nll_without_constant(x, x_tilde).mean()
    assert torch.allclose(losses.pixel_llike(x, x_tilde), expected)


def test_prior_kl_is_the_batch_mean_of_the_posterior_kl() -> None:
    q = DiagonalGaussian(_randn(6, 5, 3), _randn(7, 5, 3))
    assert torch.allclose(losses.prior_kl(q), q.kl().mean())


def _log_sigmoid_direct(logits: torch.Tensor) -> torch.Tensor:
    return torch.log(torch.sigmoid(logits))


def _log_one_minus_sigmoid_direct(logits: torch.Tensor) -> torch.Tensor:
    return torch.log(1 - torch.sigmoid(logits))


@pytest.mark.parametrize("n_fakes", [1, 2])
def test_discriminator_loss_is_minus_log_dis_real_minus_log_one_minus_dis_fake(n_fakes: int) -> None:
    real = _randn(8, 6)
    fakes = [_randn(9 + i, 6) for i in range(n_fakes)]
    expected = -_log_sigmoid_direct(real).mean()
    for fake in fakes:
        expected = expected - _log_one_minus_sigmoid_direct(fake).mean()
    assert torch.allclose(losses.gan_discriminator_loss(real, *fakes), expected)


def test_discriminator_loss_is_finite_and_exact_for_saturated_logits() -> None:
    # On logits, -log sigmoid(l) = softplus(-l) and -log(1 - sigmoid(l)) = softplus(l); a sigmoid
    # followed by a log would give inf here in float32.
    real = torch.tensor([-200.0, 3.0])
    fake = torch.tensor([200.0, -3.0])
    expected = F.softplus(-real).mean() + F.softplus(fake).mean()
    loss = losses.gan_discriminator_loss(real, fake)
    assert torch.isfinite(loss)
    assert torch.allclose(loss, expected)
    assert loss > 99  # half the batch is confidently wrong by 200 nats


@pytest.mark.parametrize("n_fakes", [1, 2])
def test_saturating_generator_loss_is_the_sum_of_log_one_minus_dis_fake(n_fakes: int) -> None:
    fakes = [_randn(20 + i, 6) for i in range(n_fakes)]
    expected = sum(_log_one_minus_sigmoid_direct(f).mean() for f in fakes)
    assert torch.allclose(losses.gan_generator_loss(*fakes, saturating=True), expected)


@pytest.mark.parametrize("n_fakes", [1, 2])
def test_nonsaturating_generator_loss_is_minus_the_sum_of_log_dis_fake(n_fakes: int) -> None:
    fakes = [_randn(30 + i, 6) for i in range(n_fakes)]
    expected = -sum(_log_sigmoid_direct(f).mean() for f in fakes)
    assert torch.allclose(losses.gan_generator_loss(*fakes, saturating=False), expected)


def test_generator_losses_fall_as_the_discriminator_is_fooled() -> None:
    fooled, caught = torch.full((4,), 3.0), torch.full((4,), -3.0)
    for saturating in (True, False):
        assert losses.gan_generator_loss(fooled, saturating=saturating) < losses.gan_generator_loss(
            caught, saturating=saturating
        )


def test_discriminator_accuracy_counts_the_right_side_of_zero() -> None:
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0])
    assert losses.discriminator_accuracy(logits, real=True) == 0.5
    assert losses.discriminator_accuracy(torch.tensor([-2.0, -1.0, 0.5, -3.0]), real=False) == 0.75
