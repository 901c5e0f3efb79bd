"""Learned kernels as a grid: one small k x k cell per filter, blue negative, red positive.

The colours are centred on 0 with symmetric limits, so a white cell is a weight of 0 and
equal blues and reds are equal magnitudes: a vertical-edge detector reads as a column
of red beside a column of blue, like the lesson's hand-made kernel. A kernel of a layer
with several input channels (``conv2d_1`` sees 64) is one k x k grid per channel; the
figure shows one channel or their mean, and says which.
"""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure

from convlens.plots.journey import cell_grid, grid_shape
from convlens.plots.style import new_figure

__all__ = ["KERNEL_CMAP", "filters_figure"]

KERNEL_CMAP = "RdBu_r"  # diverging: blue < 0 < red, white at 0


def filters_figure(
    weights: np.ndarray,
    layer: str,
    channel: int | str = "mean",
    title: str | None = None,
    dead: np.ndarray | None = None,
    reference_count: int = 0,
) -> Figure:
    """All kernels of one conv layer: ``weights`` (F, C, k, k), one cell per filter.

    ``channel``: an input channel index, or "mean" (over the C input channels). With one
    input channel the two are the same and the figure just says so. ``dead`` (F,) bool
    marks the filters whose output is 0 on every one of ``reference_count`` test images.
    """
    count, channels, kh, kw = weights.shape
    if channels == 1:
        shown, note = weights[:, 0], "1 input channel"
    elif channel == "mean":
        shown, note = weights.mean(axis=1), f"mean over its {channels} input channels"
    else:
        shown, note = weights[:, int(channel)], f"input channel {channel} of {channels}"
    rows, cols = grid_shape(count)
    cell = 0.8 if cols > 4 else 1.3
    figure = new_figure(cell * cols + 1.3, cell * rows * 1.15 + 1.3)
    limit = float(np.abs(shown).max()) or 1.0
    what = "mean weight" if channels > 1 and channel == "mean" else "weight"
    cell_grid(
        figure,
        shown,
        (rows, cols),
        cmap=KERNEL_CMAP,
        limits=(-limit, limit),
        dead=dead,
        scale_label=f"{what} (0 is white)",
        label_size=9,
    )
    heading = title or f"The {count} learned {kh}x{kw} kernels of {layer}"
    if channels > 1 and title is None:
        heading += f"\n{note}"
    figure.suptitle(heading, fontsize=14, fontweight="bold")
    footer = f"{note}; red positive, blue negative, one colour scale for all"
    if channels > 1 and channel == "mean":
        footer += f"; --channel 0..{channels - 1} draws one input channel's kernels"
    lines = textwrap.wrap(footer, int(13 * figure.get_figwidth()))
    if dead is not None:
        lines += textwrap.wrap(
            f"{int(dead.sum())} of {count} filters are dead (red label): their output is 0 "
            f"on every one of {reference_count:,} test images",
            int(13 * figure.get_figwidth()),
        )
    figure.text(
        0.5,
        0.005,
        "\n".join(lines),
        ha="center",
        va="bottom",
        fontsize=9,
        color="#555555",
    )
    bottom = (0.2 + 0.16 * len(lines)) / figure.get_figheight()  # room for the footer lines
    figure.get_layout_engine().set(rect=(0, bottom, 1, 1 - bottom))
    return figure
