"""Test-time views: shifted copies are the image moved by a pixel; the engine and
predict average the same views with the same weights."""

from __future__ import annotations

import pytest
import torch

from convlens.errors import OptionError
from convlens.models.tta import SHIFT_WEIGHT, shifted, tta_views
from convlens.recipe import TrainConfig
from convlens.train.engine import predict_view_logits
from convlens.train.runtime import Runtime


def test_a_shifted_view_is_the_image_moved_with_zeros_coming_in() -> None:
    x = torch.arange(1, 17, dtype=torch.float32).view(1, 1, 4, 4)
    down_right = shifted(x, 1, 1)
    assert torch.equal(down_right[..., 1:, 1:], x[..., :-1, :-1])
    assert down_right[..., 0, :].abs().sum() == 0 and down_right[..., :, 0].abs().sum() == 0
    up_left = shifted(x, -1, -1)
    assert torch.equal(up_left[..., :-1, :-1], x[..., 1:, 1:])


def test_views_and_weights() -> None:
    x = torch.rand(2, 1, 6, 6)
    assert [w for w, _ in tta_views(x)] == [1.0]
    assert [w for w, _ in tta_views(x, flip=True)] == [1.0, 1.0]
    assert [w for w, _ in tta_views(x, shift=True)] == [1.0, SHIFT_WEIGHT, SHIFT_WEIGHT]
    views = tta_views(x, flip=True, shift=True)
    assert len(views) == 6 and torch.equal(views[1][1], x.flip(-1))
    assert torch.equal(views[3][1], views[2][1].flip(-1))  # each shift with its mirror


def test_the_engine_averages_the_probabilities_of_the_views() -> None:
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 3))
    images = torch.randint(0, 256, (5, 1, 6, 6), dtype=torch.uint8)
    runtime = Runtime(torch.device("cpu"), "fp32", channels_last=False)
    x = images.float() / 255
    views = tta_views(x, flip=True, shift=True)
    expected = sum(w * network(v).softmax(-1) for w, v in views) / 4  # weights 1+1+4*0.5
    logits = predict_view_logits(network, images, runtime, tta_flip=True, tta_shift=True).views
    torch.testing.assert_close(logits.exp(), expected)


def test_shifted_copies_need_a_model_trained_on_shifts() -> None:
    with pytest.raises(OptionError, match="add --augment or drop --tta-shift"):
        TrainConfig(tta_shift=True)
    assert TrainConfig(augment=True, tta_shift=True).tta_options() == {
        "tta_flip": False,
        "tta_shift": True,
    }
