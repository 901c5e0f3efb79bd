"""The confusion matrix: rows are true classes, columns predicted; the diagonal is right."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from convlens.plots.style import COUNT_CMAP, new_figure

MAX_INCHES = 14.0  # the largest side of the figure
LABELLED_CLASSES = 40  # classes named on each axis, at most


def confusion_figure(
    confusion: Sequence[Sequence[int]], class_names: Sequence[str], title: str = ""
) -> Figure:
    matrix = np.asarray(confusion)
    k = len(class_names)
    # The figure grows with the classes up to MAX_INCHES a side (150 classes made a 2.4 GB
    # canvas); past LABELLED_CLASSES only every n-th class is named.
    size = min(MAX_INCHES, max(4.5, 0.55 * k + 2.0))
    figure = new_figure(size + 1.0, size)
    ax = figure.subplots()
    image = ax.imshow(matrix, cmap=COUNT_CMAP, interpolation="nearest")
    step = max(1, -(-k // LABELLED_CLASSES))
    ticks = range(0, k, step)
    names = [str(class_names[i])[:24] for i in ticks]
    ax.set_xticks(ticks, names, rotation=45, ha="right", fontsize=8 if step == 1 else 6)
    ax.set_yticks(ticks, names, fontsize=8 if step == 1 else 6)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 20:
        threshold = matrix.max() / 2 if matrix.size else 0
        for i in range(k):
            for j in range(k):
                ax.text(
                    j,
                    i,
                    str(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if matrix[i, j] > threshold else "black",
                )
    figure.colorbar(image, ax=ax, shrink=0.8, label="images")
    accuracy = np.trace(matrix) / max(1, matrix.sum())
    ax.set_title(f"{title + ': ' if title else ''}{accuracy:.2%} correct")
    return figure
