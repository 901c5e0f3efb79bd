"""One pixel of a learned feature map, worked out by hand: the sum the conv layer does.

The Filters tab shows a hand-made 3x3 kernel on one gray picture: nine products summed.
A trained conv layer does the same on every input channel at once: output pixel
``(row, col)`` of filter ``f`` is::

    activation( bias[f] + sum over channels c of sum(window_c * weights[f, c]) )

where ``window_c`` is the ``k x k`` patch of input channel ``c`` under the filter. For the
lesson's ``conv2d`` there is one channel (the picture); for ``conv2d_1`` there are 64 (the
maps of ``max_pooling2d``), so the output pixel is 64 small sums added up. This module
computes those pieces in float64 NumPy from the layer's input as :meth:`Network.trace`
gives it, and the layer's own output next to them, so a reader can check the sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from convlens.errors import SpecError
from convlens.introspect.features import check_images
from convlens.models.inputs import to_float_images
from convlens.models.layers import Conv
from convlens.models.network import Network

__all__ = ["ChannelSum", "UnitArithmetic", "explain_unit"]


@dataclass(frozen=True)
class ChannelSum:
    """One input channel's share: its ``k x k`` window times the filter's weights for it."""

    channel: int
    window: np.ndarray  # (kh, kw) float64: the input values under the filter (0 in padding)
    weights: np.ndarray  # (kh, kw) float64
    total: float  # sum(window * weights)

    @property
    def products(self) -> np.ndarray:
        return self.window * self.weights  # (k, k)


@dataclass(frozen=True)
class UnitArithmetic:
    """Output pixel ``(row, col)`` of filter ``filter_index`` of conv layer ``layer``."""

    layer: str
    filter_index: int
    row: int
    col: int
    input_name: str  # "input" or the layer before, whose maps are the channels
    top: int  # the window's top-left corner in the (unpadded) input; negative in padding
    left: int
    channels: tuple[ChannelSum, ...]
    bias: float
    activation: str | None
    pre_activation: float  # bias + the channel sums
    value: float  # activation(pre_activation), worked out here in float64
    layer_value: float  # what the layer itself output there (float32), for the check

    @property
    def kernel(self) -> tuple[int, int]:
        """(kh, kw): the window's height and width."""
        kh, kw = self.channels[0].window.shape
        return int(kh), int(kw)


def explain_unit(
    network: Network, image: np.ndarray, layer: str, filter_index: int, row: int, col: int
) -> UnitArithmetic:
    """Work out one pixel of ``layer``'s map ``filter_index`` for ``image`` (C, H, W) uint8.

    ``layer`` must be a conv layer; ``row``/``col`` index its output (H_l, W_l). Raises
    :class:`SpecError` with the valid range for anything out of it.
    """
    specs = network.layer_specs()
    spec = specs.get(layer)
    if not isinstance(spec, Conv):
        convs = ", ".join(network.conv_layer_names()) or "none"
        raise SpecError(
            f"layer '{layer}' is not a conv layer of model '{network.spec.name}'; "
            f"its conv layers are: {convs}"
        )
    at = network.names.index(layer)
    filters, height, width = network.shapes[at]
    if not 0 <= filter_index < filters:
        raise SpecError(f"layer '{layer}' has {filters} filters; choose 0 to {filters - 1}")
    if not (0 <= row < height and 0 <= col < width):
        raise SpecError(
            f"layer '{layer}' outputs {height}x{width} maps; row goes from 0 to {height - 1} "
            f"and col from 0 to {width - 1}"
        )
    images = check_images(network, image[None])
    network = network.to("cpu").float().eval()
    before = network.names[at - 1] if at else None
    with torch.no_grad():
        x = to_float_images(images)  # (1, C, H, W) in 0..1
        wanted = [layer] if before is None else [before, layer]
        outputs = network.trace(x, wanted)
    source = (x if before is None else outputs[before])[0].double().numpy()  # (C, H, W)
    output = float(outputs[layer][0, filter_index, row, col])
    conv = next(m for m in network.blocks[layer].modules() if isinstance(m, nn.Conv2d))
    weights = conv.weight.detach()[filter_index].double().numpy()  # (C, k, k)
    bias = float(conv.bias.detach()[filter_index]) if conv.bias is not None else 0.0
    (kh, kw), stride = spec.kernel_size, spec.stride
    pad_top, pad_bottom, pad_left, pad_right = spec.pads(
        network.shapes[at - 1] if at else network.input_shape
    )
    padded = np.pad(source, ((0, 0), (pad_top, pad_bottom), (pad_left, pad_right)))
    top, left = row * stride, col * stride  # in padded coordinates
    windows = padded[:, top : top + kh, left : left + kw]  # (C, kh, kw)
    channels = tuple(
        ChannelSum(c, windows[c], weights[c], float((windows[c] * weights[c]).sum()))
        for c in range(weights.shape[0])
    )
    pre = bias + float(sum(ch.total for ch in channels))
    activation = network.blocks[layer][1]
    value = float(activation(torch.tensor([pre], dtype=torch.float64))[0])
    return UnitArithmetic(
        layer=layer,
        filter_index=filter_index,
        row=row,
        col=col,
        input_name=before or "input",
        top=top - pad_top,
        left=left - pad_left,
        channels=channels,
        bias=bias,
        activation=spec.activation,
        pre_activation=pre,
        value=value,
        layer_value=output,
    )
