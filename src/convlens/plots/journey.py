"""The journey of an image through the layers, as the lesson draws it, and one layer's maps.

``journey_figure``: rows are images, the first column is the input and the others are
one filter's feature map after each conv and pool layer (conv2d 26x26, max_pooling2d
13x13, ...). Each column shares one colour scale across the rows, with its colorbar
underneath, so a brighter cell really is a stronger response, and the same places
lighting up in every row is there to see.

``layer_maps_figure``: every filter's map of one layer for one image, in a near-square
grid (64 maps: 8x8), on one colour scale, beside the input.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from convlens.introspect.features import Journey
from convlens.introspect.liveness import silent_maps
from convlens.plots.style import FEATURE_CMAP, IMAGE_CMAP, new_figure

__all__ = ["bare", "cell_title", "grid_shape", "journey_figure", "layer_maps_figure", "show_image"]

_CELL = 1.75  # inches per map in the journey grid: 26x26 pixels stay crisp at 100%
DEAD_COLOR = "#d62728"  # a dead filter's label: red, as a warning
_COLORBAR = {"location": "bottom", "shrink": 0.85, "aspect": 14, "pad": 0.02}


def journey_figure(
    journey: Journey, row_labels: Sequence[str] | None = None, title: str | None = None
) -> Figure:
    """The lesson's grid: one row per image, input then one column per layer.

    ``row_labels`` name the images (e.g. "test #23, Ankle boot"); the prediction is
    added under each. Columns are titled with the layer and its map size.
    """
    n, cols = len(journey.images), len(journey.layers) + 1
    figure = new_figure(_CELL * cols + 2.0, _CELL * n + 1.6)  # + row labels; titles, bars
    axes = np.asarray(figure.subplots(n, cols, squeeze=False))  # (N, 1 + L)
    c, h, w = journey.images.shape[1:]
    for row in range(n):
        show_image(axes[row, 0], journey.images[row])
        name = row_labels[row] if row_labels is not None else f"image {row}"
        guess = f"{journey.predicted_name(row)} {journey.probability[row]:.0%}"
        label = name.replace(" (", "\n(") + f"\n\npredicted\n{guess}"
        axes[row, 0].set_ylabel(label, fontsize=10, rotation=0, ha="right", va="center", labelpad=8)
    axes[0, 0].set_title(f"input\n{h}x{w}" + ("" if c == 1 else f"x{c}"), fontsize=11)
    # An invisible colorbar under the inputs too, so every column is laid out alike and
    # the rows line up.
    spacer = figure.colorbar(axes[0, 0].images[0], ax=axes[:, 0], **_COLORBAR)
    spacer.ax.set_visible(False)

    for col, (layer, shape) in enumerate(zip(journey.layers, journey.shapes, strict=True), 1):
        maps = journey.maps[layer]  # (N, H_l, W_l)
        low, high = float(maps.min()), float(maps.max())
        silent = high <= low  # one value everywhere (a relu filter that never fires here)
        for row in range(n):
            image = axes[row, col].imshow(
                maps[row],
                cmap=FEATURE_CMAP,
                vmin=low,
                vmax=low + 1.0 if silent else high,
                interpolation="nearest",
            )
            bare(axes[row, col])
            if silent_maps(maps[row][None, None])[0, 0]:  # one value everywhere; 1x1: 0
                axes[row, col].text(
                    0.5,
                    0.5,
                    f"all {_number(float(maps[row].min()))}\n(silent)",
                    color="#bbbbbb",
                    ha="center",
                    va="center",
                    fontsize=10,
                    transform=axes[row, col].transAxes,
                )
        dead = layer in journey.dead
        axes[0, col].set_title(
            f"{layer}\n{shape[1]}x{shape[2]}" + ("\nDEAD filter" if dead else ""),
            fontsize=11,
            color=DEAD_COLOR if dead else "black",
        )
        bar = figure.colorbar(image, ax=axes[:, col], **_COLORBAR)
        bar.ax.tick_params(labelsize=8)
        if silent:
            bar.ax.set_visible(False)  # the colour carries no information; keep the layout
        else:
            bar.locator = _few_ticks()
            bar.update_ticks()
            bar.set_label("activation\n(input pixels 0..1)", fontsize=8)

    k = journey.filter_index
    figure.suptitle(
        title or f"Filter {k} of each layer, through the layers", fontsize=15, fontweight="bold"
    )
    figure.supxlabel(_journey_footer(journey), fontsize=9, color="#444444")
    return figure


def _journey_footer(journey: Journey) -> str:
    """What the columns are, why this filter, and what 'dead' means, as footer lines."""
    k = journey.filter_index
    convs = [
        name for name, s in zip(journey.layers, journey.shapes, strict=True) if "pool" not in name
    ]
    lines = []
    if len(convs) > 1:
        lines.append(
            f"Each layer's filter {k} is a different filter: {convs[1]}'s filter {k} reads every "
            f"map of the layer before it and does not continue {convs[0]}'s filter {k}; "
            "a pooling column shrinks the map to its left."
        )
    if journey.reason:
        lines.append(f"Why filter {k}: {journey.reason}.")
    if journey.dead:
        lines.append(
            f"DEAD: in {', '.join(journey.dead)} filter {k} outputs 0 on every one of "
            f"{journey.reference_count:,} test images; choose another with --filter."
        )
    lines.append(
        "Colours: each column on its own scale; the colour bars give the layer's "
        "activation for input pixels scaled to 0..1."
    )
    return "\n".join(textwrap.fill(line, 150) for line in lines)


def layer_maps_figure(
    maps: np.ndarray,
    layer: str,
    image: np.ndarray | None = None,
    label: str = "",
    title: str | None = None,
    dead: np.ndarray | None = None,
    reference_count: int = 0,
) -> Figure:
    """All feature maps of ``layer`` for one image: ``maps`` (C, H, W), ``image`` (C, H, W).

    One colour scale for the whole layer, so a filter that does not fire on this image
    is black rather than stretched noise. ``dead`` (C,) bool marks the filters silent on
    every one of ``reference_count`` test images (their index turns red, "dead").
    """
    channels, h, w = maps.shape
    rows, cols = grid_shape(channels)
    cell = 0.95 if cols > 4 else 1.6
    grid_width = cell * cols + 1.0
    side = 2.6 if image is not None else 0.0
    figure = new_figure(grid_width + side, max(cell * rows * 1.12 + 1.1, 3.6))
    if image is not None:
        left, right = figure.subfigures(1, 2, width_ratios=[side, grid_width], wspace=0.0)
        ax = left.subplots()
        show_image(ax, image)
        ax.set_title(f"input\n{image.shape[1]}x{image.shape[2]}", fontsize=11)
        if label:
            ax.set_xlabel(label, fontsize=10)
    else:
        right = figure
    low, high = float(maps.min()), float(maps.max())
    cell_grid(
        right,
        maps,
        (rows, cols),
        cmap=FEATURE_CMAP,
        limits=(low, high if high > low else low + 1.0),
        dead=dead,
        scale_label=f"activation of {layer}, one scale for all maps (input pixels 0..1)",
        label_size=8,
    )
    figure.suptitle(
        title or f"All {channels} feature maps of {layer} ({h}x{w})",
        fontsize=14,
        fontweight="bold",
    )
    silent = int(silent_maps(maps[None]).sum())  # one value everywhere (a 1x1 map: 0)
    footer = f"{silent} of {channels} maps are silent on this image (one value everywhere)"
    if dead is not None:
        footer += (
            f"; {int(dead.sum())} filters are dead (red): silent on every one of "
            f"{reference_count:,} test images"
        )
    figure.supxlabel(footer, fontsize=9, color="#444444")
    return figure


# --- cells ----------------------------------------------------------------------------


def show_image(ax: Any, image: np.ndarray) -> None:
    """A uint8 (C, H, W) image in an axis-free cell: gray for one channel, else RGB."""
    image = np.asarray(image)
    if image.shape[0] == 1:
        ax.imshow(image[0], cmap=IMAGE_CMAP, vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(image.transpose(1, 2, 0), interpolation="nearest")
    bare(ax)


def cell_grid(
    container: Any,
    cells: np.ndarray,
    grid: tuple[int, int],
    *,
    cmap: str,
    limits: tuple[float, float],
    dead: np.ndarray | None,
    scale_label: str,
    label_size: int,
) -> None:
    """``cells`` (N, H, W) as a ``grid`` of numbered, axis-free cells on one colour scale
    (``limits``), the unused cells hidden, and one colour bar for all of them: the layout
    of a layer's feature maps and of its learned kernels. ``container`` is a figure or a
    subfigure; ``dead`` (N,) bool marks cells whose number turns red."""
    rows, cols = grid
    axes = np.asarray(container.subplots(rows, cols, squeeze=False)).ravel()
    shown = None
    for index, ax in enumerate(axes):
        bare(ax)
        if index >= len(cells):
            ax.set_visible(False)
            continue
        shown = ax.imshow(
            cells[index], cmap=cmap, vmin=limits[0], vmax=limits[1], interpolation="nearest"
        )
        cell_title(ax, index, dead)
    if shown is not None:
        bar = container.colorbar(shown, ax=axes.tolist(), shrink=0.6, aspect=30, pad=0.01)
        bar.ax.tick_params(labelsize=8)
        bar.set_label(scale_label, fontsize=label_size)


def cell_title(ax: Any, index: int, dead: np.ndarray | None) -> None:
    """A grid cell's filter number, in red with 'dead' when ``dead[index]`` is True."""
    is_dead = dead is not None and bool(dead[index])
    ax.set_title(
        f"{index} dead" if is_dead else str(index),
        fontsize=7,
        pad=2,
        color=DEAD_COLOR if is_dead else "black",
    )


def grid_shape(count: int) -> tuple[int, int]:
    """(rows, cols) for ``count`` cells: near-square, no empty cells when a divisor allows
    it (64: 8x8, 32: 4x8, 10: 2x5), else square-ish with the last row part-filled."""
    side = math.ceil(math.sqrt(count))
    cols = next((d for d in range(side, 2 * side + 1) if count % d == 0), side)
    return math.ceil(count / cols), cols


def bare(ax: Any) -> None:
    """No ticks, thin gray frame: the picture is the content (labels still show)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#bbbbbb")
        spine.set_linewidth(0.6)


def _number(value: float) -> str:
    return f"{value:.3g}" if value else "0"


def _few_ticks() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(nbins=3)
