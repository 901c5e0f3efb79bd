"""Composite torch modules that a single layer spec builds (kept apart from the spec data)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResidualBlock(nn.Module):
    """relu(bn(conv3x3(relu(bn(conv3x3(x))))) + shortcut(x)); (N, C, H, W) -> (N, F, H/s, W/s)."""

    def __init__(self, in_channels: int, filters: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, filters, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(filters)
        self.conv2 = nn.Conv2d(filters, filters, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(filters)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != filters:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, filters, 1, stride, bias=False), nn.BatchNorm2d(filters)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class AsymmetricPadConv2d(nn.Conv2d):
    """A convolution after explicit zero padding ``pads`` = (left, right, top, bottom).

    TensorFlow's 'same' padding puts an odd zero at the bottom/right, which
    ``nn.Conv2d``'s symmetric ``padding`` cannot express. Same parameters (``weight``,
    ``bias``) and state-dict names as ``nn.Conv2d``, so weights load either way.
    """

    def __init__(self, *args, pads: tuple[int, int, int, int], **kwargs) -> None:
        super().__init__(*args, padding=0, **kwargs)
        self.pads = tuple(pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pads={self.pads}"


class Flatten(nn.Module):
    """(N, C, H, W) -> (N, C*H*W) in PyTorch's C, H, W order, whatever the memory format.

    ``nn.Flatten`` is the same forward, but its backward hands the layer before it a
    contiguous (NCHW) gradient even when that layer's activations are channels_last;
    the ReLU and pooling backward kernels then mix two layouts and take a slow strided
    path. Here the gradient comes back in the input's own layout: measured on the
    lesson's CNN (bf16, batch 32, 2-core CPU) a training step drops from about 8.0 to
    6.6 ms.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (x.requires_grad and torch.is_grad_enabled()):
            return x.flatten(1)  # nothing flows back: skip the autograd.Function
        return _FlattenKeepingLayout.apply(x)


class _FlattenKeepingLayout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.shape = x.shape
        ctx.channels_last = (
            x.dim() == 4
            and not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last)
        )
        return x.flatten(1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.reshape(ctx.shape)
        if ctx.channels_last:
            grad = grad.contiguous(memory_format=torch.channels_last)
        return grad


class Dropout(nn.Module):
    """Dropout that is fast on a CPU: (...) -> (...), zeroing about ``rate`` of values.

    On a CPU, ``nn.Dropout`` draws one Mersenne-Twister number per value; for a batch of
    128 x 3,136 features that took 3.8 ms, 15% of a ``cnn-bn`` training step. Here one
    64-bit draw gives 8 bytes, each compared with the keep probability rounded to
    1/256 (0.3 -> 0.3008), and the survivors are scaled by 256/keep so the expected
    value is unchanged: 0.6 ms. Elsewhere (CUDA) it is ``F.dropout``. Masks come from
    torch's default generator, so runs stay reproducible from their seed.
    """

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate
        self.keep_of_256 = round((1 - rate) * 256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.rate, training=True)
        if self.keep_of_256 == 0:
            return x * 0
        n = x.numel()
        words = torch.empty((n + 7) // 8, dtype=torch.int64).random_(-(2**63), 2**63 - 1)
        keep = words.view(torch.uint8)[:n].view(x.shape) < self.keep_of_256
        return x * keep * (256 / self.keep_of_256)

    def extra_repr(self) -> str:
        return f"rate={self.rate}"
