"""Where sweep trials run: this process, or a local process pool (Ray: ray_executor.py).

Every executor takes the same :class:`Trial` list and reports the same
:class:`TrialOutcome`s; the trials write ordinary run folders either way.

* ``inline``: one trial after another in this process (debugging, tests).
* ``process`` (default): a ``ProcessPoolExecutor`` (``forkserver``, else ``spawn``). Each
  worker receives the dataset once, when it starts (not once per trial), and sets its
  torch threads so that workers x threads <= cores. A trial that raises is reported as
  failed with its error. A worker that *dies* (killed, out of memory) breaks a process
  pool for every trial in flight; the trials that had started are then retried one at a
  time, each in a pool of its own, so the one that dies again is reported as failed and
  every other trial still finishes.
* ``ray``: each trial a Ray task, see :mod:`convlens.experiments.ray_executor`.

Trial timings from parallel workers are measured while the others run too; threads are
split evenly (:mod:`convlens.experiments.resources`) so each trial gets the same share.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convlens.data.config import DataConfig
from convlens.errors import ConvlensError
from convlens.models.footprint import Footprint
from convlens.models.spec import ModelSpec
from convlens.recipe import TrainConfig

if TYPE_CHECKING:
    from convlens.data.dataset import Dataset

EXECUTORS: tuple[str, ...] = ("process", "ray", "inline")

# Imported once by the fork server, before it forks the pool's workers.
WORKER_PRELOAD = (
    "torch",
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
    "convlens.train.session",
    "convlens.plots.curves",
    "convlens.plots.confusion",
    "convlens.experiments.executors",
)


@dataclass(frozen=True)
class Trial:
    """One training run of a sweep: a configuration with the seed of one repeat."""

    config_name: str  # "filters=32,convs=2"
    folder: str  # run folder name inside runs_dir: "filters-32_convs-2-1a2b3c4d-r0"
    runs_dir: str  # the sweep folder
    spec: ModelSpec
    config: TrainConfig  # seed = base seed + repeat
    data: DataConfig  # recorded in the run; the images come from the executor
    repeat: int
    recipe_preset: str | None = None  # the preset whose recipe config started from
    footprint: Footprint | None = None  # the spec on the data's input, from the sweep's plan

    @property
    def path(self) -> Path:
        return Path(self.runs_dir) / self.folder


@dataclass(frozen=True)
class TrialOutcome:
    folder: str
    status: str  # "complete" or "stopped" (trained), "failed"
    error: str | None = None
    seconds: float = 0.0  # wall clock in the worker, data preparation included
    files: dict[str, bytes] | None = None  # the run folder, when shipped back by Ray

    @property
    def ok(self) -> bool:
        return self.status in ("complete", "stopped")


OnDone = Callable[[TrialOutcome], None]


# --- one trial --------------------------------------------------------------------------


def execute_trial(
    trial: Trial, dataset: Dataset, runs_dir: str | Path | None = None
) -> TrialOutcome:
    """Train one trial into ``runs_dir/trial.folder``; an exception becomes a failed outcome.

    ``KeyboardInterrupt`` is not caught: the run records itself as interrupted and the
    sweep stops, to be started again.
    """
    from convlens.train.session import train

    start = time.perf_counter()
    try:
        run = train(
            trial.spec,
            data=trial.data,
            config=trial.config,
            runs_dir=runs_dir or trial.runs_dir,
            name=trial.folder,
            dataset=dataset,
            recipe_preset=trial.recipe_preset,
            footprint=trial.footprint,
        )
        status = str(run.state().get("status", "complete"))
        return TrialOutcome(trial.folder, status, None, time.perf_counter() - start)
    except Exception as err:  # any failure of one trial must not stop the others
        return TrialOutcome(trial.folder, "failed", one_line(err), time.perf_counter() - start)


def one_line(err: BaseException) -> str:
    """A ConvlensError's own line; anything else as ``Type: message`` joined onto one line."""
    if isinstance(err, ConvlensError):
        return str(err)
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def failed(trial: Trial, error: str) -> TrialOutcome:
    return TrialOutcome(trial.folder, "failed", error)


# --- inline -----------------------------------------------------------------------------


def run_inline(trials: Sequence[Trial], *, dataset: Dataset, on_done: OnDone) -> list[TrialOutcome]:
    outcomes = []
    for trial in trials:
        outcome = execute_trial(trial, dataset)
        on_done(outcome)
        outcomes.append(outcome)
    return outcomes


# --- local process pool -----------------------------------------------------------------

_WORKER_DATASET: Any = None
_WORKER_STARTED: Any = None  # a SimpleQueue: the folder of every trial a worker begins
_WORKER_STOP: Any = None  # an Event: set when the sweep is interrupted


