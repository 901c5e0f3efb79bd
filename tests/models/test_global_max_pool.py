"""``gmp`` (GlobalMaxPooling2D): the largest value of each map, checked against torch and
NumPy, in the summary as Keras names it, and the same function as ``maxpool(3), flatten``
on ``fast``'s 3x3 maps (what the time-to-accuracy benchmark's max-pool head relies on)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convlens.errors import SpecError
from convlens.models import GlobalMaxPool
from convlens.models.edits import split_blocks
from convlens.models.layers import layer_type
from convlens.models.network import build_network
from convlens.models.registry import resolve_model
from convlens.models.resizing import check_resizable
from convlens.models.spec import ModelSpec, parse_spec
from convlens.models.summary import summarize
from convlens.models.whitening import fit_whitening

GMP_NET = "conv(8, 3, same, relu), maxpool(2), conv(6, 3, same, relu), gmp, dense(3, softmax)"


def fast_with(head: str) -> str:
    """The ``fast`` preset's layers with ``head`` in place of its ``gap``."""
    text = resolve_model("fast").to_text()
    assert text.count(", gap, ") == 1
    return text.replace(", gap, ", f", {head}, ")


@pytest.mark.parametrize("shape", [(2, 5, 3, 3), (3, 7, 1, 1), (1, 4, 9, 6), (2, 3, 28, 28)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_each_channel_gives_the_largest_value_of_its_map(shape, channels_last) -> None:
    layer = GlobalMaxPool()
    assert layer.output_shape(shape[1:]) == (shape[1],)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    out = layer.build(shape[1:])(x)
    assert out.shape == shape[:2]
    assert torch.equal(out, torch.amax(x, dim=(2, 3)))
    assert np.array_equal(out.numpy(), x.numpy().max(axis=(2, 3)))


def test_the_gradient_reaches_the_largest_pixel_of_each_map() -> None:
    x = torch.tensor([[[[1.0, 5.0], [2.0, -3.0]], [[-1.0, -2.0], [-0.5, -4.0]]]])
    x.requires_grad_()
    GlobalMaxPool().build((2, 2, 2))(x).sum().backward()
    want = torch.tensor([[[[0.0, 1.0], [0.0, 0.0]], [[0.0, 0.0], [1.0, 0.0]]]])
    assert torch.equal(x.grad, want)


def test_the_words_that_name_it_and_its_text_forms() -> None:
    for word in ("gmp", "GlobalMaxPooling2D", "globalmaxpool", "globalmaxpooling2d", "GMP"):
        assert layer_type(word) is GlobalMaxPool
    spec = parse_spec("conv(4, 3, relu), GlobalMaxPooling2D, dense(10, softmax)")
    assert isinstance(spec.layers[1], GlobalMaxPool)
    assert spec.to_text() == (
        "conv(filters=4, activation=relu), gmp, dense(units=10, activation=softmax)"
    )
    assert parse_spec(spec.to_text()) == spec
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert spec.layers[1].to_dict() == {"gmp": {}}


def test_shape_arithmetic_params_flops_and_the_why() -> None:
    layer = GlobalMaxPool()
    assert layer.output_shape((128, 3, 3)) == (128,)
    assert layer.params((128, 3, 3)) == 0
    assert layer.flops((128, 3, 3)) == 128 * 8  # 8 comparisons find the largest of 9
    assert layer.flops((4, 1, 1)) == 0
    assert layer.stored_values((128, 3, 3)) == 3 * 128  # the output and its int64 indices
    assert layer.explain((64, 7, 7)) == (
        "the largest value of each 7x7 map: one number for each of the 64 channels; "
        "no weights to learn"
    )
    with pytest.raises(SpecError, match="gmp: needs an image input"):
        layer.output_shape((10,))


def test_a_dense_layer_on_maps_names_every_fix() -> None:
    with pytest.raises(SpecError, match=r"put 'flatten' \(or 'gap' or 'gmp'\) before"):
        parse_spec("conv(4, 3), dense(10)").shapes((1, 8, 8))


def test_summary_names_it_as_keras_does() -> None:
    """Keras 3.15.1's model.summary() of Conv2D(8, 3, relu), GlobalMaxPooling2D(),
    Dense(10, softmax) on 28x28x1: global_max_pooling2d (GlobalMaxPooling2D), (None, 8),
    0 params; 80, 0 and 90 params, 170 in all (680.00 B). (Keras 3 wraps the long name
    onto a second line of its table; convlens widens the column, as for gap.)"""
    spec = parse_spec("conv(8, 3, relu), gmp, dense(10, softmax)")
    summary = summarize(build_network(spec, (1, 28, 28), 10))
    assert [row.params for row in summary.rows] == [80, 0, 90]
    assert "Total params: 170 (680.00 B)" in summary.format()
    row = summary.rows[1]
    assert (row.name, row.keras_type, row.keras_shape, row.params) == (
        "global_max_pooling2d", "GlobalMaxPooling2D", "(None, 8)", 0,
    )  # fmt: skip
    assert row.flops == 8 * (26 * 26 - 1)
    text = summary.format()
    line = next(line for line in text.splitlines() if "GlobalMaxPooling2D" in line)
    assert line.split() == ["global_max_pooling2d", "(GlobalMaxPooling2D)", "(None,", "8)", "0"]
    assert line.startswith(" global_max_pooling2d (GlobalMaxPooling2D)")
    # the columns widen for the long name: every row starts its shape where the header does
    header = next(line for line in text.splitlines() if "Output Shape" in line)
    assert line.index("(None, 8)") == header.index("Output Shape")


def test_forward_pools_before_the_batchnorm_activation_with_the_same_result() -> None:
    """batchnorm(relu) -> gmp runs as batchnorm -> gmp -> relu in forward() (relu on C
    values instead of C x H x W); trace() keeps the lesson's order."""
    torch.manual_seed(0)
    spec = parse_spec("conv(8, 3, activation=none), batchnorm(relu), gmp, dense(10, softmax)")
    network = build_network(spec, (1, 12, 12), 10).eval()
    with torch.no_grad():
        network.blocks["batch_normalization"][0].weight.uniform_(-1, 1)  # some negative scales
        x = torch.rand(4, 1, 12, 12)
        outputs = network.trace(x)
        assert torch.equal(network(x).softmax(dim=1), outputs["dense"])
        relu_maps = outputs["batch_normalization"]
        assert (relu_maps >= 0).all()
        assert torch.equal(outputs["global_max_pooling2d"], torch.amax(relu_maps, dim=(2, 3)))
    assert len(network._plan) == len(network.names) - 1


def test_a_gmp_head_is_the_head_edits_keep_and_it_takes_other_sizes() -> None:
    spec = parse_spec(GMP_NET)
    stem, blocks, head = split_blocks(spec.layers)
    assert stem == [] and len(blocks) == 2 and [layer.kind for layer in head] == ["gmp", "dense"]
    assert [layer.kind for layer in spec.edit(convs=1).layers] == ["conv", "maxpool", "gmp",
                                                                    "dense"]  # fmt: skip
    check_resizable(spec, (1, 16, 16), [12, 8])
    check_resizable(parse_spec(fast_with("gmp")), (1, 28, 28), [24, 20, 16, 8])
    tied = parse_spec(fast_with("maxpool(3), flatten"))
    check_resizable(tied, (1, 28, 28), [24])  # 3x3 maps again: the same shapes
    with pytest.raises(SpecError, match=r"cannot take 20x20 images .* 3x3 window does not fit"):
        check_resizable(tied, (1, 28, 28), [20])
    network = build_network(spec, (1, 16, 16), 3).eval()
    with torch.no_grad():
        for size in (16, 11, 8):  # one network, any image size: the head stays (6,) -> (3,)
            assert network(torch.rand(2, 1, size, size)).shape == (2, 3)


def _fitted(text: str) -> torch.nn.Module:
    torch.manual_seed(0)
    network = build_network(parse_spec(text), (1, 28, 28), 10)
    pixels = torch.randint(0, 256, (256, 1, 28, 28), generator=torch.Generator().manual_seed(1))
    fit_whitening(network, pixels.to(torch.uint8))
    return network.to(memory_format=torch.channels_last)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_on_fasts_3x3_maps_gmp_is_maxpool3_flatten(precision) -> None:
    """Same seed, same weights (neither head draws a random number or holds a parameter),
    the same outputs, and the same weights after training steps: the benchmark's
    ``maxpool(3), flatten`` runs of session 8 and its ``gmp`` runs train the same network."""
    pooled, global_ = _fitted(fast_with("maxpool(3), flatten")), _fitted(fast_with("gmp"))
    assert pooled.shapes[-4] == (128, 3, 3)  # the maps the head pools
    assert pooled.shapes[-2] == global_.shapes[-2] == (128,)
    a, b = pooled.state_dict(), global_.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    generator = torch.Generator().manual_seed(2)
    x = torch.rand(32, 1, 28, 28, generator=generator)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (32,), generator=generator)
    with torch.no_grad():
        assert torch.equal(pooled.eval()(x), global_.eval()(x))
    for network in (pooled, global_):
        network.train()
        optimizer = torch.optim.AdamW(network.parameters(), lr=4e-3)
        for _ in range(2):
            optimizer.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss = torch.nn.functional.cross_entropy(network(x), y)
            loss.backward()
            optimizer.step()
    a, b = pooled.state_dict(), global_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
