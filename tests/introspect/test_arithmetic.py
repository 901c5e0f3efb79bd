"""One feature-map pixel worked out by hand equals the layer's own output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convlens.errors import SpecError
from convlens.introspect import explain_unit, feature_maps
from convlens.models import parse_spec, resolve_model
from convlens.models.network import build_network


def network(spec: str, shape=(1, 28, 28)):
    torch.manual_seed(0)
    model = resolve_model(spec) if "(" not in spec else parse_spec(spec)
    return build_network(model, shape, 10).eval()


def picture(shape=(1, 28, 28), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize(
    ("spec", "layer", "channels"),
    [
        ("cnn", "conv2d", 1),  # the picture: nine products
        ("cnn", "conv2d_1", 64),  # the 64 maps of max_pooling2d: 64 small sums
        ("conv(4, 3, relu, padding=same), conv(3, 5, stride=2), flatten, dense(10)", "conv2d_1", 4),
        # TensorFlow's 'same' at stride 2 on 26x26: one zero row and column, bottom/right only
        (
            "conv(4, 3, relu), conv(3, 3, stride=2, padding=same), flatten, dense(10)",
            "conv2d_1",
            4,
        ),
    ],
)
def test_the_sum_is_the_layers_output(spec, layer, channels) -> None:
    net = network(spec)
    image = picture()
    maps = feature_maps(net, image[None], [layer])[layer][0]  # (F, H, W)
    f, h, w = maps.shape
    for index, row, col in [(0, 0, 0), (f - 1, h - 1, w - 1), (f // 2, h // 2, w // 3)]:
        unit = explain_unit(net, image, layer, index, row, col)
        assert len(unit.channels) == channels
        by_hand = unit.bias + sum(float((c.window * c.weights).sum()) for c in unit.channels)
        assert unit.pre_activation == pytest.approx(by_hand, abs=1e-12)
        assert unit.value == pytest.approx(float(maps[index, row, col]), abs=1e-5)
        assert unit.layer_value == pytest.approx(float(maps[index, row, col]), abs=1e-6)
        assert unit.activation == net.layer_specs()[layer].activation


def test_the_first_layers_window_is_the_picture_over_255() -> None:
    net = network("cnn")
    image = picture()
    unit = explain_unit(net, image, "conv2d", 3, 5, 7)
    assert (unit.top, unit.left, unit.input_name, unit.kernel) == (5, 7, "input", (3, 3))
    assert np.allclose(unit.channels[0].window, image[0, 5:8, 7:10] / 255.0)


def test_padding_shows_as_zeros_outside_the_picture() -> None:
    net = network("conv(2, 3, relu, padding=same), flatten, dense(10)")
    unit = explain_unit(net, picture(), "conv2d", 0, 0, 0)
    assert (unit.top, unit.left) == (-1, -1)
    assert np.all(unit.channels[0].window[0] == 0) and np.all(unit.channels[0].window[:, 0] == 0)


@pytest.mark.parametrize(
    ("layer", "index", "row", "col", "words"),
    [
        ("max_pooling2d", 0, 0, 0, "not a conv layer"),
        ("nope", 0, 0, 0, "not a conv layer"),
        ("conv2d", 64, 0, 0, "has 64 filters"),
        ("conv2d", 0, 26, 0, "26x26"),
        ("conv2d_1", 0, 0, -1, "11x11"),
    ],
)
def test_out_of_range_is_one_line(layer, index, row, col, words) -> None:
    with pytest.raises(SpecError, match=words):
        explain_unit(network("cnn"), picture(), layer, index, row, col)
