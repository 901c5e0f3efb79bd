"""The trade-off of a sweep: accuracy against training time, its Pareto front and sweet spot.

A configuration is on the *Pareto front* when no other one is both at least as fast and at
least as accurate (and strictly better in one of the two). The *sweet spot* is the
cheapest configuration whose mean test accuracy is within ``margin`` of the best: "as good
as the best, for less". With a margin of 0.003 (0.3 points, 30 of Fashion-MNIST's 10,000
test images) differences smaller than seed-to-seed noise do not buy a slower model.

Rows are dicts with at least ``config``, ``train_seconds_mean`` and
``test_accuracy_mean`` (accuracies in 0..1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_MARGIN = 0.003


def pareto_front(rows: Sequence[dict[str, Any]]) -> list[int]:
    """Indices of the non-dominated rows (min time, max accuracy), fastest first."""
    front = []
    for i, row in enumerate(rows):
        t, a = row["train_seconds_mean"], row["test_accuracy_mean"]
        dominated = any(
            other["train_seconds_mean"] <= t
            and other["test_accuracy_mean"] >= a
            and (other["train_seconds_mean"] < t or other["test_accuracy_mean"] > a)
            for j, other in enumerate(rows)
            if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: rows[i]["train_seconds_mean"])


def sweet_spot(rows: Sequence[dict[str, Any]], margin: float = DEFAULT_MARGIN) -> int | None:
    """Index of the cheapest row within ``margin`` of the best mean test accuracy.

    Ties in time go to the more accurate row. None when there are no rows.
    """
    if not rows:
        return None
    best = max(row["test_accuracy_mean"] for row in rows)
    close = [i for i, row in enumerate(rows) if row["test_accuracy_mean"] >= best - margin - 1e-12]
    return min(close, key=lambda i: (rows[i]["train_seconds_mean"], -rows[i]["test_accuracy_mean"]))


def pareto_figure(
    rows: Sequence[dict[str, Any]], margin: float = DEFAULT_MARGIN, title: str = ""
) -> Figure:
    """Test accuracy against training time; the front joined, the sweet spot ringed.

    Error bars show the standard deviation over repeats; the shaded band is the margin
    below the best accuracy, where the sweet spot is looked for.
    """
    from matplotlib.ticker import PercentFormatter

    from convlens.plots.style import TEST_COLOR, new_figure

    figure = new_figure(7.5, 4.8)
    ax = figure.subplots()
    if not rows:
        ax.text(0.5, 0.5, "no finished configuration", ha="center", va="center")
        ax.set_axis_off()
        return figure
    times = [row["train_seconds_mean"] for row in rows]
    accuracies = [row["test_accuracy_mean"] for row in rows]
    errors = [row.get("test_accuracy_std") or 0.0 for row in rows]
    front = pareto_front(rows)
    spot = sweet_spot(rows, margin)
    best = max(accuracies)
    ax.axhspan(
        best - margin,
        best,
        color=TEST_COLOR,
        alpha=0.08,
        lw=0,
        label=f"within {100 * margin:.1f} points of the best",
    )
    ax.errorbar(
        times,
        accuracies,
        yerr=errors,
        fmt="o",
        color="0.45",
        ms=6,
        capsize=3,
        label="configuration (mean ± std over repeats)",
    )
    ax.plot(
        [times[i] for i in front],
        [accuracies[i] for i in front],
        "-",
        color=TEST_COLOR,
        lw=1.5,
        label="Pareto front",
    )
    ax.plot([times[i] for i in front], [accuracies[i] for i in front], "o", color=TEST_COLOR, ms=6)
    if spot is not None:
        ax.plot(
            times[spot],
            accuracies[spot],
            "o",
            ms=18,
            mfc="none",
            mec="#2ca02c",
            mew=2.5,
            label=f"sweet spot: {rows[spot]['config']}",
        )
    for row, t, a in zip(rows, times, accuracies, strict=True):
        ax.annotate(row["config"], (t, a), textcoords="offset points", xytext=(7, 5), fontsize=7)
    if max(times) > 8 * min(times) > 0:
        ax.set_xscale("log")
    low = min(a - e for a, e in zip(accuracies, errors, strict=True))
    span = max(best - low, 0.01)
    ax.set_ylim(low - 0.15 * span, best + 0.25 * span)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    ax.set_xlabel("training time (seconds, mean over repeats)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title or "Accuracy against training time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return figure
