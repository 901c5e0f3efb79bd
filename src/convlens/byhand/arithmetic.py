"""One output pixel of a convolution, worked out by hand: the lesson's arithmetic, printed.

Coordinates are those of the *output* of a valid convolution (no padding, stride 1):
output pixel ``[row, col]`` comes from the input window whose top-left corner is
``[row, col]``; for a 3x3 kernel that window is centred on input pixel ``[row + 1, col + 1]``.
So a 28x28 image and a 3x3 kernel accept rows and columns 0..25.

The sum is added up in the same order as :func:`convlens.byhand.conv.conv2d` adds it (cell by
cell, row-major), so ``explain_pixel(img, k, r, c).total == conv2d(img, k)[r, c]``
exactly, not just approximately.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from convlens.byhand.conv import _as_array, _finite, clamp_to_uint8
from convlens.byhand.kernels import KernelError
from convlens.errors import ImageError, OptionError

__all__ = ["PixelArithmetic", "PoolArithmetic", "explain_pixel", "explain_pool", "format_number"]


@dataclass(frozen=True, eq=False)
class PixelArithmetic:
    """Everything that goes into output pixel ``[row, col]``; arrays are (kh, kw) float64."""

    row: int
    col: int
    neighbourhood: np.ndarray  # (kh, kw) input pixels under the kernel
    weights: np.ndarray  # (kh, kw) the kernel
    products: np.ndarray  # (kh, kw) neighbourhood * weights, cell by cell
    total: float  # sum of the products == conv2d(image, kernel)[row, col]
    weight: float  # the lesson's weight factor
    weighted: float  # total * weight == conv2d(image, kernel, weight=weight)[row, col]
    clamped: int  # weighted, rounded to a whole number and clamped to 0..255: the gray shown

    @property
    def centre(self) -> tuple[int, int]:
        """The input pixel under the kernel's centre: ``(row + kh // 2, col + kw // 2)``."""
        kh, kw = self.weights.shape
        return self.row + kh // 2, self.col + kw // 2

    def format(self) -> str:
        """A multi-line worked example: the grids, every product, the sum, the clamp."""
        kh, kw = self.weights.shape
        cr, cc = self.centre
        blocks = [
            ("neighbourhood", self.neighbourhood),
            ("kernel", self.weights, True),
            ("products", self.products),
        ]
        grids = _side_by_side(blocks, ["x", "="])
        lines = [
            f"Output pixel [{self.row}, {self.col}] of a {kh}x{kw} convolution:",
            f"the {kh}x{kw} neighbourhood centred on input pixel [{cr}, {cc}], "
            "times the kernel cell by cell, then summed.",
            "",
            *grids,
            "",
        ]
        pixels = [format_number(v) for v in self.neighbourhood.ravel()]
        weights = [format_number(v, fraction=True) for v in self.weights.ravel()]
        products = [format_number(v) for v in self.products.ravel()]
        wp, ww, wq = (max(len(s) for s in col) for col in (pixels, weights, products))
        lines.append(
            f"cell by cell; [r,c] is a position inside the {kh}x{kw} neighbourhood ([0,0] its "
            f"top-left, input pixel [{self.row}, {self.col}]):"
        )
        for index, (p, w, q) in enumerate(zip(pixels, weights, products, strict=True)):
            r, c = divmod(index, kw)
            lines.append(f"  [{r},{c}]  {p:>{wp}} x {w:>{ww}} = {q:>{wq}}")
        steps = [
            (f"sum of the {kh * kw} products", format_number(self.total)),
            (f"x weight {format_number(self.weight)}", format_number(self.weighted)),
            ("rounded, clamped to 0..255", f"{self.clamped}   (the gray level shown)"),
        ]
        width = max(len(label) for label, _ in steps)
        lines += ["", *(f"  {label:<{width}} = {value}" for label, value in steps)]
        return "\n".join(lines)


def explain_pixel(
    image: Any, kernel: Any, row: int, col: int, *, weight: float = 1.0
) -> PixelArithmetic:
    """Work out output pixel ``[row, col]`` of ``conv2d(image, kernel, weight=weight)``.

    ``image`` is (H, W), ``kernel`` (kh, kw); ``row`` in 0..H-kh and ``col`` in 0..W-kw
    (negative indices are refused rather than counted from the end).
    """
    x = _as_array(image, "image", ImageError)
    k = _as_array(kernel, "kernel", KernelError)
    if x.ndim != 2 or k.ndim != 2:
        raise ImageError(
            f"explain_pixel takes an (H, W) image and a (kh, kw) kernel; "
            f"got {x.shape} and {k.shape}"
        )
    weight = _finite(weight, "weight")
    (h, w), (kh, kw) = x.shape, k.shape
    if kh > h or kw > w:
        raise KernelError(f"kernel {kh}x{kw} is larger than the image {h}x{w}")
    oh, ow = h - kh + 1, w - kw + 1
    try:
        row, col = operator.index(row), operator.index(col)
    except TypeError:
        raise OptionError(
            f"pixel row and column must be whole numbers, got {row!r}, {col!r}"
        ) from None
    if not (0 <= row < oh and 0 <= col < ow):
        raise OptionError(
            f"pixel [{row}, {col}] is outside the {oh}x{ow} output of a {kh}x{kw} kernel on a "
            f"{h}x{w} image; row goes from 0 to {oh - 1} and column from 0 to {ow - 1}"
        )
    window = x[row : row + kh, col : col + kw].copy()  # (kh, kw)
    products = window * k  # (kh, kw)
    total = 0.0
    for value in products.ravel():  # row-major, the order conv2d adds the cells in
        total += float(value)
    weighted = float(np.float64(total) * weight)
    for array in (window, products):
        array.setflags(write=False)
    weights = k.copy()
    weights.setflags(write=False)
    return PixelArithmetic(
        row=row,
        col=col,
        neighbourhood=window,
        weights=weights,
        products=products,
        total=total,
        weight=weight,
        weighted=weighted,
        clamped=int(clamp_to_uint8(weighted)),
    )


