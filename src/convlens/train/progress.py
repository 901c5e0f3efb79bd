"""How training reports progress. The CLI shows tqdm bars; tests and the web use others.

A reporter receives events; it never changes training. ``TqdmReporter`` draws one bar
per epoch (live loss and accuracy), one for each epoch's evaluation, and prints a line
per finished epoch.

Phases: after an epoch's steps comes its evaluation (``phase("evaluate", done, total)``,
in batches: the batchnorm refresh, the test pass, the training-sample pass; the epoch's
line then gives its seconds next to the steps' and, in the epoch judged with test-time
views, the figures with them: :mod:`convlens.train.epoch_evaluation`), and after
the last epoch the run's finish (``phase("finish", done, total)``: the fp32 evaluation
of the saved weights and the figures). Each phase is announced with ``done == 0`` and
ends with ``done == total``. A reporter may raise ``KeyboardInterrupt`` from any event
(the web page's Cancel does): the run then ends "interrupted" and resumable, as on Ctrl-C.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol

EVALUATE = "evaluate"  # the phase after each epoch's steps
FINISH = "finish"  # the phase after the last epoch
PHASE_LABELS = {EVALUATE: "evaluating", FINISH: "final evaluation and figures"}


class Reporter(Protocol):
    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None: ...
    def step(self, done: int, total: int, loss: float, accuracy: float) -> None: ...
    def phase(self, name: str, done: int, total: int) -> None: ...
    def epoch_end(self, row: dict[str, float]) -> None: ...
    def note(self, text: str) -> None: ...


class SilentReporter:
    """Reports nothing; for tests and library use."""

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        pass

    def step(self, done: int, total: int, loss: float, accuracy: float) -> None:
        pass

    def phase(self, name: str, done: int, total: int) -> None:
        pass

    def epoch_end(self, row: dict[str, float]) -> None:
        pass

    def note(self, text: str) -> None:
        pass


class TqdmReporter:
    """A progress bar per epoch on stderr, then a one-line epoch summary."""

    def __init__(self, label: str = "", stream: Any = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self._bar: Any = None
        self._done = 0
        self._epoch = 0
        self._phase: str | None = None
        self._line: Any = None  # the notebook's progress line, once shown

    def _new_bar(self, total: int, desc: str, unit: str) -> Any:
        """tqdm.auto's bar (a widget where ipywidgets is installed); in a notebook without
        widgets one line redrawn in place, not a stream of text bars."""
        prefix = f"{self.label} " if self.label else ""
        if in_notebook() and not _has_widgets():
            line = NotebookLine(total, prefix + desc, unit, handle=self._line)
            self._line = line.handle  # every bar of this training redraws the same line
            return line
        from tqdm.auto import tqdm

        return tqdm(
            total=total,
            desc=prefix + desc,
            unit=unit,
            file=self.stream,
            leave=False,
            dynamic_ncols=True,
        )

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        self._close()
        self._epoch = epoch
        self._bar = self._new_bar(steps, f"epoch {epoch}/{epochs}", "step")
        self._done = 0

    def step(self, done: int, total: int, loss: float, accuracy: float) -> None:
        if self._bar is None:
            return
        self._bar.update(done - self._done)
        self._done = done
        # running means over the epoch's steps so far (the epoch line has the measured ones)
        self._bar.set_postfix(loss=f"{loss:.4f}", acc=f"{accuracy:.2%}", refresh=False)

    def phase(self, name: str, done: int, total: int) -> None:
        if done == 0 or self._phase != name:
            self._close()
            where = f"epoch {self._epoch} " if name == EVALUATE else ""
            self._bar = self._new_bar(total, f"{where}{PHASE_LABELS.get(name, name)}", "batch")
            self._phase, self._done = name, 0
        self._bar.update(done - self._done)
        self._done = done
        if done >= total and name == FINISH:
            self._close()

    def epoch_end(self, row: dict[str, float]) -> None:
        self._close()
        self.note(_epoch_line(self.label, row))

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._phase = None

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)


class LiveCurvesReporter(TqdmReporter):
    """In a notebook: the progress bar, plus the curves redrawn in place after each epoch.

    One figure and one status line are displayed once and then updated (IPython display
    handles), so twenty epochs still leave one figure in the cell, not twenty. Outside a
    notebook it is a :class:`TqdmReporter`.
    """

    def __init__(self, label: str = "", stream: Any = None) -> None:
        super().__init__(label, stream)
        self.history: list[dict[str, float]] = []
        self._figure_handle: Any = None
        self._line_handle: Any = None

    def epoch_end(self, row: dict[str, float]) -> None:
        if not in_notebook():
            super().epoch_end(row)
            return
        from IPython.display import Image, display

        from convlens.display import figure_png
        from convlens.plots.curves import curves_figure

        self._close()
        self.history.append(row)
        picture = Image(data=figure_png(curves_figure(self.history, self.label)), format="png")
        line = _epoch_line(self.label, row)
        if self._figure_handle is None:
            self._figure_handle = display(picture, display_id=True)
            self._line_handle = display(_Text(line), display_id=True)
        else:
            self._figure_handle.update(picture)
            self._line_handle.update(_Text(line))


class NotebookLine:
    """The part of tqdm's bar the reporters use, as one line of text in a notebook cell,
    updated in place (an IPython display handle) at most every half second."""

    def __init__(self, total: int, desc: str = "", unit: str = "it", handle: Any = None) -> None:
        from IPython.display import display

        self.total, self.desc, self.unit = total, desc, unit
        self.done, self.postfix = 0, ""
        self._shown = 0.0
        if handle is None:
            handle = display(_Text(self._line()), display_id=True)
        else:
            handle.update(_Text(self._line()))
        self.handle = handle

    def _line(self) -> str:
        share = self.done / self.total if self.total else 1.0
        bar = "#" * round(20 * share)
        return f"{self.desc}: {bar:<20} {self.done}/{self.total} {self.unit}s {self.postfix}"

    def update(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._shown >= 0.5 or self.done >= self.total:
            self._shown = now
            self.handle.update(_Text(self._line()))

    def set_postfix(self, refresh: bool = True, **values: Any) -> None:
        self.postfix = ", ".join(f"{key} {value}" for key, value in values.items())

    def close(self) -> None:
        self.handle.update(_Text(self._line()))

    def write(self, text: str, file: Any = None) -> None:
        print(text, file=file or sys.stdout, flush=True)


def _has_widgets() -> bool:
    import importlib.util

    return importlib.util.find_spec("ipywidgets") is not None


class _Text:
    """Plain text for a display handle (a str would be shown with its quotes)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _epoch_line(label: str, row: dict[str, float]) -> str:
    """The measured train and test figures (the image alone; "test (2,000 sampled)" in a
    small run judged on a test sample), those with the test-time views in the epoch
    judged with them, and the seconds of steps and of evaluation."""
    prefix = f"{label} " if label else ""
    evaluated = f" + {row['eval_seconds']:.1f}s evaluating" if "eval_seconds" in row else ""
    views = (
        f" | {int(row['tta_views'])} views: train acc {row['tta_train_accuracy']:.2%}, "
        f"test loss {row['tta_test_loss']:.4f} acc {row['tta_test_accuracy']:.2%}"
        if "tta_views" in row
        else ""
    )
    test = f"test ({int(row['test_images']):,} sampled)" if row.get("test_sampled") else "test"
    return (
        f"{prefix}epoch {int(row['epoch'])}: train loss {row['train_loss']:.4f} "
        f"acc {row['train_accuracy']:.2%} | {test} loss {row['test_loss']:.4f} "
        f"acc {row['test_accuracy']:.2%}{views} | {row['seconds']:.1f}s{evaluated}"
    )


def in_notebook() -> bool:
    """True inside a Jupyter kernel (Jupyter, JupyterLab, Colab, VS Code notebooks)."""
    if "ipykernel" not in sys.modules and "google.colab" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def reporter_for(progress: bool | None = None, live: bool = False, label: str = "") -> Reporter:
    """The reporter a library call gets: live curves, a progress bar, or silence.

    ``progress=None`` shows the bar in a notebook and stays silent in a script.
    """
    # In a notebook, stdout: stderr is drawn as an error (red) by most front ends.
    stream = sys.stdout if in_notebook() else None
    if live:
        return LiveCurvesReporter(label, stream)
    if progress is None:
        progress = in_notebook()
    return TqdmReporter(label, stream) if progress else SilentReporter()
