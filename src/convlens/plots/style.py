"""Shared figure conventions: one colour per meaning, so every figure reads the same way."""

from __future__ import annotations

from matplotlib.figure import Figure

TRAIN_COLOR = "#1f77b4"  # train: blue, everywhere
TEST_COLOR = "#d62728"  # test: red, everywhere
FEATURE_CMAP = "inferno"  # feature maps, as in the lesson
IMAGE_CMAP = "gray"  # input images
COUNT_CMAP = "Blues"  # confusion counts


def new_figure(width: float, height: float) -> Figure:
    """A figure not attached to pyplot (thread-safe, nothing global left behind)."""
    return Figure(figsize=(width, height), dpi=110, layout="constrained")
