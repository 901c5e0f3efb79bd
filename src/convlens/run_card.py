"""A run as people read it: the one-line headline the CLI prints after training, and
the card a notebook shows for a :class:`~convlens.runs.Run` (status, figures, curves).

Whatever the run was trained on besides the full data (the embedded sample, a subset,
smoke mode) is said in both.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from convlens.display import block, caveat_html, file_img, html_table
from convlens.errors import ConvlensError
from convlens.wording import counted

if TYPE_CHECKING:
    from convlens.runs import Run


def headline(run: Run) -> str:
    """'runs/cnn: test accuracy 90.60%, train accuracy 92.73%, 5 epochs, 15.2 s/epoch;
    76.0 s of steps, 5.5 s evaluating' (the test figure's views when it averages several,
    the data caveat when there is one); the status when it has no metrics yet."""
    try:
        caveat = run.data_note.caveat
        if not run.file("metrics.json").exists():
            state = run.state()
            done = counted(state.get("epochs_done", 0), "epoch")
            line = f"{run.path}: {state.get('status', 'new')}, {done}"
        else:
            m = run.metrics()
            views = m.get("test_views") or 1
            line = (
                f"{run.path}: test accuracy {m['test_accuracy']:.2%}"
                + (f" ({views} views)" if views > 1 else "")
                + f", train accuracy {m['train_accuracy']:.2%}, "
                f"{counted(m['epochs_done'], 'epoch')}, {m['seconds_per_epoch']:.1f} s/epoch"
                + (
                    f"; {m['train_seconds']:.1f} s of steps, {m['eval_seconds']:.1f} s evaluating"
                    if m.get("eval_seconds") is not None and m.get("train_seconds") is not None
                    else ""
                )
            )
    except ConvlensError as err:
        return f"{run.path}: cannot be read ({err})"
    return line + (f" ({caveat})" if caveat else "")


def run_html(run: Run) -> str:
    """The notebook's view of a run: a table of its headline figures and its curves."""
    try:
        config, state = run.run_config, run.state()
        metrics = run.metrics() if run.file("metrics.json").exists() else {}
        note = run.data_note
    except ConvlensError as err:
        return f"<p>{html.escape(f'{run.path}: cannot be read ({err})')}</p>"
    rows = [
        ("model", config.model.name),
        (
            "status",
            f"{state.get('status', '?')}, {state.get('epochs_done', 0)} of "
            f"{config.train.epochs} epochs",
        ),
        ("data", note.describe()),
    ]
    if metrics:
        rows += [
            ("test accuracy", f"{metrics['test_accuracy']:.2%} (loss {metrics['test_loss']:.4f})"),
            ("train accuracy", f"{metrics['train_accuracy']:.2%}"),
            ("seconds per epoch", f"{metrics['seconds_per_epoch']:.1f}"),
        ]
    table = html_table(["", ""], rows, caption=f"Run {run.name} ({run.path})")
    return block(table, caveat_html(note.caveat), file_img(run.file("curves.png"), "curves", 640))
