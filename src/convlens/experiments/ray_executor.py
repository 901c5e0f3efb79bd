"""Sweep trials as Ray tasks, on a local Ray runtime or a cluster (``convlens sweep --ray``).

Each trial is a task with ``num_cpus`` = its torch threads and no automatic retries (a
trial that crashes its worker is reported as failed, not run again behind your back).
The dataset goes into Ray's object store once and every task reads it from there. A task
trains into a temporary folder on its node and returns the folder's files, which are
written into the sweep folder here, so a cluster without a shared file system works too.

Ray is an optional extra: ``pip install 'convlens[ray]'``. A cluster's nodes need convlens
(and the same torch) installed as well.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convlens import fileio, runs
from convlens.errors import OptionError
from convlens.experiments.executors import (
    OnDone,
    Trial,
    TrialOutcome,
    clear_incomplete,
    execute_trial,
    failed,
    one_line,
)

if TYPE_CHECKING:
    from convlens.data.dataset import Dataset

RAY_INSTALL = "pip install 'convlens[ray]'"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise OptionError(
            f"the Ray executor (--ray) needs Ray, which is not installed; install it with: "
            f"{RAY_INSTALL}"
        ) from None
    return ray


def run_ray(
    trials: Sequence[Trial],
    *,
    dataset: Dataset,
    threads: int,
    on_done: OnDone,
    address: str | None = None,
    num_cpus: int | None = None,
) -> list[TrialOutcome]:
    """Each trial as a Ray task; ``address`` None starts a local Ray runtime for the sweep.

    ``num_cpus`` caps a local runtime (workers x threads); a cluster has its own.
    """
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        check_reachable(address)
        try:
            ray.init(
                address=address or None,
                num_cpus=None if address else num_cpus,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="warning",
            )
        except (ConnectionError, RuntimeError, ValueError) as err:
            where = f"the Ray cluster at {address}" if address else "a local Ray runtime"
            raise OptionError(
                f"cannot start or reach {where}: {one_line(err)}; check the address "
                "(ray status) or run without --ray"
            ) from None
    try:
        task = ray.remote(num_cpus=threads, max_retries=0)(ray_trial)
        data_ref = ray.put(dataset)
        pending = {task.remote(trial, data_ref, threads): trial for trial in trials}
        outcomes = []
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                trial = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as err:  # a crashed worker or node: this trial only
                    outcome = failed(trial, f"the Ray task failed: {one_line(err)}")
                outcome = _unpack(trial, outcome)
                on_done(outcome)
                outcomes.append(outcome)
        return outcomes
    finally:
        if started_here:
            ray.shutdown()


def check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes, when a ``HOST:PORT`` Ray address does not answer
    (Ray itself keeps retrying an unreachable head node for minutes)."""
    import socket

    if not address or address in ("auto", "local"):
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise OptionError(
            f"--ray {address}: expected HOST:PORT (e.g. 10.0.0.5:6379), 'auto' or ray://HOST:PORT"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise OptionError(
            f"cannot reach the Ray cluster at {address} ({err.strerror or err}); check the "
            "address (on the head node: ray status) or run without --ray"
        ) from None


def ray_trial(trial: Trial, dataset: Dataset, threads: int) -> TrialOutcome:
    """A Ray task: train in a temporary folder on this node and return its files."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    # Arrays from Ray's object store are read-only views; torch wants writable memory.
    dataset = dataclasses.replace(
        dataset,
        **{
            split: np.array(getattr(dataset, split))
            for split in ("train_images", "train_labels", "test_images", "test_labels")
        },
    )
    scratch = tempfile.mkdtemp(prefix="convlens-trial-")
    try:
        outcome = execute_trial(trial, dataset, runs_dir=scratch)
        folder = Path(scratch) / trial.folder
        if not outcome.ok or not folder.is_dir():
            return outcome
        files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
        return dataclasses.replace(outcome, files=files)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _unpack(trial: Trial, outcome: TrialOutcome) -> TrialOutcome:
    """Write shipped files into the trial's folder, state.json last (it says 'complete')."""
    if not outcome.files:
        return outcome
    clear_incomplete(trial)
    names = sorted(outcome.files, key=lambda name: (name == runs.STATE, name))
    for name in names:
        fileio.write_bytes(trial.path / name, outcome.files[name])
    return dataclasses.replace(outcome, files=None)
