"""Models side by side: test accuracy per epoch, and final accuracy against time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from convlens.plots.style import new_figure


def compare_figure(
    rows: Sequence[dict[str, Any]], histories: Sequence[Sequence[dict[str, float]]]
) -> Figure:
    figure = new_figure(10.0, 3.8)
    curve_ax, bar_ax = figure.subplots(1, 2)
    colors = [f"C{i}" for i in range(len(rows))]
    for row, history, color in zip(rows, histories, colors, strict=True):
        epochs = [int(r["epoch"]) for r in history]
        curve_ax.plot(
            epochs,
            [r["test_accuracy"] for r in history],
            "o-",
            color=color,
            label=f"{row['model']} test",
        )
        curve_ax.plot(
            epochs,
            [r["train_accuracy"] for r in history],
            "--",
            color=color,
            alpha=0.6,
            label=f"{row['model']} train",
        )
    curve_ax.set_title("Accuracy per epoch (dashed: train)")
    curve_ax.set_xlabel("epoch")
    curve_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    curve_ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    curve_ax.grid(alpha=0.3)
    curve_ax.legend(fontsize=8)

    names = [row["model"] for row in rows]
    accuracies = [row["test_accuracy"] for row in rows]
    bars = bar_ax.bar(names, accuracies, color=colors)
    for bar, row in zip(bars, rows, strict=True):
        bar_ax.annotate(
            f"{row['test_accuracy']:.2%}\n{row['params']:,} params\n"
            f"{row['seconds_per_epoch']:.1f} s/epoch",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            textcoords="offset points",
            xytext=(0, -48),
            ha="center",
            fontsize=8,
            color="white",
        )
    low = min(accuracies)
    bar_ax.set_ylim(max(0.0, low - 0.1), min(1.0, max(accuracies) + 0.02))
    bar_ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    bar_ax.set_title("Final test accuracy")
    return figure
