"""Every preset builds, runs forward and backward, and the lesson's two match Keras exactly."""

from __future__ import annotations

import pytest
import torch

from convlens.models import PRESETS, resolve_model
from convlens.models.network import build_network, count_params
from convlens.models.summary import summarize


def build(name: str, shape=(1, 28, 28)):
    return build_network(resolve_model(name), shape, 10)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_trains_one_step(name: str) -> None:
    torch.manual_seed(0)
    network = build(name)
    x = torch.rand(4, 1, 28, 28)
    logits = network(x)
    assert logits.shape == (4, 10)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 3]))
    loss.backward()
    grads = [p.grad for p in network.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    # frozen parameters (a whiten layer's filters) are never trained
    assert all(p.grad is None for p in network.parameters() if not p.requires_grad)
    assert summarize(network).total == sum(count_params(network))


@pytest.mark.parametrize(
    ("name", "total", "per_layer"),
    [
        # Keras' own figures for the lesson's models (model.summary()).
        ("dnn", 101_770, [0, 100_480, 1_290]),
        ("cnn", 243_786, [640, 0, 36_928, 0, 0, 204_928, 1_290]),
    ],
)
def test_lesson_parameter_counts(name: str, total: int, per_layer: list[int]) -> None:
    summary = summarize(build(name))
    assert summary.total == total
    assert summary.trainable == total and summary.non_trainable == 0
    assert [row.params for row in summary.rows] == per_layer


def test_cnn_shapes_and_names_follow_the_lesson() -> None:
    summary = summarize(build("cnn"))
    assert [row.keras_shape for row in summary.rows] == [
        "(None, 26, 26, 64)",
        "(None, 13, 13, 64)",
        "(None, 11, 11, 64)",
        "(None, 5, 5, 64)",
        "(None, 1600)",
        "(None, 128)",
        "(None, 10)",
    ]
    assert [row.name for row in summary.rows] == [
        "conv2d",
        "max_pooling2d",
        "conv2d_1",
        "max_pooling2d_1",
        "flatten",
        "dense",
        "dense_1",
    ]


def test_summary_text_has_the_keras_layout_and_the_why() -> None:
    text = summarize(build("cnn")).format(explain=True)
    assert " Layer (type)" in text and "Output Shape" in text and "Param #" in text
    assert " conv2d (Conv2D)" in text and "(None, 26, 26, 64)" in text
    assert "Total params: 243,786 (952.29 KB)" in text
    assert "Trainable params: 243,786" in text and "Non-trainable params: 0" in text
    assert "28 - 3 + 1 = 26" in text  # a 3x3 filter loses a 1-pixel margin
    assert "11 / 2 = 5 (rounding down)" in text
    assert "5 x 5 x 64 = 1,600" in text


def test_batchnorm_statistics_count_as_non_trainable_like_keras() -> None:
    summary = summarize(build("cnn-bn"))
    # Keras: 4 per channel, half of them (moving mean and variance) non-trainable.
    assert summary.non_trainable == 2 * (32 + 64)


def test_flatten_size_follows_the_input_shape() -> None:
    summary = summarize(build("cnn", shape=(3, 32, 32)))
    # 32 -> 30 -> 15 -> 13 -> 6: flatten is 6*6*64, never a typed number.
    assert summary.rows[4].output_shape == (6 * 6 * 64,)
    assert summary.rows[0].params == 3 * 3 * 3 * 64 + 64
