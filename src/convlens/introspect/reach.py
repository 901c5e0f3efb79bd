"""Which cells of a feature map reach the output: the ones the next layers actually read.

A valid 3x3 conv reads every cell of its input, but a 2x2 max pool with floor rounding
does not: ``cnn``'s conv2d_1 map is 11x11 and max_pooling2d_1 turns it into 5x5 from
rows and columns 0..9, so row 10 and column 10 never reach the dense layers (their
gradient is exactly 0). Walking back from that, max_pooling2d's row 12, conv2d's rows
24-25 and input rows 26-27 do not reach the output either.

Worked out from the layer specs alone (kernel, stride, padding), one boolean mask per
axis, so it holds for every image and every set of weights::

    reach = reaching_cells(network)          # {"input": (rows, cols), "conv2d": ...}
    rows, cols = reach["conv2d_1"]           # (11,), (11,) bool; rows[10] is False

Grad-CAM (:mod:`convlens.introspect.saliency`) colours only cells and input pixels that
reach the output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convlens.models.layers import Conv, MaxPool, Residual, Whiten
from convlens.models.network import Network
from convlens.wording import plural

__all__ = ["AxisReach", "describe_unreached", "reaching_cells"]

INPUT = "input"


@dataclass(frozen=True)
class AxisReach:
    """``rows`` (H,) and ``cols`` (W,) bool: True where the cell reaches the output."""

    rows: np.ndarray
    cols: np.ndarray

    def mask(self) -> np.ndarray:
        """(H, W) bool: a cell reaches the output when its row and its column do."""
        return self.rows[:, None] & self.cols[None, :]

    @property
    def complete(self) -> bool:
        return bool(self.rows.all() and self.cols.all())


def reaching_cells(network: Network) -> dict[str, AxisReach]:
    """For the input and every image-shaped layer, the rows and columns that reach the output.

    Layers after the last image-shaped one (flatten, global average or max pooling, dense)
    read every cell; going back from there, each conv, pool or residual layer reads the union of
    the windows of the cells it must deliver.
    """
    specs = list(network.layer_specs().items())
    shapes = [tuple(network.input_shape), *map(tuple, network.shapes)]  # shapes[i] feeds layer i
    image_layers = [i for i, shape in enumerate(shapes[1:]) if len(shape) == 3]
    reach: dict[str, AxisReach] = {}
    if not image_layers:
        _, h, w = shapes[0]
        return {INPUT: AxisReach(np.ones(h, bool), np.ones(w, bool))}
    last = max(image_layers)
    _, h, w = shapes[last + 1]
    rows, cols = np.ones(h, bool), np.ones(w, bool)
    for index in range(last, -1, -1):
        name, spec = specs[index]
        reach[name] = AxisReach(rows, cols)
        _, in_h, in_w = shapes[index]
        rows = _reads(spec, rows, in_h, shapes[index], axis=0)
        cols = _reads(spec, cols, in_w, shapes[index], axis=1)
    reach[INPUT] = AxisReach(rows, cols)
    order = [INPUT, *(name for name, _ in specs)]
    return {name: reach[name] for name in order if name in reach}


def _reads(
    spec: object, used: np.ndarray, size: int, in_shape: tuple[int, ...], axis: int
) -> np.ndarray:
    """(size,) bool: the input cells of one axis (0 rows, 1 columns) that the ``used``
    output cells read."""
    if isinstance(spec, Conv):  # a non-square kernel, and 'same' padding, differ by axis
        top, _, left, _ = spec.pads(in_shape)
        return _windows(used, size, spec.kernel_size[axis], spec.stride, (top, left)[axis])
    if isinstance(spec, Whiten):  # a p x p convolution without padding
        return _windows(used, size, spec.patch, spec.step, 0)
    if isinstance(spec, MaxPool):  # AvgPool too
        return _windows(used, size, spec.size, spec.stride or spec.size, 0)
    if isinstance(spec, Residual):  # conv 3x3 stride s, conv 3x3, plus a 1x1 stride-s shortcut
        middle = _windows(used, len(used), 3, 1, 1)
        return _windows(middle, size, 3, spec.stride, 1) | _windows(used, size, 1, spec.stride, 0)
    if len(used) == size:  # batchnorm, dropout, activations: cell i reads cell i
        return used.copy()
    return np.ones(size, bool)  # an unknown resizing layer: assume it reads everything


def _windows(used: np.ndarray, size: int, kernel: int, stride: int, pad: int) -> np.ndarray:
    """Output cell o reads input cells o*stride - pad .. o*stride - pad + kernel - 1."""
    reads = np.zeros(size, bool)
    for o in np.flatnonzero(used):
        start = int(o) * stride - pad
        reads[max(start, 0) : max(min(start + kernel, size), 0)] = True
    return reads


def describe_unreached(reach: AxisReach) -> str:
    """'row 10 and column 10', 'rows 26-27 and columns 26-27', or '' when all reach."""
    parts = [
        _span(word, np.flatnonzero(~mask))
        for word, mask in (("row", reach.rows), ("column", reach.cols))
    ]
    return " and ".join(part for part in parts if part)


def _span(word: str, indices: np.ndarray) -> str:
    if not len(indices):
        return ""
    runs: list[str] = []
    start = prev = int(indices[0])
    for i in [*map(int, indices[1:]), None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        runs.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return f"{plural(word, len(indices))} {', '.join(runs)}"
