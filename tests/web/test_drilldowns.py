"""The drill-downs' API in process: a pooled pixel, a learned pixel, a confusion cell,
downloads and deleting a run. Every number is checked against the library's own."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from convlens.byhand import clamp_to_uint8, conv2d, explain_pixel, max_pool2d, parse_kernel
from convlens.introspect import explain_unit
from convlens.reports.run_report import predictions_on_test_set
from convlens.runs import Run
from tests.web.test_api import bars, fashion, one_line_error, png_array

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# --- a pooled pixel: the largest of its block, worked out -------------------------------


@pytest.mark.parametrize(("kernel", "pool"), [("vertical", 2), ("laplacian", 3), ("emboss", 2)])
def test_a_pooled_pixel_is_the_largest_of_its_block(client, kernel, pool) -> None:
    image = fashion(0)
    values = parse_kernel(kernel).values
    filtered = conv2d(image, values)
    pooled = max_pool2d(filtered, pool)
    for p_row, p_col in [(0, 0), (4, 5), (pooled.shape[0] - 1, pooled.shape[1] - 1)]:
        body = client.post(
            "/api/pixel",
            json={"image": "fashion:0", "kernel": kernel, "pool": pool}
            | {"pool_row": p_row, "pool_col": p_col},
        ).json()
        block = filtered[p_row * pool : (p_row + 1) * pool, p_col * pool : (p_col + 1) * pool]
        pooling = body["pooling"]
        assert np.array_equal(np.asarray(pooling["block"]), block)
        assert pooling["max"] == pooled[p_row, p_col] == block.max()
        r, c = pooling["at"]
        assert filtered[r, c] == block.max()  # the pixel explained is the block's maximum
        assert (body["row"], body["col"]) == (r, c)
        assert body["total"] == explain_pixel(image, values, r, c).total == block.max()
        assert pooling["shown"] == int(clamp_to_uint8(pooled)[p_row, p_col])
        assert pooling["clamped"][r - p_row * pool][c - p_col * pool] == int(
            clamp_to_uint8(pooled)[p_row, p_col]
        )


def test_a_pooled_pixel_out_of_range_is_one_line(client) -> None:
    response = client.post(
        "/api/pixel", json={"image": "fashion:0", "kernel": "vertical", "pool_row": 13}
    )
    assert "13x13" in one_line_error(response, 400)


# --- a learned pixel: the sum over input channels ---------------------------------------


@pytest.mark.parametrize(("layer", "channels"), [("conv2d", 1), ("conv2d_1", 8)])
def test_a_learned_pixel_is_the_sum_of_its_channels(client, runs_dir, layer, channels) -> None:
    body = client.post(
        "/api/unit",
        json={"run": "cnn", "pixels": bars(), "layer": layer, "index": 2, "row": 4, "col": 5},
    ).json()
    network = Run.open("cnn", runs_dir).network()
    image = np.asarray(bars(), dtype=np.uint8)[None]
    unit = explain_unit(network, image, layer, 2, 4, 5)
    assert len(body["channels"]) == channels
    assert body["pre_activation"] == pytest.approx(unit.pre_activation, abs=1e-9)
    assert body["value"] == pytest.approx(body["layer_value"], abs=1e-5)
    sums = sum(ch["sum"] for ch in body["channels"])
    assert body["pre_activation"] == pytest.approx(sums + body["bias"], abs=1e-9)
    first = body["channels"][0]
    window, weights = np.asarray(first["window"]), np.asarray(first["weights"])
    assert np.allclose(np.asarray(first["products"]), window * weights, atol=2e-5)


def test_a_learned_pixel_of_a_pool_layer_is_refused(client) -> None:
    body = {"run": "cnn", "pixels": bars(), "layer": "max_pooling2d", "row": 0, "col": 0}
    assert "not a conv layer" in one_line_error(client.post("/api/unit", json=body), 400)


# --- a confusion cell: its test images, the surest first ---------------------------------


def test_a_confusion_cell_holds_its_test_images(client, runs_dir) -> None:
    run = Run.open("cnn", runs_dir)
    confusion = np.asarray(run.metrics()["confusion"])
    images, labels, probabilities = predictions_on_test_set(run)
    classes = confusion.shape[0]
    for true in range(classes):
        for predicted in range(classes):
            body = client.get(
                f"/api/runs/cnn/mistakes?true={true}&predicted={predicted}&limit=48"
            ).json()
            assert body["count"] == confusion[true, predicted]  # agrees with metrics.json
            assert body["of"] == confusion[true].sum()
            shown = [item["confidence"] for item in body["items"]]
            assert shown == sorted(shown, reverse=True)
            for item in body["items"]:
                index = item["index"]
                assert labels[index] == true and probabilities[index].argmax() == predicted
                assert item["confidence"] == pytest.approx(float(probabilities[index, predicted]))
                assert np.array_equal(png_array(item["png"]), images[index, 0])


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("true=0", 400, "'predicted'"),
        ("true=x&predicted=0", 400, "'true'"),
        ("true=9&predicted=0", 400, "from 0 to 2"),
        ("true=0&predicted=1&limit=0", 400, "'limit'"),
    ],
)
def test_confusion_cell_mistakes_are_one_line(client, query, status, words) -> None:
    assert words in one_line_error(client.get(f"/api/runs/cnn/mistakes?{query}"), status)


def test_a_run_without_weights_has_no_mistakes_to_show(client, runs_dir) -> None:
    (runs_dir / "dnn" / "model.safetensors").unlink()
    assert "no final weights" in one_line_error(
        client.get("/api/runs/dnn/mistakes?true=0&predicted=1"), 409
    )


# --- downloads ---------------------------------------------------------------------------


def test_download_the_weights(client, runs_dir) -> None:
    response = client.get("/api/runs/cnn/download/weights")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="cnn.safetensors"'
    assert response.content == (runs_dir / "cnn" / "model.safetensors").read_bytes()
    assert client.get("/api/runs/cnn").json()["downloads"]["weights"] is True


def test_download_onnx_runs_like_the_run(client, runs_dir, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    pytest.importorskip("onnxscript", reason="the onnx extra is not installed")
    response = client.get("/api/runs/cnn/download/onnx")
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"] == 'attachment; filename="cnn.onnx"'
    session = ort.InferenceSession(response.content)
    image = np.asarray(bars(), dtype=np.float32)[None, None] / 255.0
    onnx_p = session.run(None, {"images": image})[0][0]
    web_p = client.post("/api/predict", json={"run": "cnn", "pixels": bars()}).json()
    assert np.allclose(onnx_p, web_p["probabilities"], atol=1e-4)


@pytest.mark.parametrize(
    ("path", "status"),
    [("cnn/download/pickle", 404), ("cnn/download/model.pt", 404), ("nope/download/weights", 404)],
)
def test_downloads_of_other_things_are_refused(client, path, status) -> None:
    one_line_error(client.get(f"/api/runs/{path}"), status)


# --- deleting a run ----------------------------------------------------------------------


def test_delete_a_run_with_its_name_twice(client, runs_dir) -> None:
    assert "confirm" in one_line_error(client.request("DELETE", "/api/runs/dnn", json={}), 400)
    wrong = client.request("DELETE", "/api/runs/dnn", json={"confirm": "cnn"})
    assert "confirm" in one_line_error(wrong, 400)
    form = client.request("DELETE", "/api/runs/dnn", data={"confirm": "dnn"})
    one_line_error(form, 415)  # a cross-site form cannot send JSON
    assert (runs_dir / "dnn").is_dir()
    client.post("/api/predict", json={"run": "dnn", "pixels": bars()})  # cached, then gone
    response = client.request("DELETE", "/api/runs/dnn", json={"confirm": "dnn"})
    assert response.status_code == 200 and response.json()["deleted"] == "dnn"
    assert not (runs_dir / "dnn").exists() and (runs_dir / "cnn").is_dir()
    assert [r["name"] for r in client.get("/api/runs").json()["runs"]] == ["cnn"]
    one_line_error(client.post("/api/predict", json={"run": "dnn", "pixels": bars()}), 404)


def test_delete_stays_inside_the_runs_folder(client, runs_dir, tmp_path) -> None:
    outside = tmp_path / "outside"
    (outside / "victim").mkdir(parents=True)
    (outside / "victim" / "config.json").write_text((runs_dir / "cnn" / "config.json").read_text())
    os.symlink(outside / "victim", runs_dir / "link")
    os.symlink(runs_dir / "cnn", runs_dir / "alias")
    for ref in ["link", "alias", "..", "../outside/victim", "%2e%2e", "cnn/..", "", "a/b/c"]:
        response = client.request("DELETE", f"/api/runs/{ref}", json={"confirm": ref})
        assert response.status_code in (400, 404, 405, 409), (ref, response.text)
    assert (outside / "victim" / "config.json").exists()
    assert (runs_dir / "cnn" / "model.safetensors").exists()


def test_a_folder_that_is_not_a_run_is_not_deleted(client, runs_dir) -> None:
    (runs_dir / "notes").mkdir()
    (runs_dir / "notes" / "keep.txt").write_text("mine")
    response = client.request("DELETE", "/api/runs/notes", json={"confirm": "notes"})
    one_line_error(response, 404)
    assert (runs_dir / "notes" / "keep.txt").exists()


def test_the_training_run_is_not_deleted(client, runs_dir) -> None:
    start = client.post(
        "/api/train", json={"model": "flatten, dense(3, softmax)", "epochs": 100, "name": "busy"}
    )
    assert start.status_code == 202
    try:
        # Wait for the run folder (the data is loaded first): a DELETE before it exists
        # would only find nothing to delete, and the check after it would race the trainer.
        deadline = time.monotonic() + 60
        while not (runs_dir / "busy" / "config.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        response = client.request("DELETE", "/api/runs/busy", json={"confirm": "busy"})
        assert "training now" in one_line_error(response, 409)
        assert client.get("/api/train").json()["active"]
    finally:
        client.post("/api/train/cancel", json={})
        client.app.state.lab.training.wait(60)
    assert json.loads((runs_dir / "busy" / "state.json").read_text())["status"] == "interrupted"
    assert Path(runs_dir / "busy").is_dir()
