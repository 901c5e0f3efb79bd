"""The confusion matrix: rows are true classes, columns predicted; the diagonal is right."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from convlens.plots.style import COUNT_CMAP, new_figure


def confusion_figure(
    confusion: Sequence[Sequence[int]], class_names: Sequence[str], title: str = ""
) -> Figure:
    matrix = np.asarray(confusion)
    k = len(class_names)
    size = max(4.5, 0.55 * k + 2.0)
    figure = new_figure(size + 1.0, size)
    ax = figure.subplots()
    image = ax.imshow(matrix, cmap=COUNT_CMAP)
    ax.set_xticks(range(k), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
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
