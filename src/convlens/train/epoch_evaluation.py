"""The evaluation that ends every epoch, as its own phase: what the network does now.

After an epoch's last step, three passes judge the weights as they are at that moment,
all in eval mode (dropout off, batchnorm on its statistics):

1. the batchnorm refresh (``engine.refresh_batchnorm_statistics``), so the next two see
   statistics of the final weights rather than a trailing average;
2. the test set: test loss and accuracy;
3. a fixed, seeded sample of training images (``TRAIN_SAMPLE_IMAGES``, or all of them
   when there are fewer): the *measured* train loss and accuracy.

The third is what "train accuracy" means in convlens. The running mean over an epoch's
steps, which Keras prints and this project used to call train accuracy, averages 1,875
versions of the weights, the early ones worst; it lagged behind the test figure after
the first epoch (84.1% "train" against 87.8% test) and made train-test gaps read as
negative. It is kept, under the name ``running_accuracy``, for the progress bar.

Every epoch is judged on the image alone, so its train and test figures and those of
every other epoch compare like with like (the curves, the overfitting verdict, the
train-test gap). A recipe with test-time views (``tta_flip``, ``tta_shift``: up to six
forward passes an image) has them added in the epoch whose evaluation is the run's
final one, the last: the same two passes then average the views, and the image alone
comes out of them too, as the first view (``tta_*`` figures: :meth:`EpochEvaluation.row`).
Judging every epoch with six views cost the ``fast`` preset 38% of its run.

The sample is the same in every epoch of a run (it depends on the seed only), so its
figure moves only with the weights.

A small run judges its epochs on a fixed *test sample* too (:func:`epoch_test_sample`): when
its steps would be shorter than the test pass (a step is about three forward passes, so
fewer training images than a third of the test images), every epoch's row, the last
included, is measured on the same ``TEST_SAMPLE_IMAGES`` test images (``test_images``
in the row), so the series compares like with like. The last epoch still runs the whole
test set, the run's final evaluation (metrics.json); its sample figure is that pass's
outputs at the sample's indices, so it costs nothing more. A 5-epoch run of 2,000
images judged 10,000 test images after each half-second of steps.

Progress is reported one batch at a time through ``on_batch(done, total)``, which is
also where a cancel can stop the phase.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from convlens.models.tta import view_count
from convlens.train.engine import (
    BATCHNORM_REFRESH_BATCH,
    BATCHNORM_REFRESH_IMAGES,
    INFERENCE_BATCH,
    Scores,
    evaluate_views,
    has_batchnorm,
    pass_batch,
    predict_view_logits,
    refresh_batchnorm_statistics,
)
from convlens.train.runtime import Runtime

# on_batch(batches done, batches in the phase)
BatchCallback = Callable[[int, int], None]

EVAL_BATCH = INFERENCE_BATCH  # images per evaluation batch, unless pass_batch says more
# Training images behind the measured train figures: one standard error of an accuracy
# near 90% is 0.42 points on 5,000 images (0.30 on the 10,000 test images); twice as
# many would cost the one-epoch run of the lesson's cnn another 2% of its time.
TRAIN_SAMPLE_IMAGES = 5_000
# Test images behind each epoch's row in a small run (see epoch_test_sample): one standard
# error of a 85% accuracy is 0.8 points on 2,000 images (the overfitting verdict scales
# its tolerance by it: convlens.experiments.overfit.tolerance_for).
TEST_SAMPLE_IMAGES = 2_000
STEP_COST = 3  # a training step's cost in forward passes of its images (forward + backward)


@dataclass(frozen=True)
class EpochEvaluation:
    """The figures of one epoch's evaluation phase.

    ``test`` and ``train`` judge the image alone; ``views_test`` and ``views_train`` the
    mean of ``views`` test-time views, when the epoch was judged with them (else None).
    """

    test: Scores  # on the test sample in a run that has one, else the test set
    train: Scores  # measured on the training sample, in eval mode
    train_images: int  # the size of that sample
    test_images: int  # the test images behind ``test`` and ``views_test``
    views: int  # test-time views behind views_test and views_train (1: none)
    views_test: Scores | None
    views_train: Scores | None
    seconds: float  # the whole phase: refresh, test pass, training-sample pass
    runtime: Runtime  # the arithmetic of the test and sample passes
    whole_test: Scores | None = None  # the whole test set, with the views, when sampled
    sampled: bool = False  # ``test`` is a test sample's (a small run: epoch_test_sample)

    @property
    def final_test(self) -> Scores:
        """The test figures of the whole test set with the views, if any: the run's
        final evaluation reports them. (Only an epoch that ran the whole test set has
        them; a sampled epoch before the last does not: the finish evaluates anew.)"""
        return self.whole_test or self.views_test or self.test

    def row(self) -> dict[str, float]:
        """This evaluation's metrics.csv columns: train and test on the image alone, the
        samples' sizes (``test_sampled`` = 1 when the test figures are a sample's) and,
        in an epoch judged with test-time views, ``tta_views`` and the ``tta_``-prefixed
        figures with them."""
        row: dict[str, float] = {
            "train_loss": self.train.loss,
            "train_accuracy": self.train.accuracy,
            "test_loss": self.test.loss,
            "test_accuracy": self.test.accuracy,
            "train_images": self.train_images,
            "test_images": self.test_images,
        }
        if self.sampled:  # every row of a run that judges its epochs on a test sample
            row["test_sampled"] = 1
        if self.views_test is not None and self.views_train is not None:
            row |= {
                "tta_views": self.views,
                "tta_train_loss": self.views_train.loss,
                "tta_train_accuracy": self.views_train.accuracy,
                "tta_test_loss": self.views_test.loss,
                "tta_test_accuracy": self.views_test.accuracy,
            }
        return row


def train_sample(train_count: int, test_count: int, seed: int) -> torch.Tensor:
    """Indices (M,) of the training images that measure train accuracy, M = min(train
    count, test count, ``TRAIN_SAMPLE_IMAGES``): the same for a seed in every epoch, and
    on resume."""
    generator = torch.Generator().manual_seed(seed * 7_919 + 104_729)
    count = min(train_count, test_count, TRAIN_SAMPLE_IMAGES)
    return torch.randperm(train_count, generator=generator)[:count]


def epoch_test_sample(train_count: int, test_count: int, seed: int) -> torch.Tensor | None:
    """Sorted indices (M,) of the test images that judge every epoch of a small run, or
    None: the whole test set judges them. A run is small when its steps would be
    shorter than the test pass (``STEP_COST`` x the images an epoch trains on,
    ``train_count``, < test count) and the test set has more than
    ``TEST_SAMPLE_IMAGES``. The same for a seed in every epoch, and on resume."""
    if train_count * STEP_COST >= test_count or test_count <= TEST_SAMPLE_IMAGES:
        return None
    generator = torch.Generator().manual_seed(seed * 6_007 + 15_485_863)
    return torch.randperm(test_count, generator=generator)[:TEST_SAMPLE_IMAGES].sort().values


def evaluation_batches(
    network: torch.nn.Module,
    train_count: int,
    test_count: int,
    sample_count: int,
    batch: int = EVAL_BATCH,
) -> int:
    """How many batches :func:`evaluate_epoch` will report: the unit of its progress
    (a batch with test-time views counts once); ``batch``: the passes' batch
    (:func:`~convlens.train.engine.pass_batch`)."""
    refresh = (
        math.ceil(min(BATCHNORM_REFRESH_IMAGES, train_count) / BATCHNORM_REFRESH_BATCH)
        if has_batchnorm(network)
        else 0
    )
    return refresh + math.ceil(test_count / batch) + math.ceil(sample_count / batch)


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
    tests: torch.Tensor | None = None,
    whole_test: bool = True,
) -> EpochEvaluation:
    """Refresh batchnorm, then measure ``test`` (images (N, C, H, W), labels (N,)) and the
    ``sample`` rows of ``train``, all on the device; ``seed`` picks the refresh images.
    With ``tta_flip``/``tta_shift`` both passes average those views and also give the
    image alone; without, they judge the image alone only.

    The refresh runs in ``runtime`` (the training's); the two measurements in
    ``measure_with`` when given (the session's fp32 runtime for the last epoch, so that
    the final evaluation of the saved weights is this one), else in ``runtime`` too.

    ``tests``: the test sample's indices (:func:`epoch_test_sample`), or None. With a sample the
    epoch's test figures are the sample's; ``whole_test`` (the last epoch) still passes
    the whole test set, and takes the sample's figures out of that pass.
    """
    start = time.perf_counter()
    measure = measure_with or runtime
    x_train, y_train = train
    x_test, y_test = test
    if tests is not None:
        tests = tests.to(x_test.device)
        if not whole_test:
            x_test, y_test = x_test[tests], y_test[tests]
    batch = pass_batch(network, measure, tuple(x_test.shape[1:]))
    total = evaluation_batches(network, x_train.shape[0], x_test.shape[0], sample.shape[0], batch)
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
    logits = predict_view_logits(network, x_test, measure, **views, batch_size=batch, on_batch=tick)
    views_test, test_alone = logits.scores(y_test)
    whole = None
    if tests is not None and whole_test:  # the sample's figures out of the whole pass
        whole = views_test
        views_test, test_alone = logits.at(tests).scores(y_test[tests])
    sample = sample.to(x_train.device)
    views_train, train_alone = evaluate_views(
        network,
        x_train[sample],
        y_train[sample],
        measure,
        **views,
        batch_size=batch,
        on_batch=tick,
    )
    if on_batch is not None and done != total:  # a refresh that skipped a lone leftover
        on_batch(total, total)
    judged = tta_flip or tta_shift
    return EpochEvaluation(
        test=test_alone,
        train=train_alone,
        train_images=int(sample.shape[0]),
        test_images=int(tests.shape[0]) if tests is not None else int(x_test.shape[0]),
        views=view_count(flip=tta_flip, shift=tta_shift),
        views_test=views_test if judged else None,
        views_train=views_train if judged else None,
        seconds=time.perf_counter() - start,
        runtime=measure,
        whole_test=whole,
        sampled=tests is not None,
    )
