"""Whole runs on a tiny dataset: the run folder, resume, early stop, best epoch, divergence."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from convlens import runs
from convlens.errors import RunError, TrainingDiverged
from convlens.predict import predict_arrays
from convlens.recipe import TrainConfig
from convlens.runs import Run
from convlens.train.progress import SilentReporter
from convlens.train.session import resume, train

SMALL = "conv(8, 3, relu), maxpool(2), flatten, dense(16, relu), dense(3, softmax)"


def fp32(**changes) -> TrainConfig:
    return TrainConfig(precision="fp32", batch_size=16, **changes)


def test_a_run_folder_holds_everything(tiny_dataset, tmp_path) -> None:
    run = train(SMALL, config=fp32(epochs=3), runs_dir=tmp_path, name="r", dataset=tiny_dataset)
    for name in (
        runs.CONFIG,
        runs.SPEC,
        runs.WEIGHTS,
        runs.CHECKPOINT,
        runs.METRICS_CSV,
        runs.METRICS_JSON,
        runs.SUMMARY,
        runs.ENV,
        runs.STATE,
        runs.CURVES,
        runs.CONFUSION,
    ):
        assert run.file(name).is_file(), name
    assert run.state()["status"] == "complete"
    history = run.history()
    assert [row["epoch"] for row in history] == [1, 2, 3]
    metrics = run.metrics()
    assert metrics["test_accuracy"] > 0.9  # the patterns are easy
    assert np.asarray(metrics["confusion"]).sum() == len(tiny_dataset.test_labels)
    assert set(metrics["per_class_accuracy"]) == {"vertical", "horizontal", "box"}
    env = json.loads(run.file(runs.ENV).read_text())
    assert env["seed"] == 0 and env["precision"] == "fp32" and "torch" in env
    assert "conv2d (Conv2D)" in run.file(runs.SUMMARY).read_text()


def test_saved_weights_reload_to_the_same_predictions(tiny_dataset, tmp_path) -> None:
    run = train(SMALL, config=fp32(epochs=1), runs_dir=tmp_path, name="r", dataset=tiny_dataset)
    probabilities = predict_arrays(run.load_network(), tiny_dataset.test_images)
    accuracy = (probabilities.argmax(1) == tiny_dataset.test_labels).mean()
    assert accuracy == pytest.approx(run.metrics()["test_accuracy"])


def test_same_seed_same_run(tiny_dataset, tmp_path) -> None:
    a = train(SMALL, config=fp32(epochs=2), runs_dir=tmp_path, name="a", dataset=tiny_dataset)
    b = train(SMALL, config=fp32(epochs=2), runs_dir=tmp_path, name="b", dataset=tiny_dataset)
    assert a.history()[-1]["train_loss"] == b.history()[-1]["train_loss"]


class InterruptAt(SilentReporter):
    """Simulates Ctrl-C at the start of a given epoch."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        if epoch == self.epoch:
            raise KeyboardInterrupt


def interrupted_run(model, config, dataset, tmp_path, *, at_epoch: int) -> Run:
    """Run "cut" in ``tmp_path``: ``config`` interrupted (Ctrl-C) at the start of an epoch."""
    with pytest.raises(KeyboardInterrupt):
        train(
            model,
            config=config,
            runs_dir=tmp_path,
            name="cut",
            dataset=dataset,
            reporter=InterruptAt(at_epoch),
        )
    return Run(tmp_path / "cut")


def straight_and_resumed(model, config, dataset, tmp_path, monkeypatch, *, at_epoch: int):
    """(the run "straight": ``config`` uninterrupted, the run "cut": interrupted at the
    start of ``at_epoch`` and resumed), both on ``dataset`` in ``tmp_path``."""
    straight = train(model, config=config, runs_dir=tmp_path, name="straight", dataset=dataset)
    interrupted_run(model, config, dataset, tmp_path, at_epoch=at_epoch)
    # resume reloads the data from the run's config; hand it the same dataset
    monkeypatch.setattr("convlens.data.config.DataConfig.load", lambda self, **_: dataset)
    return straight, resume(tmp_path / "cut")


