"""The engine's pieces: augmentation keeps shapes, the schedule is stateless, bf16 matches."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convlens.recipe import TrainConfig
from convlens.train.engine import (
    alternating_flips,
    augment_batch,
    learning_rate,
    refresh_batchnorm_statistics,
    train_epoch,
)
from convlens.train.runtime import Runtime


def test_augment_shifts_and_flips_without_changing_shape() -> None:
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 10:18, 4:8] = 1.0  # a bar left of centre
    out = augment_batch(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert torch.all(out.sum(dim=(1, 2, 3)) <= x.sum(dim=(1, 2, 3)))
    column_mass = out.sum(dim=(1, 2))  # (64, 28)
    right_half = column_mass[:, 14:].sum(dim=1) > 0
    assert 10 < int(right_half.sum()) < 54  # about half are mirrored


def test_alternating_flips_mirror_each_image_every_other_epoch() -> None:
    first, second, third = (alternating_flips(1000, seed=4, epoch=e) for e in (1, 2, 3))
    assert 400 < int(first.sum()) < 600  # a coin toss per image in the first epoch
    assert torch.equal(second, ~first) and torch.equal(third, first)
    assert not torch.equal(first, alternating_flips(1000, seed=5, epoch=1))


def test_augment_mirrors_exactly_the_images_it_is_told_to() -> None:
    x = torch.zeros(4, 1, 16, 16)
    x[:, :, 6:9, 1:4] = 1.0  # shifted by up to 2 pixels, it stays in the left half
    flip = torch.tensor([True, False, True, False])
    out = augment_batch(x, torch.Generator().manual_seed(0), flip=flip)
    right = out[:, 0, :, 8:].sum(dim=(1, 2)) > 0
    assert right.tolist() == flip.tolist()


def flip_pad_index(x, generator, shift=2, *, flip=None):
    """The augmentation as it was written before the one gather: the reference answer."""
    n, _, h, w = x.shape
    if flip is None:
        flip = torch.rand(n, generator=generator, device="cpu") < 0.5
    x = torch.where(flip.view(n, 1, 1, 1), x.flip(-1), x)
    padded = F.pad(x, (shift, shift, shift, shift))
    dy = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
    rows = (dy.view(n, 1) + torch.arange(h)).view(n, 1, h, 1)
    cols = (dx.view(n, 1) + torch.arange(w)).view(n, 1, 1, w)
    batch = torch.arange(n).view(n, 1, 1, 1)
    channel = torch.arange(x.shape[1]).view(1, -1, 1, 1)
    return padded[batch, channel, rows, cols]


@pytest.mark.parametrize(
    "dtype,channels,given_flips,shift",
    [(torch.uint8, 1, False, 2), (torch.uint8, 1, True, 2), (torch.float32, 3, False, 2),
     (torch.float32, 3, True, 1), (torch.uint8, 2, False, 3)],
)  # fmt: skip
def test_augment_is_the_flip_pad_index_version_to_the_bit(dtype, channels, given_flips, shift):
    x = torch.randint(0, 256, (37, channels, 11, 13)).to(dtype)
    flip = torch.rand(37, generator=torch.Generator().manual_seed(1)) < 0.5
    flip = flip if given_flips else None
    got = augment_batch(x, torch.Generator().manual_seed(7), shift, flip=flip)
    want = flip_pad_index(x, torch.Generator().manual_seed(7), shift, flip=flip)
    assert got.dtype == dtype and torch.equal(got, want)


def test_one_cycle_schedule_warms_up_then_anneals() -> None:
    config = TrainConfig(lr=0.01, schedule="onecycle", epochs=2)
    total = 100
    rates = [learning_rate(config, step, total) for step in range(total)]
    peak = rates.index(max(rates))
    assert 20 <= peak <= 30
    assert rates[0] < rates[peak] and rates[-1] < rates[0]
    assert max(rates) <= 0.01 + 1e-12
    assert learning_rate(TrainConfig(lr=0.01), 50, total) == 0.01


def test_batchnorm_statistics_are_recomputed_from_the_current_weights() -> None:
    """After the refresh, a batchnorm's running mean and variance are the plain average of
    its batch statistics over the chosen training batches; modes and momentum return."""
    torch.manual_seed(0)
    network = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Dropout(0.5)
    ).train()
    images = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8)
    runtime = Runtime(torch.device("cpu"), "fp32", channels_last=False)
    norm = network[1]
    norm.running_mean.fill_(100.0)  # stale statistics, far from the truth

    refresh_batchnorm_statistics(network, images, runtime, seed=3, count=32, batch_size=16)

    order = torch.randperm(64, generator=torch.Generator().manual_seed(3))[:32]
    with torch.no_grad():
        maps = [network[0](images[order[i : i + 16]].float() / 255) for i in (0, 16)]
    means = torch.stack([m.mean(dim=(0, 2, 3)) for m in maps]).mean(0)
    variances = torch.stack([m.var(dim=(0, 2, 3)) for m in maps]).mean(0)  # unbiased
    torch.testing.assert_close(norm.running_mean, means)
    torch.testing.assert_close(norm.running_var, variances)
    assert norm.momentum == 0.1 and network.training and network[2].training


def test_refresh_is_a_no_op_without_batchnorm() -> None:
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    before = [p.clone() for p in network.parameters()]
    runtime = Runtime(torch.device("cpu"), "fp32", channels_last=False)
    images = torch.zeros(8, 1, 8, 8, dtype=torch.uint8)
    refresh_batchnorm_statistics(network, images, runtime, seed=0, batch_size=4)
    assert all(torch.equal(a, b) for a, b in zip(before, network.parameters(), strict=True))


def _images_seen(config: TrainConfig, count: int, epoch: int) -> tuple[list[int], float]:
    """The training images (by number) that epoch ``epoch`` steps on, and the learning
    rate its last step ran at: each image's one pixel carries its number."""
    images = torch.arange(count, dtype=torch.float32).view(count, 1, 1, 1)
    labels = torch.zeros(count, dtype=torch.long)
    seen: list[int] = []

    class Record(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.out = torch.nn.Linear(1, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.extend(int(v) for v in x.flatten())
            return self.out(x.flatten(1) * 0)

    network = Record()
    optimizer = torch.optim.SGD(network.parameters(), lr=config.lr)
    runtime = Runtime(torch.device("cpu"), "fp32", channels_last=False)
    train_epoch(network, optimizer, images, labels, config, runtime, epoch=epoch)
    return seen, optimizer.param_groups[0]["lr"]


def test_epoch_images_draws_that_many_images_afresh_each_epoch() -> None:
    config = TrainConfig(epochs=2, batch_size=8, epoch_images=30, schedule="onecycle", lr=0.1)
    first, _ = _images_seen(config, 100, epoch=1)
    second, last_lr = _images_seen(config, 100, epoch=2)
    assert len(first) == len(set(first)) == 30 and len(second) == len(set(second)) == 30
    assert set(first) != set(second)  # a new draw, not a fixed subset
    assert config.steps_per_epoch(100) == 4  # 8 + 8 + 8 + 6
    # the schedule counts the capped steps (8 in all, not 26): the last is its 8th of 8
    assert last_lr == learning_rate(config, 2 * 4 - 1, 2 * 4) < 0.1 / 10


def test_without_epoch_images_an_epoch_is_the_same_whole_pass() -> None:
    """The cap takes the head of the epoch's one permutation: at or above the training
    set's size it changes nothing, so runs without it train exactly as before."""
    whole, _ = _images_seen(TrainConfig(batch_size=8, seed=3), 50, epoch=1)
    capped, _ = _images_seen(TrainConfig(batch_size=8, seed=3, epoch_images=500), 50, epoch=1)
    assert sorted(whole) == list(range(50)) and capped == whole
    head, _ = _images_seen(TrainConfig(batch_size=8, seed=3, epoch_images=20), 50, epoch=1)
    assert head == whole[:20]
