"""Convolution and pooling by hand on any picture, the lesson's first experiment.

::

    result = convlens.convolve(photo, "vertical")   # a path, PIL image or (H, W) array
    result                                          # in a notebook: the four panels
    result.filtered.shape, result.pooled.shape      # (H-2, W-2), halved again by pooling
    print(convlens.convolve(photo, "laplacian", at=(5, 7)))  # the worked arithmetic

The notebook's face of :mod:`convlens.byhand`: the numbers come from there (NumPy,
checked against PyTorch in the tests); the figure is the one ``convlens filter`` writes;
"photo" and "fashion:N" name the same built-in pictures as ``convlens filter --sample``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convlens.byhand import (
    Kernel,
    PixelArithmetic,
    conv2d,
    explain_pixel,
    max_pool2d,
    parse_kernel,
)
from convlens.byhand.arithmetic import format_number
from convlens.display import FigureResult
from convlens.errors import ImageError


@dataclass(frozen=True)
class Convolution(FigureResult):
    """A picture, a kernel, the filtered image and the pooled one."""

    image: np.ndarray  # (H, W) uint8, grey
    kernel: Kernel
    filtered: np.ndarray  # (H-k+1, W-k+1) float: valid convolution x weight, not clamped
    pooled: np.ndarray | None  # (filtered // pool) float, or None without pooling
    weight: float = 1.0
    pool: int = 2
    at: tuple[int, int] | None = None
    arithmetic: PixelArithmetic | None = None  # the sum behind filtered[at]
    title: str = "convolution"

    def figure(self) -> Any:
        from convlens.plots.hand_kernel import filter_figure

        return filter_figure(
            self.image,
            self.kernel,
            pool=self.pool or None,
            weight=self.weight,
            kernel_name=self.kernel.name,
            mark=self.at,
        )

    def __str__(self) -> str:
        (h, w), k = self.image.shape, self.kernel.size
        steps = [f"{h}x{w} -> conv {k}x{k} -> {self.filtered.shape[0]}x{self.filtered.shape[1]}"]
        if self.pooled is not None:
            steps.append(f"maxpool {self.pool} -> {self.pooled.shape[0]}x{self.pooled.shape[1]}")
        lines = [" -> ".join(steps)]
        if self.arithmetic is not None and self.at is not None:
            value = format_number(float(self.filtered[self.at]))
            lines += ["", self.arithmetic.format(), "", f"filtered pixel {list(self.at)} = {value}"]
        return "\n".join(lines)


def convolve(
    picture: Any,
    kernel: str | Kernel | Any = "vertical",
    *,
    pool: int = 2,
    weight: float = 1.0,
    at: tuple[int, int] | None = None,
) -> Convolution:
    """Filter ``picture`` with ``kernel`` (valid, stride 1), times ``weight``, then max-pool.

    ``picture``: an image file, a PIL image, (H, W) pixels (uint8, or floats in 0..1),
    or a built-in picture: "photo" (Grace Hopper, 600x512) or "fashion:N" (test image N);
    colour is turned to grey. ``kernel``: a library name ("vertical", "horizontal",
    "laplacian", ...), typed numbers ("0 1 0; 1 -4 1; 0 1 0") or a (k, k) array.
    ``at=(row, col)`` also works out that filtered pixel's arithmetic.
    """
    image = grey_pixels(picture)
    kernel = _kernel(kernel)
    filtered = conv2d(image, kernel.values, weight=weight)
    pooled = max_pool2d(filtered, pool) if pool else None
    arithmetic = explain_pixel(image, kernel.values, *at, weight=weight) if at else None
    return Convolution(image, kernel, filtered, pooled, weight, pool, at, arithmetic)


def grey_pixels(picture: Any) -> np.ndarray:
    """Any picture as (H, W) uint8 grey: files and PIL images through Pillow (alpha on
    white, 16-bit scaled, EXIF rotation applied, ITU-R 601 luma); arrays as pixels."""
    from PIL import Image

    from convlens.data.images import load_image, to_8bit

    if isinstance(picture, str) and not Path(picture).exists() and _is_sample(picture):
        picture = _sample(picture)
    if isinstance(picture, (str, os.PathLike)):
        picture = load_image(Path(picture))
    if isinstance(picture, Image.Image):
        return np.asarray(to_8bit(picture).convert("L"))
    array = np.asarray(picture)
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        return grey_pixels(Image.fromarray(array.astype(np.uint8)))
    array = np.squeeze(array)
    if array.ndim != 2:
        raise ImageError(f"convolve takes one grey picture (H, W), got shape {array.shape}")
    if array.dtype != np.uint8:
        scale = 255.0 if array.size and float(np.max(array)) <= 1.0 else 1.0
        array = np.clip(np.rint(array * scale), 0, 255).astype(np.uint8)
    return array


def _is_sample(text: str) -> bool:
    from convlens.byhand.samples import parse_sample
    from convlens.errors import OptionError

    try:
        parse_sample(text)
    except OptionError:
        return False
    return True


def _sample(text: str) -> Any:
    """A built-in picture by name (see :mod:`convlens.byhand.samples`)."""
    from convlens.byhand.samples import fashion_image, load_photo, parse_sample
    from convlens.data import load_dataset

    sample = parse_sample(text)
    if sample.kind == "photo":
        return load_photo()
    return fashion_image(load_dataset("fashion-mnist", progress=False), sample.index)[0]


def _kernel(kernel: str | Kernel | Any) -> Kernel:
    if isinstance(kernel, Kernel):
        return kernel
    if isinstance(kernel, str):
        return parse_kernel(kernel)
    values = np.asarray(kernel, dtype=np.float64)
    text = "; ".join(" ".join(repr(float(v)) for v in row) for row in np.atleast_2d(values))
    return parse_kernel(text)  # the same checks (square, odd) as typed numbers
