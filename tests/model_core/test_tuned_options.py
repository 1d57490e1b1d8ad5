"""The options bench.quality tuned: the pixel likelihood's sigma and the decoder BN recalibration."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Normal

from model_core import losses
from model_core.batchnorm import recalibrate_batchnorm
from model_core.config import PRESETS, ObjectiveConfig
from model_core.vaegan import VAEGAN, compute_losses


def test_pixel_llike_with_sigma_is_the_gaussian_nll_of_pixels_without_its_constant() -> None:
    gen = torch.Generator().manual_seed(0)
    x, x_tilde = (
        torch.randn(3, 1, 4, 4, generator=gen, dtype=torch.float64),
        torch.randn(3, 1, 4, 4, dtype=torch.float64),
    )
    sigma = 0.3
    nll = -Normal(x_tilde, sigma).log_prob(x).flatten(1).sum(1)  # (B,)
    constant = 16 * (math.log(sigma) + 0.5 * math.log(2 * math.pi))
    assert torch.allclose(losses.pixel_llike(x, x_tilde, sigma), (nll - constant).mean())
    assert torch.allclose(losses.pixel_llike(x, x_tilde), losses.pixel_llike(x, x_tilde, 1.0))


def test_objective_rejects_a_non_positive_pixel_sigma() -> None:
    with pytest.raises(ValueError, match="pixel_sigma"):
        ObjectiveConfig(pixel_sigma=0.0)


def test_vae_mode_uses_the_pixel_sigma() -> None:
    torch.manual_seed(0)
    model = VAEGAN(PRESETS["mnist32"], ObjectiveConfig(mode="vae"))
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    logs = [
        compute_losses(model.encoder, model.decoder, None, x, ObjectiveConfig(mode="vae", pixel_sigma=s),
                       torch.Generator().manual_seed(1)).logs["llike"]
        for s in (1.0, 0.5)
    ]  # fmt: skip
    assert torch.allclose(logs[1], 4 * logs[0])


def test_recalibrated_eval_mode_equals_batch_statistics_of_the_calibration_data() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8, momentum=0.1), nn.ReLU(), nn.Linear(8, 2))
    net.train()
    for _ in range(5):  # running statistics of other inputs
        net(torch.randn(16, 3) * 5 + 2)
    data = torch.randn(64, 3)
    assert recalibrate_batchnorm(net.eval(), data.split(16)) == 1
    assert not net.training and net[1].momentum == 0.1  # mode and momentum restored
    norm, batches = net[1], [net[0](b).detach() for b in data.split(16)]  # (16, 8) each
    # the plain average over the calibration batches, not an exponential one of the last few
    assert torch.allclose(norm.running_mean, torch.stack([h.mean(0) for h in batches]).mean(0), atol=1e-6)
    assert torch.allclose(norm.running_var, torch.stack([h.var(0) for h in batches]).mean(0), atol=1e-6)
