"""An exponential moving average of a network's weights, to sample from (Yazici et al. 2019).

A GAN generator's weights oscillate around the equilibrium; their running average draws cleaner
samples than the last iterate (StyleGAN2-ADA samples from one). Training never reads the average.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def ema_model(module: nn.Module, decay: float) -> AveragedModel:
    """``module``'s EMA: after n updates the average moves by 1 - min(decay, (1 + n) / (10 + n)).

    The ramp (TensorFlow's ExponentialMovingAverage with num_updates) keeps a short run from
    averaging in its random initial weights. Buffers (BN statistics) are averaged too.
    """
    if not 0.0 < decay < 1.0:
        raise ValueError(f"EMA decay must be in (0, 1), got {decay}")

    @torch.no_grad()
    def update(averaged: Sequence[torch.Tensor], current: Sequence[torch.Tensor], n: torch.Tensor | int) -> None:
        updates = float(n)  # one host sync per step
        weight = 1.0 - min(decay, (1.0 + updates) / (10.0 + updates))
        floats = [(a, c) for a, c in zip(averaged, current, strict=True) if a.is_floating_point()]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], weight)
        for a, c in zip(averaged, current, strict=True):
            if not a.is_floating_point():
                a.copy_(c)  # counters such as BN's num_batches_tracked

    return AveragedModel(module, multi_avg_fn=update, use_buffers=True)