def test_interrupted_run_resumes_to_the_planned_epochs(tiny_dataset, tmp_path, monkeypatch) -> None:
    config = fp32(epochs=4)
    straight = train(SMALL, config=config, runs_dir=tmp_path, name="straight", dataset=tiny_dataset)
    cut = interrupted_run(SMALL, config, tiny_dataset, tmp_path, at_epoch=3)
    state = cut.state()
    assert state["status"] == "interrupted" and state["epochs_done"] == 2
    assert "--resume" in state["message"]
    assert len(cut.history()) == 2
    # resume reloads the data from the run's config; hand it the same tiny dataset
    monkeypatch.setattr("convlens.data.config.DataConfig.load", lambda self, **_: tiny_dataset)
    resumed = resume(tmp_path / "cut")
    assert resumed.state()["status"] == "complete"
    assert [r["epoch"] for r in resumed.history()] == [1, 2, 3, 4]
    # Shuffling depends only on (seed, epoch): the resumed run is the uninterrupted one.
    for a, b in zip(resumed.history(), straight.history(), strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["test_accuracy"] == pytest.approx(b["test_accuracy"])


def test_a_resumed_run_keeps_the_moments_of_channels_last_convs(
    tiny_dataset, tmp_path, monkeypatch
) -> None:
    """A conv with 8 input channels, channels_last as training places it: its Adam moments
    come back in the weight's layout (they were paired with the wrong elements)."""
    model = "conv(8, 3, relu), maxpool(2), conv(8, 3, relu), flatten, dense(3, softmax)"
    config = fp32(epochs=3, threads=1)
    straight = train(model, config=config, runs_dir=tmp_path, name="straight", dataset=tiny_dataset)
    cut = interrupted_run(model, config, tiny_dataset, tmp_path, at_epoch=2)
    monkeypatch.setattr("convlens.data.config.DataConfig.load", lambda self, **_: tiny_dataset)
    resumed = resume(cut.path)
    assert [r["train_loss"] for r in resumed.history()] == [
        r["train_loss"] for r in straight.history()
    ]  # the same to the bit: one thread, the same seed


def test_resume_can_extend_and_refuses_what_cannot_resume(
    tiny_dataset, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr("convlens.data.config.DataConfig.load", lambda self, **_: tiny_dataset)
    run = train(SMALL, config=fp32(epochs=1), runs_dir=tmp_path, name="r", dataset=tiny_dataset)
    assert resume(run.path).history() == run.history()  # complete: nothing to do
    extended = resume(run.path, epochs=2)
    assert len(extended.history()) == 2 and extended.config["train"]["epochs"] == 2
    with pytest.raises(RunError, match="no run at"):
        resume(tmp_path / "nowhere")


def test_config_json_records_the_recipes_preset_and_runs_from_before_it_still_load(
    tiny_dataset, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr("convlens.data.config.DataConfig.load", lambda self, **_: tiny_dataset)
    run = train(SMALL, config=fp32(epochs=1), runs_dir=tmp_path, name="r",
                dataset=tiny_dataset, recipe_preset="fast")  # fmt: skip
    assert run.config["recipe"] == "fast" and run.config["preset"] is None

    # A run written before "recipe" existed opens, loads and resumes as before.
    config = json.loads(run.file(runs.CONFIG).read_text())
    del config["recipe"]
    run.file(runs.CONFIG).write_text(json.dumps(config))
    old = Run.open(run.path)
    assert "recipe" not in old.config and old.load_network() is not None
    assert len(resume(run.path, epochs=2).history()) == 2


def test_stop_at_accuracy_is_the_lessons_callback(tiny_dataset, tmp_path) -> None:
    run = train(
        SMALL,
        config=fp32(epochs=30, stop_at_accuracy=0.9),
        runs_dir=tmp_path,
        name="r",
        dataset=tiny_dataset,
    )
    history = run.history()
    assert len(history) < 30
    assert history[-1]["train_accuracy"] >= 0.9
    assert all(row["train_accuracy"] < 0.9 for row in history[:-1])
    assert run.state()["status"] == "stopped"
    assert "stopping early" in run.metrics()["stopped_early"]


def test_keep_best_saves_the_best_test_epoch(tiny_dataset, tmp_path) -> None:
    run = train(
        SMALL, config=fp32(epochs=4, keep="best"), runs_dir=tmp_path, name="r", dataset=tiny_dataset
    )
    metrics = run.metrics()
    assert metrics["weights_epoch"] == metrics["best_epoch"]
    assert metrics["test_accuracy"] == pytest.approx(metrics["best_test_accuracy"])


class PoisonAfterFirstEpoch(SilentReporter):
    """Makes every loss NaN once the first epoch has ended."""

    poisoned = False

    def epoch_end(self, row) -> None:
        PoisonAfterFirstEpoch.poisoned = True


def test_divergence_stops_with_a_clear_message_and_keeps_the_last_good_epoch(
    tiny_dataset, tmp_path, monkeypatch
) -> None:
    import types

    import torch.nn.functional as F

    from convlens.train import engine

    def cross_entropy(*args, **kwargs):
        loss = F.cross_entropy(*args, **kwargs)
        return loss * float("nan") if PoisonAfterFirstEpoch.poisoned else loss

    monkeypatch.setattr(engine, "F", types.SimpleNamespace(cross_entropy=cross_entropy, pad=F.pad))
    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        train(
            SMALL,
            config=fp32(epochs=3),
            runs_dir=tmp_path,
            name="r",
            dataset=tiny_dataset,
            reporter=PoisonAfterFirstEpoch(),
        )
    run = Run(tmp_path / "r")
    assert run.state()["status"] == "diverged" and run.state()["epochs_done"] == 1
    assert len(run.history()) == 1 and np.isfinite(run.history()[0]["train_loss"])


def test_a_used_run_name_is_not_overwritten(tiny_dataset, tmp_path) -> None:
    train(SMALL, config=fp32(epochs=1), runs_dir=tmp_path, name="r", dataset=tiny_dataset)
    with pytest.raises(RunError, match="already holds a run"):
        train(SMALL, config=fp32(epochs=1), runs_dir=tmp_path, name="r", dataset=tiny_dataset)


def test_mismatched_weights_are_refused(tiny_dataset, tmp_path) -> None:
    run = train(SMALL, config=fp32(epochs=1), runs_dir=tmp_path, name="r", dataset=tiny_dataset)
    other = train(
        "flatten, dense(3, softmax)",
        config=fp32(epochs=1),
        runs_dir=tmp_path,
        name="o",
        dataset=tiny_dataset,
    )
    run.file(runs.WEIGHTS).write_bytes(other.file(runs.WEIGHTS).read_bytes())
    with pytest.raises(RunError, match="do not fit the model"):
        run.load_network()
    run.file(runs.WEIGHTS).write_bytes(b"garbage")
    with pytest.raises(RunError, match="not a readable safetensors file"):
        run.load_network()


def test_bf16_trains_as_well_as_fp32_on_the_tiny_set(tiny_dataset, tmp_path) -> None:
    results = {}
    for precision in ("fp32", "bf16"):
        config = TrainConfig(precision=precision, batch_size=16, epochs=3)
        run = train(SMALL, config=config, runs_dir=tmp_path, name=precision, dataset=tiny_dataset)
        results[precision] = run.metrics()["test_accuracy"]
    assert abs(results["fp32"] - results["bf16"]) <= 0.05
    assert torch.get_num_threads() >= 1


@pytest.mark.parametrize(
    ("field", "value", "missing"), [("ema", 0.9, "average/"), ("lookahead", 5, "slow/")]
)
def test_a_checkpoint_without_the_state_its_recipe_keeps_is_refused(
    field, value, missing, tiny_dataset, tmp_path, monkeypatch
) -> None:
    """A recipe with ema (the average) or lookahead (the slow weights) resumes only from
    a checkpoint that holds that state."""
    monkeypatch.setattr("convlens.data.config.DataConfig.load", lambda self, **_: tiny_dataset)
    run = train(SMALL, config=fp32(epochs=1), runs_dir=tmp_path, name="r", dataset=tiny_dataset)
    saved = run.config
    run.write_config({**saved, "train": {**saved["train"], field: value}})
    with pytest.raises(RunError, match=f"missing {missing}"):
        resume(run.path, epochs=2)


def test_a_run_imports_ahead_and_waits_before_its_steps(
    tiny_dataset, tmp_path, monkeypatch
) -> None:
    from convlens.models.onnx_runtime import onnx_installed
    from convlens.train import session

    events: list[tuple] = []

    class Recording:
        def __init__(self, modules) -> None:
            events.append(("start", tuple(modules)))

        def wait(self) -> None:
            events.append(("wait",))

    real_train_epoch = session.train_epoch

    def train_epoch(*args, **kwargs):
        events.append(("epoch",))
        return real_train_epoch(*args, **kwargs)

    monkeypatch.setattr(session, "BackgroundImport", Recording)
    monkeypatch.setattr(session, "train_epoch", train_epoch)
    monkeypatch.setattr("convlens.data.config.DataConfig.load", lambda self, **_: tiny_dataset)
    run = train(SMALL, config=fp32(epochs=1), runs_dir=tmp_path, name="r", dataset=tiny_dataset)
    assert [event[0] for event in events] == ["start", "wait", "epoch"]
    started = events[0][1]
    assert started[0] == "torch._dynamo"  # the optimizer's, needed first
    assert set(session.FIGURE_MODULES) <= set(started)
    assert ("onnxruntime" in started) == onnx_installed()
    events.clear()
    resume(run.path, epochs=2)  # one more epoch, the same order
    assert [event[0] for event in events] == ["start", "wait", "epoch"]