def init_worker(dataset: Dataset, threads: int, started: Any = None, stop: Any = None) -> None:
    """Pool initializer: keep the dataset for every trial of this worker; pin threads.

    An idle worker ignores Ctrl-C (the parent shuts the pool down); a training one turns
    it into KeyboardInterrupt, so its run records itself as interrupted.
    """
    import torch

    global _WORKER_DATASET, _WORKER_STARTED, _WORKER_STOP
    _WORKER_DATASET = dataset
    _WORKER_STARTED = started
    _WORKER_STOP = stop
    torch.set_num_threads(threads)
    # and keep them: a run left to choose its threads would time other counts, past
    # the plan's workers x threads <= cores (convlens.train.threads)
    os.environ["CONVLENS_THREADS"] = str(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_trial(trial: Trial) -> TrialOutcome:
    """The pool's task: one trial on the dataset this worker was started with.

    It first tells the parent the trial has begun (a SimpleQueue write is synchronous, so
    the message survives the worker being killed a moment later). Once the sweep is
    interrupted, trials already queued to this worker do not start.
    """
    if _WORKER_STOP is not None and _WORKER_STOP.is_set():
        return failed(trial, "not started: the sweep was interrupted")
    if _WORKER_STARTED is not None:
        _WORKER_STARTED.put(trial.folder)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return execute_trial(trial, _WORKER_DATASET)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_local(
    trials: Sequence[Trial],
    *,
    dataset: Dataset,
    workers: int,
    threads: int,
    on_done: OnDone,
) -> list[TrialOutcome]:
    """Train ``trials`` in a pool of ``workers`` processes with ``threads`` threads each."""
    outcomes: list[TrialOutcome] = []
    queue = list(trials)
    lost_rounds = 0
    while queue:
        finished, unfinished, began = _pool_round(queue, dataset, workers, threads, on_done)
        outcomes.extend(finished)
        if not unfinished:
            break
        # A worker died. The trials that had begun were in flight: one of them killed it.
        # Retry each of those alone; the ones that never began go back into a fresh pool.
        started = [t for t in unfinished if t.folder in began]
        queue = [t for t in unfinished if t.folder not in began]
        for trial in started:
            clear_incomplete(trial)
            done, lost, _ = _pool_round([trial], dataset, 1, threads, lambda _: None)
            outcome = (
                done[0]
                if done
                else failed(
                    trial,
                    "its worker process died while training (killed by a signal or out of memory); "
                    "give the sweep fewer --workers or a smaller --train-subset",
                )
            )
            if lost:
                clear_incomplete(trial)
            on_done(outcome)
            outcomes.append(outcome)
        lost_rounds = 0 if (finished or started) else lost_rounds + 1
        if lost_rounds >= 2:  # workers die before any trial starts: do not loop forever
            for trial in queue:
                outcome = failed(
                    trial,
                    "worker processes died before training started (out of memory?); "
                    "try --workers 1 or a smaller --train-subset",
                )
                on_done(outcome)
                outcomes.append(outcome)
            break
    return outcomes


def _pool_round(
    trials: Sequence[Trial],
    dataset: Dataset,
    workers: int,
    threads: int,
    on_done: OnDone,
) -> tuple[list[TrialOutcome], list[Trial], set[str]]:
    """One pool over ``trials``: (outcomes, trials lost because the pool broke, folders of
    the trials that began)."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    finished: list[TrialOutcome] = []
    lost: list[Trial] = []
    context = pool_context()
    began = context.SimpleQueue()
    stop = context.Event()
    pool = ProcessPoolExecutor(
        max_workers=max(1, min(workers, len(trials))),
        mp_context=context,
        initializer=init_worker,
        initargs=(dataset, threads, began, stop),
    )
    started: set[str] = set()
    try:
        futures = {}
        for trial in trials:
            try:
                futures[pool.submit(run_trial, trial)] = trial
            except BrokenProcessPool:  # a worker died while the rest were being queued
                lost.append(trial)
        for future in as_completed(futures):
            _drain(began, started)  # keep the pipe from filling up on long sweeps
            trial = futures[future]
            try:
                outcome = future.result()
            except BrokenProcessPool:
                lost.append(trial)
                continue
            except KeyboardInterrupt:
                raise
            except BaseException as err:  # raised outside execute_trial, even SystemExit
                outcome = failed(trial, one_line(err))
            finished.append(outcome)
            on_done(outcome)
    except BaseException:  # Ctrl-C: trials already queued to a worker must not start
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    _drain(began, started)
    began.close()
    order = {trial.folder: i for i, trial in enumerate(trials)}
    return finished, sorted(lost, key=lambda t: order[t.folder]), started


def pool_context() -> Any:
    """``forkserver`` where the platform has it, else ``spawn`` (never plain ``fork``,
    which copies torch's thread pools into the child).

    The fork server imports torch, matplotlib and the training code once; every worker
    of every pool is then a copy-on-write fork of it, ready in milliseconds instead of
    the seconds a fresh interpreter needs to import torch.
    """
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(WORKER_PRELOAD))
    return context


def _drain(queue: Any, into: set[str]) -> None:
    while not queue.empty():
        into.add(queue.get())


def clear_incomplete(trial: Trial) -> None:
    """Remove a trial folder that did not finish, so the trial trains from scratch."""
    path = trial.path
    if path.is_dir() and path.parent == Path(trial.runs_dir):
        shutil.rmtree(path)
