"""Training curves: loss and accuracy per epoch, train against test."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from convlens.plots.style import TEST_COLOR, TRAIN_COLOR, epoch_axis, new_figure

WIDTH, HEIGHT = 9.0, 3.6  # inches
# The fixed layout, in inches: room for tick labels such as "0.2525" and "94.0%" left
# of each panel, the "epoch" label below, the panel titles (and the run's title) above.
LEFT, GAP, RIGHT, BOTTOM, TOP, SUPTITLE = 0.62, 0.78, 0.12, 0.55, 0.32, 0.28


def curves_figure(history: Sequence[dict[str, float]], title: str = "") -> Figure:
    """Two panels (loss, accuracy) from metrics rows; the best test epoch is marked.

    "train" is the network measured at the end of each epoch on a sample of training
    images; a run from before that measurement has only running means over the steps,
    drawn dashed and labelled so. The lines are the image alone; the epoch judged with
    test-time views too (the last, in a recipe with views) adds those figures as stars.
    A small run judged on a fixed test sample says so in its test label.
    """
    figure = new_figure(WIDTH, HEIGHT, fixed=True)
    loss_ax, acc_ax = figure.subplots(1, 2)
    panel = (WIDTH - LEFT - GAP - RIGHT) / 2
    figure.subplots_adjust(
        left=LEFT / WIDTH,
        right=1 - RIGHT / WIDTH,
        bottom=BOTTOM / HEIGHT,
        top=1 - (TOP + (SUPTITLE if title else 0.0)) / HEIGHT,
        wspace=GAP / panel,
    )
    epochs = [int(row["epoch"]) for row in history]
    measured = all("train_accuracy" in row for row in history)
    train_label = "train" if measured else "train (running mean over steps)"
    viewed = [r for r in history if "tta_views" in r]
    alone = " (image alone)" if viewed else ""
    sampled = history and history[-1].get("test_sampled")
    test_label = f"test ({int(history[-1]['test_images']):,} sampled)" if sampled else "test"
    for ax, key, label in ((loss_ax, "loss", "Loss"), (acc_ax, "accuracy", "Accuracy")):
        trains = [r.get(f"train_{key}", r.get(f"running_{key}")) for r in history]
        style = "o-" if measured else "o--"
        ax.plot(epochs, trains, style, color=TRAIN_COLOR, label=train_label + alone)
        tests = [r[f"test_{key}"] for r in history]
        ax.plot(epochs, tests, "s-", color=TEST_COLOR, label=test_label + alone)
        for part, color in (("train", TRAIN_COLOR), ("test", TEST_COLOR)):
            if viewed:
                ax.plot(
                    [r["epoch"] for r in viewed],
                    [r[f"tta_{part}_{key}"] for r in viewed],
                    "*",
                    markersize=11,
                    color=color,
                    label=f"{part}, {int(viewed[-1]['tta_views'])} views",
                )
        ax.set_title(label)
        epoch_axis(ax, epochs)
        ax.grid(alpha=0.3)
    acc_ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    if history:
        best = max(history, key=lambda r: r["test_accuracy"])
        # The note stays inside the panel (a fixed layout makes no room outside it):
        # centred under the point, or leaning inwards near either edge.
        low, high = acc_ax.get_xlim()
        where = (best["epoch"] - low) / (high - low)
        align = "right" if where > 0.8 else "left" if where < 0.2 and len(epochs) > 1 else "center"
        acc_ax.annotate(
            f"best test {best['test_accuracy']:.2%}\n(epoch {int(best['epoch'])})",
            (best["epoch"], best["test_accuracy"]),
            textcoords="offset points",
            xytext=(0, -34),
            ha=align,
            fontsize=8,
            arrowprops={"arrowstyle": "->", "color": "0.4"},
        )
    acc_ax.legend(loc="lower right")
    if title:
        figure.suptitle(title, y=1 - 0.06 / HEIGHT, va="top")
    return figure
