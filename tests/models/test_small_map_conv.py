"""The small-map convolution: nn.Conv2d's outputs and gradients, computed another way."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convlens.cpu_features import CpuFeatures
from convlens.models import small_map_conv
from convlens.models.layers import Conv
from convlens.models.small_map_conv import SmallMapConv2d, _SmallMapConv


def pair(c_in: int, c_out: int, padding: int = 1, bias: bool = True, stride: int = 1):
    torch.manual_seed(0)
    reference = nn.Conv2d(c_in, c_out, 3, stride, padding, bias=bias)
    conv = SmallMapConv2d(c_in, c_out, 3, stride, padding, bias=bias)
    conv.load_state_dict(reference.state_dict())
    return (
        reference.to(memory_format=torch.channels_last),
        conv.to(memory_format=torch.channels_last),
    )


def forward_backward(module: nn.Module, x: torch.Tensor, bf16: bool):
    """(output, input grad, weight grad, bias grad or None) of sum(output^2)."""
    x = x.detach().clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        y = module(x)
    (y.float() ** 2).sum().backward()
    bias = None if module.bias is None else module.bias.grad
    return y.detach().float(), x.grad, module.weight.grad, bias


def exact_weight_grad(
    x: torch.Tensor, weight: torch.Tensor, grad: torch.Tensor, padding: int
) -> torch.Tensor:
    """The weight gradient of a conv in fp64 from bf16-rounded ``x``, ``weight``, ``grad``."""
    x, weight, grad = (t.detach().bfloat16().double() for t in (x, weight, grad))
    return torch.ops.aten.convolution_backward(
        grad, x, weight, None, [1, 1], [padding, padding], [1, 1], False, [0, 0], 1,
        [False, True, False],
    )[1]  # fmt: skip


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).abs().max() / a.float().abs().max()).item()


@pytest.mark.parametrize("size,padding,bias", [(3, 1, True), (4, 1, False), (3, 0, True)])
def test_the_formula_is_the_convolution_gradient_in_fp32(size, padding, bias):
    # the Function itself in fp32: the same sums as autograd's, to fp32 rounding
    reference, conv = pair(16, 8, padding, bias)
    x = torch.randn(6, 16, size, size).contiguous(memory_format=torch.channels_last)
    expected = forward_backward(reference, x, bf16=False)
    xx = x.clone().requires_grad_()
    y = _SmallMapConv.apply(xx, conv.weight, conv.bias, conv.padding)
    (y**2).sum().backward()
    got = (y.detach(), xx.grad, conv.weight.grad, None if conv.bias is None else conv.bias.grad)
    for want, have in zip(expected, got, strict=True):
        if want is None:
            assert have is None
        else:
            torch.testing.assert_close(have, want, rtol=1e-5, atol=1e-5)
    assert conv.weight.grad.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("limit,size", [(16, 3), (49, 3), (49, 7)])  # AMX's and Zen 4's limits
def test_bf16_small_maps_take_the_path_and_agree_to_bf16_rounding(monkeypatch, limit, size):
    monkeypatch.setattr(small_map_conv, "this_cpu_small_map_limit", lambda: limit)
    calls = []
    original = _SmallMapConv.apply
    monkeypatch.setattr(_SmallMapConv, "apply", lambda *a: calls.append(1) or original(*a))
    reference, conv = pair(64, 32)
    x = torch.randn(32, 64, size, size).contiguous(memory_format=torch.channels_last)
    expected = forward_backward(reference, x, bf16=True)
    got = forward_backward(conv, x, bf16=True)
    assert calls == [1]
    assert torch.equal(got[0], expected[0])  # the forward is the same kernel
    assert torch.equal(got[1], expected[1])  # so is the input's gradient
    # bf16 products summed in another order, judged against the exact sums of the same
    # bf16 inputs (where bf16 is emulated, AVX2, oneDNN's own is 1.2% off them, ours 0.2-0.4%)
    exact = exact_weight_grad(x, reference.weight, 2 * got[0], padding=1)
    assert relative(exact, got[2]) < 1e-2
    assert got[2].dtype == torch.float32  # autocast's cast hands fp32 back to the weight
    torch.testing.assert_close(got[3], expected[3], rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize(
    "what,size,stride,bf16,grad",
    [
        ("a 5x5 map with AMX (the forward-convolution gradient is slower there)", 5, 1, True, True),
        ("stride 2", 6, 2, True, True),
        ("fp32 with AVX-512 (oneDNN's own weight gradient is as fast)", 3, 1, False, True),
        ("no gradient (inference)", 3, 1, True, False),
    ],
)
def test_everything_else_is_nn_conv2d_itself(monkeypatch, what, size, stride, bf16, grad):
    monkeypatch.setattr(small_map_conv, "this_cpu_small_map_limit", lambda: 16)  # AMX's
    monkeypatch.setattr(small_map_conv, "this_cpu_fp32_small_map_limit", lambda: 0)  # AVX-512
    monkeypatch.setattr(_SmallMapConv, "apply", lambda *a: pytest.fail(f"taken for {what}"))
    reference, conv = pair(8, 8, stride=stride)
    x = torch.randn(4, 8, size, size).contiguous(memory_format=torch.channels_last)
    with torch.set_grad_enabled(grad), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        assert torch.equal(conv(x), reference(x))


def cpu(
    amx: bool, avx512_bf16: bool = True, onednn_cap: str | None = None, aten: str = "AVX512"
) -> CpuFeatures:
    return CpuFeatures(
        avx512_bf16=avx512_bf16, amx=amx, aten_capability=aten, onednn_cap=onednn_cap
    )


@pytest.mark.parametrize(
    "features,limit",
    [
        (cpu(amx=True), 16),  # Sapphire Rapids: 4x4 maps
        (cpu(amx=False), 49),  # Zen 4: 7x7 maps
        (cpu(amx=True, onednn_cap="AVX512_CORE_BF16"), 49),  # AMX capped off: Zen 4's kernels
        (cpu(amx=True, onednn_cap="AVX512_CORE_AMX"), 16),
        (cpu(amx=False, avx512_bf16=False), 16),  # bf16 emulated: the first measured size
        (cpu(amx=True, onednn_cap="AVX2"), 16),
    ],
)
def test_the_limit_follows_the_cpu(features, limit):
    assert small_map_conv.small_map_limit(features) == limit


@pytest.mark.parametrize(
    "features,limit",
    [
        (cpu(amx=False, avx512_bf16=False, aten="AVX2"), 121),  # an AVX2 laptop (Zen 1-3)
        (cpu(amx=False, aten="AVX2", onednn_cap="AVX2"), 121),  # Zen 4 capped to AVX2
        (cpu(amx=False, onednn_cap="AVX2"), 121),  # oneDNN capped, ATen not
        (cpu(amx=False), 0),  # Zen 4: AVX-512 kernels, oneDNN's own gradient
        (cpu(amx=False, avx512_bf16=False), 0),  # AVX-512 without bf16: oneDNN's own
        (cpu(amx=True), 0),  # Sapphire Rapids
    ],
)
def test_the_fp32_limit_is_avx2s(features, limit):
    assert small_map_conv.fp32_small_map_limit(features) == limit


@pytest.mark.parametrize("size,padding", [(13, 0), (11, 1), (3, 1)])  # cnn's conv2d_1 first
def test_fp32_maps_on_avx2_take_the_path_and_agree_to_fp32_rounding(monkeypatch, size, padding):
    monkeypatch.setattr(small_map_conv, "this_cpu_fp32_small_map_limit", lambda: 121)
    calls = []
    original = _SmallMapConv.apply
    monkeypatch.setattr(_SmallMapConv, "apply", lambda *a: calls.append(1) or original(*a))
    reference, conv = pair(64, 64, padding)
    x = torch.randn(32, 64, size, size).contiguous(memory_format=torch.channels_last)
    expected = forward_backward(reference, x, bf16=False)
    got = forward_backward(conv, x, bf16=False)
    assert calls == [1]
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    assert relative(expected[2], got[2]) < 1e-5  # the same fp32 sums in another order
    assert relative(expected[3], got[3]) < 1e-5  # the bias: the same sum, another order
    assert got[2].is_contiguous(memory_format=torch.channels_last)


def test_fp32_maps_over_the_limit_are_nn_conv2d(monkeypatch):
    monkeypatch.setattr(small_map_conv, "this_cpu_fp32_small_map_limit", lambda: 121)
    conv = SmallMapConv2d(4, 4, 3)
    assert conv._takes_small_map_path(torch.randn(2, 4, 13, 13))  # 11x11 out
    assert not conv._takes_small_map_path(torch.randn(2, 4, 14, 13))  # 12x11 out
    with torch.no_grad():
        assert not conv._takes_small_map_path(torch.randn(2, 4, 13, 13))


@pytest.mark.parametrize("limit,largest", [(16, 4), (49, 7)])
def test_maps_up_to_the_cpus_limit_take_the_path(monkeypatch, limit, largest):
    monkeypatch.setattr(small_map_conv, "this_cpu_small_map_limit", lambda: limit)
    conv = SmallMapConv2d(4, 4, 3, 1, 1)
    with torch.autocast("cpu", torch.bfloat16):
        assert conv._takes_small_map_path(torch.randn(2, 4, largest, largest))
        assert not conv._takes_small_map_path(torch.randn(2, 4, largest, largest + 1))


def test_a_conv_layer_builds_one_with_nn_conv2d_names():
    block = Conv(32, 3, padding="same").build((8, 7, 7))
    conv = block[0]
    assert isinstance(conv, SmallMapConv2d) and isinstance(conv, nn.Conv2d)
    assert set(conv.state_dict()) == {"weight", "bias"}
