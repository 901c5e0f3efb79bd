"""Training from the page: start, recipes, live events, completion, one at a time, cancel,
resume."""

from __future__ import annotations

import json
import time

import pytest

from convlens.models.registry import PRESETS
from convlens.recipe import RECIPE_FIELDS, TrainConfig
from convlens.runs import Run
from tests.web.conftest import library_field, library_message

SMALL = "conv(4, 3, relu), maxpool(2), flatten, dense(3, softmax)"
GAP_SMALL = "conv(4, 3, relu), maxpool(2), gap, dense(3, softmax)"  # takes any image size


def events(client, timeout: float = 60.0) -> list[tuple[str, dict]]:
    """Read /api/train/events until the server ends the stream: [(kind, data), ...]."""
    found: list[tuple[str, dict]] = []
    deadline = time.monotonic() + timeout
    kind = None
    with client.stream("GET", "/api/train/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: "):
                found.append((kind, json.loads(line[len("data: ") :])))
                if kind == "end":
                    break
            assert time.monotonic() < deadline, "the event stream did not end"
    return found


def wait_for(client, condition, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snapshot = client.get("/api/train").json()
        if condition(snapshot):
            return snapshot
        time.sleep(0.05)
    raise AssertionError(f"timed out; last status {snapshot}")


def test_train_from_the_page_streams_progress_to_a_finished_run(client, runs_dir) -> None:
    assert client.get("/api/train").json()["status"] == "idle"
    response = client.post("/api/train", json={"model": SMALL, "epochs": 2, "name": "web-1"})
    assert response.status_code == 202, response.text
    assert response.json()["run"] == "web-1" and response.json()["active"]

    stream = events(client)
    kinds = [kind for kind, _ in stream]
    assert kinds[0] in ("status", "start") and kinds[-1] == "end"
    ends = [data for kind, data in stream if kind == "epoch_end"]
    steps = [data for kind, data in stream if kind == "step"]
    done = next(data for kind, data in stream if kind == "done")
    # a page that connects late gets the history in the first snapshot instead
    history = ends or next(d for k, d in stream if k == "status")["history"]
    assert [row["epoch"] for row in done["history"]] == [1, 2]
    assert len(history) <= 2 and (steps or ends or done["history"])
    assert done["status"] == "complete" and not done["active"]
    assert done["test_accuracy"] == Run.open("web-1", runs_dir).metrics()["test_accuracy"]

    run = Run.open("web-1", runs_dir)  # an ordinary run folder afterwards
    assert run.state()["status"] == "complete" and run.state()["epochs_done"] == 2
    assert run.file("model.safetensors").exists() and run.file("curves.png").exists()
    names = [row["name"] for row in client.get("/api/runs").json()["runs"]]
    assert "web-1" in names
    prediction = client.post("/api/predict", json={"run": "web-1", "pixels": [[0] * 28] * 28})
    assert prediction.status_code == 200


def test_one_training_at_a_time_and_cancel_leaves_it_interrupted(client, runs_dir) -> None:
    first = client.post("/api/train", json={"model": SMALL, "epochs": 100, "name": "long"})
    assert first.status_code == 202
    wait_for(client, lambda s: s["history"])  # at least one epoch done: resumable

    busy = client.post("/api/train", json={"model": "dnn", "epochs": 1, "name": "second"})
    assert busy.status_code == 409
    assert busy.json()["run"] == "long" and "busy" in busy.json()["error"]
    assert not (runs_dir / "second").exists()  # never two runs writing at once
    assert client.post("/api/train/resume", json={"run": "cnn"}).status_code == 409

    cancelled = client.post("/api/train/cancel", json={})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelling"
    final = wait_for(client, lambda s: not s["active"])
    assert final["status"] == "interrupted" and "resume" in final["message"]
    state = Run.open("long", runs_dir).state()
    assert state["status"] == "interrupted" and 1 <= state["epochs_done"] < 100
    row = next(r for r in client.get("/api/runs").json()["runs"] if r["name"] == "long")
    assert row["status"] == "interrupted" and row["resumable"]  # what the Resume button needs
    assert row["recipe"] is None and row["recipe_recorded"]
    nothing = client.post("/api/train/cancel", json={})
    assert nothing.status_code == 409 and "nothing is training" in nothing.json()["error"]

    done = state["epochs_done"]
    resumed = client.post("/api/train/resume", json={"run": "long", "epochs": done + 1})
    assert resumed.status_code == 202, resumed.text
    assert resumed.json()["train"]["epochs"] == done + 1  # the recipe it goes on with
    assert [row["epoch"] for row in resumed.json()["history"]] == list(range(1, done + 1))
    final = wait_for(client, lambda s: not s["active"])
    assert final["status"] == "complete", final
    assert Run.open("long", runs_dir).state()["epochs_done"] == done + 1
    row = next(r for r in client.get("/api/runs").json()["runs"] if r["name"] == "long")
    assert row["status"] == "complete" and not row["resumable"]


def test_a_spec_that_does_not_fit_the_data_fails_in_the_open(client, runs_dir) -> None:
    response = client.post(
        "/api/train", json={"model": "flatten, dense(10, softmax)", "epochs": 1, "name": "misfit"}
    )
    assert response.status_code == 202
    final = wait_for(client, lambda s: not s["active"])
    assert final["status"] == "failed" and "3 classes" in final["message"]
    assert not (runs_dir / "misfit").exists()


def test_a_flatten_model_cannot_train_on_smaller_images(client, runs_dir) -> None:
    body = {"model": SMALL, "epochs": 2, "resize": "20:0.5", "name": "flat-resize"}
    assert client.post("/api/train", json=body).status_code == 202  # the idx data's size: unknown
    final = wait_for(client, lambda s: not s["active"])
    assert final["status"] == "failed" and "cannot train on 20x20 images" in final["message"]
    assert final["field"] == "resize"  # the page puts the line beside that control
    assert not (runs_dir / "flat-resize").exists()


def test_a_flatten_model_on_data_of_known_size_is_refused_before_it_starts(runs_dir) -> None:
    """Fashion-MNIST's 28x28 is known without loading it: the refusal is the start's 400,
    naming the field, before any folder exists."""
    from convlens.data.config import DataConfig
    from convlens.errors import SpecError
    from convlens.web.training import TrainingManager

    manager = TrainingManager(runs_dir, DataConfig(dataset="fashion-mnist"))
    with pytest.raises(SpecError, match="cannot train on 20x20 images") as refused:
        manager.start(SMALL, {"resize": "20:0.5"}, name="flat-known")
    assert refused.value.field == "resize" and "\n" not in str(refused.value)
    assert manager.snapshot()["status"] == "idle" and not (runs_dir / "flat-known").exists()


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"model": "spec.yaml", "epochs": 1}, 400, "unknown model"),
        ({"model": "/etc/passwd", "epochs": 1}, 400, "unknown model"),
        ({"model": "conv(4, 3", "epochs": 1}, 400, ""),
        ({"model": "dnn", "epochs": 0}, 400, "'epochs'"),
        ({"model": "dnn", "epochs": 1000}, 400, "'epochs'"),
        ({"model": "dnn", "epochs": 1, "train_subset": 0}, 400, "'train_subset'"),
        ({"model": "dnn", "epochs": 1, "resize": "20"}, 400, "resize stage '20' is not valid"),
        ({"model": "dnn", "epochs": 1, "name": "../escape"}, 400, "not valid"),
        ({"model": "dnn", "epochs": 1, "name": "a/b"}, 400, "not valid"),
        ({"model": "dnn", "epochs": 1, "name": "cnn"}, 409, "already exists"),
        ({"epochs": 1}, 400, "'model' is missing"),
    ],
)
def test_start_mistakes_are_one_line_and_start_nothing(
    client, runs_dir, body, status, words
) -> None:
    response = client.post("/api/train", json=body)
    assert response.status_code == status, response.text
    assert words in response.json()["error"] and "\n" not in response.json()["error"]
    assert client.get("/api/train").json()["status"] == "idle"
    assert not (runs_dir.parent / "escape").exists()


