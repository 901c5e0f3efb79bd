"""Training from the page: one run at a time, in a background thread, with live events.

:class:`TrainingManager` starts :func:`convlens.train.session.train` (or ``resume``) in a
thread, so the server keeps answering while torch works. Its :class:`WebReporter` is an
ordinary :class:`~convlens.train.progress.Reporter`: it records progress as numbered
events the page reads as server-sent events, and it is also how a cancel arrives: when
the cancel flag is set it raises ``KeyboardInterrupt`` from the next ``step``,
``epoch_start`` or ``phase`` event (an evaluation batch or a figure), exactly what Ctrl-C
does in ``convlens train``, so the session leaves the folder resumable with state
"interrupted", whether the cancel comes during the steps, an evaluation or the finish.

One at a time is enforced here, under a lock, before any folder is made: a second start
gets a 409 naming the run that is training, so two runs never write one folder (and a
folder that already holds a run is refused too: :meth:`Run.create` would refuse later).

The recipe is chosen as ``convlens train`` chooses it, by the same library function
(:func:`convlens.recipe.plan_training`): a preset's recipe to start from (``--preset``,
else the model's own when the model is a preset), then the fields the page sets on top,
all judged by :class:`TrainConfig`, so a bad value gets the library's words.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convlens.data.config import DataConfig
from convlens.errors import ConvlensError, TrainingDiverged
from convlens.models.footprint import check_memory
from convlens.models.registry import PRESETS
from convlens.models.resizing import check_resizable
from convlens.models.spec import ModelSpec
from convlens.option_fields import help_of
from convlens.recipe import RECIPE_FIELDS, TrainConfig, plan_training
from convlens.runs import METRICS_JSON, Run, check_name, new_run_name
from convlens.web.errors import Conflict, WebError
from convlens.web.runrefs import resolve_run, run_ref

log = logging.getLogger("convlens.web")

FINISHED = ("complete", "stopped", "interrupted", "diverged", "failed")
MAX_EVENTS = 500  # kept for reconnecting pages; older ones are covered by the snapshot
STEP_EVENT_SECONDS = 0.25  # at most four step events a second reach the page


def lesson_recipe() -> dict[str, Any]:
    """The recipe fields as TrainConfig's defaults have them: the lesson's (Keras') recipe."""
    return recipe_of(TrainConfig())


def recipe_options() -> dict[str, dict[str, Any]]:
    """Each of the :data:`RECIPE_FIELDS` as its option says it: ``help`` (what
    ``convlens train --help`` prints) and ``choices`` (None for free values), so the
    page's controls say what the library says and offer what it takes."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    return {
        name: {"help": help_of(fields[name]), "choices": fields[name].metadata.get("choices")}
        for name in RECIPE_FIELDS
    }


def recipe_of(config: TrainConfig) -> dict[str, Any]:
    """The :data:`RECIPE_FIELDS` of ``config``, as the page shows and edits them."""
    return {key: getattr(config, key) for key in RECIPE_FIELDS}


@dataclass
class Job:
    """What the page shows about the current (or last) training."""

    run: str
    model: str
    epochs: int
    recipe: str | None = None  # the preset whose recipe it started from
    train: dict[str, Any] = field(default_factory=dict)  # RECIPE_FIELDS as they run
    status: str = "starting"  # starting, running, cancelling, then one of FINISHED
    epoch: int = 0
    step: int = 0
    steps: int = 0
    phase: str = "train"  # train (the steps), evaluate (after each epoch), finish (the end)
    phase_done: int = 0  # batches of the evaluate/finish phase done so far
    phase_total: int = 0
    loss: float | None = None
    accuracy: float | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    message: str | None = None
    refused_field: str | None = None  # the recipe field a failure is about (its control is marked)
    test_accuracy: float | None = None
    test_views: int | None = None  # the test-time views behind test_accuracy
    started: float = field(default_factory=time.time)
    finished: float | None = None

    @property
    def active(self) -> bool:
        return self.status not in FINISHED

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "model": self.model,
            "epochs": self.epochs,
            "recipe": self.recipe,
            "train": dict(self.train),
            "status": self.status,
            "active": self.active,
            "epoch": self.epoch,
            "step": self.step,
            "steps": self.steps,
            "phase": self.phase,
            "phase_done": self.phase_done,
            "phase_total": self.phase_total,
            "loss": self.loss,
            "accuracy": self.accuracy,
            "history": list(self.history),
            "notes": list(self.notes[-20:]),
            "message": self.message,
            "field": self.refused_field,
            "test_accuracy": self.test_accuracy,
            "test_views": self.test_views,
            # from its checkpoint (written after each epoch), or from the start before one
            "resumable": self.status == "interrupted",
            "seconds": round((self.finished or time.time()) - self.started, 1),
        }


@dataclass(frozen=True)
class Event:
    id: int
    kind: str  # start, epoch, step, phase, epoch_end, note, done
    data: dict[str, Any]


class TrainingManager:
    """Starts, watches and cancels the one training the server runs at a time."""

    def __init__(self, runs_dir: Path, data: DataConfig) -> None:
        self.runs_dir = runs_dir
        self.data = data
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._job: Job | None = None
        self._thread: threading.Thread | None = None
        self._events: deque[Event] = deque(maxlen=MAX_EVENTS)
        self._next_id = 1
        self._last_step_event = 0.0

    # --- asking ------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The current job (or ``{"status": "idle"}``) plus the id of the last event."""
        with self._lock:
            body = self._job.to_dict() if self._job else {"status": "idle", "active": False}
            return {**body, "last_event": self._next_id - 1}

    def events_after(self, last: int) -> tuple[list[Event], bool]:
        """Events newer than ``last``, and whether the job is still going."""
        with self._lock:
            events = [e for e in self._events if e.id > last]
            return events, bool(self._job and self._job.active)

    def oldest_event(self) -> int:
        with self._lock:
            return self._events[0].id if self._events else self._next_id

    # --- starting and stopping ---------------------------------------------------------

    def start(
        self,
        model: str,
        recipe: dict[str, Any] | None = None,
        *,
        preset: str | None = None,
        train_subset: int | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Check everything that can be checked now, then train in a thread.

        ``recipe`` holds :data:`RECIPE_FIELDS` that override the recipe of ``preset`` (see
        :func:`recipe_preset`); :class:`TrainConfig` judges the result.
        """
        unknown = sorted(set(recipe or {}) - set(RECIPE_FIELDS))
        if unknown:
            raise WebError(f"the page cannot set {', '.join(unknown)}")
        spec, config, starting = plan_training(
            model,
            preset=preset,
            overrides={**(recipe or {}), "train_subset": train_subset},
            spec_files=False,  # the page must not make the server open files
        )
        shape = spec.input_shape or self.data.known_input_shape()
        if shape is not None:  # else the session checks it once the data is loaded
            check_memory(spec, shape, batch_size=config.batch_size)
            if config.resize is not None:
                check_resizable(spec, shape, config.resize_sizes())
        run_name = _run_name(name, spec)
        label = model.strip() if model.strip() in PRESETS else spec.name
        with self._lock:
            self._refuse_if_busy()
            if (self.runs_dir / run_name).exists():
                raise Conflict(
                    f"a run named '{run_name}' already exists in {self.runs_dir}; choose another "
                    "name (or leave it empty for a dated one)",
                    field="name",
                )
            self._begin(
                Job(
                    run=run_name,
                    model=label,
                    epochs=config.epochs,
                    recipe=starting,
                    train=recipe_of(config),
                )
            )
            self._thread = threading.Thread(
                target=self._train,
                args=(spec, config, run_name, starting),
                name=f"convlens-train-{run_name}",
                daemon=True,
            )
            self._thread.start()
        return self.snapshot()

    def resume(self, ref: str, epochs: int | None = None) -> dict[str, Any]:
        """Continue an interrupted run from its last completed epoch."""
        run = resolve_run(self.runs_dir, ref)
        name = run_ref(self.runs_dir, run)
        state = run.state()
        if state.get("status") == "running":
            raise Conflict(f"run '{name}' says it is running; only an interrupted run resumes")
        config = run.run_config
        planned = config.train.epochs
        history = run.history()
        if epochs is not None and epochs < int(state.get("epochs_done", 0)):
            raise WebError(f"run '{name}' already did {state.get('epochs_done')} epochs")
        with self._lock:
            self._refuse_if_busy()
            job = Job(
                run=name,
                model=config.model.name,
                epochs=epochs or planned,
                recipe=config.recipe,
                # what it resumes with: its own recipe (read as TrainConfig reads it)
                train=recipe_of(config.train.replace(epochs=epochs or planned)),
            )
            job.epoch = int(state.get("epochs_done", 0))
            job.history = history  # the epochs before the interruption belong to the curve
            self._begin(job)
            self._thread = threading.Thread(
                target=self._resume, args=(run, epochs), name=f"convlens-resume-{name}", daemon=True
            )
            self._thread.start()
        return self.snapshot()

    def cancel(self) -> dict[str, Any]:
        with self._lock:
            if not (self._job and self._job.active):
                raise Conflict("nothing is training, so there is nothing to cancel")
            self._cancel.set()
            self._job.status = "cancelling"
            self._emit("note", {"text": "cancelling after the current step..."})
        return self.snapshot()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Cancel a running training and wait for it, so its folder ends "interrupted"."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._cancel.set()
            thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the current training thread; True when none is left running."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _refuse_if_busy(self) -> None:
        if self._job is not None and self._job.active:
            raise Conflict(
                f"busy: run '{self._job.run}' is training; wait for it to finish or cancel it "
                "(one training at a time)",
                run=self._job.run,
            )

    def _begin(self, job: Job) -> None:
        self._cancel.clear()
        self._job = job
        self._events.clear()
        self._emit("start", job.to_dict())

    # --- the thread --------------------------------------------------------------------

    def _train(
        self, spec: ModelSpec, config: TrainConfig, name: str, recipe_preset: str | None
    ) -> None:
        from convlens.train.session import train

        self._guard(
            lambda: train(
                spec,
                data=self.data,
                config=config,
                runs_dir=self.runs_dir,
                name=name,
                reporter=WebReporter(self),
                recipe_preset=recipe_preset,
            )
        )

    def _resume(self, run: Run, epochs: int | None) -> None:
        from convlens.train.session import resume

        self._guard(
            lambda: resume(
                run.path, runs_dir=self.runs_dir, epochs=epochs, reporter=WebReporter(self)
            )
        )

    def _guard(self, work: Any) -> None:
        """Run ``work`` and turn however it ends into the job's final status."""
        try:
            run = work()
            state = run.state()
            status, message = state.get("status", "complete"), state.get("message") or None
            accuracy = views = None
            if run.file(METRICS_JSON).exists():
                metrics = run.metrics()
                accuracy, views = metrics.get("test_accuracy"), metrics.get("test_views")
            self._finish(status, message, accuracy, views)
        except KeyboardInterrupt as stop:  # our cancel, via the reporter
            self._finish("interrupted", str(stop) or "cancelled")
        except TrainingDiverged as err:
            self._finish("diverged", str(err))
        except ConvlensError as err:  # e.g. resize on a flatten head, once the data is known
            self._finish("failed", str(err), field=err.field)
        except Exception as err:  # a bug: keep the server up, say so, log the traceback
            log.exception("training %s failed", self._job.run if self._job else "?")
            self._finish("failed", f"training failed: {type(err).__name__}: {err}")

    def _finish(
        self,
        status: str,
        message: str | None,
        accuracy: float | None = None,
        views: int | None = None,
        *,
        field: str | None = None,
    ) -> None:
        with self._lock:
            job = self._job
            if job is None:
                return
            job.status = status
            if status == "interrupted":  # the page's words: its Resume button, not the CLI's
                message = cancelled_message(len(job.history), job.epochs)
            job.message = " ".join(message.split()) if message else None
            job.test_accuracy, job.test_views = accuracy, views
            job.refused_field = field
            job.finished = time.time()
            self._emit("done", job.to_dict())

    # --- called by the reporter, from the training thread -------------------------------

    def current_epoch(self) -> int:
        with self._lock:
            return self._job.epoch if self._job else 0

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise KeyboardInterrupt("cancelled from the page")

    def _update(self, kind: str, data: dict[str, Any], **changes: Any) -> None:
        with self._lock:
            job = self._job
            if job is None:
                return
            for key, value in changes.items():
                setattr(job, key, value)
            if job.status == "starting":
                job.status = "running"
            if kind in ("step", "phase"):
                ends = ("step", "steps") if kind == "step" else ("done", "total")
                done, total = data[ends[0]], data[ends[1]]
                now = time.monotonic()
                if now - self._last_step_event < STEP_EVENT_SECONDS and 0 < done < total:
                    return  # the snapshot has it; the page does not need every one
                self._last_step_event = now
            elif kind == "epoch_end":
                job.history.append(data)
            elif kind == "note":
                job.notes.append(data["text"])
            self._emit(kind, data)

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        """Append an event; the caller holds the lock."""
        self._events.append(Event(self._next_id, kind, data))
        self._next_id += 1


def _run_name(name: str | None, spec: ModelSpec) -> str:
    """The name the page gave (checked: a refusal names the ``name`` field), else a dated one."""
    if not (name and name.strip()):
        return new_run_name(spec.name)
    try:
        return check_name(name.strip())
    except ConvlensError as err:
        err.field = "name"
        raise


def cancelled_message(epochs_done: int, epochs: int) -> str:
    """What the page says about an interrupted run: where its Resume button goes on from."""
    if not epochs_done:
        return (
            f"interrupted before its first epoch ended (0 of {epochs}); resume it with the "
            "Resume button, from the start with its own recipe"
        )
    return (
        f"interrupted after {epochs_done} of {epochs} epochs; resume it with the Resume "
        f"button, from epoch {epochs_done + 1}"
    )


class WebReporter:
    """A :class:`~convlens.train.progress.Reporter` that feeds the page and obeys cancel."""

    def __init__(self, manager: TrainingManager) -> None:
        self.manager = manager

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        self.manager._check_cancel()
        data = {"epoch": epoch, "epochs": epochs, "steps": steps}
        self.manager._update(
            "epoch", data, epoch=epoch, epochs=epochs, step=0, steps=steps, phase="train"
        )

    def step(self, done: int, total: int, loss: float, accuracy: float) -> None:
        self.manager._check_cancel()
        data = {"step": done, "steps": total, "loss": loss, "accuracy": accuracy}
        self.manager._update("step", data, step=done, steps=total, loss=loss, accuracy=accuracy)

    def phase(self, name: str, done: int, total: int) -> None:
        """An evaluation batch or a figure done: ``phase`` event ``{"phase", "epoch",
        "done", "total"}`` (see docs/WEB.md), and the moment a cancel can take effect."""
        self.manager._check_cancel()
        data = {"phase": name, "epoch": self.manager.current_epoch(), "done": done, "total": total}
        self.manager._update("phase", data, phase=name, phase_done=done, phase_total=total)

    def epoch_end(self, row: dict[str, float]) -> None:
        self.manager._update("epoch_end", dict(row))

    def note(self, text: str) -> None:
        self.manager._update("note", {"text": " ".join(str(text).split())})
