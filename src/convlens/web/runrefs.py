"""Run names from the page -> run folders under the runs folder, and loaded networks.

A run is named by its path relative to the runs folder: ``NAME``, or ``GROUP/NAME`` for
the runs ``convlens compare`` and ``sweep`` write one level down. Each part must pass
:func:`convlens.runs.check_name` (no slashes, no ``..``), and the resolved folder must
still lie inside the runs folder (a symlink pointing out is refused), so no name reaches
a file outside it. Weights load through :meth:`Run.network`: safetensors only.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from convlens.errors import RunError
from convlens.models.network import Network
from convlens.runs import CONFIG, WEIGHTS, Run, check_name
from convlens.web.errors import Conflict, NotFound, WebError

MAX_NETWORKS = 4  # loaded networks kept in memory (the lesson's cnn is about 1 MB)


def resolve_run(runs_dir: Path, ref: str) -> Run:
    """``NAME`` or ``GROUP/NAME`` -> the run folder inside ``runs_dir``, or a one-line error."""
    parts = ref.split("/")
    if not ref or len(parts) > 2:
        raise WebError(
            f"run name '{ref}' is not valid; use a run's name, or GROUP/NAME for a run inside "
            "a compare or sweep folder"
        )
    for part in parts:
        check_name(part)  # RunError (400) for '..', '/', '%2e', spaces, ...
    root = runs_dir.resolve()
    path = root.joinpath(*parts).resolve()
    if not path.is_relative_to(root):
        raise NotFound(f"no run named '{ref}' in {runs_dir}")
    if not (path / CONFIG).is_file():
        raise NotFound(f"no run named '{ref}' in {runs_dir}; the Runs tab lists the runs there")
    return Run(path)


def run_ref(runs_dir: Path, run: Run) -> str:
    """The name the page uses for ``run``: its path relative to the runs folder."""
    return run.path.resolve().relative_to(runs_dir.resolve()).as_posix()


class NetworkCache:
    """The last few runs' networks, reloaded when their weights file changes."""

    def __init__(self, runs_dir: Path, size: int = MAX_NETWORKS) -> None:
        self.runs_dir = runs_dir
        self.size = size
        self._lock = threading.Lock()
        self._networks: OrderedDict[Path, tuple[tuple[int, int], Run, Network]] = OrderedDict()

    def forget(self, path: Path) -> None:
        """Drop a run's network (its folder was deleted)."""
        with self._lock:
            self._networks.pop(path, None)

    def get(self, ref: str) -> tuple[Run, Network]:
        run = resolve_run(self.runs_dir, ref)
        weights = run.file(WEIGHTS)
        try:
            stat = weights.stat()
        except FileNotFoundError:
            status = run.state().get("status", "new")
            raise Conflict(
                f"run '{ref}' has no final weights yet (it is {status}); pick a finished run, or "
                "finish this one first"
            ) from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._networks.get(run.path)
            if cached is not None and cached[0] == stamp:
                self._networks.move_to_end(run.path)
                return cached[1], cached[2]
        try:
            network = run.network()  # safetensors only: loading runs no code
        except RunError as err:
            raise Conflict(str(err)) from None
        with self._lock:
            self._networks[run.path] = (stamp, run, network)
            self._networks.move_to_end(run.path)
            while len(self._networks) > self.size:
                self._networks.popitem(last=False)
        return run, network