@dataclass(frozen=True, eq=False)
class PoolArithmetic:
    """The max-pooling block that filtered pixel ``[row, col]`` falls in, and its maximum.

    ``block`` is None when pooling drops the pixel: a ``size`` x ``size`` pool with floor
    rounding keeps only whole blocks, so of 27 rows the last one is dropped.
    """

    row: int  # the filtered pixel
    col: int
    size: int
    pooled: tuple[int, int]  # the pooled pixel the block becomes: (row // size, col // size)
    block: np.ndarray | None  # (size, size) filtered values (after the weight, before clamping)
    maximum: float  # the block's largest value == max_pool2d(filtered, size)[pooled]
    clamped: int  # maximum rounded to a whole number and clamped to 0..255: the gray shown
    filtered_shape: tuple[int, int]

    def format(self) -> str:
        r, c, k = self.row, self.col, self.size
        h, w = self.filtered_shape
        if self.block is None:
            return (
                f"Max pooling {k}x{k} keeps whole {k}x{k} blocks only ({h}x{w} -> "
                f"{h // k}x{w // k}), so filtered pixel [{r}, {c}] is dropped: it reaches no "
                "pooled pixel."
            )
        top, left = self.pooled[0] * k, self.pooled[1] * k
        cells = [format_number(v) for v in self.block.ravel()]
        width = max(len(cell) for cell in cells)
        where = np.unravel_index(int(np.argmax(self.block)), self.block.shape)
        lines = [
            f"Max pooling {k}x{k}: filtered pixel [{r}, {c}] is in the block of rows "
            f"{top}-{top + k - 1}, columns {left}-{left + k - 1} (after the weight, before "
            f"clamping), which becomes pooled pixel [{self.pooled[0]}, {self.pooled[1]}]:",
            "",
        ]
        for row in range(k):
            lines.append(
                "    " + "  ".join(cell.rjust(width) for cell in cells[row * k : row * k + k])
            )
        at = f"[{top + int(where[0])}, {left + int(where[1])}]"
        steps = [
            (f"the largest of the {k * k}", f"{format_number(self.maximum)}   (at {at})"),
            ("rounded, clamped to 0..255", f"{self.clamped}   (the gray level shown)"),
        ]
        label = max(len(text) for text, _ in steps)
        lines += ["", *(f"  {text:<{label}} = {value}" for text, value in steps)]
        return "\n".join(lines)


def explain_pool(filtered: Any, row: int, col: int, size: int = 2) -> PoolArithmetic:
    """The ``size`` x ``size`` max-pooling block of filtered pixel ``[row, col]``.

    ``filtered`` is (H', W') as :func:`convlens.byhand.conv.conv2d` returns it (after the
    weight, before clamping): pooling picks the largest sum, and only the gray shown is
    clamped, exactly as ``clamp_to_uint8(max_pool2d(filtered, size))`` draws it.
    """
    x = _as_array(filtered, "filtered image", ImageError)
    h, w = x.shape
    pooled = (row // size, col // size)
    if pooled[0] >= h // size or pooled[1] >= w // size:
        return PoolArithmetic(row, col, size, pooled, None, float("nan"), 0, (h, w))
    top, left = pooled[0] * size, pooled[1] * size
    block = x[top : top + size, left : left + size].copy()
    block.setflags(write=False)
    maximum = float(block.max())
    return PoolArithmetic(
        row, col, size, pooled, block, maximum, int(clamp_to_uint8(maximum)), (h, w)
    )


def format_number(value: float, *, fraction: bool = False) -> str:
    """Numbers as people write them: whole numbers without '.0', others to 6 significant
    digits; with ``fraction=True`` a simple fraction such as 1/9 is written as one."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if fraction:
        exact = Fraction(value).limit_denominator(256)
        if abs(float(exact) - value) < 1e-12:
            return f"{exact.numerator}/{exact.denominator}"
    return f"{value:.6g}"


def _grid(values: np.ndarray, fraction: bool = False) -> list[str]:
    cells = [[format_number(v, fraction=fraction) for v in row] for row in values]
    width = max(len(s) for row in cells for s in row)
    return ["  ".join(s.rjust(width) for s in row) for row in cells]


def _side_by_side(blocks: list[tuple[Any, ...]], operators: list[str]) -> list[str]:
    """Titled grids next to each other, with an operator between them on the middle row.

    Each block is ``(title, values)`` or ``(title, values, fraction)``."""
    columns = []
    for title, values, *fraction in blocks:
        rows = _grid(values, *fraction)
        width = max(len(title), *(len(r) for r in rows))
        columns.append([title.ljust(width), *(r.rjust(width) for r in rows)])
    middle = 1 + (len(columns[0]) - 1) // 2
    lines = []
    for index in range(len(columns[0])):
        parts = [columns[0][index]]
        for op, column in zip(operators, columns[1:], strict=True):
            parts.append(f" {op} " if index == middle else "   ")
            parts.append(column[index])
        lines.append("  " + "  ".join(parts).rstrip())
    return lines