def test_the_event_stream_of_an_idle_server_ends_at_once(client) -> None:
    stream = events(client, timeout=5)
    assert [kind for kind, _ in stream] == ["status", "end"]
    assert stream[0][1]["status"] == "idle"


# --- the recipe ------------------------------------------------------------------------------


def recipe_of(train: dict) -> dict:
    return {key: train[key] for key in RECIPE_FIELDS}


def test_recipe_fields_reach_the_runs_config(client, runs_dir) -> None:
    recipe = {
        "epochs": 1,
        "batch_size": 16,
        "lr": 0.01,
        "optimizer": "sgd",
        "weight_decay": 0.001,
        "momentum": 0.85,
        "norm_lr_scale": 4.0,
        "schedule": "onecycle",
        "warmup": 0.1,
        "anneal": "linear",
        "final_lr_scale": 0.0,
        "label_smoothing": 0.1,
        "augment": True,
        "flip": "alternate",
        "tta_flip": True,
        "tta_shift": True,
        "ema": 0.9,
        "epoch_images": 40,
        "resize": "20:0.5",
        "lookahead": 2,
        "lookahead_alpha": 0.6,
    }
    assert set(recipe) == set(RECIPE_FIELDS)  # every field the page may set
    response = client.post("/api/train", json={"model": GAP_SMALL, "name": "recipe", **recipe})
    assert response.status_code == 202, response.text
    assert response.json()["train"] == recipe and response.json()["recipe"] is None
    assert wait_for(client, lambda s: not s["active"])["status"] == "complete"
    config = Run.open("recipe", runs_dir).config
    assert recipe_of(config["train"]) == recipe
    assert config["recipe"] is None  # layers of its own, no preset's recipe to start from


