"""How many trials to run side by side: cores, free memory, and threads per worker.

``workers = min(cores / threads, free memory / memory per worker, trials)`` and, unless
given, ``threads = cores / workers``: the pool never asks for more CPU than there is, and
every worker gets the same share, so trial timings stay comparable. On a GPU the sweep
asks for one worker (they would all share the one device) unless told otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from convlens.errors import OptionError
from convlens.models.footprint import available_memory
from convlens.recipe import TrainConfig
from convlens.wording import counted

if TYPE_CHECKING:
    from convlens.data.dataset import Dataset

# What one worker process costs before it holds any data: Python, torch, matplotlib.
WORKER_BASE_BYTES = 700 * 2**20
# Images per batch when a run is evaluated at the end of training (predict_view_logits).
_EVAL_BATCH = 1000


@dataclass(frozen=True)
class WorkerPlan:
    workers: int
    threads: int
    cores: int
    memory_free: int | None  # bytes available to new processes, if known
    trial_memory: int  # bytes one worker is expected to need

    def describe(self) -> str:
        free = f"{self.memory_free / 2**30:.1f} GB free" if self.memory_free else "memory unknown"
        return (
            f"{counted(self.workers, 'worker')} x {counted(self.threads, 'thread')} "
            f"({self.cores} cores, {free}, "
            f"~{self.trial_memory / 2**30:.1f} GB per worker)"
        )


def plan_workers(
    trials: int, trial_memory: int, *, workers: int | None = None, threads: int | None = None
) -> WorkerPlan:
    """workers = min(cores / threads, free memory / memory per worker, trials), at least 1;
    threads = cores / workers unless given, so the pool never oversubscribes the CPU."""
    cores = cpu_count()
    free = available_memory()
    if workers is None:
        by_cpu = max(1, cores // (threads or 1))
        by_memory = max(1, free // trial_memory) if free else by_cpu
        workers = max(1, min(by_cpu, by_memory, trials))
    elif workers < 1:
        raise OptionError(f"--workers {workers} is not valid; it must be 1 or more")
    threads = threads or max(1, cores // workers)
    return WorkerPlan(workers, threads, cores, free, trial_memory)


def uses_gpu(device: str) -> bool:
    """Whether a TrainConfig's ``device`` trains on a CUDA GPU here."""
    if device.startswith("cuda"):
        return True
    if device != "auto":
        return False
    import torch

    return torch.cuda.is_available()


def estimate_trial_memory(
    shapes: Sequence[Sequence[int]], params: int, config: TrainConfig, dataset: Dataset
) -> int:
    """Bytes a worker needs for one trial: its base, the dataset, float copies, the model
    (weights, gradients, two Adam moments), and activations of a training step (kept for
    backward: ~3 copies) and of an evaluation batch."""
    per_image = sum(int(_prod(shape)) for shape in shapes)  # activations of one image
    n_train = min(config.train_subset or len(dataset.train_labels), len(dataset.train_labels))
    n_test = min(config.test_subset or len(dataset.test_labels), len(dataset.test_labels))
    pixels = int(_prod(dataset.input_shape))
    return int(
        WORKER_BASE_BYTES
        + dataset.train_images.nbytes
        + dataset.test_images.nbytes
        + 4 * pixels * (n_train + n_test)
        + 4 * 4 * params
        + 4 * per_image * (3 * config.batch_size + _EVAL_BATCH)
    )


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _prod(values: Sequence[int]) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out
