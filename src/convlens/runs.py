"""The run folder: everything one training run writes, and how to load it back.

::

    runs/NAME/
      config.json             model spec, data, training recipe, classes (what was asked)
      spec.json               the model spec alone, beside the weights
      model.safetensors       final weights (or the best epoch's, with keep=best)
      checkpoint.safetensors  weights + optimizer + history after the last completed epoch
      metrics.csv             one row per epoch: train/test loss and accuracy, seconds
      metrics.json            final evaluation: accuracy, per-class accuracy, confusion
      summary.txt             the Keras-style summary with the why of every shape
      env.json                versions, device, threads, precision, seed
      state.json              status: running, interrupted, complete, stopped, diverged
      curves.png, confusion.png

Every file is written atomically (convlens.fileio), so a run killed at any moment is
loadable at its last completed epoch and ``convlens train --resume`` finishes it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convlens import fileio
from convlens.errors import ConvlensError, RunError
from convlens.provenance import DataNote

if TYPE_CHECKING:
    from convlens.data.preparation import Preparation
    from convlens.models.network import Network
    from convlens.models.spec import ModelSpec

CONFIG = "config.json"
SPEC = "spec.json"
WEIGHTS = "model.safetensors"
CHECKPOINT = "checkpoint.safetensors"
METRICS_CSV = "metrics.csv"
METRICS_JSON = "metrics.json"
SUMMARY = "summary.txt"
ENV = "env.json"
STATE = "state.json"
CURVES = "curves.png"
CONFUSION = "confusion.png"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def default_runs_dir() -> Path:
    """``$CONVLENS_RUNS`` if set, else ``./runs``."""
    return Path(os.environ.get("CONVLENS_RUNS") or "runs")


def new_run_name(stem: str) -> str:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{safe_name(stem)}-{stamp}"


def safe_name(text: str) -> str:
    """A file-system-safe run name from a model name or spec text."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:60]
    return cleaned or "run"


def check_name(name: str) -> str:
    if not _NAME.match(name) or name in (".", ".."):
        raise RunError(
            f"run name '{name}' is not valid; use letters, digits, '.', '_' and '-' "
            "(at most 100, no slashes)"
        )
    return name