def test_a_preset_recipe_with_overrides(client, runs_dir) -> None:
    body = {"model": SMALL, "preset": "fast", "epochs": 1, "batch_size": 16, "tta_flip": False}
    response = client.post("/api/train", json={**body, "name": "fast-recipe"})
    assert response.status_code == 202, response.text
    assert wait_for(client, lambda s: not s["active"])["status"] == "complete"
    config = Run.open("fast-recipe", runs_dir).config
    expected = TrainConfig(**{**PRESETS["fast"].recipe, "epochs": 1, "batch_size": 16})
    expected.tta_flip = False
    assert recipe_of(config["train"]) == recipe_of(expected.to_dict())
    assert config["train"]["optimizer"] == "adamw" and config["train"]["augment"] is True
    assert config["recipe"] == "fast"


@pytest.mark.parametrize(
    ("body", "recipe", "epochs", "batch_size"),
    [
        ({"model": "quick"}, "quick", 2, 128),  # a preset model brings its own recipe
        ({"model": "quick", "preset": ""}, None, 5, 32),  # "": the lesson's defaults
        ({"model": "cnn"}, "cnn", 5, 32),  # cnn's recipe is the lesson's
        ({"model": "cnn", "preset": "quick", "epochs": 3}, "quick", 3, 128),
        ({"model": SMALL, "preset": "quick"}, "quick", 2, 128),
    ],
)
def test_which_recipe_a_training_starts_from(client, body, recipe, epochs, batch_size) -> None:
    response = client.post("/api/train", json=body)
    assert response.status_code == 202, response.text
    snapshot = response.json()
    assert snapshot["recipe"] == recipe and snapshot["epochs"] == epochs
    assert snapshot["train"]["epochs"] == epochs
    assert snapshot["train"]["batch_size"] == batch_size
    client.post("/api/train/cancel", json={})  # the choice is all this test needs (presets have
    wait_for(client, lambda s: not s["active"])  # ten classes; the tiny data has three)


@pytest.mark.parametrize(
    ("body", "config"),
    [
        ({"batch_size": 0}, {"batch_size": 0}),
        ({"lr": 0}, {"lr": 0.0}),
        ({"lr": 20}, {"lr": 20.0}),
        ({"optimizer": "rmsprop"}, {"optimizer": "rmsprop"}),
        ({"schedule": "cosine"}, {"schedule": "cosine"}),
        ({"weight_decay": 1}, {"weight_decay": 1.0}),
        ({"label_smoothing": -0.1}, {"label_smoothing": -0.1}),
        ({"tta_flip": True}, {"tta_flip": True}),  # flip averaging without augment
        ({"tta_shift": True}, {"tta_shift": True}),  # shifted copies without augment
        ({"ema": 1}, {"ema": 1.0}),
        ({"ema": -0.5}, {"ema": -0.5}),
        ({"flip": "sideways", "augment": True}, {"flip": "sideways", "augment": True}),
        ({"optimizer": "sgd", "momentum": 1}, {"optimizer": "sgd", "momentum": 1.0}),
        ({"momentum": -0.1}, {"momentum": -0.1}),
        ({"norm_lr_scale": 0}, {"norm_lr_scale": 0.0}),
        ({"schedule": "onecycle", "warmup": 1}, {"schedule": "onecycle", "warmup": 1.0}),
        ({"schedule": "onecycle", "anneal": "step"}, {"schedule": "onecycle", "anneal": "step"}),
        ({"final_lr_scale": 2}, {"final_lr_scale": 2.0}),
        ({"epoch_images": 0}, {"epoch_images": 0}),
        ({"preset": "fast", "augment": False}, {**PRESETS["fast"].recipe, "augment": False}),
    ],
)
def test_a_bad_recipe_value_is_the_librarys_one_line(client, runs_dir, body, config) -> None:
    response = client.post("/api/train", json={"model": SMALL, "name": "bad", **body})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == library_message(**config)
    refused = library_field(**config)  # the control to mark: the field TrainConfig refuses
    assert response.json()["field"] == refused and refused in config
    assert client.get("/api/train").json()["status"] == "idle"
    assert not (runs_dir / "bad").exists()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"preset": "turbo"}, "unknown preset 'turbo'; the presets are: dnn, cnn"),
        ({"batch_size": 16.5}, "'batch_size' must be a whole number"),
        ({"batch_size": True}, "'batch_size' must be a whole number"),
        ({"lr": "0.01"}, "'lr' must be a number"),
        ({"augment": "yes"}, "'augment' must be true, false or null"),
        ({"tta_shift": 1}, "'tta_shift' must be true, false or null"),
        ({"ema": "0.9"}, "'ema' must be a number"),
        ({"flip": 2}, "'flip' must be text"),
        ({"optimizer": 1}, "'optimizer' must be text"),
        ({"epochs": 101}, "'epochs' is 101; it must be from 1 to 100"),
        ({"epoch_images": 40.5}, "'epoch_images' must be a whole number"),
        ({"momentum": "0.9"}, "'momentum' must be a number"),
        ({"anneal": 1}, "'anneal' must be text"),
    ],
)
def test_a_recipe_field_of_the_wrong_kind_is_one_line(client, runs_dir, body, words) -> None:
    response = client.post("/api/train", json={"model": SMALL, "name": "bad", **body})
    assert response.status_code == 400, response.text
    assert words in response.json()["error"] and "\n" not in response.json()["error"]
    if "preset" not in body:
        assert response.json()["field"] == next(iter(body))  # the control to mark
    assert client.get("/api/train").json()["status"] == "idle"
    assert not (runs_dir / "bad").exists()


