"""Why the network said what it said: the image, Grad-CAM over it, input gradients, top 5.

Panels, left to right: the image as the network saw it (gray, or colour); the Grad-CAM
heat map laid over it (transparent where there is no evidence); the input gradients
(which pixels would change the score most); and the five most likely classes, with a
legend for their colours and the true class marked when it is known. A model without conv
layers (``dnn``) has no Grad-CAM panel, and the figure says why. A footer says on which
layer's map Grad-CAM was computed and which of its cells were left out because they never
reach the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LinearSegmentedColormap, Normalize
from matplotlib.figure import Figure

from convlens.introspect.saliency import Explanation
from convlens.plots.journey import bare, show_image
from convlens.plots.style import FEATURE_CMAP, new_figure

__all__ = ["explain_figure"]

_CELL = 3.0
_HIGHLIGHT = "#d62728"  # the explained class's bar
_PREDICTED = "#555555"  # the predicted class, when another one is explained
_OTHER = "#aaaaaa"
_TRUE = "#2ca02c"  # the true class's marker
# Perceptually uniform (equal steps of evidence look like equal steps of colour), unlike
# the customary jet, whose bright cyan and yellow bands invent edges; plasma has no black,
# so it never reads as a shadow on the gray image.
CAM_CMAP = "plasma"


def explain_figure(
    explanation: Explanation,
    class_names: Sequence[str],
    source: str = "",
    alpha: float = 0.55,
    true_class: int | None = None,
) -> Figure:
    """The explanation as a slide; ``source`` names the image ("test #0", "shoe.png");
    ``true_class``, when known (a test image), is marked in the bar chart."""
    names = [str(n) for n in class_names] or [str(k) for k in range(len(explanation.probabilities))]
    has_cam = explanation.cam is not None
    ratios = [1.0] * (3 if has_cam else 2) + [1.15]
    figure = new_figure(_CELL * sum(ratios) + 0.8, _CELL + 1.5)
    axes = figure.subplots(1, len(ratios), gridspec_kw={"width_ratios": ratios})
    c, h, w = explanation.image.shape

    show_image(axes[0], explanation.image)
    axes[0].set_title(f"{source or 'input'}\n{h}x{w}" + ("" if c == 1 else f"x{c}"), fontsize=11)
    _colorbar(figure, axes[0].images[0], axes[0]).ax.set_visible(False)  # align the rows

    target = names[explanation.target]
    if has_cam:
        ax = axes[1]
        show_image(ax, _gray(explanation.image))
        ax.imshow(
            explanation.cam,
            cmap=_fading(CAM_CMAP),
            vmin=0,
            vmax=1,
            alpha=alpha,
            interpolation="bilinear",
        )
        ax.set_title(
            f"Grad-CAM on {explanation.cam_layer}\nwhere the evidence for '{target}' is",
            fontsize=11,
        )
        bar = _colorbar(figure, ScalarMappable(Normalize(0, 1), CAM_CMAP), ax)
        bar.set_label("evidence, as a fraction of its maximum", fontsize=8)
    ax = axes[-2]
    grads = ax.imshow(
        explanation.gradients, cmap=FEATURE_CMAP, vmin=0, vmax=1, interpolation="nearest"
    )
    bare(ax)
    ax.set_title(f"input gradients\n|d score('{target}') / d pixel|", fontsize=11)
    _colorbar(figure, grads, ax).set_label("|gradient|, as a fraction of its maximum", fontsize=8)
    _top_classes(axes[-1], explanation, names, true_class)

    p = explanation.probabilities
    title = f"Predicted {names[explanation.predicted]} ({p[explanation.predicted]:.1%})"
    if explanation.target != explanation.predicted:
        title += f"; explaining {target} ({p[explanation.target]:.1%})"
    figure.suptitle(title, fontsize=15, fontweight="bold")
    if has_cam:
        footer = (
            f"Grad-CAM computed on {explanation.cam_source()}; "
            "input pixels that reach no output are left uncoloured."
        )
    else:
        footer = (
            "No Grad-CAM: the model has no conv layer, so there is no map "
            "of where; the input gradients work for any model."
        )
    figure.text(0.5, 0.01, footer, ha="center", va="bottom", fontsize=9, color="#555555")
    figure.get_layout_engine().set(rect=(0, 0.05, 1, 0.95))
    return figure


def _top_classes(
    ax: Any,
    explanation: Explanation,
    names: Sequence[str],
    true_class: int | None = None,
    k: int = 5,
) -> None:
    """Horizontal bars of the k most likely classes, the explained one in red, a legend
    for the colours, and the true class (when known) marked with a green check."""
    from matplotlib.patches import Patch

    p = explanation.probabilities
    order = list(np.argsort(-p)[:k])
    if explanation.target not in order:
        order[-1] = explanation.target
    if true_class is not None and true_class not in order:
        order[-2 if order[-1] == explanation.target else -1] = true_class
    order = order[::-1]  # most likely on top
    colors = [
        _HIGHLIGHT
        if i == explanation.target
        else _PREDICTED
        if i == explanation.predicted
        else _OTHER
        for i in order
    ]
    ax.barh(range(len(order)), p[order], color=colors)
    labels = [names[i] + (" \u2713" if i == true_class else "") for i in order]
    ax.set_yticks(range(len(order)), labels, fontsize=10)
    for tick, i in zip(ax.get_yticklabels(), order, strict=True):
        if i == true_class:
            tick.set_color(_TRUE)
            tick.set_fontweight("bold")
    legend = [Patch(color=_HIGHLIGHT, label="explained class")]
    if explanation.target != explanation.predicted:
        legend.append(Patch(color=_PREDICTED, label="predicted class"))
    legend.append(Patch(color=_OTHER, label="other classes"))
    if true_class is not None:
        legend.append(Patch(color=_TRUE, label="\u2713 true class"))
    ax.legend(handles=legend, fontsize=7, loc="lower right", frameon=False)
    ax.set_xlim(0, 1)
    ax.set_xticks([0, 0.5, 1], ["0", "50%", "100%"], fontsize=9)
    for y, i in enumerate(order):
        inside = p[i] > 0.75  # long bars carry their number inside, in white
        ax.text(
            p[i] - 0.02 if inside else p[i] + 0.02,
            y,
            f"{p[i]:.1%}",
            va="center",
            ha="right" if inside else "left",
            fontsize=9,
            color="white" if inside else "#222222",
        )
    ax.set_title("top classes", fontsize=11)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _colorbar(figure: Figure, mappable: Any, ax: Any) -> Any:
    bar = figure.colorbar(mappable, ax=ax, location="bottom", shrink=0.8, aspect=18, pad=0.03)
    bar.set_ticks([0, 0.5, 1])
    bar.ax.tick_params(labelsize=8)
    return bar


def _gray(image: np.ndarray) -> np.ndarray:
    """(C, H, W) uint8 -> (1, H, W) gray, so the heat map's colours are the only colours."""
    if image.shape[0] == 1:
        return image
    weights = np.array([0.299, 0.587, 0.114]).reshape(3, 1, 1)
    return np.round((image * weights).sum(axis=0, keepdims=True)).astype(np.uint8)


def _fading(name: str) -> LinearSegmentedColormap:
    """``name`` with opacity rising from 0 to 1: no evidence leaves the image untouched."""
    from matplotlib import colormaps

    colors = colormaps[name](np.linspace(0, 1, 256))
    colors[:, 3] = np.clip(np.linspace(0, 1, 256) * 2.5, 0, 1)
    return LinearSegmentedColormap.from_list(f"{name}_fading", colors)
