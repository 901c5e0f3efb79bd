"""``conv(..., init=dirac)``: filters that start as identities, against hand-built tensors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convlens.errors import SpecError
from convlens.models import parse_spec
from convlens.models.network import build_network


def _dirac(filters: int, channels: int, k: int = 3) -> torch.Tensor:
    """The identity start by hand: filter i is 1 at the centre of channel i, else 0."""
    weight = torch.zeros(filters, channels, k, k)
    for i in range(min(filters, channels)):
        weight[i, i, k // 2, k // 2] = 1.0
    return weight


def _conv_weights(network) -> list[torch.Tensor]:
    return [m.weight.detach().clone() for m in network.modules() if isinstance(m, nn.Conv2d)]


def _by_hand(shapes: list[tuple[int, int, int]], dense: tuple[int, int]) -> list[torch.Tensor]:
    """The weights a seeded build had before ``init`` existed: PyTorch builds each module in
    order (drawing its default start), then Keras' Glorot-uniform is drawn over each."""
    convs = [nn.Conv2d(c, f, k, padding=k // 2) for c, f, k in shapes]
    linear = nn.Linear(*dense)
    for module in [*convs, linear]:
        nn.init.xavier_uniform_(module.weight)
    return [conv.weight.detach() for conv in convs]


def test_in_equals_out_starts_as_the_identity() -> None:
    network = build_network(parse_spec("conv(4, 3, same, init=dirac), gap, dense(10)"), (4, 6, 6))
    (weight,) = _conv_weights(network)
    torch.testing.assert_close(weight, _dirac(4, 4), rtol=0, atol=0)
    conv = network.blocks[network.names[0]]
    x = torch.rand(2, 4, 6, 6)
    torch.testing.assert_close(conv(x), x, rtol=0, atol=0)  # zero bias: x itself


def test_more_filters_than_channels_keep_the_rest_random() -> None:
    text = "conv(6, 3, same, init=dirac), conv(3, 3, same, init=dirac), gap, dense(10)"
    torch.manual_seed(0)
    widen, narrow = _conv_weights(build_network(parse_spec(text), (2, 6, 6)))
    torch.manual_seed(0)
    plain_widen, _ = _by_hand([(2, 6, 3), (6, 3, 3)], (3, 10))
    torch.testing.assert_close(widen[:2], _dirac(2, 2), rtol=0, atol=0)
    torch.testing.assert_close(widen[2:], plain_widen[2:], rtol=0, atol=0)  # same random draw
    torch.testing.assert_close(narrow, _dirac(3, 6), rtol=0, atol=0)  # fewer filters: all


def test_specs_without_init_are_unchanged_in_text_and_weights() -> None:
    text = "conv(8, 3, same), conv(8, 3, same, activation=relu), gap, dense(10, softmax)"
    spec = parse_spec(text)
    assert "init" not in spec.to_text()
    assert all("init" not in str(layer.to_dict()) for layer in spec.layers)
    torch.manual_seed(3)
    built = _conv_weights(build_network(spec, (1, 6, 6)))
    torch.manual_seed(3)
    for got, want in zip(built, _by_hand([(1, 8, 3), (8, 8, 3)], (8, 10)), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_text_file_forms_and_explain() -> None:
    spec = parse_spec("conv(8, 3, same, init=dirac), gap, dense(10, softmax)")
    layer = spec.layers[0]
    assert layer.to_text() == "conv(filters=8, padding=same, init=dirac)"
    assert parse_spec(spec.to_text()) == spec
    assert layer.to_dict() == {"conv": {"filters": 8, "padding": "same", "init": "dirac"}}
    assert "the first 3 filters start as identities" in layer.explain((3, 6, 6))
    assert layer.params((3, 6, 6)) == 3 * 9 * 8 + 8  # init changes no count
    assert "identities" not in parse_spec("conv(8, 3), gap, dense(10)").layers[0].explain((3, 6, 6))


def test_an_unknown_init_is_one_clear_line() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec("conv(8, 3, init=xavier), gap, dense(10)")
    message = str(err.value)
    assert "init must be 'dirac'" in message and "'xavier'" in message and "\n" not in message