def all_events(client) -> list[tuple[str, dict]]:
    """Every event of the last training, from the first (``?after=0``), then ``end``."""
    found: list[tuple[str, dict]] = []
    kind = None
    with client.stream("GET", "/api/train/events?after=0") as response:
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: "):
                found.append((kind, json.loads(line[len("data: ") :])))
                if kind == "end":
                    break
    return found


def test_evaluation_and_the_finish_stream_as_phase_events(client, runs_dir) -> None:
    client.post("/api/train", json={"model": SMALL, "epochs": 2, "name": "phases"})
    wait_for(client, lambda s: not s["active"])
    stream = all_events(client)
    kinds = [kind for kind, _ in stream]
    phases = [data for kind, data in stream if kind == "phase"]
    assert {p["phase"] for p in phases} == {"evaluate", "finish"}
    for epoch in (1, 2):
        mine = [p for p in phases if p["phase"] == "evaluate" and p["epoch"] == epoch]
        assert mine[0]["done"] == 0 and mine[-1]["done"] == mine[-1]["total"] > 0
    # the steps, then the evaluation, then the epoch's row; the finish after the last row
    first_end = kinds.index("epoch_end")
    assert kinds.index("phase") < first_end
    finish = [i for i, (k, d) in enumerate(stream) if k == "phase" and d["phase"] == "finish"]
    assert finish[0] > len(kinds) - 1 - kinds[::-1].index("epoch_end")
    assert kinds.index("done") > finish[-1]
    row = next(d for k, d in stream if k == "epoch_end")
    assert {"train_accuracy", "running_accuracy", "eval_seconds"} <= set(row)


@pytest.mark.parametrize(("phase", "epoch", "done_epochs"), [("evaluate", 2, 1), ("finish", 2, 2)])
def test_cancel_during_evaluation_or_the_finish_ends_interrupted_and_resumable(
    client, runs_dir, monkeypatch, phase, epoch, done_epochs
) -> None:
    from convlens.web import training

    original = training.WebReporter.phase

    def cancel_there(self, name: str, done: int, total: int) -> None:
        if name == phase and done == 1 and self.manager.current_epoch() == epoch:
            self.manager.cancel()  # what the page's Cancel button does, at that moment
        original(self, name, done, total)

    monkeypatch.setattr(training.WebReporter, "phase", cancel_there)
    client.post("/api/train", json={"model": SMALL, "epochs": 2, "name": "cut"})
    final = wait_for(client, lambda s: not s["active"])
    assert final["status"] == "interrupted", final
    state = Run.open("cut", runs_dir).state()
    assert state["status"] == "interrupted" and state["epochs_done"] == done_epochs
    row = next(r for r in client.get("/api/runs").json()["runs"] if r["name"] == "cut")
    assert row["resumable"]
    monkeypatch.setattr(training.WebReporter, "phase", original)
    assert client.post("/api/train/resume", json={"run": "cut"}).status_code == 202
    assert wait_for(client, lambda s: not s["active"])["status"] == "complete"
