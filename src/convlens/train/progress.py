"""How training reports progress. The CLI shows tqdm bars; tests and the web use others.

A reporter receives events; it never changes training. ``TqdmReporter`` draws one bar
per epoch (live loss and accuracy) and prints a line per finished epoch.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol


class Reporter(Protocol):
    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None: ...
    def step(self, done: int, total: int, loss: float, accuracy: float) -> None: ...
    def epoch_end(self, row: dict[str, float]) -> None: ...
    def note(self, text: str) -> None: ...


class SilentReporter:
    """Reports nothing; for tests and library use."""

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        pass

    def step(self, done: int, total: int, loss: float, accuracy: float) -> None:
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

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        from tqdm.auto import tqdm

        prefix = f"{self.label} " if self.label else ""
        self._bar = tqdm(
            total=steps,
            desc=f"{prefix}epoch {epoch}/{epochs}",
            unit="step",
            file=self.stream,
            leave=False,
            dynamic_ncols=True,
        )
        self._done = 0

    def step(self, done: int, total: int, loss: float, accuracy: float) -> None:
        if self._bar is None:
            return
        self._bar.update(done - self._done)
        self._done = done
        self._bar.set_postfix(loss=f"{loss:.4f}", acc=f"{accuracy:.2%}", refresh=False)

    def epoch_end(self, row: dict[str, float]) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        prefix = f"{self.label} " if self.label else ""
        self.note(
            f"{prefix}epoch {int(row['epoch'])}: loss {row['train_loss']:.4f} "
            f"acc {row['train_accuracy']:.2%} | test loss {row['test_loss']:.4f} "
            f"acc {row['test_accuracy']:.2%} | {row['seconds']:.1f}s"
        )

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)
