"""The evaluation phase after each epoch: measured train figures, progress, cancel."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from convlens import fileio, runs
from convlens.errors import Interrupted
from convlens.experiments.overfit import overfitting
from convlens.models.inputs import to_tensor
from convlens.recipe import TrainConfig
from convlens.train import epoch_evaluation
from convlens.train.epoch_evaluation import (
    TRAIN_SAMPLE_IMAGES,
    epoch_test_sample,
    evaluation_batches,
    train_sample,
)
from convlens.train.evaluation import evaluate_run
from convlens.train.progress import EVALUATE, FINISH, SilentReporter
from convlens.train.session import resume, train
from tests.train.test_session import InterruptAt

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


@pytest.mark.parametrize("installed", [True, False])
def test_the_progress_counts_the_batches_the_passes_take(
    installed, tiny_dataset, tmp_path, monkeypatch
) -> None:
    """600 test images: one batch of ONNX Runtime's 512 and one more where it answers
    (the evaluation's fp32 passes, two threads), five of 128 where it does not; the
    phase's count of batches is the count it reports."""
    import dataclasses

    import numpy as np

    from convlens.models import inference
    from tests.conftest import make_pattern_images

    monkeypatch.setattr(inference, "onnx_installed", lambda: installed)
    labels = np.tile(np.arange(3), 200).astype(np.int64)
    images = make_pattern_images(labels, np.random.default_rng(1))
    dataset = dataclasses.replace(tiny_dataset, test_images=images, test_labels=labels)
    batch = 512 if installed else 128
    recorder = Recorder()
    config = fp32(epochs=1, threads=2)  # ONNX Runtime's batch is for two threads or more
    train(SMALL, config=config, runs_dir=tmp_path, dataset=dataset, reporter=recorder)
    evaluate = [e for e in recorder.events if e[0] == EVALUATE]
    total = evaluation_batches(torch.nn.Identity(), 150, 600, 150, batch)
    assert total == (2 + 1 if installed else 5 + 2)
    assert [d for _, d, _ in evaluate] == [*range(total + 1)]
    assert all(t == total for _, _, t in evaluate)


def test_passes_in_bf16_keep_the_networks_own_batch() -> None:
    from convlens.models.network import build_network
    from convlens.models.spec import parse_spec
    from convlens.train.engine import INFERENCE_BATCH, pass_batch
    from convlens.train.runtime import Runtime

    network = build_network(parse_spec(SMALL), (1, 28, 28), 3)
    bf16 = Runtime(torch.device("cpu"), "bf16", True)
    assert pass_batch(network, bf16, (1, 28, 28)) == INFERENCE_BATCH


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


def test_the_training_sample_is_capped() -> None:
    sample = train_sample(60_000, 10_000, seed=0)
    assert sample.shape == (TRAIN_SAMPLE_IMAGES,) and len(set(sample.tolist())) == 5_000


VIEWS = fp32(epochs=3, seed=2, augment=True, tta_flip=True, tta_shift=True)
SAMPLED = fp32(epochs=2, seed=4, train_subset=15)  # 45 forward passes of steps < 60 tests


def test_only_the_last_epoch_is_judged_with_the_views(tiny_dataset, tmp_path, monkeypatch) -> None:
    """Epochs before the last: the image alone (no tta_ columns); the last: the recipe's six
    views as well, and those are the final figures that evaluate reproduces; every row's
    plain figures are the saved network's on the image alone (known answer: the last)."""
    run = train(NORMED, config=VIEWS, runs_dir=tmp_path, name="v", dataset=tiny_dataset)
    monkeypatch.setattr("convlens.data.config.DataConfig.load", lambda self, **_: tiny_dataset)
    history = run.history()
    assert [("tta_views" in row) for row in history] == [False, False, True]
    assert all(row["train_images"] == len(tiny_dataset.test_labels) for row in history)
    last, metrics = history[-1], run.metrics()
    assert last["tta_views"] == 6 and metrics["test_views"] == 6 and metrics["train_views"] == 6
    views, _, _ = evaluate_run(run)
    alone, _, _ = evaluate_run(run, tta_flip=False)
    assert views.accuracy == metrics["test_accuracy"]
    assert views.accuracy == pytest.approx(last["tta_test_accuracy"], abs=1e-6)
    assert views.loss == pytest.approx(last["tta_test_loss"], abs=1e-6)
    assert alone.accuracy == pytest.approx(last["test_accuracy"], abs=1e-6)  # float32 mean
    assert alone.loss == pytest.approx(last["test_loss"], abs=1e-5)
    assert alone.loss != pytest.approx(views.loss, abs=1e-6)  # two measurements, not one twice
    # the gap and the train figure of metrics.json have the test figure's views
    assert metrics["train_accuracy"] == last["tta_train_accuracy"]
    assert metrics["overfit_gap"] == pytest.approx(
        last["tta_train_accuracy"] - last["tta_test_accuracy"]
    )
    # the per-epoch series is one kind of figure: the best epoch and the verdict use it
    assert metrics["best_test_accuracy"] == max(row["test_accuracy"] for row in history)
    assert overfitting(history).final_test_accuracy == last["test_accuracy"]


@pytest.mark.parametrize(
    ("spec", "config", "column", "sample"),
    [(NORMED, VIEWS, "tta_test_accuracy", None), (SMALL, SAMPLED, "test_sampled", 24)],
    ids=["views", "test-sample"],
)
def test_a_resumed_run_has_the_columns_of_an_uninterrupted_one(
    spec, config, column, sample, tiny_dataset, tmp_path, monkeypatch
) -> None:
    """Interrupted before its last epoch and resumed: the same CSV header, row keys and
    figures as the run that went straight through (with views; on a test sample)."""
    if sample:
        monkeypatch.setattr(epoch_evaluation, "TEST_SAMPLE_IMAGES", sample)
    straight = train(spec, config=config, runs_dir=tmp_path, name="s", dataset=tiny_dataset)
    with pytest.raises(Interrupted):
        train(
            spec, config=config, runs_dir=tmp_path, name="c", dataset=tiny_dataset,
            reporter=InterruptAt(config.epochs),
        )  # fmt: skip
    monkeypatch.setattr("convlens.data.config.DataConfig.load", lambda self, **_: tiny_dataset)
    resumed = resume(tmp_path / "c")
    header = [run.file(runs.METRICS_CSV).read_text().splitlines()[0] for run in (straight, resumed)]
    assert header[0] == header[1] and column in header[0]
    for a, b in zip(resumed.history(), straight.history(), strict=True):
        assert a.keys() == b.keys() and a["test_images"] == b["test_images"]
        assert a["test_accuracy"] == pytest.approx(b["test_accuracy"])
    assert resumed.metrics()["test_accuracy"] == straight.metrics()["test_accuracy"]


def test_the_cli_shows_the_evaluation_phase_and_the_views(tiny_idx_dir, tmp_path) -> None:
    """As a user runs it: each epoch's line has its evaluation seconds, the last one its
    figures with the views; the closing line says the test figure's views and the seconds
    of steps against those of evaluating."""
    done = subprocess.run(
        [
            sys.executable, "-m", "convlens", "train", SMALL, "--data", f"idx:{tiny_idx_dir}",
            "--epochs", "2", "--augment", "--tta-flip", "--precision", "fp32", "--batch-size",
            "16", "--runs", str(tmp_path), "--name", "p",
        ],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [x for x in done.stderr.splitlines() if re.match(r"epoch \d+: train loss", x)]
    assert "epoch 2 evaluating" in done.stderr  # the phase's own bar
    assert len(lines) == 2 and all(re.search(r"s \+ \d+\.\ds evaluating$", x) for x in lines)
    assert "views" not in lines[0]
    last = runs.Run(tmp_path / "p").history()[-1]
    assert f"| 2 views: train acc {last['tta_train_accuracy']:.2%}" in lines[1]
    metrics = runs.Run(tmp_path / "p").metrics()
    assert f"test accuracy {metrics['test_accuracy']:.2%} (2 views)" in done.stdout
    assert re.search(r"; \d+\.\d s of steps, \d+\.\d s evaluating", done.stdout)


def test_only_a_small_run_with_a_large_test_set_takes_a_test_sample() -> None:
    """Sampled when the steps (about 3 forward passes an image) would be shorter than the
    test pass; fixed for a seed, sorted, inside the test set."""
    assert epoch_test_sample(60_000, 10_000, seed=0) is None  # the full data
    assert epoch_test_sample(3_334, 10_000, seed=0) is None  # 10,002 forward passes of steps
    assert epoch_test_sample(2_000, 2_000, seed=0) is None  # nothing to gain
    sample = epoch_test_sample(2_000, 10_000, seed=0)
    assert sample.shape == (2_000,) and len(set(sample.tolist())) == 2_000
    assert sample.tolist() == sorted(sample.tolist()) and int(sample.max()) < 10_000
    assert torch.equal(sample, epoch_test_sample(3_000, 10_000, seed=0))
    assert not torch.equal(sample, epoch_test_sample(2_000, 10_000, seed=1))


def test_a_small_run_judges_every_epoch_on_one_test_sample(
    tiny_dataset, tmp_path, monkeypatch
) -> None:
    """Every row on the same test sample (test_images, test_sampled); the last row's figure
    is the whole final pass at the sample's indices (known answer: the saved network on
    those images); metrics.json the whole test set, as evaluate reproduces it."""
    monkeypatch.setattr(epoch_evaluation, "TEST_SAMPLE_IMAGES", 24)
    run = train(SMALL, config=SAMPLED, runs_dir=tmp_path, name="s", dataset=tiny_dataset)
    monkeypatch.setattr("convlens.data.config.DataConfig.load", lambda self, **_: tiny_dataset)
    history, metrics = run.history(), run.metrics()
    assert [(r["test_images"], r["test_sampled"]) for r in history] == [(24, 1), (24, 1)]
    assert metrics["test_sample_images"] == 24 and metrics["test_count"] == 60
    whole, _, _ = evaluate_run(run)
    assert whole.accuracy == metrics["test_accuracy"]  # the final figure: the whole set
    index = epoch_test_sample(15, 60, seed=4)
    labels = torch.as_tensor(tiny_dataset.test_labels)
    restricted = (torch.as_tensor(whole.predictions)[index] == labels[index]).float().mean()
    assert history[-1]["test_accuracy"] == pytest.approx(restricted.item(), abs=1e-7)
    with torch.no_grad():
        logits = run.load_network()(to_tensor(tiny_dataset.test_images)[index].float() / 255)
    assert history[-1]["test_loss"] == pytest.approx(
        F.cross_entropy(logits, labels[index]).item(), 1e-5
    )
    assert metrics["best_test_accuracy"] == max(r["test_accuracy"] for r in history)
    verdict = overfitting(history, sample_images=metrics["test_sample_images"])
    assert "the same 24 test images" in verdict.text


def test_the_overfitting_tolerance_grows_with_the_test_sample() -> None:
    from convlens.experiments.overfit import TOLERANCE, tolerance_for

    assert tolerance_for(None) == tolerance_for(10_000) == TOLERANCE
    assert tolerance_for(2_500) == pytest.approx(2 * TOLERANCE)  # SE ~ 1 / sqrt(n)
    rows = [
        {"epoch": e, "train_accuracy": a + 0.02, "test_accuracy": a}
        for e, a in enumerate([0.80, 0.84, 0.837], start=1)
    ]  # a fall of 0.3 points: past 0.2 on the whole set, noise on a 2,000-image sample
    assert overfitting(rows).verdict == "overfitting"
    assert overfitting(rows, sample_images=2_000).verdict != "overfitting"


def test_the_cli_names_the_test_sample_of_a_small_run(tmp_path) -> None:
    """As a user runs it: 150 training images against 2,100 test images, so each epoch's
    line says its test figures are a 2,000-image sample's; the closing line the whole set."""
    import numpy as np

    from convlens.data.idx import write_idx
    from tests.conftest import make_pattern_images

    rng = np.random.default_rng(1)
    folder = tmp_path / "idx"
    folder.mkdir()
    for part, count in (("train", 150), ("t10k", 2_100)):
        labels = np.tile(np.arange(3), count // 3).astype(np.uint8)
        write_idx(folder / f"{part}-images-idx3-ubyte.gz", make_pattern_images(labels, rng)[:, 0])
        write_idx(folder / f"{part}-labels-idx1-ubyte.gz", labels)
    done = subprocess.run(
        [
            sys.executable, "-m", "convlens", "train", SMALL, "--data", f"idx:{folder}",
            "--epochs", "2", "--precision", "fp32", "--batch-size", "16",
            "--runs", str(tmp_path), "--name", "p",
        ],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [x for x in done.stderr.splitlines() if re.match(r"epoch \d+: train loss", x)]
    history = runs.Run(tmp_path / "p").history()
    assert len(lines) == 2
    for line, row in zip(lines, history, strict=True):
        assert f"| test (2,000 sampled) loss {row['test_loss']:.4f} acc " in line
    metrics = runs.Run(tmp_path / "p").metrics()
    assert metrics["test_count"] == 2_100 and metrics["test_sample_images"] == 2_000
    assert f"test accuracy {metrics['test_accuracy']:.2%}" in done.stdout


def test_a_run_of_few_images_an_epoch_is_small_too(tiny_dataset, tmp_path, monkeypatch) -> None:
    """epoch_images: 15 of the 150 training images an epoch, 45 forward passes of steps
    against 60 test images: judged on the test sample, like a 15-image training set."""
    monkeypatch.setattr(epoch_evaluation, "TEST_SAMPLE_IMAGES", 24)
    config = fp32(epochs=1, seed=4, epoch_images=15)
    run = train(SMALL, config=config, runs_dir=tmp_path, name="e", dataset=tiny_dataset)
    assert [(r["test_images"], r["test_sampled"]) for r in run.history()] == [(24, 1)]
    assert run.metrics()["test_count"] == 60
