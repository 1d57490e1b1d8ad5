"""The decoder's weight average: TF-style ramped decay, buffers followed, the module untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from model_core.averaging import ema_model


def test_ema_follows_the_ramped_decay_exactly() -> None:
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = ema_model(net, decay=0.9)
    expected = None
    for step in range(6):
        with torch.no_grad():
            net[0].weight.add_(1.0)  # a known trajectory
        ema.update_parameters(net)
        current = net[0].weight.detach().clone()
        if expected is None:
            expected = current  # the first update copies
        else:
            n = step  # updates already averaged
            decay = min(0.9, (1 + n) / (10 + n))
            expected = decay * expected + (1 - decay) * current
        torch.testing.assert_close(ema.module[0].weight, expected)
    assert int(ema.n_averaged) == 6
    assert ema.module[1].num_batches_tracked.dtype == torch.long  # integer buffers are copied


def test_ema_never_changes_the_trained_module() -> None:
    net = nn.Linear(2, 2)
    before = net.weight.detach().clone()
    ema = ema_model(net, decay=0.5)
    with torch.no_grad():
        ema.module.weight.mul_(3)
    ema.update_parameters(net)
    assert torch.equal(net.weight, before)


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.1])
def test_ema_refuses_a_decay_outside_0_1(decay: float) -> None:
    with pytest.raises(ValueError, match="EMA decay"):
        ema_model(nn.Linear(1, 1), decay)
