"""The Pareto front and the sweet spot against answers worked out by hand, for each cost."""

from __future__ import annotations

import pytest

from convlens.errors import OptionError
from convlens.experiments.pareto import pareto_figure, pareto_front, sweet_spot
from convlens.experiments.sweep import format_table


def _row(config: str, seconds: float, accuracy: float, params: int, flops: float) -> dict:
    return {
        "config": config,
        "status": "ok",
        "train_seconds_mean": seconds,
        "test_accuracy_mean": accuracy,
        "test_accuracy_std": 0.001,
        "train_accuracy_mean": accuracy + 0.01,
        "gap_mean": 0.01,
        "params": params,
        "flops_per_image": flops,
    }


# A is fastest, B most accurate and smallest, C slow, big and in between.
ROWS = [
    _row("A", 10.0, 0.900, 1_000, 2e6),
    _row("B", 20.0, 0.920, 500, 1e6),
    _row("C", 30.0, 0.910, 3_000, 5e6),
]


def test_the_front_and_the_sweet_spot_for_each_cost() -> None:
    assert pareto_front(ROWS) == [0, 1]  # by seconds: A, then B; C is beaten by B
    assert pareto_front(ROWS, "params") == [1] == pareto_front(ROWS, "mflops")
    assert sweet_spot(ROWS, 0.003) == 1  # only B is within 0.3 points of the best
    assert sweet_spot(ROWS, 0.03) == 0  # A is within 3 points and fastest
    assert sweet_spot(ROWS, 0.03, "params") == 1  # B has the fewest parameters
    with pytest.raises(OptionError, match="unknown cost 'watts'"):
        pareto_front(ROWS, "watts")


@pytest.mark.parametrize("cost", ["seconds", "params", "mflops"])
def test_the_figure_draws_the_front_even_of_one_configuration(cost) -> None:
    figure = pareto_figure(ROWS, 0.003, cost=cost)
    (ax,) = figure.axes
    (front,) = [line for line in ax.get_lines() if line.get_label().startswith("Pareto front")]
    assert len(front.get_xdata()) >= 2  # a staircase, not a lone marker
    assert {"seconds": "training time", "params": "parameters", "mflops": "MFLOPs"}[
        cost
    ] in ax.get_xlabel()


def test_the_table_marks_the_front_and_the_sweet_spot_and_names_the_cost() -> None:
    rows = [
        {**r, "pareto": i in pareto_front(ROWS), "sweet_spot": i == sweet_spot(ROWS, 0.003)}
        for i, r in enumerate(ROWS)
    ]
    lines = format_table(rows, [], "B", 0.003).splitlines()
    assert lines[2].startswith(" *A") and lines[3].startswith(">*B") and lines[4].startswith("  C")
    assert "(> sweet spot, * on the Pareto front, cost: training time" in lines[5]
    text = format_table(rows, [], "B", 0.003, cost="params")
    assert "Sweet spot: B: 92.00% test accuracy with 500 parameters" in text
