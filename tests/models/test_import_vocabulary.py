"""The layer vocabulary that imported models need: non-square kernels, TensorFlow's 'same'
padding, batchnorm epsilon and momentum, activation layers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convlens.errors import SpecError
from convlens.models.layers import Activation, BatchNorm, Conv
from convlens.models.network import build_network
from convlens.models.spec import ModelSpec, parse_spec


def test_non_square_kernels_in_text_and_file_form() -> None:
    spec = parse_spec("conv(8, 3x2, relu), flatten, dense(10, softmax)")
    conv = spec.layers[0]
    assert conv.kernel == (3, 2) and conv.kernel_size == (3, 2)
    assert parse_spec(spec.to_text()) == spec
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert Conv(4, kernel=[3, 3]).kernel == 3  # a square kernel stays one number
    assert conv.output_shape((1, 28, 28)) == (8, 26, 27)
    assert conv.flops((1, 28, 28)) == 2 * 8 * 26 * 27 * 3 * 2
    network = build_network(spec, (1, 28, 28))
    assert network.blocks["conv2d"][0].weight.shape == (8, 1, 3, 2)


@pytest.mark.parametrize(
    ("size", "kernel", "stride"), [(28, 3, 2), (7, 3, 2), (14, 4, 1), (9, 2, 2)]
)
def test_same_padding_matches_tensorflows_output_size_and_alignment(size, kernel, stride) -> None:
    """ceil(size / stride) outputs; the conv equals explicit (top, bottom) zero padding."""
    conv = Conv(3, kernel, stride, "same")
    shape = (2, size, size)
    assert conv.output_shape(shape)[1:] == (-(-size // stride),) * 2
    torch.manual_seed(0)
    block = conv.build(shape)
    x = torch.randn(1, *shape)
    top, bottom, left, right = conv.pads(shape)
    assert bottom - top in (0, 1) and right - left in (0, 1)
    module = block[0]
    want = F.conv2d(F.pad(x, (left, right, top, bottom)), module.weight, module.bias, stride)
    assert torch.equal(block(x), want)


def test_same_padding_at_stride_1_is_unchanged() -> None:
    """Every preset's 'same' conv (odd kernel, stride 1) builds nn.Conv2d with symmetric
    padding (SmallMapConv2d: nn.Conv2d's forward, a cheaper bf16 backward on small maps),
    not the explicitly padded conv."""
    from convlens.models.blocks import AsymmetricPadConv2d
    from convlens.models.small_map_conv import SmallMapConv2d

    block = Conv(4, 3, 1, "same").build((1, 28, 28))
    assert type(block[0]) is SmallMapConv2d and block[0].padding == (1, 1)
    assert not isinstance(block[0], AsymmetricPadConv2d)
    x = torch.randn(1, 1, 28, 28)
    assert torch.equal(block[0](x), F.conv2d(x, block[0].weight, block[0].bias, padding=1))


def test_batchnorm_epsilon_and_momentum_reach_torch() -> None:
    norm = BatchNorm(epsilon=1e-3, momentum=0.01).build((4, 5, 5))[0]
    assert norm.eps == 1e-3 and norm.momentum == 0.01
    assert BatchNorm().build((4,))[0].eps == 1e-5  # PyTorch's default stays the default
    norm.eval()
    norm.running_var.fill_(2e-3)
    x = torch.randn(2, 4, 5, 5)
    assert torch.allclose(norm(x), x / torch.sqrt(torch.tensor(2e-3 + 1e-3)), atol=1e-6)
    with pytest.raises(SpecError, match="epsilon"):
        BatchNorm(epsilon=0).validate("layer 1")


def test_activation_layer() -> None:
    spec = parse_spec("conv(4, 3), maxpool(2), activation(elu), flatten, dense(10)")
    assert isinstance(spec.layers[2], Activation) and spec.layers[2].activation == "elu"
    network = build_network(spec, (1, 12, 12))
    assert isinstance(network.blocks["activation"], torch.nn.ELU)
    with pytest.raises(SpecError, match="activation layer"):
        parse_spec("activation(softmax), flatten, dense(10)")


def test_summary_prints_the_layers_up_to_the_one_that_does_not_fit(capsys) -> None:
    from convlens.cli.main import main

    spec = "conv(8, 3, relu), maxpool(2), conv(8, 7, relu), maxpool(2), maxpool(2), maxpool(2)"
    assert main(["summary", f"{spec}, flatten, dense(10)"]) == 2
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == 'Model: "custom", up to layer 6, which does not fit'
    assert any(
        line.startswith(" conv2d_1 (Conv2D)") and "(None, 7, 7, 8)" in line for line in lines
    )
    assert " max_pooling2d_3 (MaxPooling2D)  does not fit (below)" in captured.out
    assert "Total params" not in captured.out
    assert len(captured.err.strip().splitlines()) == 1 and "1x1 input" in captured.err


def test_import_prints_the_layers_up_to_the_one_that_does_not_fit(tmp_path, capsys) -> None:
    from convlens.cli.main import main

    weights = tmp_path / "w.pt"
    torch.save(
        torch.nn.Sequential(torch.nn.Conv2d(1, 4, 9), torch.nn.Flatten()).state_dict(), weights
    )
    args = [
        "import",
        str(weights),
        "--spec",
        "conv(4, 9), maxpool(2), conv(4, 9), flatten, dense(3)",
    ]
    assert main([*args, "--input", "20x20x1", "--runs", str(tmp_path / "runs")]) == 2
    captured = capsys.readouterr()
    assert "up to layer 3, which does not fit" in captured.out
    assert "max_pooling2d (MaxPooling2D)" in captured.out and "does not fit" in captured.err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())
