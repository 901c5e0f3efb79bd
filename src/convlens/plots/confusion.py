"""The confusion matrix: rows are true classes, columns predicted; the diagonal is right.

Drawn at the end of every run, so drawn cheaply: the axes are placed from the labels'
measured sizes (no constrained layout, which measured every text in several rounds), and
the counts in the cells are one collection of glyph outlines, drawn in one call, rather
than a hundred text artists laid out and rendered one by one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.path import Path
from matplotlib.transforms import Affine2D

from convlens.plots.style import COUNT_CMAP, new_figure, text_inches

MAX_INCHES = 14.0  # the largest side of the figure
LABELLED_CLASSES = 40  # classes named on each axis, at most
COUNTED_CLASSES = 20  # cells carry their count up to this many classes
COUNT_FONTSIZE = 7  # points
TICK_FONTSIZE = 8  # points (6 when only every n-th class is named)
LABEL_INCHES = 0.3  # an axis label ("true", "predicted") and the title: a 10-12 pt line
TICK_INCHES = 0.1  # a tick and the pad between it and its label
COLORBAR_INCHES = (0.25, 0.18, 0.75)  # pad before it, its width, its ticks and label


def confusion_figure(
    confusion: Sequence[Sequence[int]], class_names: Sequence[str], title: str = ""
) -> Figure:
    """The (K, K) counts as an image, named classes on both axes, the counts written in
    the cells for K <= ``COUNTED_CLASSES`` (white on dark cells), a colour bar."""
    matrix = np.asarray(confusion)
    k = len(class_names)
    # The figure grows with the classes up to MAX_INCHES a side (150 classes made a 2.4 GB
    # canvas); past LABELLED_CLASSES only every n-th class is named.
    size = min(MAX_INCHES, max(4.5, 0.55 * k + 2.0))
    width, height = size + 1.0, size
    figure = new_figure(width, height, fixed=True)
    step = max(1, -(-k // LABELLED_CLASSES))
    ticks = range(0, k, step)
    names = [str(class_names[i])[:24] for i in ticks]
    fontsize = TICK_FONTSIZE if step == 1 else 6
    # Room for the names: beside the rows, and below the columns rotated by 45 degrees.
    name_width, name_height = text_inches(names, fontsize)
    diagonal = (name_width + name_height) * np.sqrt(0.5)
    left = LABEL_INCHES + TICK_INCHES + name_width
    bottom = LABEL_INCHES + TICK_INCHES + diagonal
    pad, bar, bar_labels = COLORBAR_INCHES
    side = min(width - left - pad - bar - bar_labels, height - bottom - LABEL_INCHES)
    side = max(side, 1.0)
    ax = figure.add_axes((left / width, bottom / height, side / width, side / height))
    image = ax.imshow(matrix, cmap=COUNT_CMAP, interpolation="nearest")
    ax.set_xticks(ticks, names, rotation=45, ha="right", rotation_mode="default")
    ax.set_yticks(ticks, names)
    ax.tick_params(labelsize=fontsize)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= COUNTED_CLASSES:
        ax.add_collection(count_labels(matrix, ax), autolim=False)
    # the colour bar: 80% of the matrix's height, centred beside it
    bar_axes = figure.add_axes(
        (
            (left + side + pad) / width,
            (bottom + 0.1 * side) / height,
            bar / width,
            0.8 * side / height,
        )
    )
    figure.colorbar(image, cax=bar_axes, label="images")
    accuracy = np.trace(matrix) / max(1, matrix.sum())
    ax.set_title(f"{title + ': ' if title else ''}{accuracy:.2%} correct")
    return figure


def count_labels(matrix: np.ndarray, ax: Axes) -> PathCollection:
    """The (K, K) counts as one collection: each count's glyph outline, centred on its
    cell of ``ax`` (column j, row i in data coordinates), white where the cell is darker than half
    the largest count, else black. Its ``get_label()`` names what it shows."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    prop = FontProperties(size=COUNT_FONTSIZE)
    outlines: dict[str, Path] = {}
    paths, offsets, colors = [], [], []
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        text = str(count)
        if text not in outlines:
            outline = TextPath((0, 0), text, prop=prop)
            # centred on the glyphs' box (points), as ha/va="center" would place them: the
            # box of the control points (Path.get_extents solves every curve, 10x slower)
            middle = (outline.vertices.min(axis=0) + outline.vertices.max(axis=0)) / 2
            outlines[text] = outline.transformed(Affine2D().translate(*-middle))
        paths.append(outlines[text])
        offsets.append((j, i))
        colors.append("white" if count > threshold else "black")
    labels = PathCollection(
        paths,
        offsets=offsets,
        offset_transform=ax.transData,  # where: the cells
        # the outlines' points -> inches -> pixels, at whatever dpi the figure is saved
        transform=Affine2D().scale(1 / 72) + ax.figure.dpi_scale_trans,
        facecolors=colors,
        edgecolors="none",
        linewidths=0,
        label="counts",
    )
    return labels
