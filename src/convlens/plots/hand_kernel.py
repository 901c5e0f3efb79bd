"""One picture through one kernel, as a slide: original * kernel = filtered -> max-pooled.

The filtered image is rounded and clamped to 0..255 and shown in gray, as the lesson does:
negative responses are black, anything over 255 is white. The pictures are drawn to one
scale and each panel's title carries its size, so the shrinking (28x28 -> 26x26 -> 13x13)
is there to see and to read.
"""

from __future__ import annotations

import textwrap
from fractions import Fraction
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from convlens.byhand import Kernel, KernelError, clamp_to_uint8, conv2d, get_kernel, max_pool2d
from convlens.byhand.arithmetic import format_number
from convlens.errors import ImageError, OptionError

__all__ = ["filter_figure"]

_MARK = "#ff3b30"  # the marked pixel: a red that stands out on gray
_OP = {"fontsize": 26, "ha": "center", "va": "center", "color": "#444444"}


def filter_figure(
    image: Any,
    kernel: Any,
    *,
    pool: int | None = 2,
    weight: float = 1.0,
    kernel_name: str | None = None,
    mark: tuple[int, int] | None = None,
) -> Figure:
    """Original, kernel, filtered (valid conv x ``weight``, clamped) and max-pooled panels.

    ``image`` is (H, W) with pixel values 0..255 (a leading or trailing axis of size 1 is
    dropped). ``kernel`` is a (k, k) array or a :class:`~convlens.byhand.Kernel` (its name
    and description then label the slide). ``pool`` of ``None`` or 0 leaves out pooling.
    ``mark=(row, col)`` outlines the input window of output pixel [row, col] (the
    coordinates of :func:`convlens.byhand.explain_pixel`) and circles that output pixel.
    """
    description = None
    if isinstance(kernel, Kernel):
        kernel_name = kernel_name or (None if kernel.name == "custom" else kernel.name)
        description = None if kernel.name == "custom" else kernel.description
        kernel = kernel.values
    elif kernel_name:
        try:
            description = get_kernel(kernel_name).description
        except KernelError:
            description = None
    x = np.asarray(image)
    if x.ndim > 2:
        x = x.squeeze()
    if x.ndim != 2:
        raise ImageError(f"filter_figure takes one (H, W) grayscale image, got shape {x.shape}")
    k = np.asarray(kernel, dtype=np.float64)
    filtered = conv2d(x, k, weight=weight)  # (H, W) -> (H-kh+1, W-kw+1)
    pooled = max_pool2d(filtered, pool) if pool else None  # -> (H'//pool, W'//pool)
    (h, w), (kh, kw), (oh, ow) = x.shape, k.shape, filtered.shape
    if mark is not None and not (0 <= mark[0] < oh and 0 <= mark[1] < ow):
        raise OptionError(
            f"mark {tuple(mark)} is outside the {oh}x{ow} filtered image; "
            f"row goes from 0 to {oh - 1} and column from 0 to {ow - 1}"
        )

    # Columns: original | * | kernel | = | filtered | -> | pooled. The pictures are drawn
    # to one scale (a pixel is as wide in every panel), so the border the convolution loses
    # and the quartering by pooling are there to see; the kernel is drawn apart, at a
    # readable size, because it is a tool, not a picture.
    kernel_width = min(0.5 + 0.1 * (max(kh, kw) - 3), 0.9)
    ratios = [1.0, 0.16, kernel_width, 0.16, ow / w]
    if pooled is not None:
        ratios += [0.42, pooled.shape[1] / w]
    # Height follows the picture's shape: 3.1 in per image cell, plus titles and footer.
    height = 3.1 * min(max(h / w, 0.5), 2.0) + 1.9
    fig = Figure(figsize=(3.1 * sum(ratios) + 0.6, height), dpi=100, layout="constrained")
    axes = fig.subplots(1, len(ratios), gridspec_kw={"width_ratios": ratios})
    ax_img, ax_star, ax_k, ax_eq, ax_out = axes[:5]

    _show(ax_img, x, f"original\n{h}x{w}")
    _show(ax_out, clamp_to_uint8(filtered), f"filtered\n{oh}x{ow}")
    _draw_kernel(ax_k, k, kernel_name, weight)
    _operator(ax_star, "\u2217")  # the convolution star
    _operator(ax_eq, "=")
    if pooled is not None:
        ph, pw = pooled.shape
        _operator(axes[5], "\u2192", f"max pool\n{pool}x{pool}")
        _show(axes[6], clamp_to_uint8(pooled), f"max-pooled\n{ph}x{pw}")

    if mark is not None:
        row, col = mark
        ax_img.add_patch(
            Rectangle((col - 0.5, row - 0.5), kw, kh, fill=False, edgecolor=_MARK, linewidth=2)
        )
        _circle(ax_img, row + kh // 2, col + kw // 2, small=max(h, w) <= 64)
        _circle(ax_out, row, col, small=max(oh, ow) <= 64)
        if pooled is not None and row // pool < pooled.shape[0] and col // pool < pooled.shape[1]:
            _circle(axes[6], row // pool, col // pool, small=max(pooled.shape) <= 64)

    title = f"Convolution with the {kernel_name} kernel" if kernel_name else "Convolution"
    title += ", then max pooling" if pooled is not None else ""
    fig.suptitle(title, fontsize=17, fontweight="bold")
    # Footer: the sizes as a pipeline, then what the kernel does and how to read the grays.
    pipeline = _pipeline(x.shape, k.shape, filtered.shape, pool, pooled)
    note = "black: 0 or less, white: 255 or more (the sums are rounded and clamped to 0..255)"
    if description:
        note = f"{kernel_name}: {description}.   {note[0].upper()}{note[1:]}"
    lines = textwrap.wrap(note, int(11 * fig.get_figwidth()))  # ~11 characters an inch
    extra = 0.2 * (len(lines) - 1)  # inches for each line past the first
    fig.set_figheight(height + extra)
    height += extra
    fig.text(
        0.5, (0.34 + extra) / height, pipeline, ha="center", va="bottom", fontsize=13, color="#222"
    )
    fig.text(
        0.5, 0.08 / height, "\n".join(lines), ha="center", va="bottom", fontsize=11, color="#555"
    )
    fig.get_layout_engine().set(rect=(0, (0.7 + extra) / height, 1, 1 - (0.7 + extra) / height))
    return fig


def _pipeline(
    shape: tuple[int, ...],
    kshape: tuple[int, ...],
    fshape: tuple[int, ...],
    pool: int | None,
    pooled: np.ndarray | None,
) -> str:
    """'28x28 -> conv 3x3 -> 26x26 -> max pool 2 -> 13x13' with real arrows."""
    text = (
        f"{shape[0]}x{shape[1]} \u2192 conv {kshape[0]}x{kshape[1]} \u2192 {fshape[0]}x{fshape[1]}"
    )
    if pooled is not None:
        text += f" \u2192 max pool {pool} \u2192 {pooled.shape[0]}x{pooled.shape[1]}"
    return text


def _show(ax: Any, pixels: np.ndarray, title: str) -> None:
    """A gray image cell: 0 black, 255 white, no ticks, size in the title."""
    small = max(pixels.shape) <= 100
    ax.imshow(
        pixels,
        cmap="gray",
        vmin=0,
        vmax=255,
        interpolation="nearest" if small else "antialiased",
    )
    ax.set_title(title, fontsize=14)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#999999")


def _operator(ax: Any, symbol: str, caption: str | None = None) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, symbol, transform=ax.transAxes, **_OP)
    if caption:
        ax.text(
            0.5,
            0.62,
            caption,
            transform=ax.transAxes,
            ha="center",
            va="bottom",
            fontsize=12,
            color="#444444",
        )


def _draw_kernel(ax: Any, k: np.ndarray, name: str | None, weight: float) -> None:
    """The kernel as a small table of its numbers, cells tinted blue (negative) to red.

    A kernel of fractions with one denominator (box blur: all 1/9) is shown as whole
    numbers with the common factor underneath, the way it is written on a blackboard.
    """
    denominator = _common_denominator(k)
    shown = np.round(k * denominator, 9) if denominator > 1 else k
    limit = 1.6 * (float(np.abs(shown).max()) or 1.0)  # pale tints keep the numbers readable
    ax.imshow(shown, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    size = max(k.shape)
    fontsize = 15 if size <= 3 else 11 if size <= 5 else 8
    for (r, c), value in np.ndenumerate(shown):
        ax.text(c, r, _label(value), ha="center", va="center", fontsize=fontsize)
    # white lines between cells make it read as a grid of weights
    ax.set_xticks(np.arange(-0.5, k.shape[1]), minor=True)
    ax.set_yticks(np.arange(-0.5, k.shape[0]), minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_xticks([])
    ax.set_yticks([])
    title = f"kernel {k.shape[0]}x{k.shape[1]}"
    ax.set_title(f"{title}\n{name}" if name else title, fontsize=13)
    factors = [f"\u00d7 1/{denominator}"] if denominator > 1 else []
    if weight != 1:
        factors.append(f"\u00d7 weight {format_number(weight)}")
    if factors:
        ax.set_xlabel("\n".join(factors), fontsize=12)


def _common_denominator(k: np.ndarray) -> int:
    """The smallest d <= 256 that makes every entry a whole number, else 1."""
    if np.all(k == np.round(k)):
        return 1
    d = 1
    for value in k.ravel():
        fraction = Fraction(float(value)).limit_denominator(256)
        if abs(float(fraction) - value) > 1e-12:
            return 1
        d = d * fraction.denominator // np.gcd(d, fraction.denominator)
        if d > 256:
            return 1
    return int(d)


def _label(value: float) -> str:
    """Kernel numbers as people write them: 2, -1, 0.5, 1/9."""
    return format_number(value, fraction=True)


def _circle(ax: Any, row: int, col: int, *, small: bool) -> None:
    """Ring the pixel [row, col]; on big images the ring is larger than a pixel."""
    ax.plot(
        [col],
        [row],
        marker="o",
        markersize=7 if small else 14,
        markerfacecolor="none",
        markeredgecolor=_MARK,
        markeredgewidth=2,
    )
