"""WeightWatch: each signal it reads, on a tiny module (the engines' tests use it whole)."""

from __future__ import annotations

import torch
from torch import nn

from convlens.models.weight_watch import WeightWatch


def tiny() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2)).eval()


def test_a_fused_step_raises_the_version_counters() -> None:
    """Torch's fused Adam writes without raising them; the step hook raises them."""
    module = tiny()
    watch = WeightWatch(module)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2, fused=True)
    module(torch.rand(5, 4)).sum().backward()
    optimizer.step()
    assert not watch.unchanged()


def test_each_kind_of_change_and_what_is_not_one() -> None:
    module = tiny()
    watch = WeightWatch(module)
    assert watch.unchanged() and watch.usable and watch.in_eval_mode()
    nn.Linear(2, 2)  # a module built elsewhere: re-listed, still the same tensors
    assert watch.unchanged()
    module(torch.rand(5, 4))  # eval mode: reading changes nothing
    assert watch.unchanged()
    with torch.no_grad():
        module[0].weight.add_(1)
    assert not watch.unchanged()

    watch = WeightWatch(module)
    module[2].weight.data = torch.zeros(2, 3)  # new storage, same version
    assert not watch.unchanged()

    watch = WeightWatch(module)
    module[2].bias = nn.Parameter(torch.zeros(2))  # a new parameter object
    assert not watch.unchanged()

    watch = WeightWatch(module)
    module[1].train()
    assert watch.unchanged() and not watch.in_eval_mode()


def test_weights_it_cannot_watch_are_not_usable() -> None:
    assert not WeightWatch(tiny().to(torch.bfloat16)).usable
    with torch.inference_mode():  # inference tensors keep no version counter
        made_inside = tiny()
    watch = WeightWatch(made_inside)
    assert not watch.usable and not watch.unchanged()
