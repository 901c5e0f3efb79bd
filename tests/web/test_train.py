"""Training from the page: start, live events, completion, one at a time, cancel, resume."""

from __future__ import annotations

import json
import time

import pytest

from convlens.runs import Run

SMALL = "conv(4, 3, relu), maxpool(2), flatten, dense(3, softmax)"


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

    cancelled = client.post("/api/train/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelling"
    final = wait_for(client, lambda s: not s["active"])
    assert final["status"] == "interrupted" and "resume" in final["message"]
    state = Run.open("long", runs_dir).state()
    assert state["status"] == "interrupted" and 1 <= state["epochs_done"] < 100
    nothing = client.post("/api/train/cancel")
    assert nothing.status_code == 409 and "nothing is training" in nothing.json()["error"]

    done = state["epochs_done"]
    resumed = client.post("/api/train/resume", json={"run": "long", "epochs": done + 1})
    assert resumed.status_code == 202, resumed.text
    final = wait_for(client, lambda s: not s["active"])
    assert final["status"] == "complete", final
    assert Run.open("long", runs_dir).state()["epochs_done"] == done + 1


def test_a_spec_that_does_not_fit_the_data_fails_in_the_open(client, runs_dir) -> None:
    response = client.post(
        "/api/train", json={"model": "flatten, dense(10, softmax)", "epochs": 1, "name": "misfit"}
    )
    assert response.status_code == 202
    final = wait_for(client, lambda s: not s["active"])
    assert final["status"] == "failed" and "3 classes" in final["message"]
    assert not (runs_dir / "misfit").exists()


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"model": "spec.yaml", "epochs": 1}, 400, "unknown model"),
        ({"model": "/etc/passwd", "epochs": 1}, 400, "unknown model"),
        ({"model": "conv(4, 3", "epochs": 1}, 400, ""),
        ({"model": "dnn", "epochs": 0}, 400, "'epochs'"),
        ({"model": "dnn", "epochs": 1000}, 400, "'epochs'"),
        ({"model": "dnn", "epochs": 1, "train_subset": 0}, 400, "'train_subset'"),
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
