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
      .lock                   the OS lock the one process writing the run holds

Only one process writes a run folder at a time: training and resuming hold an exclusive
OS lock (``flock``) on ``.lock`` for as long as they write, which the system releases
however the process ends (Ctrl-C, SIGTERM, SIGKILL, a crash). A second writer is refused
in one line, and a run whose state says "running" while nobody holds the lock is read as
"interrupted": its process died without a word, and ``--resume`` continues it.

Every file is written atomically (convlens.fileio), so a run killed at any moment is
loadable at its last completed epoch and ``convlens train --resume`` finishes it.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import functools
import io
import os
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convlens import fileio
from convlens.errors import ConvlensError, RunError
from convlens.provenance import DataNote
from convlens.run_config import check_layout

if TYPE_CHECKING:
    from convlens.data.dataset import Dataset
    from convlens.data.preparation import Preparation
    from convlens.models.network import Network
    from convlens.models.spec import ModelSpec
    from convlens.run_config import RunConfig

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
LOCK = ".lock"

try:
    import fcntl
except ImportError:  # Windows: no flock; one writer at a time is then not enforced
    fcntl = None  # type: ignore[assignment]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def default_runs_dir() -> Path:
    """``$CONVLENS_RUNS`` if set, else ``./runs``."""
    return Path(os.environ.get("CONVLENS_RUNS") or "runs")


def find_run(
    ref: str | os.PathLike[str], runs_dir: str | os.PathLike[str] | None = None
) -> tuple[str, os.stat_result] | None:
    """The folder :meth:`Run.open` opens for ``ref`` and its config.json's ``os.stat``, or
    None where no candidate holds a config.json (a regular file).

    Candidates in order: ``ref`` itself, then ``runs_dir/ref`` for a relative ``ref``.
    In ``os.path`` strings, not Paths: :func:`convlens.predict` finds its run this way on
    every call, and the stat it returns is half of the key its cached network is kept by
    (pathlib's parsing took more than the rest of a one-image call)."""
    ref = os.fspath(ref)
    found = _config_stat(ref)
    if found is not None or os.path.isabs(ref):
        return found
    return _config_stat(os.path.join(os.fspath(runs_dir or default_runs_dir()), ref))


