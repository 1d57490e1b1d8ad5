"""Held-out evaluation: reconstruction MSE, KL and the Dis_l distance, in eval mode."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from model_core.distributions import DiagonalGaussian

EVAL_BATCH = 256


@torch.no_grad()
def evaluate(
    encoder: nn.Module, decoder: nn.Module, discriminator: nn.Module | None, heldout: torch.Tensor
) -> dict[str, Any]:
    """Means over the held-out images (uint8 (N, C, H, W)) of the reconstruction through mu.

    mse: per pixel, in [-1, 1] units; kl: KL(q(z|x) || N(0, I)) per image; dis_l_distance:
    ||Dis_l(x) - Dis_l(Dec(mu))||_2 per image (None without a trained discriminator).
    """
    device = next(encoder.parameters()).device
    totals = {"mse": 0.0, "kl": 0.0, "dis_l_distance": 0.0}
    for batch in heldout.split(EVAL_BATCH):
        x = batch.to(device).float() / 127.5 - 1.0  # (B, C, H, W)
        posterior = DiagonalGaussian(*encoder(x))
        recon = decoder(posterior.mode())
        totals["mse"] += (recon - x).pow(2).flatten(1).mean(1).sum().item()
        totals["kl"] += posterior.kl().sum().item()
        if discriminator is not None:
            _, features = discriminator(torch.cat([x, recon]))  # (2B, F)
            real, fake = features.split(len(x))
            totals["dis_l_distance"] += (real - fake).norm(dim=1).sum().item()
    n = len(heldout)
    result: dict[str, Any] = {k: v / n for k, v in totals.items()}
    if discriminator is None:
        result["dis_l_distance"] = None
    result["images"] = n
    return result
