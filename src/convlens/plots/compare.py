"""Models side by side: accuracy per epoch, and final test accuracy on a 0-100% axis.

The bars start at 0, so their heights compare honestly; the whiskers are each accuracy's
95% interval (one seed) or ± one standard deviation over seeds, and the title under the
bars gives the decision of McNemar's exact test (:mod:`convlens.compare`), so a gap the
eye cannot see is not read as a win either.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from convlens.plots.style import epoch_axis, new_figure


def compare_figure(
    rows: Sequence[dict[str, Any]],
    histories: Sequence[Sequence[dict[str, float]]],
    headline: Sequence[str] = (),
    seeds: Sequence[int] = (0,),
) -> Figure:
    """Left: test (solid) and train (dashed) accuracy per epoch of each model's first
    seed. Right: final test accuracy per model, bars from 0%, with whiskers."""
    figure = new_figure(10.5, 4.4)
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
        measured = all("train_accuracy" in r for r in history)
        curve_ax.plot(
            epochs,
            [r.get("train_accuracy", r.get("running_accuracy")) for r in history],
            "s--",
            color=color,
            alpha=0.6,
            label=f"{row['model']} train" + ("" if measured else " (running mean)"),
        )
    seed_note = f" (seed {seeds[0]})" if len(seeds) > 1 else ""
    curve_ax.set_title(f"Accuracy per epoch{seed_note}", fontsize=11)
    curve_ax.set_ylabel("accuracy")
    epoch_axis(curve_ax, [int(r["epoch"]) for history in histories for r in history])
    curve_ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))  # as the range needs
    curve_ax.grid(alpha=0.3)
    curve_ax.legend(fontsize=8)

    names = [row["model"] for row in rows]
    accuracies = [row["test_accuracy"] for row in rows]
    repeated = len(seeds) > 1
    if repeated:
        errors: Any = [row.get("test_accuracy_std") or 0.0 for row in rows]
        whisker = f"whiskers: ± std over {len(seeds)} seeds"
    else:
        errors = [
            [a - row["test_accuracy_low"] for a, row in zip(accuracies, rows, strict=True)],
            [row["test_accuracy_high"] - a for a, row in zip(accuracies, rows, strict=True)],
        ]
        whisker = "whiskers: 95% interval"
    bars = bar_ax.bar(
        names, accuracies, color=colors, yerr=errors, capsize=6, error_kw={"elinewidth": 1.2}
    )
    for bar, row in zip(bars, rows, strict=True):
        spread = f" ± {100 * row['test_accuracy_std']:.2f}" if repeated else ""
        bar_ax.text(
            bar.get_x() + bar.get_width() / 2,
            0.04,
            f"{row['test_accuracy']:.2%}{spread}\n{row['params']:,} params\n"
            + (  # an existing run (e.g. imported) was not trained here
                f"{row['seconds_per_epoch']:.1f} s/epoch"
                if row.get("seconds_per_epoch") is not None
                else "not trained here"
            ),
            ha="center",
            va="bottom",
            fontsize=8,
            color="white",
        )
    bar_ax.set_ylim(0.0, 1.0)
    bar_ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    bar_ax.set_ylabel("test accuracy (axis from 0%)")
    bar_ax.set_xlabel(f"model ({whisker})")
    lines = [wrapped for text in headline for wrapped in textwrap.wrap(text, 62)]
    bar_ax.set_title("\n".join(lines) or "Final test accuracy", fontsize=10)
    return figure
