"""The evaluation that ends every epoch, as its own phase: what the network does now.

After an epoch's last step, three passes judge the weights as they are at that moment,
all in eval mode (dropout off, batchnorm on its statistics):

1. the batchnorm refresh (``engine.refresh_batchnorm_statistics``), so the next two see
   statistics of the final weights rather than a trailing average;
2. the test set: test loss and accuracy (with the recipe's test-time views, if any:
   ``tta_flip``, ``tta_shift``);
3. a fixed, seeded sample of training images, as many as the test set has (or all of
   them when there are fewer): the *measured* train loss and accuracy.

The third is what "train accuracy" means in convlens. The running mean over an epoch's
steps, which Keras prints and this project used to call train accuracy, averages 1,875
versions of the weights, the early ones worst; it lagged behind the test figure after
the first epoch (84.1% "train" against 87.8% test) and made train-test gaps read as
negative. It is kept, under the name ``running_accuracy``, for the progress bar.

The sample is the same in every epoch of a run (it depends on the seed only), so its
figure moves only with the weights. Progress is reported one batch at a time through
``on_batch(done, total)``, which is also where a cancel can stop the phase.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from convlens.train.engine import (
    BATCHNORM_REFRESH_BATCH,
    BATCHNORM_REFRESH_IMAGES,
    INFERENCE_BATCH,
    evaluate_tensors,
    has_batchnorm,
    refresh_batchnorm_statistics,
)
from convlens.train.runtime import Runtime

# on_batch(batches done, batches in the phase)
BatchCallback = Callable[[int, int], None]

EVAL_BATCH = INFERENCE_BATCH  # images per evaluation batch


@dataclass(frozen=True)
class EpochEvaluation:
    """The figures of one epoch's evaluation phase."""

    test_loss: float
    test_accuracy: float
    train_loss: float  # measured on the training sample, in eval mode
    train_accuracy: float
    train_images: int  # the size of that sample
    seconds: float  # the whole phase: refresh, test pass, training-sample pass
    test_predictions: torch.Tensor  # (N,) predicted labels, on the device
    runtime: Runtime  # the arithmetic of the test and sample passes


def train_sample(train_count: int, test_count: int, seed: int) -> torch.Tensor:
    """Indices (M,) of the training images that measure train accuracy, M = min(train,
    test count): the same for a seed in every epoch, and on resume."""
    generator = torch.Generator().manual_seed(seed * 7_919 + 104_729)
    return torch.randperm(train_count, generator=generator)[: min(train_count, test_count)]


def evaluation_batches(
    network: torch.nn.Module, train_count: int, test_count: int, sample_count: int
) -> int:
    """How many batches :func:`evaluate_epoch` will report: the unit of its progress."""
    refresh = (
        math.ceil(min(BATCHNORM_REFRESH_IMAGES, train_count) / BATCHNORM_REFRESH_BATCH)
        if has_batchnorm(network)
        else 0
    )
    return refresh + math.ceil(test_count / EVAL_BATCH) + math.ceil(sample_count / EVAL_BATCH)


def evaluate_epoch(
    network: torch.nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    sample: torch.Tensor,
    runtime: Runtime,
    *,
    seed: int,
    tta_flip: bool = False,
    tta_shift: bool = False,
    on_batch: BatchCallback | None = None,
    measure_with: Runtime | None = None,
) -> EpochEvaluation:
    """Refresh batchnorm, then measure ``test`` (images (N, C, H, W), labels (N,)) and the
    ``sample`` rows of ``train``, all on the device; ``seed`` picks the refresh images.

    The refresh runs in ``runtime`` (the training's); the two measurements in
    ``measure_with`` when given (the session's fp32 runtime for the last epoch, so that
    the final evaluation of the saved weights is this one), else in ``runtime`` too.
    """
    start = time.perf_counter()
    measure = measure_with or runtime
    x_train, y_train = train
    x_test, y_test = test
    total = evaluation_batches(network, x_train.shape[0], x_test.shape[0], sample.shape[0])
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if on_batch is not None:
            on_batch(done, total)

    if on_batch is not None:
        on_batch(0, total)
    refresh_batchnorm_statistics(network, x_train, runtime, seed=seed, on_batch=tick)
    views = {"tta_flip": tta_flip, "tta_shift": tta_shift}
    test_loss, test_accuracy, predicted = evaluate_tensors(
        network, x_test, y_test, measure, **views, batch_size=EVAL_BATCH, on_batch=tick
    )
    sample = sample.to(x_train.device)
    train_loss, train_accuracy, _ = evaluate_tensors(
        network,
        x_train[sample],
        y_train[sample],
        measure,
        **views,
        batch_size=EVAL_BATCH,
        on_batch=tick,
    )
    if on_batch is not None and done != total:  # a refresh that skipped a lone leftover
        on_batch(total, total)
    return EpochEvaluation(
        test_loss=test_loss,
        test_accuracy=test_accuracy,
        train_loss=train_loss,
        train_accuracy=train_accuracy,
        train_images=int(sample.shape[0]),
        seconds=time.perf_counter() - start,
        test_predictions=predicted,
        runtime=measure,
    )