@dataclass(frozen=True)
class Run:
    """A handle on one run folder. Cheap to make; reads files when asked."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        return self.path / name

    # --- creating and opening ---------------------------------------------------------

    @classmethod
    def create(cls, runs_dir: str | Path, name: str, config: dict[str, Any]) -> Run:
        """Make ``runs_dir/name`` and write its config; refuses to reuse a used folder."""
        path = Path(runs_dir) / check_name(name)
        if (path / CONFIG).exists():
            raise RunError(
                f"run folder {path} already holds a run; choose another --name, or continue "
                f"it with --resume {path}"
            )
        run = cls(path)
        fileio.write_json(run.file(CONFIG), config)
        return run

    @classmethod
    def open(cls, ref: str | Path, runs_dir: str | Path | None = None) -> Run:
        """A run by path, or by name inside ``runs_dir`` (default ``./runs``)."""
        candidates = [Path(ref)]
        if not Path(ref).is_absolute():
            candidates.append(Path(runs_dir or default_runs_dir()) / ref)
        for path in candidates:
            if (path / CONFIG).is_file():
                return cls(path)
        where = " or ".join(str(p) for p in dict.fromkeys(candidates))
        raise RunError(
            f"no run at {where} (no {CONFIG}); give a run folder written by 'convlens train' "
            "(list them with: ls runs/)"
        )

    # --- reading ------------------------------------------------------------------------

    @property
    def config(self) -> dict[str, Any]:
        try:
            data = fileio.read_json(self.file(CONFIG))
        except ConvlensError as err:
            raise RunError(str(err)) from None
        _check_config(data, self.file(CONFIG))
        return data

    def spec(self) -> ModelSpec:
        from convlens.models.spec import ModelSpec

        return ModelSpec.from_dict(self.config["model"], source=str(self.file(CONFIG)))

    @property
    def class_names(self) -> list[str]:
        return list(self.config.get("class_names") or [])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.config["input_shape"]
        return (c, h, w)

    @property
    def preparation(self) -> Preparation:
        """How the training images looked (size, channels, background, scaling); a run
        saved before it was recorded gets Fashion-MNIST's look (light on dark)."""
        from convlens.data.preparation import Preparation

        recorded = self.config.get("dataset", {}).get("preparation")
        return Preparation.from_dict(recorded, self.input_shape)

    @property
    def data_note(self) -> DataNote:
        """What the run was trained and tested on, and the caveat to show with its figures."""
        return DataNote.from_config(self.config)

    def state(self) -> dict[str, Any]:
        path = self.file(STATE)
        return fileio.read_json(path) if path.exists() else {"status": "new", "epochs_done": 0}

    def history(self) -> list[dict[str, float]]:
        """metrics.csv as a list of rows (numbers parsed)."""
        path = self.file(METRICS_CSV)
        if not path.exists():
            return []
        try:
            text = fileio.read_text(path)
            rows = [
                {k: float(v) for k, v in row.items()}
                for row in csv.DictReader(io.StringIO(text, newline=""))
            ]
        except ConvlensError as err:
            raise RunError(str(err)) from None
        except (ValueError, TypeError, csv.Error) as err:
            raise RunError(
                f"{path} is damaged ({type(err).__name__}); the checkpoint still holds the "
                "history: resume or train the run again"
            ) from None
        if any("epoch" not in row for row in rows):
            raise RunError(f"{path} has no 'epoch' column; the file is damaged")
        return rows

    def metrics(self) -> dict[str, Any]:
        return fileio.read_json(self.file(METRICS_JSON))

    def load_network(self, weights: str = WEIGHTS) -> Network:
        """Build the run's network and load its weights (safetensors only, never pickle)."""
        from convlens.models.network import build_network
        from convlens.models.weights import load_weights

        network = build_network(self.spec(), self.input_shape, len(self.class_names) or None)
        path = self.file(weights)
        if not path.exists():
            hint = (
                "the run has not finished an epoch yet"
                if not self.file(CHECKPOINT).exists()
                else f"finish it with: convlens train --resume {self.path}"
            )
            raise RunError(f"{path} does not exist; {hint}")
        load_weights(network, path)
        network.preparation = self.preparation
        network.eval()
        return network

    # --- writing ------------------------------------------------------------------------

    def write_state(self, status: str, epochs_done: int, message: str = "") -> None:
        fileio.write_json(
            self.file(STATE),
            {
                "status": status,
                "epochs_done": epochs_done,
                "message": message,
                "updated": dt.datetime.now().isoformat(timespec="seconds"),
            },
        )

    def write_history(self, rows: list[dict[str, float]]) -> None:
        fileio.write_csv(self.file(METRICS_CSV), rows)


def _check_config(data: Any, path: Path) -> None:
    """The shape of config.json that every reader relies on; a hand-edit that breaks it
    is named here rather than failing somewhere deep in a loader."""

    def damaged(what: str) -> RunError:
        return RunError(f"{path}: {what}; the run's config is damaged (train the run again)")

    if not isinstance(data, dict):
        raise damaged("not a JSON object")
    for key in ("model", "data", "train"):
        if not isinstance(data.get(key), dict):
            raise damaged(f"'{key}' is missing or not a mapping")
    shape = data.get("input_shape")
    if not (
        isinstance(shape, list)
        and len(shape) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 4096 for v in shape)
    ):
        raise damaged(f"'input_shape' must be [C, H, W], not {shape!r}")
    names = data.get("class_names")
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise damaged("'class_names' must be a non-empty list of names")


def list_runs(runs_dir: str | Path | None = None) -> list[Run]:
    """Every run folder directly inside ``runs_dir`` or one level down (compare/sweep)."""
    root = Path(runs_dir or default_runs_dir())
    if not root.is_dir():
        return []
    found = [p.parent for p in root.glob(f"*/{CONFIG}")] + [
        p.parent for p in root.glob(f"*/*/{CONFIG}")
    ]
    return [Run(p) for p in sorted(found)]
