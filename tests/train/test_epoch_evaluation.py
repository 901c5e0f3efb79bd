"""The evaluation phase after each epoch: measured train figures, progress, cancel."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convlens import fileio, runs
from convlens.errors import Interrupted
from convlens.experiments.overfit import overfitting
from convlens.models.inputs import to_tensor
from convlens.recipe import TrainConfig
from convlens.train.epoch_evaluation import evaluation_batches, train_sample
from convlens.train.progress import EVALUATE, FINISH, SilentReporter
from convlens.train.session import resume, train

SMALL = "conv(8, 3, relu), maxpool(2), flatten, dense(16, relu), dropout(0.5), dense(3, softmax)"
NORMED = "conv(8, 3), batchnorm(relu), maxpool(2), flatten, dense(3, softmax)"


def fp32(**changes) -> TrainConfig:
    return TrainConfig(precision="fp32", batch_size=16, **changes)


class Recorder(SilentReporter):
    """Every phase event, in order; raises KeyboardInterrupt at a chosen one (a cancel)."""

    def __init__(self, stop_at: tuple[str, int] | None = None) -> None:
        self.events: list[tuple[str, int, int]] = []
        self.stop_at = stop_at

    def phase(self, name: str, done: int, total: int) -> None:
        self.events.append((name, done, total))
        if self.stop_at == (name, done):
            raise KeyboardInterrupt


def test_the_training_sample_is_fixed_and_as_large_as_the_test_set() -> None:
    sample = train_sample(600, 120, seed=3)
    assert sample.shape == (120,) and len(set(sample.tolist())) == 120
    assert torch.equal(sample, train_sample(600, 120, seed=3))
    assert not torch.equal(sample, train_sample(600, 120, seed=4))
    assert sorted(train_sample(50, 120, seed=0).tolist()) == list(range(50))  # all, if fewer


def test_train_accuracy_is_the_saved_network_measured_on_the_sample(tiny_dataset, tmp_path) -> None:
    """Known answer: the last epoch's train figures are the final weights, in eval mode, on
    the seeded sample; the running mean is kept apart under its own name."""
    config = fp32(epochs=2, seed=5)
    run = train(SMALL, config=config, runs_dir=tmp_path, name="r", dataset=tiny_dataset)
    last = run.history()[-1]
    network = run.load_network()
    images, labels = to_tensor(tiny_dataset.train_images), to_tensor(tiny_dataset.train_labels)
    index = train_sample(len(labels), len(tiny_dataset.test_labels), seed=5)
    with torch.no_grad():
        logits = network(images[index].float() / 255)
    assert last["train_accuracy"] == pytest.approx(
        (logits.argmax(1) == labels[index]).float().mean().item(), abs=1e-9
    )
    assert last["train_loss"] == pytest.approx(F.cross_entropy(logits, labels[index]).item(), 1e-5)
    assert "running_accuracy" in last and "running_loss" in last
    assert last["eval_seconds"] > 0
    metrics = run.metrics()
    assert metrics["train_sample_images"] == len(tiny_dataset.test_labels)
    assert metrics["train_accuracy"] == last["train_accuracy"]
    assert metrics["overfit_gap"] == pytest.approx(last["train_accuracy"] - last["test_accuracy"])


def test_each_epoch_reports_its_evaluation_then_the_finish(tiny_dataset, tmp_path) -> None:
    recorder = Recorder()
    train(NORMED, config=fp32(epochs=2), runs_dir=tmp_path, dataset=tiny_dataset, reporter=recorder)
    evaluate = [e for e in recorder.events if e[0] == EVALUATE]
    finish = [e for e in recorder.events if e[0] == FINISH]
    n_train, n_test = len(tiny_dataset.train_labels), len(tiny_dataset.test_labels)
    total = evaluation_batches(torch.nn.BatchNorm2d(1), n_train, n_test, min(n_train, n_test))
    assert [d for _, d, _ in evaluate] == [*range(total + 1)] * 2  # 0 announces, total ends
    assert all(t == total for _, _, t in evaluate)
    assert finish[0][1] == 0 and finish[-1][1] == finish[-1][2]
    assert recorder.events[-1][0] == FINISH  # nothing after the figures


@pytest.mark.parametrize("where", [(EVALUATE, 1), (FINISH, 1), (FINISH, 0)])
def test_a_cancel_during_evaluation_or_finish_leaves_a_resumable_run(
    tiny_dataset, tmp_path, monkeypatch, where
) -> None:
    config = fp32(epochs=2)
    with pytest.raises(Interrupted):
        train(
            SMALL, config=config, runs_dir=tmp_path, name="r", dataset=tiny_dataset,
            reporter=Recorder(stop_at=where),
        )  # fmt: skip
    run = runs.Run(tmp_path / "r")
    state = run.state()
    assert state["status"] == "interrupted" and "--resume" in state["message"]
    # a cancel in the first epoch's evaluation loses that epoch; in the finish, nothing
    assert state["epochs_done"] == (0 if where[0] == EVALUATE else 2)
    if where[0] == EVALUATE:
        assert not run.file(runs.CHECKPOINT).exists()
        return
    if where == (FINISH, 0):
        assert not run.file(runs.METRICS_JSON).exists()
    monkeypatch.setattr("convlens.data.config.DataConfig.load", lambda self, **_: tiny_dataset)
    resumed = resume(run.path)  # only the finish is left to do
    assert resumed.state()["status"] == "complete"
    assert [row["epoch"] for row in resumed.history()] == [1, 2]


def test_an_older_run_is_read_with_its_running_means_named_so(tiny_dataset, tmp_path) -> None:
    """metrics.csv/json from before the measurement: train_* were running means."""
    run = train(SMALL, config=fp32(epochs=2), runs_dir=tmp_path, name="old", dataset=tiny_dataset)
    old_rows = [
        {"epoch": 1, "train_loss": 0.9, "train_accuracy": 0.60, "test_loss": 0.5,
         "test_accuracy": 0.80, "seconds": 1.0, "images_per_second": 100.0, "lr": 1e-3},
        {"epoch": 2, "train_loss": 0.4, "train_accuracy": 0.85, "test_loss": 0.3,
         "test_accuracy": 0.90, "seconds": 1.0, "images_per_second": 100.0, "lr": 1e-3},
    ]  # fmt: skip
    fileio.write_csv(run.file(runs.METRICS_CSV), old_rows)
    metrics = fileio.read_json(run.file(runs.METRICS_JSON))
    for key in ("train_sample_images", "running_accuracy", "eval_seconds"):
        metrics.pop(key)
    fileio.write_json(run.file(runs.METRICS_JSON), {**metrics, "train_accuracy": 0.85})
    history = run.history()
    assert "train_accuracy" not in history[-1] and history[-1]["running_accuracy"] == 0.85
    loaded = run.metrics()
    assert loaded.get("train_accuracy") is None and loaded["running_accuracy"] == 0.85
    assert "overfit_gap" not in loaded
    verdict = overfitting(history)
    assert not verdict.train_measured and "running mean" in verdict.text
    assert verdict.final_gap == pytest.approx(0.85 - 0.90)


def test_a_measured_history_is_judged_without_the_caveat() -> None:
    rows = [
        {"epoch": 1, "train_accuracy": 0.9, "running_accuracy": 0.8, "test_accuracy": 0.88},
        {"epoch": 2, "train_accuracy": 0.95, "running_accuracy": 0.9, "test_accuracy": 0.89},
    ]
    verdict = overfitting(rows)
    assert verdict.train_measured and "running mean" not in verdict.text
    assert verdict.final_gap == pytest.approx(0.95 - 0.89)  # never the running mean
