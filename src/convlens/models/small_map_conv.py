"""A convolution whose weight gradient on small maps is itself a forward convolution.

On a CPU, oneDNN's bf16 weight-gradient kernel (``brgconv_bwd_w``) is slow on maps of a
few pixels: for ``fast``'s conv(128) at 3x3 (batch 256, one Sapphire Rapids core with
AMX) it took 9-21 ms of CPU against 1.4-3.0 ms for the same convolution's forward pass,
about a tenth of the whole training step. The same gradient is a forward convolution
with the batch as the channels,

    dW[o, c, i, j] = sum_{n, h, w} dY[n, o, h, w] X_pad[n, c, h + i, w + j]
                   = conv2d(X^T, dY^T, padding)[c, o, i, j]

with ``X^T`` (C, N, H, W) as the input and ``dY^T`` (O, N, H', W') as the filters: a
3x3 "kernel" the size of the map, which oneDNN's forward kernel runs at 2.4-5.7 ms
(3-4x faster; measured interleaved, BENCHMARKS.md "Session 7"). From 5x5 maps up that
formulation is the slower one there (a 7x7 kernel over 256 channels), and in fp32 with
AVX-512 oneDNN's own weight gradient is as fast, so there only bf16/fp16 maps up to a size
take it.

**The size depends on the CPU** (:func:`small_map_limit`). Where oneDNN may use AMX
(Sapphire Rapids) its weight-gradient kernel is fast from 5x5 up and the forward form only
wins up to 4x4 maps (:data:`AMX_SMALL_MAP`). With AVX512-BF16 but no AMX (Zen 4) oneDNN's
weight gradient is an older kernel (``jit_bf16:avx512_core_bf16``, not ``brgconv``) that
the forward form beats up to 7x7 maps (0.56x at 3x3, 0.88x at 4x4, 0.82x at 5x5,
0.90-0.92x at 7x7 with 64 channels; 2.8x *slower* at 14x14 with 8:
:data:`AVX512_BF16_SMALL_MAP`). Measured by ``bench/conv_weight_grad.py`` on each CPU,
BENCHMARKS.md "Session 7" and "Session 8".

**fp32 on AVX2** (:func:`fp32_small_map_limit`). Where oneDNN runs AVX2 kernels (a CPU
without AVX-512, or one capped to AVX2) its fp32 weight gradient (``jit:avx2``) ran at 26
GFLOP/s in the lesson ``cnn``'s step against 36 for the forward kernel (Zen 1, one core),
and the forward form of maps up to 11x11 made whole training steps faster: ``cnn``
0.96-0.98x (1 thread), 0.98-1.00x (2 threads), ``fast`` 0.94x (1 thread). Alone, a
14x14 map was 2.3x slower, and taking ``cnn``'s 26x26 first layer too made its step
1.10-1.15x slower (:data:`AVX2_FP32_SMALL_MAP`; BENCHMARKS.md "Session 12").

The input's gradient stays oneDNN's (aten's ``convolution_backward``), the bias' is the
sum of the output's gradient; the weight's is the same sum in another order (bf16
products, fp32 accumulation in both), so it agrees to bf16 rounding (fp32: to fp32's).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from convlens.cpu_features import CpuFeatures

# Output maps of at most this many pixels use the forward-convolution weight gradient.
# With AMX (4x4): 3-4x faster at 3x3, 1.6x at 4x4, slower at 5x5 (bf16, 1 and 2 threads).
AMX_SMALL_MAP = 16
# AVX512-BF16 without AMX (7x7): 0.56x oneDNN's at 3x3, 0.82x at 5x5, 0.90x at 7x7 (bf16,
# batch 256, 1 thread); at 14x14 2.8x slower.
AVX512_BF16_SMALL_MAP = 49
# Anything else (a GPU, a CPU that emulates bf16): the size first measured, unmeasured there.
SMALL_MAP = AMX_SMALL_MAP
# fp32 where oneDNN runs AVX2 kernels (11x11): a whole step of cnn (its 11x11 conv2d_1)
# 0.96-0.98x on 1 thread, of fast 0.94x; 14x14 maps 2.3x slower alone (Zen 1).
AVX2_FP32_SMALL_MAP = 121
FIRST_AMX_ISA = "AVX10_1_512_AMX"  # oneDNN's first instruction set with AMX tiles


def small_map_limit(features: CpuFeatures) -> int:
    """The largest output map (pixels) whose weight gradient is a forward convolution, on
    a CPU with ``features``: AMX's 4x4 where oneDNN may use AMX, 7x7 where bf16 is native
    without it, else :data:`SMALL_MAP`."""
    if not features.native_bf16:
        return SMALL_MAP
    amx = features.amx and features.onednn_allows(FIRST_AMX_ISA)
    return AMX_SMALL_MAP if amx else AVX512_BF16_SMALL_MAP


def fp32_small_map_limit(features: CpuFeatures) -> int:
    """The largest fp32 output map (pixels) whose weight gradient is a forward convolution
    on a CPU with ``features``: :data:`AVX2_FP32_SMALL_MAP` where oneDNN and ATen run AVX2
    kernels (no AVX-512, or capped below it), else 0 (oneDNN's own everywhere)."""
    return 0 if features.avx512_kernels else AVX2_FP32_SMALL_MAP


@functools.cache
def this_cpu_small_map_limit() -> int:
    """:func:`small_map_limit` of this process's CPU (its flags and caps read once)."""
    from convlens.cpu_features import CpuFeatures

    return small_map_limit(CpuFeatures.detect())


@functools.cache
def this_cpu_fp32_small_map_limit() -> int:
    """:func:`fp32_small_map_limit` of this process's CPU (its flags and caps read once)."""
    from convlens.cpu_features import CpuFeatures

    return fp32_small_map_limit(CpuFeatures.detect())


class SmallMapConv2d(nn.Conv2d):
    """``nn.Conv2d`` (the same parameters, state-dict names and forward), whose training
    backward on small maps (low precision up to :func:`small_map_limit` pixels on a CPU,
    fp32 up to :func:`fp32_small_map_limit`) computes the weight gradient as above.

    Used where it is the same computation: stride 1, no dilation, one group, zero
    padding; anything else, inference (no gradient), tracing and ONNX export run
    ``nn.Conv2d`` itself. Under autocast the input, weight and bias are cast to the
    autocast dtype first, as autocast does for every convolution.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._takes_small_map_path(x):
            return super().forward(x)
        weight, bias = self.weight, self.bias
        device = x.device.type
        if torch.is_autocast_enabled(device):
            dtype = torch.get_autocast_dtype(device)
            x, weight = x.to(dtype), weight.to(dtype)
            bias = None if bias is None else bias.to(dtype)
            with torch.autocast(device, enabled=False):
                return _SmallMapConv.apply(x, weight, bias, self.padding)
        return _SmallMapConv.apply(x, weight, bias, self.padding)

    def _takes_small_map_path(self, x: torch.Tensor) -> bool:
        if not (torch.is_grad_enabled() and self.weight.requires_grad) or x.dim() != 4:
            return False
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return False
        if self.stride != (1, 1) or self.dilation != (1, 1) or self.groups != 1:
            return False
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            return False
        device = x.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
        if dtype in (torch.bfloat16, torch.float16):
            limit = this_cpu_small_map_limit() if device == "cpu" else SMALL_MAP
        elif dtype == torch.float32 and device == "cpu":
            limit = this_cpu_fp32_small_map_limit()
        else:
            return False
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        out_h, out_w = x.shape[2] + 2 * ph - kh + 1, x.shape[3] + 2 * pw - kw + 1
        return 0 < out_h * out_w <= limit


class _SmallMapConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, 1, padding)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        needs_x, needs_weight, needs_bias, _ = ctx.needs_input_grad
        grad_x = grad_weight = grad_bias = None
        if needs_x:
            grad_x = torch.ops.aten.convolution_backward(
                grad, x, weight, None, [1, 1], list(ctx.padding), [1, 1], False, [0, 0], 1,
                [True, False, False],
            )[0]  # fmt: skip
        if needs_bias and ctx.has_bias:
            # on its own: asking aten for the bias' gradient runs the weight-gradient kernel
            grad_bias = grad.sum(dim=(0, 2, 3))
        if needs_weight:
            # (C, N, H, W) * (O, N, H', W') -> (C, O, kh, kw): the batch is the channels
            grad_weight = F.conv2d(x.transpose(0, 1), grad.transpose(0, 1), padding=ctx.padding)
            layout = (
                torch.channels_last
                if weight.is_contiguous(memory_format=torch.channels_last)
                and not weight.is_contiguous()
                else torch.contiguous_format
            )
            grad_weight = grad_weight.transpose(0, 1).contiguous(memory_format=layout)
        return grad_x, grad_weight, grad_bias, None
