"""The lazy R1 penalty (model_core/regularization.py): its value, and that its step flattens Dis at real images."""

from __future__ import annotations

import torch
from tiny_models import TINY, TINY_COND
from torch import nn

from model_core.regularization import r1_penalty, r1_step
from model_core.vaegan import VAEGAN


def test_r1_penalty_of_a_linear_critic_is_its_weight_norm() -> None:
    """For Dis(x) = w . x the gradient at every x is w: the penalty is ||w||^2 whatever the batch."""
    critic = nn.Linear(12, 1, bias=True)
    x = torch.randn(5, 12, requires_grad=True)
    expected = critic.weight.detach().pow(2).sum()
    torch.testing.assert_close(r1_penalty(critic(x)[:, 0], x), expected)


def test_r1_steps_shrink_the_penalty_and_touch_only_dis() -> None:
    torch.manual_seed(0)
    model = VAEGAN(TINY)
    x = torch.rand(16, 1, 8, 8) * 2 - 1
    optimizer = torch.optim.SGD(model.discriminator.parameters(), lr=0.05)
    before = [p.detach().clone() for p in model.encoder.parameters()]
    first = r1_step(model.discriminator, x, optimizer, gamma=1.0, every=1)
    for _ in range(20):
        last = r1_step(model.discriminator, x, optimizer, gamma=1.0, every=1)
    assert last < first
    assert all(torch.equal(a, b) for a, b in zip(before, model.encoder.parameters(), strict=True))


def test_r1_step_of_a_conditional_dis_with_a_class_head() -> None:
    torch.manual_seed(0)
    model = VAEGAN(TINY_COND)
    x, y = torch.rand(6, 1, 8, 8) * 2 - 1, torch.eye(3)[torch.tensor([0, 1, 2, 0, 1, 2])]
    optimizer = torch.optim.SGD(model.discriminator.parameters(), lr=0.01)
    penalty = r1_step(model.discriminator, x, optimizer, gamma=0.05, every=16, y=y)
    assert penalty.ndim == 0 and torch.isfinite(penalty) and penalty > 0
