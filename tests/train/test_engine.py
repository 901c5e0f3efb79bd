"""The engine's pieces: augmentation keeps shapes, the schedule is stateless, bf16 matches."""

from __future__ import annotations

import torch

from convlens.train.config import TrainConfig
from convlens.train.engine import augment_batch, learning_rate


def test_augment_shifts_and_flips_without_changing_shape() -> None:
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 10:18, 4:8] = 1.0  # a bar left of centre
    out = augment_batch(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert torch.all(out.sum(dim=(1, 2, 3)) <= x.sum(dim=(1, 2, 3)))
    column_mass = out.sum(dim=(1, 2))  # (64, 28)
    right_half = column_mass[:, 14:].sum(dim=1) > 0
    assert 10 < int(right_half.sum()) < 54  # about half are mirrored


def test_one_cycle_schedule_warms_up_then_anneals() -> None:
    config = TrainConfig(lr=0.01, schedule="onecycle", epochs=2)
    total = 100
    rates = [learning_rate(config, step, total) for step in range(total)]
    peak = rates.index(max(rates))
    assert 20 <= peak <= 30
    assert rates[0] < rates[peak] and rates[-1] < rates[0]
    assert max(rates) <= 0.01 + 1e-12
    assert learning_rate(TrainConfig(lr=0.01), 50, total) == 0.01