def _config_stat(folder: str) -> tuple[str, os.stat_result] | None:
    try:
        config = os.stat(os.path.join(folder, CONFIG))
    except (OSError, ValueError):  # as Path.is_file: missing, not a folder, a NUL
        return None
    return (folder, config) if stat.S_ISREG(config.st_mode) else None


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
    """A handle on one run folder. Cheap to make; reads files when asked, config.json once."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        return self.path / name

    # --- creating and opening ---------------------------------------------------------

    @classmethod
    def create(cls, runs_dir: str | Path, name: str, config: RunConfig | dict[str, Any]) -> Run:
        """Make ``runs_dir/name`` and write its config; refuses to reuse a used folder."""
        path = Path(runs_dir) / check_name(name)
        if (path / CONFIG).exists():
            raise RunError(
                f"run folder {path} already holds a run; choose another --name, or continue "
                f"it with --resume {path}"
            )
        run = cls(path)
        run.write_config(config if isinstance(config, dict) else config.to_dict())
        return run

    @classmethod
    def open(cls, ref: str | Path, runs_dir: str | Path | None = None) -> Run:
        """A run by path, or by name inside ``runs_dir`` (default ``./runs``)."""
        found = find_run(ref, runs_dir)
        if found is not None:
            return cls(Path(found[0]))
        candidates = [Path(ref)]
        if not Path(ref).is_absolute():
            candidates.append(Path(runs_dir or default_runs_dir()) / ref)
        where = " or ".join(str(p) for p in dict.fromkeys(candidates))
        raise RunError(
            f"no run at {where} (no {CONFIG}); give a run folder written by 'convlens train' "
            "(list them with: ls runs/)"
        )

    # --- reading ------------------------------------------------------------------------

    @functools.cached_property
    def config(self) -> dict[str, Any]:
        """config.json as written (a dict), its layout checked; read once per :class:`Run`.

        Kept for code that indexes it and for rewriting the file as it is; convlens itself
        reads the typed :attr:`run_config`."""
        try:
            data = fileio.read_json(self.file(CONFIG))
        except ConvlensError as err:
            raise RunError(str(err)) from None
        check_layout(data, str(self.file(CONFIG)))
        return data

    @functools.cached_property
    def run_config(self) -> RunConfig:
        """config.json as typed objects (spec, recipe, data, classes); parsed once."""
        from convlens.run_config import RunConfig

        return RunConfig.from_dict(self.config, source=str(self.file(CONFIG)))

    def spec(self) -> ModelSpec:
        return self.run_config.model

    @property
    def class_names(self) -> list[str]:
        return list(self.run_config.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.run_config.input_shape
        return (c, h, w)

    @functools.cached_property
    def preparation(self) -> Preparation:
        """How the training images looked (size, channels, background, scaling); a run
        saved before it was recorded gets Fashion-MNIST's look (light on dark). Worked out
        once per :class:`Run`, like :attr:`run_config` it comes from (a frozen value)."""
        from convlens.data.preparation import Preparation

        facts = self.run_config.dataset
        recorded = facts.preparation if facts is not None else None
        return Preparation.from_dict(recorded, self.input_shape)

    @property
    def data_note(self) -> DataNote:
        """What the run was trained and tested on, and the caveat to show with its figures."""
        return self.run_config.data_note

    def __fspath__(self) -> str:
        """A Run is its folder: ``Path(run)`` and ``convlens.write_report(run)`` work."""
        return str(self.path)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def __str__(self) -> str:
        """The CLI's headline: where, test and train accuracy, epochs (and the data)."""
        from convlens.run_card import headline

        return headline(self)

    def _repr_html_(self) -> str:
        from convlens.run_card import run_html

        return run_html(self)

    def state(self) -> dict[str, Any]:
        """state.json; "running" with no process holding the run's lock reads as
        "interrupted" (the process that trained it is gone)."""
        path = self.file(STATE)
        if not path.exists():
            if os.path.lexists(path):  # a link to nothing, or to itself
                raise RunError(f"{path} is a broken link; the run's state is damaged")
            return {"status": "new", "epochs_done": 0}
        try:
            state = fileio.read_json(path)
        except ConvlensError as err:
            raise RunError(str(err)) from None
        if not isinstance(state, dict) or not isinstance(state.get("status", ""), str):
            raise RunError(f"{path} is not a run state (a JSON object); the file is damaged")
        if state.get("status") == "running" and not is_being_written(self.path):
            return {
                **state,
                "status": "interrupted",
                "message": "the process training it ended without finishing (killed, or the "
                f"machine stopped); resume with: convlens train --resume {self.path}",
            }
        return state

    def history(self) -> list[dict[str, float]]:
        """metrics.csv as a list of rows (numbers parsed)."""
        path = self.file(METRICS_CSV)
        if not path.exists():
            return []
        try:
            text = fileio.read_text(path)
            rows = [
                {k: float(v) for k, v in row.items() if v != ""}  # "": not measured that epoch
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
        return [upgrade_history_row(row) for row in rows]

    def summary_text(self) -> str | None:
        """summary.txt as text (None when the run has none), read as a regular file of at
        most ``fileio.SMALL_FILE_LIMIT`` bytes: a FIFO or a device in its place is refused
        in one line instead of hanging or filling memory."""
        try:
            return fileio.read_text(self.file(SUMMARY), fileio.SMALL_FILE_LIMIT)
        except FileNotFoundError:
            return None
        except ConvlensError as err:
            raise RunError(str(err)) from None

    def metrics(self) -> dict[str, Any]:
        """metrics.json; a run from before the measured train accuracy (no
        ``train_sample_images``) has its running means moved to ``running_*`` and no
        ``train_accuracy``, ``train_loss`` or ``overfit_gap``."""
        metrics = fileio.read_json(self.file(METRICS_JSON))
        if isinstance(metrics, dict) and "train_sample_images" not in metrics:
            running = {"running_accuracy": metrics.pop("train_accuracy", None)}
            running["running_loss"] = metrics.pop("train_loss", None)
            metrics.pop("overfit_gap", None)
            metrics = {**metrics, **running, "train_sample_images": None}
        return metrics

    def network(self, weights: str = WEIGHTS) -> Network:
        """Build the run's network and load its weights (safetensors only, never pickle);
        in eval mode, on the CPU. The one way to bring a run's network back."""
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

    load_network = network  # the name before Run.network(); kept for existing code

    def dataset(
        self,
        data_dir: str | None = None,
        *,
        subsets: bool = True,
        progress: bool = True,
        fix: str = "point --data-dir at the original files",
    ) -> Dataset:
        """The run's data as it was trained on: its saved :class:`DataConfig`, read from
        ``data_dir`` instead when the same files now live there, narrowed to the run's
        seeded ``train_subset``/``test_subset`` (``subsets=False`` keeps every image).
        The one way to bring a run's data back.

        Data whose classes or image shape differ from the run's is refused: its figures
        would be about other images. So are other images with the same classes, for runs
        that recorded their data's fingerprint (:meth:`Dataset.fingerprint`). ``fix`` ends
        that one-line refusal: what the caller's user can do instead.
        """
        from convlens.recipe import apply_subsets

        config = self.run_config
        data = config.data if not data_dir else dataclasses.replace(config.data, data_dir=data_dir)
        if self.trained_on_sample and not data_dir:
            # Its own test images are the sample's, even when a full copy is found now.
            from convlens.data.sources import load_sample

            dataset = load_sample()
        else:
            dataset = data.load(progress=progress)
        if subsets:
            dataset = apply_subsets(dataset, config.train)
        recorded = config.dataset.fingerprint if config.dataset else None
        if (
            tuple(dataset.class_names) != config.class_names
            or tuple(dataset.input_shape) != config.input_shape
            or (subsets and recorded is not None and recorded != dataset.fingerprint())
        ):
            raise RunError(
                f"the data found now ({dataset.name} from {dataset.source}) differs from the "
                f"data {self.path} was trained on; {fix}"
            )
        return dataset

    @property
    def trained_on_sample(self) -> bool:
        """Whether the run was trained on the embedded 10% Fashion-MNIST sample."""
        facts = self.run_config.dataset
        return bool(facts is not None and facts.is_sample)

    def data_difference(self, dataset: Dataset) -> str:
        """'' when ``dataset`` (as :meth:`dataset` returned it) holds the test images the run
        was judged on; else one plain sentence saying how it differs (the embedded sample
        against the full data, or another number of test images)."""
        facts = self.run_config.dataset
        if facts is None:
            return ""
        count = len(dataset.test_labels)
        then = _describe_data(bool(facts.is_sample), facts.test_count)
        now = _describe_data(dataset.is_sample, count)
        if bool(facts.is_sample) != dataset.is_sample or (
            facts.test_count is not None and facts.test_count != count
        ):
            return (
                f"the data differs from what this run was trained on: it was judged on "
                f"{then}, and this uses {now} ({dataset.source}), so the figures are not "
                "the ones in its metrics.json"
            )
        return ""

    # --- writing ------------------------------------------------------------------------

    def write_config(self, config: dict[str, Any]) -> None:
        """Write config.json (checked first) and let this handle read it from now on."""
        check_layout(config, str(self.file(CONFIG)))
        fileio.write_json(self.file(CONFIG), config)
        self.__dict__.pop("config", None)
        self.__dict__.pop("run_config", None)

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


def upgrade_history_row(row: dict[str, float]) -> dict[str, float]:
    """A metrics row in today's terms. Before the end-of-epoch measurement (rows without
    ``running_accuracy``), ``train_accuracy`` and ``train_loss`` were running means over
    the epoch's steps: they become ``running_*``, and the row has no measured train
    figures (readers say so rather than compare them with the test figures)."""
    if "running_accuracy" in row or "train_accuracy" not in row:
        return row
    upgraded = {k: v for k, v in row.items() if k not in ("train_accuracy", "train_loss")}
    upgraded["running_accuracy"] = row["train_accuracy"]
    if "train_loss" in row:
        upgraded["running_loss"] = row["train_loss"]
    return upgraded


def _describe_data(is_sample: bool, test_count: int | None) -> str:
    """'the embedded 10% sample (1,000 test images)' or 'the full data (10,000 test images)'."""
    what = "the embedded 10% sample" if is_sample else "the full data"
    return what if test_count is None else f"{what} ({test_count:,} test images)"


@contextlib.contextmanager
def write_lock(path: str | os.PathLike[str], *, hint: str = "") -> Iterator[None]:
    """Make this process the only writer of the run folder ``path`` while the block runs.

    An exclusive ``flock`` on ``path/.lock`` (the folder is made if needed); the system
    drops it whenever the process ends, however it ends. Held by another process (or
    another thread of this one): a one-line :class:`RunError` naming its pid, plus
    ``hint`` (what to do instead).
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as err:
        raise ConvlensError(
            f"cannot write {path}: {err.strerror or err}; choose a writable folder (check "
            "permissions and free disk space)"
        ) from None
    try:
        if fcntl is not None and not _try_lock(fd):
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise RunError(
                f"run {path} is being written by another process{who}; only one may train "
                f"or resume a run at a time{'; ' + hint if hint else ''}"
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _try_lock(fd: int, attempts: int = 20) -> bool:
    """An exclusive lock, retried briefly: a reader's probe holds a shared one for
    microseconds (:func:`is_being_written`)."""
    for attempt in range(attempts):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt + 1 < attempts:
                time.sleep(0.025)
    return False


def is_being_written(path: str | os.PathLike[str]) -> bool:
    """Whether a process holds the write lock of the run folder ``path`` now."""
    if fcntl is None:
        return True  # cannot tell: trust what state.json says
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(Path(path) / LOCK, flags)
    except OSError:
        return False  # no lock file: nobody has written it under a lock
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False
    finally:
        os.close(fd)


def list_runs(runs_dir: str | Path | None = None) -> list[Run]:
    """Every run folder directly inside ``runs_dir`` or one level down (compare/sweep)."""
    root = Path(runs_dir or default_runs_dir())
    if not root.is_dir():
        return []
    found = [p.parent for p in root.glob(f"*/{CONFIG}")] + [
        p.parent for p in root.glob(f"*/*/{CONFIG}")
    ]
    return [Run(p) for p in sorted(found)]
