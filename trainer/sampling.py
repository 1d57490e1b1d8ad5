"""The decoder a run samples and exports with: the EMA's (or the last) weights, batch norm recalibrated."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from model_core.batchnorm import recalibrate_batchnorm
from model_core.config import ModelConfig
from model_core.vaegan import VAEGAN
from trainer.config import TrainConfig
from trainer.datasets import onehot


def sampling_decoder(model: VAEGAN, ema: AveragedModel | None, cfg: TrainConfig, device: torch.device) -> nn.Module:
    """A copy of the decoder the bundle samples with: the EMA (if any), BN statistics recalibrated, eval mode."""
    source = ema.module if ema is not None else model.decoder
    return recalibrated_copy(source, model.config, cfg.recalibrate_bn, cfg.batch_size, cfg.seed, device)


def recalibrated_copy(
    decoder: nn.Module, config: ModelConfig, batches: int, batch_size: int, seed: int, device: torch.device
) -> nn.Module:
    """A copy of ``decoder`` in eval mode whose BN statistics are averaged exactly over ``batches`` of Dec(z_p).

    The running statistics training leaves mix Dec(z) and Dec(z_p) batches of moving weights; eval
    mode and the exported graph would sample grey checkerboards from them (docs/benchmarks.md). So
    they are replaced by their exact average over Dec(z_p), z_p ~ N(0, I) (seeded by the run's seed,
    the same every time), with uniformly drawn labels for a conditional decoder. ``batches`` 0 keeps
    the running statistics.
    """
    decoder = copy.deepcopy(decoder)
    if batches > 0:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed + 0x5EED)
        n, k = max(batch_size, 2), config.num_classes

        def batch() -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
            z = torch.randn((n, config.latent_dim), generator=generator, device=device)
            if not k:
                return z
            y = onehot(torch.randint(k, (n,), generator=generator, device=device), k, device)  # (n, K)
            assert y is not None
            return z, y

        recalibrate_batchnorm(decoder, (batch() for _ in range(batches)))
    return decoder.eval()
