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


def _inside(figure) -> None:
    """Everything drawn lies inside the canvas (a fixed layout clips nothing): the tight
    box of all drawn artists, ticks, labels and titles included, in inches."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)  # as savefig draws it (a bare Figure's does not)
    canvas.draw()
    drawn = figure.get_tightbbox(canvas.get_renderer())
    width, height = figure.get_size_inches()
    assert drawn.x0 >= -0.01 and drawn.y0 >= -0.01, drawn
    assert drawn.x1 <= width + 0.01 and drawn.y1 <= height + 0.01, drawn


def test_the_curves_fixed_layout_keeps_every_label_on_the_canvas() -> None:
    """Tick labels, titles, the best-epoch note at either edge: all inside, and the loss
    panel's tick labels never reach into the accuracy panel."""
    rows = [
        {"epoch": e, "train_loss": 2.5 / e, "train_accuracy": 0.5 + 0.04 * e,
         "test_loss": 2.4 / e, "test_accuracy": 0.5 + 0.039 * e}
        for e in range(1, 13)
    ]  # fmt: skip
    for history in (rows, rows[::-1], ONE_EPOCH):  # best last, first, only
        figure = curves_figure(history, "a title (and its run)")
        _inside(figure)
        loss_ax, acc_ax = figure.axes
        reach = max(t.get_window_extent().x1 for t in acc_ax.get_yticklabels() if t.get_text())
        assert reach < acc_ax.get_window_extent().x0
        assert loss_ax.get_window_extent().x1 < min(
            t.get_window_extent().x0 for t in acc_ax.get_yticklabels() if t.get_text()
        )


def test_the_confusion_counts_sit_in_their_cells_in_their_colours() -> None:
    """One collection draws the counts: the glyphs of str(count) centred on cell (row i,
    column j), white on the dark cells, and every name and label on the canvas."""
    import numpy as np
    from matplotlib.textpath import TextPath

    from convlens.plots.confusion import COUNT_FONTSIZE, confusion_figure

    matrix = np.array([[950, 3, 47], [12, 870, 118], [0, 260, 740]])
    names = ["T-shirt/top", "Ankle boot", "a much longer class name"]
    figure = confusion_figure(matrix, names, "cnn")
    ax = figure.axes[0]
    (counts,) = [c for c in ax.collections if c.get_label() == "counts"]
    cells = [[j, i] for i in range(3) for j in range(3)]
    assert counts.get_offsets().tolist() == cells
    white = [tuple(c) == (1.0, 1.0, 1.0, 1.0) for c in counts.get_facecolors()]
    assert white == [bool(v > 950 / 2) for v in matrix.ravel()]
    for path, value in zip(counts.get_paths(), matrix.ravel(), strict=True):
        glyphs = TextPath((0, 0), str(value), size=COUNT_FONTSIZE).vertices
        assert np.allclose(path.vertices - path.vertices.mean(0), glyphs - glyphs.mean(0))
        assert np.allclose((path.vertices.min(0) + path.vertices.max(0)) / 2, 0)
    _inside(figure)
    assert ax.get_title() == "cnn: 85.33% correct"


def test_the_curves_name_a_small_runs_test_sample() -> None:
    rows = [{**ONE_EPOCH[0], "test_images": 2_000, "test_sampled": 1}]
    labels = {line.get_label() for line in curves_figure(rows).axes[1].get_lines()}
    assert labels == {"train", "test (2,000 sampled)"}
