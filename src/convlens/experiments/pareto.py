"""The trade-off of a sweep: accuracy against cost, its Pareto front and sweet spot.

The cost is one of :data:`COSTS`: the measured training time (``seconds``, the default;
what a learner waits for, but noisy on a shared machine), the parameter count
(``params``) or the forward pass's MFLOPs per image (``mflops``), both exact. A
configuration is on the *Pareto front* when no other one is both at least as cheap and at
least as accurate (and strictly better in one of the two). The *sweet spot* is the
cheapest configuration whose mean test accuracy is within ``margin`` of the best: "as good
as the best, for less". With a margin of 0.003 (0.3 points, 30 of Fashion-MNIST's 10,000
test images) differences smaller than seed-to-seed noise do not buy a costlier model.

Rows are dicts with at least ``config``, ``test_accuracy_mean`` (accuracies in 0..1) and
the cost's column (``train_seconds_mean``, ``params`` or ``flops_per_image``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from convlens.errors import OptionError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_MARGIN = 0.003


@dataclass(frozen=True)
class Cost:
    """What "cheaper" means: a results column, its scale for people, and its axis label."""

    name: str
    column: str
    scale: float  # shown value = column value * scale
    axis: str  # the figure's x label
    words: str  # in a sentence: "the least training time"

    def of(self, row: dict[str, Any]) -> float:
        return float(row[self.column])

    def shown(self, row: dict[str, Any]) -> str:
        value = self.of(row) * self.scale
        if self.name == "seconds":
            return f"{value:.1f} s of training"
        if self.name == "params":
            return f"{value:,.0f} parameters"
        return f"{value:.2f} MFLOPs per image"


COSTS: dict[str, Cost] = {
    "seconds": Cost(
        "seconds",
        "train_seconds_mean",
        1.0,
        "training time (seconds, mean over repeats; measured, so noisy)",
        "the least training time",
    ),
    "params": Cost("params", "params", 1.0, "parameters (exact)", "the fewest parameters"),
    "mflops": Cost(
        "mflops",
        "flops_per_image",
        1e-6,
        "MFLOPs per image, forward pass (exact)",
        "the fewest MFLOPs per image",
    ),
}
DEFAULT_COST = "seconds"


def get_cost(name: str) -> Cost:
    """The :class:`Cost` called ``name`` (seconds, params or mflops), or an OptionError."""
    if name not in COSTS:
        raise OptionError(f"unknown cost {name!r}; choose {', '.join(COSTS)}")
    return COSTS[name]


def pareto_front(rows: Sequence[dict[str, Any]], cost: str = DEFAULT_COST) -> list[int]:
    """Indices of the non-dominated rows (min cost, max accuracy), cheapest first."""
    measure = get_cost(cost).of
    front = []
    for i, row in enumerate(rows):
        t, a = measure(row), row["test_accuracy_mean"]
        dominated = any(
            measure(other) <= t
            and other["test_accuracy_mean"] >= a
            and (measure(other) < t or other["test_accuracy_mean"] > a)
            for j, other in enumerate(rows)
            if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: measure(rows[i]))


def sweet_spot(
    rows: Sequence[dict[str, Any]], margin: float = DEFAULT_MARGIN, cost: str = DEFAULT_COST
) -> int | None:
    """Index of the cheapest row within ``margin`` of the best mean test accuracy.

    Ties in cost go to the more accurate row. None when there are no rows.
    """
    if not rows:
        return None
    measure = get_cost(cost).of
    best = max(row["test_accuracy_mean"] for row in rows)
    close = [i for i, row in enumerate(rows) if row["test_accuracy_mean"] >= best - margin - 1e-12]
    return min(close, key=lambda i: (measure(rows[i]), -rows[i]["test_accuracy_mean"]))


def pareto_figure(
    rows: Sequence[dict[str, Any]],
    margin: float = DEFAULT_MARGIN,
    title: str = "",
    cost: str = DEFAULT_COST,
) -> Figure:
    """Test accuracy against cost; the front drawn as a staircase, the sweet spot ringed.

    Error bars show the standard deviation over repeats; the shaded band is the margin
    below the best accuracy, where the sweet spot is looked for. The staircase bounds
    what the front dominates: right of and below it, something is both cheaper and at
    least as accurate; a front of one configuration is still drawn.
    """
    from matplotlib.ticker import PercentFormatter

    from convlens.plots.style import TEST_COLOR, new_figure

    figure = new_figure(7.5, 4.8)
    ax = figure.subplots()
    if not rows:
        ax.text(0.5, 0.5, "no finished configuration", ha="center", va="center")
        ax.set_axis_off()
        return figure
    measure = get_cost(cost)
    times = [measure.of(row) * measure.scale for row in rows]
    accuracies = [row["test_accuracy_mean"] for row in rows]
    errors = [row.get("test_accuracy_std") or 0.0 for row in rows]
    front = pareto_front(rows, cost)
    spot = sweet_spot(rows, margin, cost)
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
    # The front as a staircase: from each front point right to the next one's cost, then
    # up to its accuracy; out to the right edge after the last one.
    front_x = [times[i] for i in front]
    front_y = [accuracies[i] for i in front]
    log = max(times) > 8 * min(times) > 0
    right = max(times) * (1.6 if log else 1.0) + (
        0 if log else 0.08 * (max(times) - min(times) or 1)
    )
    ax.step(
        [*front_x, right],
        [*front_y, front_y[-1]],
        where="post",
        color=TEST_COLOR,
        lw=1.5,
        label=f"Pareto front ({len(front)} of {len(rows)}: nothing is both cheaper and "
        "more accurate)",
    )
    ax.plot(front_x, front_y, "o", color=TEST_COLOR, ms=7, zorder=3)  # over the gray dots
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
    if log:
        ax.set_xscale("log")
    ax.set_xlim(right=right)
    low = min(a - e for a, e in zip(accuracies, errors, strict=True))
    span = max(best - low, 0.01)
    ax.set_ylim(low - 0.15 * span, best + 0.25 * span)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    ax.set_xlabel(measure.axis)
    ax.set_ylabel("test accuracy")
    ax.set_title(title or f"Accuracy against {measure.axis.split(' (')[0]}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return figure
