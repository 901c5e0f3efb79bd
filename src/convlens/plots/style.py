"""Shared figure conventions: one colour per meaning, so every figure reads the same way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure

TRAIN_COLOR = "#1f77b4"  # train: blue, everywhere
TEST_COLOR = "#d62728"  # test: red, everywhere
FEATURE_CMAP = "inferno"  # feature maps, as in the lesson
IMAGE_CMAP = "gray"  # input images
COUNT_CMAP = "Blues"  # confusion counts


DPI = 110  # every figure's resolution


def new_figure(width: float, height: float, *, fixed: bool = False) -> Figure:
    """A figure not attached to pyplot (thread-safe, nothing global left behind).

    By default matplotlib's constrained layout places the axes. ``fixed=True``: the caller
    places them (``subplots_adjust``, ``add_axes``), for the figures of every run's finish,
    whose layout is known: constrained layout measures every text artist in several
    rounds and was about 45% of their ``savefig`` time.
    """
    return Figure(figsize=(width, height), dpi=DPI, layout=None if fixed else "constrained")


def text_inches(texts: Sequence[str], fontsize: float) -> tuple[float, float]:
    """The widest and the tallest of ``texts`` in ``fontsize`` points, in inches, from
    the font's metrics (no drawing): what a fixed layout leaves room for."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    prop = FontProperties(size=fontsize)
    sizes = [text_to_path.get_text_width_height_descent(t, prop, ismath=False) for t in texts]
    if not sizes:
        return 0.0, 0.0
    return max(w for w, _, _ in sizes) / 72, max(h for _, h, _ in sizes) / 72


def epoch_axis(ax: Any, epochs: Sequence[int]) -> None:
    """Whole epochs on the x axis, even for a run of one epoch (a bare MaxNLocator then
    invents ticks 0.96, 0.98, ...): half an epoch of room on each side, integer ticks."""
    from matplotlib.ticker import MaxNLocator

    if epochs:
        ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlabel("epoch")
