"""Held-out evaluation (reconstruction MSE, KL, the Dis_l distance) and the decoder the run samples with."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from model_core.distributions import DiagonalGaussian
from model_core.vaegan import VAEGAN, recalibrate_batchnorm
from trainer.config import TrainConfig

logger = logging.getLogger(__name__)

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


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode (batch norm on its running statistics) for the block, then back to training."""
    model.eval()
    try:
        yield
    finally:
        model.train()


def sampling_decoder(model: VAEGAN, ema: AveragedModel | None, cfg: TrainConfig, device: torch.device) -> nn.Module:
    """A copy of the decoder the bundle samples with: the EMA (if any), BN statistics recalibrated, eval mode."""
    source = ema.module if ema is not None else model.decoder
    return recalibrated_copy(source, model.config.latent_dim, cfg.recalibrate_bn, cfg.batch_size, cfg.seed, device)


def recalibrated_copy(
    decoder: nn.Module, latent_dim: int, batches: int, batch_size: int, seed: int, device: torch.device
) -> nn.Module:
    """A copy of ``decoder`` in eval mode whose BN statistics are averaged exactly over ``batches`` of Dec(z_p).

    The running statistics training leaves mix Dec(z) and Dec(z_p) batches of moving weights; eval
    mode and the exported graph would sample grey checkerboards from them (docs/benchmarks.md). So
    they are replaced by their exact average over Dec(z_p), z_p ~ N(0, I) (seeded by the run's seed,
    the same every time). ``batches`` 0 keeps the running statistics.
    """
    decoder = copy.deepcopy(decoder)
    if batches > 0:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed + 0x5EED)
        shape = (max(batch_size, 2), latent_dim)
        recalibrate_batchnorm(decoder, (torch.randn(shape, generator=generator, device=device) for _ in range(batches)))
    return decoder.eval()


def final_evaluation(model: VAEGAN, decoder: nn.Module, heldout: torch.Tensor, step: int, out: Path) -> dict[str, Any]:
    """Evaluate on held-out images in eval mode, write eval.json, log the figures."""
    discriminator = model.discriminator if model.objective.mode == "vaegan" else None
    with evaluating(model):
        result = {"step": step, **evaluate(model.encoder, decoder, discriminator, heldout)}
    (out / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    logger.info(
        "held-out (%d images): reconstruction mse %.5f, kl %.3f, Dis_l distance %s",
        result["images"],
        result["mse"],
        result["kl"],
        "-" if result["dis_l_distance"] is None else f"{result['dis_l_distance']:.4g}",
    )
    return result
