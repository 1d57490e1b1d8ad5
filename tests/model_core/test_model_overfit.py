"""A small VAE overfits 64 embedded digits: the model, losses and Algorithm 1 learn together."""

from __future__ import annotations

import dataclasses

import torch

from model_core.config import PRESETS, ObjectiveConfig
from model_core.vaegan import VAEGAN
from trainer.datasets import digits_in_model_range
from trainer.mnist import load_embedded_mnist

STEPS = 60  # about 4 s on one CPU thread; the factor below was ~9x at 60 steps when measured
FACTOR = 4.0


def _reconstruction_mse(model: VAEGAN, x: torch.Tensor) -> float:
    """Mean squared error of Dec(mu(x)) in eval mode (the posterior mean, running BN statistics)."""
    model.eval()
    with torch.no_grad():
        mse = float(((model(x) - x) ** 2).mean())
    model.train()
    return mse


def test_small_vae_overfits_64_embedded_digits() -> None:
    images, _ = load_embedded_mnist()
    x = digits_in_model_range(images[:64])  # (64, 1, 32, 32) in [-1, 1]
    cfg = dataclasses.replace(  # mnist32 with every width quartered, latent 16
        PRESETS["mnist32"],
        latent_dim=16,
        enc_channels=(8, 16, 32),
        enc_fc=64,
        dec_fc_channels=32,
        dec_channels=(32, 16, 8),
        dis_stem=8,
        dis_channels=(16, 32, 32),
        dis_fc=64,
    )
    torch.manual_seed(0)
    model = VAEGAN(cfg, ObjectiveConfig(mode="vae"))
    optimizers = model.make_optimizers(lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    start = _reconstruction_mse(model, x)

    for _ in range(STEPS):
        model.train_step(x, optimizers, gen)

    end = _reconstruction_mse(model, x)
    mean_image = float(((x - x.mean(0, keepdim=True)) ** 2).mean())  # the best digit-blind output
    assert end < start / FACTOR, (start, end)
    assert end < 0.8 * mean_image, (end, mean_image)  # it tells the digits apart, not just the background
