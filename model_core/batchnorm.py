"""Batch-norm statistics recalibrated after training: what eval mode and the exported graph normalise with."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn


@torch.no_grad()
def recalibrate_batchnorm(module: nn.Module, batches: Iterable[Any]) -> int:
    """Replace the running statistics of every batch norm in ``module`` by their exact average over ``batches``.

    Training leaves an exponential average of the last few batches' statistics, gathered while
    the weights moved and, in the decoder of Algorithm 1, over mixed batches of Dec(z) and
    Dec(z_p). Eval mode (and the exported ONNX graph) normalises with these numbers, so a GAN
    decoder that leans on batch statistics can draw very different images there. Running the
    frozen module over ``batches`` of the inputs it will serve (e.g. z_p ~ N(0, I) for sampling)
    with a cumulative average (momentum None) makes eval mode match batch statistics of such
    inputs. This changes no weight. Returns the number of batch norms recalibrated.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    was_training = module.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts the same
    module.train()
    for batch in batches:
        module(*batch) if isinstance(batch, tuple) else module(batch)  # (z, y) for a conditional decoder
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    module.train(was_training)
    return len(norms)
