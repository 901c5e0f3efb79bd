"""Evaluate a trained network on a labelled set: accuracy, loss, per class, confusion."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from convlens.models.inputs import to_tensor
from convlens.models.network import Network
from convlens.train.engine import evaluate_views, pass_batch
from convlens.train.runtime import Runtime
from convlens.train.threads import ThreadChooser

if TYPE_CHECKING:
    from convlens.data.dataset import Dataset
    from convlens.runs import Run


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    loss: float
    count: int
    class_names: tuple[str, ...]
    confusion: np.ndarray  # (K, K) int: rows true, columns predicted
    predictions: np.ndarray  # (N,) int
    caveat: str = ""  # what the figures come from, when not the full data (for people)

    def with_caveat(self, caveat: str) -> Evaluation:
        return dataclasses.replace(self, caveat=caveat)

    @classmethod
    def of_predictions(
        cls,
        predictions: np.ndarray,
        labels: np.ndarray,
        class_names: tuple[str, ...] | list[str],
        *,
        loss: float,
    ) -> Evaluation:
        """The evaluation behind ``predictions`` (N,) of ``labels`` (N,) and its mean loss."""
        labels = np.asarray(labels)
        k = len(class_names)
        confusion = np.zeros((k, k), dtype=np.int64)
        np.add.at(confusion, (labels, predictions), 1)
        accuracy = float((predictions == labels).mean()) if len(labels) else 0.0
        return cls(accuracy, loss, len(labels), tuple(class_names), confusion, predictions)

    @property
    def per_class_accuracy(self) -> dict[str, float]:
        totals = self.confusion.sum(axis=1)
        return {
            name: float(self.confusion[i, i] / totals[i]) if totals[i] else float("nan")
            for i, name in enumerate(self.class_names)
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "test_accuracy": self.accuracy,
            "test_loss": self.loss,
            "test_count": self.count,
            "per_class_accuracy": self.per_class_accuracy,
            "class_names": list(self.class_names),
            "confusion": self.confusion.tolist(),
        }

    def format(self) -> str:
        width = max(len(n) for n in self.class_names)
        lines = [f"test accuracy {self.accuracy:.2%} (loss {self.loss:.4f}, {self.count:,} images)"]
        for name, acc in self.per_class_accuracy.items():
            bar = "#" * round(acc * 30) if acc == acc else ""
            lines.append(f"  {name:<{width}}  {acc:7.2%}  {bar}")
        if self.caveat:
            lines.append(f"({self.caveat})")
        return "\n".join(lines)

    def format_confusion(self) -> str:
        """The confusion matrix as text: rows are the true classes, columns the predicted
        ones (numbered as the rows), the diagonal is right.

            confusion matrix (rows: true class, columns: predicted class)
                              0     1 ...
            0 T-shirt/top   853     2 ...
        """
        k = len(self.class_names)
        width = max(len(f"{self.confusion.max():,}") if self.confusion.size else 1, len(str(k - 1)))
        names = [f"{i} {name}" for i, name in enumerate(self.class_names)]
        label = max(len(n) for n in names)
        lines = ["confusion matrix (rows: true class, columns: predicted class, by number)"]
        lines.append(" " * label + "".join(f"  {i:>{width}}" for i in range(k)))
        for name, row in zip(names, self.confusion, strict=True):
            lines.append(f"{name:<{label}}" + "".join(f"  {v:>{width},}" for v in row))
        return "\n".join(lines)

    def __str__(self) -> str:
        """What ``convlens evaluate`` prints: per class, then the confusion matrix."""
        return self.format() + "\n\n" + self.format_confusion()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        """Per-class accuracy and the confusion matrix as tables (rows: true class)."""
        from convlens.display import block, caveat_html, html_table

        names = self.class_names
        per_class = html_table(
            ["class", "accuracy", "images"],
            [
                (name, f"{acc:.2%}", f"{int(total):,}")
                for (name, acc), total in zip(
                    self.per_class_accuracy.items(), self.confusion.sum(axis=1), strict=True
                )
            ],
            caption=f"Test accuracy {self.accuracy:.2%} (loss {self.loss:.4f}, "
            f"{self.count:,} images)",
            numeric=[False, True, True],
        )
        confusion = html_table(
            ["true \\ predicted", *names],
            [
                (name, *(f"{v:,}" for v in row))
                for name, row in zip(names, self.confusion, strict=True)
            ],
            caption="Confusion matrix (rows: true class, columns: predicted)",
            numeric=[False, *([True] * len(names))],
        )
        return block(per_class, confusion, caveat_html(self.caveat))


# How saved weights are judged: fp32 on the CPU, channels_last (see evaluate_network).
FINAL_RUNTIME = Runtime(torch.device("cpu"), "fp32", True)


def evaluate_network(
    network: Network,
    images: np.ndarray,
    labels: np.ndarray,
    class_names: tuple[str, ...] | list[str],
    *,
    runtime: Runtime | None = None,
    tta_flip: bool = False,
    tta_shift: bool = False,
    batch_size: int | None = None,
    on_batch: Callable[[], None] | None = None,
) -> Evaluation:
    """Full-precision (fp32 unless a runtime says otherwise) evaluation of ``network``;
    ``on_batch()`` after each batch of ``batch_size`` images (for progress; by default
    the runtime's :func:`~convlens.train.engine.pass_batch`).

    On the CPU in fp32 (the default) the fast inference engine computes it
    (:mod:`convlens.models.inference`); elsewhere, with ``channels_last``, a
    channels_last copy of the network (the caller's network is left as it is).
    """
    runtime = runtime or FINAL_RUNTIME
    network = network.to(runtime.device)
    fast = runtime.device.type == "cpu" and runtime.precision == "fp32"
    if runtime.channels_last and not fast:
        network = copy.deepcopy(network).to(memory_format=torch.channels_last)
    x = to_tensor(images).to(runtime.device)  # uint8; scaled batch by batch
    y = to_tensor(np.asarray(labels, dtype=np.int64)).to(runtime.device)
    views, _ = evaluate_views(
        network,
        x,
        y,
        runtime,
        tta_flip=tta_flip,
        tta_shift=tta_shift,
        batch_size=batch_size or pass_batch(network, runtime, tuple(x.shape[1:])),
        on_batch=on_batch,
    )
    predicted = views.predicted.cpu().numpy()
    return Evaluation.of_predictions(predicted, labels, class_names, loss=views.loss)


def evaluate_run(
    run: Run,
    *,
    data_dir: str | None = None,
    tta_flip: bool | None = None,
    whole_test_set: bool = False,
) -> tuple[Evaluation, Dataset, dict[str, bool]]:
    """``run``'s final weights on its own test images, as metrics.json judged them.

    (evaluation, the dataset it read, the test-time views used: ``tta_flip`` and
    ``tta_shift``.) ``tta_flip=None`` follows the run's recipe; ``False`` shows the
    network alone (no shifted views either); ``whole_test_set`` ignores the run's
    ``test_subset``.
    """
    choose_threads = ThreadChooser()  # measures the other processes while data loads
    network = run.network()
    views = run.run_config.train.tta_options()  # the figures match metrics.json
    if tta_flip is not None and tta_flip != views["tta_flip"]:
        views = {"tta_flip": tta_flip, "tta_shift": False}
    dataset = run.dataset(
        data_dir,
        subsets=not whole_test_set,
        fix="point --data-dir at the original files, or add --whole-test-set to judge it "
        "on all of that data's test images",
    )
    choose_threads.choose()  # the cores left idle (no steps to time: train.threads)
    evaluation = evaluate_network(
        network, dataset.test_images, dataset.test_labels, dataset.class_names, **views
    )
    return evaluation, dataset, views
