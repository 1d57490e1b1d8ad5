"""Regularisers the trainer may add beside Algorithm 1's step (vaegan-train options, off in --recipe paper).

R1 (Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?"): a penalty on
the discriminator's gradient at real images, so it cannot grow sharp around its training data.
"""

from __future__ import annotations

import torch
from torch import nn

from model_core.networks import split_logits


def r1_penalty(real_logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """||grad_x Dis(x)||^2 on real images, mean over the batch (Mescheder et al. 2018, Eq. 9, without gamma/2).

    ``x`` must require grad and ``real_logits`` (B,) come from it; the graph is kept for Dis's update.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), x, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def r1_step(
    discriminator: nn.Module,
    x: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    gamma: float,
    every: int,
    y: torch.Tensor | None = None,
) -> torch.Tensor:
    """A lazy R1 step for Dis alone: descend gamma/2 * every * ||grad_x Dis(x)||^2 on real images.

    Mescheder et al. 2018 penalise Dis's gradient on the data so it cannot grow sharp around the
    training images; StyleGAN2 applies it every ``every`` steps, scaled by ``every`` (lazy
    regularisation). Float32 (a double backward), outside autocast. Returns the penalty, detached.
    """
    x = x.detach().float().requires_grad_(True)
    logits, _ = discriminator(x, y)
    penalty = r1_penalty(split_logits(logits)[0].float(), x)
    params = [p for p in discriminator.parameters() if p.requires_grad]
    optimizer.zero_grad(set_to_none=True)
    (0.5 * gamma * every * penalty).backward(inputs=params)
    average_across_processes(params)
    optimizer.step()
    return penalty.detach()


def average_across_processes(params: list[nn.Parameter]) -> None:
    """Under torchrun, average the gradients of ``params`` over the processes, as DDP would.

    ``discriminator`` is the module inside DDP: DDP cannot take a double backward, so the R1 step
    runs on the bare module and its gradients are all-reduced here; every process then takes the
    same step and the replicas stay identical. A single process: nothing to do.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    world = torch.distributed.get_world_size()
    for p in params:
        if p.grad is not None:
            torch.distributed.all_reduce(p.grad)
            p.grad.div_(world)
