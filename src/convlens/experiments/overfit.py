"""Overfitting, read off a run's history: the lesson's "train for 20 epochs" exercise.

Training accuracy keeps rising while test accuracy stalls or falls: the network starts to
learn its training images rather than the classes. From the per-epoch rows of
``metrics.csv`` this module finds the epoch of best test accuracy, the final train-test
gap, and whether test accuracy fell after its best, and says so in one sentence.

Train accuracy is the measured one (``train_accuracy``: the network at the end of each
epoch on a fixed sample of training images, in eval mode). Runs from before that
measurement only have ``running_accuracy``, the mean over an epoch's steps, which trails
the network; they are still judged, and the sentence says which figure it used.

A fall counts only when it is larger than ``tolerance`` (default 0.2 points: 20 of
Fashion-MNIST's 10,000 test images), so that epoch-to-epoch noise is not called
overfitting. A small run whose epochs were judged on a fixed test sample
(``test_sample_images`` in metrics.json, ``test_images`` per row) has a noisier series:
its tolerance grows with the sample's standard error (:func:`tolerance_for`: 0.45 points
on 2,000 images).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

TOLERANCE = 0.002  # 0.2 points of accuracy, on ...
TOLERANCE_IMAGES = 10_000  # ... this many test images (Fashion-MNIST's test set)
WIDE_GAP = 0.03  # a train-test gap above 3 points is worth a word
LOSS_RISE = 0.05  # a final test loss 5% above its minimum: the network grows overconfident


@dataclass(frozen=True)
class Overfitting:
    epochs: int
    best_epoch: int  # epoch of the best test accuracy (the first, on ties)
    best_test_accuracy: float
    final_test_accuracy: float
    final_train_accuracy: float
    final_gap: float  # train - test accuracy at the last epoch
    drop: float  # best - final test accuracy (>= 0)
    fell_after_best: bool  # the drop exceeds the tolerance
    train_rose_after_best: bool  # train accuracy at the end is above its value at best_epoch
    loss_low_epoch: int | None  # epoch of the lowest test loss, if it has risen since
    train_measured: bool  # False: an older run, judged on running means over the steps
    verdict: str  # "overfitting", "stalled", "still improving", "no sign", "too short"
    text: str  # the sentence for people

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def tolerance_for(sample_images: int | None) -> float:
    """The fall that counts when the epochs were judged on ``sample_images`` test images
    (None: the whole test set, ``TOLERANCE``): TOLERANCE scaled by the standard error of
    an accuracy on the sample against one on TOLERANCE_IMAGES, 1 / sqrt(n)."""
    if not sample_images or sample_images >= TOLERANCE_IMAGES:
        return TOLERANCE
    return TOLERANCE * math.sqrt(TOLERANCE_IMAGES / sample_images)


def overfitting(
    history: Sequence[dict[str, float]],
    tolerance: float | None = None,
    *,
    sample_images: int | None = None,
) -> Overfitting:
    """Judge a run's per-epoch rows (``train_accuracy`` or, in older runs only,
    ``running_accuracy``; ``test_accuracy``; ``epoch``). ``sample_images``: the fixed
    test sample the rows were measured on (metrics.json ``test_sample_images``), which
    sets the default tolerance (:func:`tolerance_for`) and is named in the sentence."""
    if tolerance is None:
        tolerance = tolerance_for(sample_images)
    if not history:
        raise ValueError("an empty history has no epochs to judge")
    tests = [row["test_accuracy"] for row in history]
    trains, measured = train_accuracies(history)
    best_index = max(range(len(tests)), key=lambda i: (tests[i], -i))
    best_epoch = int(history[best_index]["epoch"])
    final_epoch = int(history[-1]["epoch"])
    drop = max(0.0, tests[best_index] - tests[-1])
    gap = trains[-1] - tests[-1]
    fell = drop > tolerance
    rose = trains[-1] > trains[best_index]
    points = f"{100 * gap:.1f} points"
    loss_low = _loss_low_epoch(history)
    loss_note = (
        f" Test loss has risen since epoch {loss_low}: the network grows confident in its mistakes."
        if loss_low is not None
        else ""
    )
    sampled = (
        f" (Each epoch was judged on the same {sample_images:,} test images, a sample: a"
        f" fall counts above {100 * tolerance:.2f} points.)"
        if sample_images
        else ""
    )
    caveat = sampled + (
        ""
        if measured
        else " (This run's train accuracy is the running mean over each epoch's steps,"
        " recorded before convlens measured it at the end of each epoch: it trails the"
        " network, so the gap is smaller than the network's own.)"
    )
    if len(history) < 2:
        verdict = "too short"
        text = (
            f"Only one epoch: test accuracy {tests[-1]:.2%}, train {trains[-1]:.2%}. Train for "
            "more epochs (e.g. --epochs 20) to see whether test accuracy stalls or falls."
        )
    elif fell:
        verdict = "overfitting"
        text = (
            f"Overfitting: test accuracy peaked at {tests[best_index]:.2%} in epoch "
            f"{best_epoch} and ended {100 * drop:.1f} points lower at {tests[-1]:.2%}"
            + (f", while train accuracy rose to {trains[-1]:.2%}" if rose else "")
            + f". The final train-test gap is {points}.{loss_note} Keep the best epoch "
            f"(--keep best) or stop near epoch {best_epoch}."
        )
    elif best_index == len(history) - 1:
        verdict = "still improving"
        text = (
            f"Still improving: the best test accuracy, {tests[best_index]:.2%}, came in the "
            f"last epoch ({final_epoch}), and the train-test gap is {points}. More epochs "
            "may still help."
        )
    elif rose and gap >= WIDE_GAP:
        verdict = "stalled"
        text = (
            f"Test accuracy has stalled since epoch {best_epoch} ({tests[best_index]:.2%}) "
            f"while train accuracy kept rising to {trains[-1]:.2%}: the {points} gap is the "
            f"start of overfitting.{loss_note} More epochs will not help; more data or "
            "regularisation (dropout, augmentation) might."
        )
    else:
        verdict = "no sign"
        text = (
            f"No sign of overfitting: test accuracy ({tests[-1]:.2%}) stayed within "
            f"{100 * tolerance:.1f} points of its best ({tests[best_index]:.2%}, epoch "
            f"{best_epoch}) and the train-test gap is {points}."
        )
    return Overfitting(
        epochs=len(history),
        best_epoch=best_epoch,
        best_test_accuracy=tests[best_index],
        final_test_accuracy=tests[-1],
        final_train_accuracy=trains[-1],
        final_gap=gap,
        drop=drop,
        fell_after_best=fell,
        train_rose_after_best=rose,
        loss_low_epoch=loss_low,
        train_measured=measured,
        verdict=verdict,
        text=text + caveat,
    )


def train_accuracies(history: Sequence[dict[str, float]]) -> tuple[list[float], bool]:
    """Each epoch's train accuracy, and whether it was measured: the measured figures when
    every row has one, else (an older run) the running means over the steps."""
    if all("train_accuracy" in row for row in history):
        return [row["train_accuracy"] for row in history], True
    return [
        row.get("train_accuracy", row.get("running_accuracy", float("nan"))) for row in history
    ], False


def _loss_low_epoch(history: Sequence[dict[str, float]]) -> int | None:
    """The epoch of the lowest test loss when the last one is LOSS_RISE above it, else None."""
    losses = [row.get("test_loss") for row in history]
    if len(losses) < 2 or any(loss is None for loss in losses):
        return None
    low = min(range(len(losses)), key=lambda i: losses[i])
    return int(history[low]["epoch"]) if losses[-1] > (1 + LOSS_RISE) * losses[low] else None
