"""Convolution and max pooling written out in NumPy, to see what a Conv2D layer computes.

Deep-learning semantics throughout, the same as ``torch.nn.functional.conv2d`` and Keras
``Conv2D``: the kernel is *not* flipped (strictly this is cross-correlation), output pixel
``[r, c]`` is the sum of the window whose top-left corner is input pixel ``[r, c]``, and a
valid (unpadded) 3x3 convolution loses a 1-pixel border: 28x28 -> 26x26.

Two forms of :func:`conv2d`:

* ``(H, W)`` image with a ``(kh, kw)`` kernel -> ``(H', W')``: the lesson's one filter over
  one grayscale picture;
* ``(N, C, H, W)`` batch with ``(F, C, kh, kw)`` kernels -> ``(N, F, H', W')``: exactly what
  ``torch.nn.functional.conv2d(x, w, stride=..., padding=...)`` returns (no bias); each of
  the F filters is summed over all C input channels. The tests hold it to torch.

Results are float64: a uint8 picture through an integer kernel is then exact, so the
worked arithmetic in :mod:`convlens.byhand.arithmetic` reproduces every output bit for bit.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from convlens.byhand.kernels import Kernel, KernelError
from convlens.errors import ImageError, OptionError

__all__ = ["clamp_to_uint8", "conv2d", "max_pool2d"]

Pair = int | tuple[int, int]
Padding = int | tuple[int, int] | str


def conv2d(
    image: Any,
    kernel: Any,
    *,
    stride: Pair = 1,
    padding: Padding = 0,
    weight: float = 1.0,
) -> np.ndarray:
    """Slide ``kernel`` over ``image``, multiply element by element, sum, times ``weight``.

    ``kernel`` is an array or a :class:`~convlens.byhand.Kernel`. ``stride`` is an int or
    ``(sh, sw)``. ``padding`` is an int, ``(ph, pw)``, ``"valid"`` (no padding) or
    ``"same"`` (stride 1 only; the output keeps the input size, and an even kernel gets its
    extra zero at the bottom/right, as in torch). Padding adds zeros.

    Shapes (``H' = (H + 2*ph - kh) // sh + 1``, likewise ``W'``)::

        (H, W)       x (kh, kw)       -> (H', W')          float64
        (N, C, H, W) x (F, C, kh, kw) -> (N, F, H', W')    float64
    """
    x = _as_array(image, "image", ImageError)
    k = _as_array(kernel, "kernel", KernelError)
    if x.ndim == 2 and k.ndim == 2:
        # (H, W) x (kh, kw) is the batched form with N = C = F = 1.
        out = conv2d(x[None, None], k[None, None], stride=stride, padding=padding, weight=weight)
        return out[0, 0]
    if x.ndim != 4 or k.ndim != 4:
        raise KernelError(
            f"conv2d takes an (H, W) image with an (kh, kw) kernel, or (N, C, H, W) images "
            f"with (F, C, kh, kw) kernels; got image {x.shape} and kernel {k.shape}"
        )
    weight = _finite(weight, "weight")
    (n, c, _, _), (f, kc, kh, kw) = x.shape, k.shape
    if kc != c:
        raise KernelError(
            f"kernels have {kc} input channels but the images have {c}; "
            "the second axis of (F, C, kh, kw) must match the C of (N, C, H, W)"
        )
    sh, sw = _pair(stride, "stride")
    (top, bottom), (left, right) = _padding(padding, (kh, kw), (sh, sw))
    x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))  # zeros around the edge
    hp, wp = x.shape[-2:]
    if kh > hp or kw > wp:
        raise KernelError(
            f"kernel {kh}x{kw} is larger than the {'padded ' if top + left else ''}image "
            f"{hp}x{wp}; use a kernel of at most {hp}x{wp} or a larger image"
        )
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1

    # One pass per kernel cell (kh*kw passes, each over every output pixel at once):
    # out[n, f, r, c] += k[f, :, i, j] . x[n, :, r*sh + i, c*sw + j]
    # Adding the cells in row-major order fixes the summation order, which is what lets
    # explain_pixel() reproduce an output value exactly.
    out = np.zeros((n, f, oh, ow), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]
            # (N, C, H', W') . (F, C) over C -> (N, H', W', F) -> (N, F, H', W')
            out += np.moveaxis(np.tensordot(patch, k[:, :, i, j], axes=([1], [1])), -1, 1)
    return out * weight


def max_pool2d(image: Any, size: Pair = 2, stride: Pair | None = None) -> np.ndarray:
    """Keep the largest value of each ``size`` x ``size`` window (stride defaults to size).

    Rows and columns that do not fill a whole window are dropped (rounding down, as Keras
    and torch do): 26 -> 13, 27 -> 13, 11 -> 5. Works over the last two axes and keeps the
    dtype::

        (H, W) -> (H', W')      (C, H, W) -> (C, H', W')      (N, C, H, W) -> (N, C, H', W')
        H' = (H - size) // stride + 1
    """
    x = _as_array(image, "image", ImageError, cast=False)
    if not 2 <= x.ndim <= 4:
        raise ImageError(
            f"max_pool2d takes (H, W), (C, H, W) or (N, C, H, W) arrays; got shape {x.shape}"
        )
    kh, kw = _pair(size, "pool size")
    sh, sw = (kh, kw) if stride is None else _pair(stride, "pool stride")
    h, w = x.shape[-2:]
    if kh > h or kw > w:
        raise OptionError(
            f"pool window {kh}x{kw} is larger than the image {h}x{w}; "
            f"use a pool size of at most {min(h, w)}"
        )
    windows = sliding_window_view(x, (kh, kw), axis=(-2, -1))  # (..., H-kh+1, W-kw+1, kh, kw)
    return windows[..., ::sh, ::sw, :, :].max(axis=(-2, -1))  # (..., H', W')


def clamp_to_uint8(values: Any) -> np.ndarray:
    """Round and clamp to 0..255 for display, as the lesson does after convolving.

    Negative responses become black and anything over 255 white; NaN becomes 0. Same shape,
    dtype uint8.
    """
    x = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


# --- argument checks: each failure is one line that says what is allowed ---------------


def _as_array(value: Any, what: str, error: type[Exception], *, cast: bool = True) -> np.ndarray:
    if isinstance(value, Kernel):
        value = value.values  # a library kernel works wherever an array does
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as err:
        raise error(f"{what} is not a rectangular array of numbers ({err})") from None
    if array.dtype.kind not in "biuf":
        raise error(f"{what} must hold real numbers, not {array.dtype}")
    if array.size == 0:
        raise error(f"{what} is empty (shape {array.shape}); it needs at least one pixel")
    return array.astype(np.float64, copy=False) if cast else array


def _pair(value: Any, what: str) -> tuple[int, int]:
    """An int or a pair of ints, each at least 1."""
    items = value if isinstance(value, tuple | list) else (value, value)
    try:
        if len(items) != 2 or isinstance(value, bool):
            raise TypeError
        pair = (operator.index(items[0]), operator.index(items[1]))
    except TypeError:
        raise OptionError(f"{what} must be a whole number of 1 or more, got {value!r}") from None
    if min(pair) < 1:
        raise OptionError(f"{what} must be 1 or more, got {value!r}")
    return pair


def _padding(
    padding: Padding, kernel: tuple[int, int], stride: tuple[int, int]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """-> ((top, bottom), (left, right)) zeros to add."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0), (0, 0)
        if mode == "same":
            if stride != (1, 1):
                raise OptionError("padding='same' needs stride 1; give the padding as a number")
            # k - 1 zeros in all, the odd one at the end: what torch does for even kernels.
            (kh, kw) = kernel
            return ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2)
        raise OptionError(f"padding must be a number, 'valid' or 'same', got {padding!r}")
    items = padding if isinstance(padding, tuple | list) else (padding, padding)
    try:
        if len(items) != 2 or isinstance(padding, bool):
            raise TypeError
        ph, pw = operator.index(items[0]), operator.index(items[1])
    except TypeError:
        raise OptionError(
            f"padding must be a whole number, a pair of them, 'valid' or 'same'; got {padding!r}"
        ) from None
    if ph < 0 or pw < 0:
        raise OptionError(f"padding must be 0 or more, got {padding!r}")
    return (ph, ph), (pw, pw)


def _finite(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise OptionError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise OptionError(f"{what} must be a finite number, got {value!r}")
    return number
