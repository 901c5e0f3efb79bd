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


def new_figure(width: float, height: float) -> Figure:
    """A figure not attached to pyplot (thread-safe, nothing global left behind)."""
    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def epoch_axis(ax: Any, epochs: Sequence[int]) -> None:
    """Whole epochs on the x axis, even for a run of one epoch (a bare MaxNLocator then
    invents ticks 0.96, 0.98, ...): half an epoch of room on each side, integer ticks."""
    from matplotlib.ticker import MaxNLocator

    if epochs:
        ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlabel("epoch")
