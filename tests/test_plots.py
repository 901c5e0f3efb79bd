"""What the figures claim, read back from the matplotlib objects: axes, ticks, marks."""

from __future__ import annotations

import pytest

from convlens.plots.compare import compare_figure
from convlens.plots.curves import curves_figure

ONE_EPOCH = [
    {"epoch": 1, "train_loss": 0.6, "train_accuracy": 0.8, "test_loss": 0.5, "test_accuracy": 0.82}
]


def _ticks(ax) -> list[float]:
    ax.figure.canvas.draw()
    low, high = ax.get_xlim()
    return [t for t in ax.get_xticks() if low <= t <= high]


def test_a_one_epoch_run_has_whole_epoch_ticks_and_markers() -> None:
    figure = curves_figure(ONE_EPOCH)
    for ax in figure.axes:
        assert _ticks(ax) == [1.0]
        assert all(line.get_marker() not in (None, "None", "") for line in ax.get_lines()[:2])


def test_the_curves_mark_the_epoch_judged_with_views() -> None:
    """The lines are the image alone (and say so); the last epoch's figures with the
    recipe's views are their own points, at their own values."""
    rows = [
        {**ONE_EPOCH[0], "epoch": 1},
        {**ONE_EPOCH[0], "epoch": 2, "tta_views": 6, "tta_train_loss": 0.4,
         "tta_train_accuracy": 0.86, "tta_test_loss": 0.45, "tta_test_accuracy": 0.84},
    ]  # fmt: skip
    loss_ax, acc_ax = curves_figure(rows).axes
    lines = {line.get_label(): line for line in acc_ax.get_lines()}
    assert "test (image alone)" in lines and "train (image alone)" in lines
    assert list(lines["test, 6 views"].get_ydata()) == [0.84]
    assert list(lines["train, 6 views"].get_xdata()) == [2]
    loss_lines = {line.get_label(): line for line in loss_ax.get_lines()}
    assert list(loss_lines["test, 6 views"].get_ydata()) == [0.45]
    plain = {line.get_label() for line in curves_figure(ONE_EPOCH).axes[1].get_lines()}
    assert plain == {"train", "test"}


def test_compare_bars_start_at_zero_with_labelled_axes() -> None:
    row = {
        "model": "cnn",
        "params": 10,
        "seconds_per_epoch": 1.0,
        "test_accuracy": 0.9,
        "test_accuracy_low": 0.88,
        "test_accuracy_high": 0.92,
        "test_accuracy_std": 0.0,
    }
    figure = compare_figure(
        [row, {**row, "model": "dnn"}],
        [ONE_EPOCH, ONE_EPOCH],
        ["cnn and dnn: a tie within noise (p = 1)"],
    )
    curves, bars = figure.axes
    assert bars.get_ylim() == (0.0, 1.0)
    assert "0%" in bars.get_ylabel() and bars.get_xlabel().startswith("model")
    assert "tie within noise" in bars.get_title()
    assert curves.get_ylabel() == "accuracy" and _ticks(curves) == [1.0]


def test_the_filter_slide_draws_its_pictures_to_one_scale() -> None:
    """28x28 -> 26x26 -> 13x13: a pixel is as wide in every picture panel."""
    import numpy as np

    from convlens.byhand import get_kernel
    from convlens.plots.hand_kernel import filter_figure

    figure = filter_figure(np.zeros((28, 28), np.uint8), get_kernel("vertical"))
    figure.canvas.draw()
    original, _, _, _, filtered, _, pooled = figure.axes
    width = original.get_window_extent().width
    assert filtered.get_window_extent().width / width == pytest.approx(26 / 28, rel=0.02)
    assert pooled.get_window_extent().width / width == pytest.approx(13 / 28, rel=0.02)


def test_compare_curve_ticks_never_repeat_a_label_on_a_narrow_range() -> None:
    """Accuracies 78.6% to 81.8%: ticks every half point must not all read '80%'."""
    history = [{**ONE_EPOCH[0], "train_accuracy": 0.818, "test_accuracy": 0.7865}]
    row = {
        "model": "dnn",
        "params": 1,
        "seconds_per_epoch": 1.0,
        "test_accuracy": 0.7865,
        "test_accuracy_low": 0.78,
        "test_accuracy_high": 0.79,
        "test_accuracy_std": 0.0,
    }
    curves = compare_figure([row], [history]).axes[0]
    curves.figure.canvas.draw()
    low, high = curves.get_ylim()
    labels = [t.get_text() for t in curves.get_yticklabels() if low <= t.get_position()[1] <= high]
    assert len(labels) == len(set(labels)) > 1
