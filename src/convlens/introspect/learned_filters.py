"""Learned filters: the numbers a conv layer learned, as (F, C, k, k) arrays.

The lesson's hand-made kernels (vertical, horizontal edges) are 3x3 grids of numbers;
a trained conv layer holds 64 such grids per input channel, found by gradient descent.
Seeing them next to the hand-made ones is the point of ``convlens filters``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from convlens.errors import SpecError
from convlens.models.network import Network

__all__ = ["learned_filters"]


def learned_filters(network: Network, layer: str | None = None) -> np.ndarray:
    """The kernels of conv layer ``layer`` (default: the first one): (F, C, k, k) float32.

    F filters, each seeing C input channels through a k x k window; for the ``cnn``
    preset ``conv2d`` gives (64, 1, 3, 3) and ``conv2d_1`` (64, 64, 3, 3).
    """
    convs = network.conv_layer_names()
    if not convs:
        raise SpecError(
            f"model '{network.spec.name}' has no conv layer, so it has no filters to show; "
            "train a model with conv layers, e.g. the cnn preset"
        )
    name = convs[0] if layer is None else layer
    if name not in convs:
        what = "is not a conv layer" if name in network.names else "does not exist"
        raise SpecError(
            f"layer '{name}' {what} in model '{network.spec.name}'; "
            f"its conv layers are: {', '.join(convs)}"
        )
    conv = next(m for m in network.blocks[name].modules() if isinstance(m, nn.Conv2d))
    with torch.no_grad():
        return conv.weight.detach().to("cpu", torch.float32).numpy().copy()  # (F, C, k, k)
