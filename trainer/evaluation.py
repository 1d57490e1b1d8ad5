"""Held-out evaluation (reconstruction MSE, KL, the Dis_l distance) and the posteriors of a set of images."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from model_core.distributions import DiagonalGaussian
from model_core.vaegan import VAEGAN
from trainer.datasets import onehot, to_model_range

logger = logging.getLogger(__name__)

EVAL_BATCH = 256


def onehot_batches(
    images: torch.Tensor, labels: torch.Tensor | None, num_classes: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """uint8 images in model range on ``device``, EVAL_BATCH at a time, with one-hot labels when ``num_classes``."""
    for start in range(0, len(images), EVAL_BATCH):
        x = to_model_range(images[start : start + EVAL_BATCH], device)  # (B, C, H, W)
        yield x, onehot(None if labels is None else labels[start : start + EVAL_BATCH], num_classes, device)


@torch.no_grad()
def evaluate(
    encoder: nn.Module,
    decoder: nn.Module,
    discriminator: nn.Module | None,
    heldout: torch.Tensor,
    labels: torch.Tensor | None = None,
    num_classes: int = 0,
) -> dict[str, Any]:
    """Means over the held-out images (uint8 (N, C, H, W)) of the reconstruction through mu.

    mse: per pixel, in [-1, 1] units; kl: KL(q(z|x) || N(0, I)) per image; dis_l_distance:
    ||Dis_l(x) - Dis_l(Dec(mu))||_2 per image (None without a trained discriminator). A
    conditional model (``num_classes`` > 0) encodes and decodes with the images' ``labels``.
    """
    device = next(encoder.parameters()).device
    totals = {"mse": 0.0, "kl": 0.0, "dis_l_distance": 0.0}
    for x, y in onehot_batches(heldout, labels, num_classes, device):
        posterior = DiagonalGaussian(*encoder(x, y))
        recon = decoder(posterior.mode(), y)
        totals["mse"] += (recon - x).pow(2).flatten(1).mean(1).sum().item()
        totals["kl"] += posterior.kl().sum().item()
        if discriminator is not None:
            real, fake = discriminator.features(x), discriminator.features(recon)  # (B, F) each
            totals["dis_l_distance"] += (real - fake).norm(dim=1).sum().item()
    n = len(heldout)
    result: dict[str, Any] = {k: v / n for k, v in totals.items()}
    if discriminator is None:
        result["dis_l_distance"] = None
    result["images"] = n
    return result


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode (batch norm on its running statistics) for the block, then back to training."""
    model.eval()
    try:
        yield
    finally:
        model.train()


@torch.no_grad()
def posteriors(model: VAEGAN, images: torch.Tensor, labels: torch.Tensor | None) -> tuple[np.ndarray, np.ndarray]:
    """(mu, logvar) (N, Z) float32 of uint8 ``images`` in eval mode (labels given when the model is conditional).

    What the run's class means (Larsen et al. 2016, Sec. 5) and its fitted prior are computed from.
    """
    device, config = next(model.parameters()).device, model.config
    mus, logvars = [], []
    with evaluating(model):
        for x, y in onehot_batches(images, labels, config.num_classes, device):
            mu, logvar = model.encoder(x, y)
            mus.append(mu.float().cpu())
            logvars.append(logvar.float().cpu())
    return torch.cat(mus).numpy(), torch.cat(logvars).numpy()


def final_evaluation(
    model: VAEGAN, decoder: nn.Module, heldout: torch.Tensor, labels: torch.Tensor | None, step: int, out: Path
) -> dict[str, Any]:
    """Evaluate on held-out images in eval mode, write eval.json, log the figures."""
    discriminator = model.discriminator if model.objective.mode == "vaegan" else None
    with evaluating(model):
        figures = evaluate(model.encoder, decoder, discriminator, heldout, labels, model.config.num_classes)
        result = {"step": step, **figures}
    (out / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    logger.info(
        "held-out (%d images): reconstruction mse %.5f, kl %.3f, Dis_l distance %s",
        result["images"],
        result["mse"],
        result["kl"],
        "-" if result["dis_l_distance"] is None else f"{result['dis_l_distance']:.4g}",
    )
    return result
