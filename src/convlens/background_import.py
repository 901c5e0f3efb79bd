"""Modules imported on a second thread while the caller does other work.

A fresh ``convlens train`` process imports ``torch._dynamo`` when it makes its optimizer
(torch.optim does, about 2 s on Zen 1), onnx, onnxruntime and torch's exporter for its
first evaluation pass (with the onnx extra) and matplotlib for its two figures at the
end: about 3 s of imports with the files in the page cache, more from a cold disk, each
paid on the run's way. Reading the data beforehand keeps one core busy (decompressing
the IDX files), so the imports started before it run on the core that would otherwise
wait; the caller joins them before the work that wants every core begins (training's
steps, whose times choose the thread count).

No convlens imports: any floor may use it.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Iterable


class BackgroundImport:
    """Import ``modules`` in order on a daemon thread, started at once.

    Modules already imported are skipped (no thread at all when nothing is left). An
    import that fails is left for the code that needs the module: its own ``import``
    raises there, with the error it always had.
    """

    def __init__(self, modules: Iterable[str]) -> None:
        self.modules = tuple(name for name in modules if name not in sys.modules)
        self._thread: threading.Thread | None = None
        if self.modules:
            self._thread = threading.Thread(
                target=self._import, name="convlens-background-import", daemon=True
            )
            self._thread.start()

    def _import(self) -> None:
        for name in self.modules:
            try:
                importlib.import_module(name)
            except Exception:  # see the class docstring
                continue

    def wait(self) -> None:
        """Return once every import has finished (at once when none was started)."""
        if self._thread is not None:
            self._thread.join()
