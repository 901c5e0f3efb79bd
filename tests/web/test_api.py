"""The JSON API in process: its numbers are the library's numbers, its errors one line."""

from __future__ import annotations

import base64
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convlens.byhand import clamp_to_uint8, conv2d, explain_pixel, max_pool2d, parse_kernel
from convlens.data import load_dataset
from convlens.introspect import explain, feature_maps, journey_layer_names, learned_filters
from convlens.models.registry import PRESETS
from convlens.predict import predict_arrays
from convlens.recipe import TrainConfig
from convlens.runs import Run

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def png_array(data_url: str) -> np.ndarray:
    head, _, body = data_url.partition(",")
    assert head == "data:image/png;base64"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(body))))


def fashion(index: int) -> np.ndarray:
    """The same test image the server uses: local files are absent, so the sample."""
    return load_dataset("fashion-mnist", download=False, progress=False).test_images[index, 0]


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def one_line_error(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error"} and isinstance(body["error"], str)
    assert "\n" not in body["error"] and body["error"]
    return body["error"]


def bars(height: int = 28) -> list[list[int]]:
    """A drawing like the tiny dataset's class 0: vertical bright bars on black."""
    drawing = np.zeros((height, 28), dtype=np.uint8)
    drawing[:, 3::6] = 220
    return drawing.tolist()


# --- the filter playground -----------------------------------------------------------


def test_filter_numbers_are_the_ops_numbers(client) -> None:
    response = client.post(
        "/api/filter", json={"image": "fashion:0", "kernel": "vertical", "values": True}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    image = fashion(0).astype(np.float64)
    kernel = parse_kernel("vertical").values
    filtered = conv2d(image, kernel)  # (26, 26)
    pooled = max_pool2d(filtered, 2)  # (13, 13)
    assert np.array_equal(png_array(body["image"]["png"]), fashion(0))
    assert np.array_equal(np.asarray(body["filtered"]["values"]), filtered)
    assert np.array_equal(png_array(body["filtered"]["png"]), clamp_to_uint8(filtered))
    assert np.array_equal(np.asarray(body["pooled"]["values"]), pooled)
    assert np.array_equal(png_array(body["pooled"]["png"]), clamp_to_uint8(pooled))
    assert body["pipeline"] == "28x28 \u2192 conv 3x3 \u2192 26x26 \u2192 max pool 2 \u2192 13x13"
    assert body["kernel"]["values"] == kernel.tolist()


def test_filter_takes_typed_and_edited_kernels_and_the_weight(client) -> None:
    grid = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
    as_rows = client.post(
        "/api/filter",
        json={"image": "fashion:3", "kernel": grid, "weight": 0.5, "pool": 0, "values": True},
    ).json()
    as_text = client.post(
        "/api/filter",
        json={"image": "fashion:3", "kernel": "0 1 0; 1 -4 1; 0 1 0", "weight": 0.5, "pool": 0},
    ).json()
    expected = conv2d(fashion(3).astype(np.float64), np.array(grid, float), weight=0.5)
    assert np.array_equal(np.asarray(as_rows["filtered"]["values"]), expected)
    assert as_rows["filtered"]["png"] == as_text["filtered"]["png"]
    assert as_rows["pooled"] is None
    assert as_rows["kernel"]["name"] == "laplacian"  # typed library numbers get its name


def test_filter_on_the_photo_sends_pictures_not_numbers(client) -> None:
    body = client.post("/api/filter", json={"image": "photo", "kernel": "horizontal"}).json()
    height, width = body["image"]["height"], body["image"]["width"]
    assert (height, width) == (600, 512)
    assert (body["filtered"]["height"], body["filtered"]["width"]) == (598, 510)
    assert (body["pooled"]["height"], body["pooled"]["width"]) == (299, 255)
    assert "values" not in body["filtered"]
    refused = client.post(
        "/api/filter", json={"image": "photo", "kernel": "horizontal", "values": True}
    )
    assert "598x510" in one_line_error(refused, 400)


def test_pixel_arithmetic_is_explain_pixel(client) -> None:
    body = client.post(
        "/api/pixel",
        json={"image": "fashion:0", "kernel": "vertical", "row": 12, "col": 9, "weight": 2},
    ).json()
    image = fashion(0)
    work = explain_pixel(image, parse_kernel("vertical").values, 12, 9, weight=2)
    assert body["total"] == work.total
    assert body["weighted"] == work.weighted == conv2d(image, work.weights, weight=2)[12, 9]
    assert body["clamped"] == work.clamped
    assert body["centre"] == [13, 10]
    assert np.array_equal(np.asarray(body["neighbourhood"]), image[12:15, 9:12])
    assert np.array_equal(np.asarray(body["products"]), work.products)
    assert body["text"] == work.format()


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"image": "fashion:0", "kernel": "vertical", "row": 26, "col": 0}, 400, "outside"),
        ({"image": "fashion:0", "kernel": "vertical", "row": -1, "col": 0}, 400, "'row'"),
        ({"image": "fashion:0", "kernel": "nope", "row": 0, "col": 0}, 400, "unknown kernel"),
        ({"image": "fashion:0", "kernel": [[1, 2], [3, 4]], "row": 0, "col": 0}, 400, "odd"),
        ({"image": "fashion:0", "kernel": [[1, True, 0]], "row": 0, "col": 0}, 400, "numbers"),
        ({"image": "fashion:99999", "kernel": "vertical", "row": 0, "col": 0}, 404, "N goes"),
        ({"image": "/etc/passwd", "kernel": "vertical", "row": 0, "col": 0}, 400, "unknown"),
        ({"image": "upload:0123456789abcdef", "kernel": "vertical", "row": 0, "col": 0}, 404, ""),
        ({"kernel": "vertical", "row": 0, "col": 0}, 400, "'image' is missing"),
    ],
)
def test_pixel_mistakes_are_one_line(client, body, status, words) -> None:
    assert words in one_line_error(client.post("/api/pixel", json=body), status)


def test_kernels_and_samples(client) -> None:
    kernels = client.get("/api/kernels").json()
    assert [k["name"] for k in kernels["kernels"]][:3] == ["vertical", "horizontal", "laplacian"]
    samples = client.get("/api/samples").json()
    ids = [s["id"] for s in samples["samples"]]
    assert ids[-1] == "photo" and all(i.startswith("fashion:") for i in ids[:-1])
    assert len(ids) == 11 and "sample" in samples["notice"]


# --- uploads ----------------------------------------------------------------------------


def test_uploaded_png_is_filtered_and_predicted(client, runs_dir) -> None:
    picture = np.zeros((56, 40), dtype=np.uint8)
    picture[8:48, 10:30] = 200  # a light box on black, twice the training size
    response = client.post(
        "/api/images", content=png_bytes(picture), headers={"content-type": "image/png"}
    )
    assert response.status_code == 200, response.text
    upload = response.json()
    assert upload["id"].startswith("upload:") and (upload["height"], upload["width"]) == (56, 40)
    filtered = client.post(
        "/api/filter", json={"image": upload["id"], "kernel": "identity", "values": True}
    ).json()
    assert np.array_equal(np.asarray(filtered["filtered"]["values"]), picture[1:-1, 1:-1])

    answer = client.post("/api/predict", json={"run": "cnn", "image": upload["id"]}).json()
    run = Run.open("cnn", runs_dir)
    network = run.load_network()
    from convlens.data.images import prepare_image

    prepared = prepare_image(Image.fromarray(picture), size=(28, 28), channels=1)
    expected = predict_arrays(network, prepared[None])[0]
    assert np.allclose(answer["probabilities"], expected, atol=1e-6)
    assert np.array_equal(png_array(answer["image"]["png"]), prepared[0])
    # the same bytes again are the same upload
    again = client.post(
        "/api/images", content=png_bytes(picture), headers={"content-type": "image/png"}
    )
    assert again.json()["id"] == upload["id"]


def test_oversized_upload_is_refused_before_reading_it_all(client) -> None:
    big = b"\x89PNG" + os.urandom(5 * 1024 * 1024)
    declared = client.post("/api/images", content=big, headers={"content-type": "image/png"})
    assert "5 MB" in one_line_error(declared, 413)

    def chunks():  # no Content-Length: the limit still holds while streaming
        for _ in range(6):
            yield b"\0" * (1024 * 1024)

    streamed = client.post("/api/images", content=chunks(), headers={"content-type": "image/png"})
    one_line_error(streamed, 413)


def test_picture_with_too_many_pixels_is_refused(client) -> None:
    huge = Image.new("L", (6000, 6000))  # 36 MP, a few KB as PNG
    buffer = io.BytesIO()
    huge.save(buffer, format="PNG")
    response = client.post(
        "/api/images", content=buffer.getvalue(), headers={"content-type": "image/png"}
    )
    assert "6000x6000" in one_line_error(response, 413)


@pytest.mark.parametrize(
    ("data", "kind", "status", "words"),
    [
        (b"this is not a picture", "image/png", 400, "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "image/png", 400, "uploaded file"),
        (b"", "image/png", 400, "empty"),
        (b"hello", "text/plain", 415, "image Content-Type"),
    ],
)
def test_non_image_upload_is_one_line(client, data, kind, status, words) -> None:
    response = client.post("/api/images", content=data, headers={"content-type": kind})
    message = one_line_error(response, status)
    assert words in message and "/tmp" not in message and "convlens-upload" not in message


# --- predictions, the journey, saliency --------------------------------------------------


def test_predict_a_drawing_like_the_library(client, runs_dir) -> None:
    drawing = bars()
    body = client.post("/api/predict", json={"run": "cnn", "pixels": drawing}).json()
    network = Run.open("cnn", runs_dir).load_network()
    expected = predict_arrays(network, np.asarray(drawing, np.uint8)[None, None])[0]
    assert body["classes"] == ["0", "1", "2"]  # idx: data names classes by number
    assert np.allclose(body["probabilities"], expected, atol=1e-6)
    assert body["predicted"] == int(expected.argmax()) and body["label"] in body["classes"]
    assert abs(sum(body["probabilities"]) - 1) < 1e-5


def test_a_drawing_in_fractional_grey_levels_is_rounded(client, runs_dir) -> None:
    """Levels may be floats (a canvas' averages): rounded to the nearest of 0..255."""
    levels = np.asarray(bars(), np.float64) * 0.998 + 0.4  # none a whole number
    body = client.post("/api/predict", json={"run": "cnn", "pixels": levels.tolist()}).json()
    network = Run.open("cnn", runs_dir).load_network()
    rounded = np.rint(levels).astype(np.uint8)[None, None]
    expected = predict_arrays(network, rounded)[0]
    assert np.allclose(body["probabilities"], expected, atol=1e-6)
    assert (png_array(body["image"]["png"]) == rounded[0, 0]).all()


def test_a_drawing_of_another_size_is_resized_not_inverted(client) -> None:
    body = client.post("/api/predict", json={"run": "cnn", "pixels": bars(56)})
    assert body.status_code == 200 and body.json()["image"]["shape"] == [1, 28, 28]
    seen = png_array(body.json()["image"]["png"])
    assert seen[0, 0] == 0  # black background kept: a drawing is never inverted


def test_feature_maps_of_every_conv_and_pool_layer(client, runs_dir) -> None:
    drawing = np.asarray(bars(), np.uint8)
    body = client.post("/api/features", json={"run": "cnn", "pixels": drawing.tolist()}).json()
    network = Run.open("cnn", runs_dir).load_network()
    names = journey_layer_names(network)
    assert [layer["name"] for layer in body["layers"]] == names
    maps = feature_maps(network, drawing[None, None], names)
    for layer in body["layers"]:
        out = maps[layer["name"]][0]  # (C, H, W)
        assert layer["shape"] == list(out.shape) and len(layer["maps"]) == out.shape[0]
        for tile in layer["maps"]:
            values = out[tile["index"]]
            assert tile["min"] == pytest.approx(float(values.min()), abs=1e-6)
            assert tile["max"] == pytest.approx(float(values.max()), abs=1e-6)
            assert png_array(tile["png"]).shape == (*values.shape, 3)  # inferno RGB
    assert body["shape_line"].startswith("input 28x28x1 \u2192 conv2d 26x26x8")
    few = client.post("/api/features", json={"run": "cnn", "pixels": bars(), "max_maps": 2})
    assert all(len(layer["maps"]) == 2 for layer in few.json()["layers"])


def test_features_answer_like_predict_from_the_same_pass(client) -> None:
    """The page's full look asks /api/features alone for the answer and the maps."""
    body = {"run": "cnn", "pixels": bars()}
    answer = client.post("/api/predict", json=body).json()
    prediction = client.post("/api/features", json=body).json()["prediction"]
    assert prediction["classes"] == answer["classes"]
    assert prediction["predicted"] == answer["predicted"]
    assert prediction["label"] == answer["label"] and prediction["image"] == answer["image"]
    assert np.allclose(prediction["probabilities"], answer["probabilities"], atol=1e-7)
    dense = client.post("/api/features", json={**body, "run": "dnn"}).json()
    assert dense["layers"] == [] and len(dense["prediction"]["probabilities"]) == 3


def test_a_dense_model_has_no_maps_and_gets_input_gradients(client, runs_dir) -> None:
    features = client.post("/api/features", json={"run": "dnn", "pixels": bars()}).json()
    assert features["layers"] == [] and "no conv" in features["note"]
    saliency = client.post("/api/saliency", json={"run": "dnn", "pixels": bars()}).json()
    assert saliency["method"] == "input gradients" and saliency["layer"] is None


def test_saliency_is_grad_cam_where_there_is_a_conv_layer(client, runs_dir) -> None:
    drawing = np.asarray(bars(), np.uint8)
    body = client.post("/api/saliency", json={"run": "cnn", "pixels": bars(), "target": 1}).json()
    network = Run.open("cnn", runs_dir).load_network()
    expected = explain(network, drawing[None], 1)
    assert body["method"] == "Grad-CAM" and body["layer"] == expected.cam_layer == "conv2d_1"
    assert body["target"] == 1 and body["label"] == "1"
    assert np.allclose(body["heat"], expected.cam, atol=1e-4)
    assert png_array(body["png"]).shape == (28, 28, 3)


def test_learned_filter_weights(client, runs_dir) -> None:
    body = client.get("/api/runs/cnn/filters/conv2d_1?index=3").json()
    weights = learned_filters(Run.open("cnn", runs_dir).load_network(), "conv2d_1")[3]
    assert body["shape"] == [8, 3, 3]
    assert np.allclose(body["weights"], weights, atol=1e-5)
    assert "conv layers are" in one_line_error(client.get("/api/runs/cnn/filters/dense"), 400)
    assert "0 to 7" in one_line_error(client.get("/api/runs/cnn/filters/conv2d?index=8"), 400)


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"run": "cnn"}, 400, "'image' is missing"),
        ({"run": "cnn", "pixels": [[0, 1], [2]]}, 400, "differ in length"),
        ({"run": "cnn", "pixels": [[300]]}, 400, "0 to 255"),
        ({"run": "cnn", "pixels": [[0.5, "x"]]}, 400, "0 to 255"),
        ({"run": "cnn", "pixels": [[0, True]]}, 400, "0 to 255"),  # JSON true is no level
        ({"run": "cnn", "pixels": [[0, None]]}, 400, "0 to 255"),
        ({"run": "cnn", "pixels": [[-0.5, 3]]}, 400, "0 to 255"),
        ({"run": "cnn", "pixels": bars(), "image": "fashion:0"}, 400, "not both"),
        ({"run": "nope", "pixels": bars()}, 404, "no run named 'nope'"),
        ({"pixels": bars()}, 400, "'run' is missing"),
    ],
)
def test_predict_mistakes_are_one_line(client, body, status, words) -> None:
    assert words in one_line_error(client.post("/api/predict", json=body), status)


def test_a_run_without_weights_is_a_conflict(client, runs_dir) -> None:
    (runs_dir / "cnn" / "model.safetensors").unlink()
    message = one_line_error(
        client.post("/api/predict", json={"run": "cnn", "pixels": bars()}), 409
    )
    assert "no final weights" in message


# --- runs ----------------------------------------------------------------------------------


def test_runs_table_and_detail(client, runs_dir) -> None:
    table = client.get("/api/runs").json()
    rows = {row["name"]: row for row in table["runs"]}
    assert set(rows) == {"cnn", "dnn"}
    cnn = rows["cnn"]
    metrics = Run.open("cnn", runs_dir).metrics()
    assert cnn["status"] == "complete" and cnn["epochs_done"] == 1 and cnn["has_weights"]
    assert cnn["test_accuracy"] == metrics["test_accuracy"]
    # conv 1*9*8+8, conv 8*9*8+8, dense (5*5*8)*16+16, dense 16*3+3
    assert cnn["params"] == 80 + 584 + 3216 + 51
    detail = client.get("/api/runs/cnn").json()
    assert detail["history"][0]["epoch"] == 1 and detail["metrics"]["class_names"][0] == "0"
    assert [layer["name"] for layer in detail["summary"]["layers"]][:2] == [
        "conv2d",
        "max_pooling2d",
    ]
    assert detail["summary_text"].startswith("Model:") or "conv2d" in detail["summary_text"]
    for url in detail["files"].values():
        response = client.get(url)
        assert response.status_code == 200 and response.content
    assert client.get(detail["files"]["curves"]).headers["content-type"] == "image/png"


def test_runs_one_level_down_and_damaged_ones(client, runs_dir) -> None:
    (runs_dir / "compare-1").mkdir()
    shutil_copy(runs_dir / "dnn", runs_dir / "compare-1" / "dnn")
    (runs_dir / "broken").mkdir()
    (runs_dir / "broken" / "config.json").write_text("{not json")
    rows = {row["name"]: row for row in client.get("/api/runs").json()["runs"]}
    assert rows["compare-1/dnn"]["status"] == "complete"
    assert rows["broken"]["status"] == "damaged" and "\n" not in rows["broken"]["message"]
    assert client.get("/api/runs/compare-1/dnn").status_code == 200
    ok = client.post("/api/predict", json={"run": "compare-1/dnn", "pixels": bars()})
    assert ok.status_code == 200


def test_runs_say_their_recipe_and_whether_they_resume(client, runs_dir) -> None:
    rows = {row["name"]: row for row in client.get("/api/runs").json()["runs"]}
    assert rows["cnn"]["recipe"] is None and rows["cnn"]["recipe_recorded"]  # its own layers
    assert not rows["cnn"]["resumable"]  # complete
    config = json.loads((runs_dir / "dnn" / "config.json").read_text())
    del config["recipe"]  # as runs from before convlens recorded it
    (runs_dir / "dnn" / "config.json").write_text(json.dumps(config))
    Run.open("dnn", runs_dir).write_state("interrupted", 1, "interrupted after 1 of 1 epochs")
    detail = client.get("/api/runs/dnn").json()
    assert detail["recipe"] is None and not detail["recipe_recorded"]
    assert detail["status"] == "interrupted" and detail["resumable"]
    assert detail["train"]["batch_size"] == 32  # the recipe itself, as it ran
    assert "from epoch 2" in detail["message"]  # the page's Resume, not the CLI's words
    (runs_dir / "dnn" / "checkpoint.safetensors").unlink()  # no epoch to resume from:
    again = client.get("/api/runs/dnn").json()  # resume trains it from the start (the library)
    assert again["resumable"] and "from the start" in again["message"]


def test_presets_say_which_carry_a_recipe_and_what_it_is(client) -> None:
    body = client.get("/api/presets").json()
    recipes = {preset["name"]: preset["recipe"] for preset in body["presets"]}
    assert recipes == {name: preset.recipe for name, preset in PRESETS.items()}
    assert recipes["cnn"] == {} and recipes["quick"]["batch_size"] == 128
    assert recipes["fast"]["tta_flip"] is True and recipes["fast"]["epochs"] == 20
    lesson = TrainConfig()
    assert body["defaults"] == {key: getattr(lesson, key) for key in body["defaults"]}
    assert body["defaults"]["batch_size"] == 32 and body["defaults"]["optimizer"] == "adam"


def test_presets_carry_each_recipe_fields_help_and_choices(client) -> None:
    """The page's recipe controls say what ``convlens train --help`` says."""
    import dataclasses

    from convlens.option_fields import help_of
    from convlens.recipe import RECIPE_FIELDS

    options = client.get("/api/presets").json()["options"]
    assert list(options) == list(RECIPE_FIELDS)
    for field in dataclasses.fields(TrainConfig):
        if field.name in options:
            assert options[field.name]["help"] == help_of(field) != ""
    assert options["optimizer"]["choices"] == ["adam", "adamw", "sgd"]
    assert options["anneal"]["choices"] == ["cosine", "linear"]
    assert options["momentum"]["choices"] is None
    assert options["warmup"]["help"].startswith("onecycle: the fraction of the steps")
    assert "(default 0.25)" in options["warmup"]["help"]  # {default} filled in


def shutil_copy(source: Path, target: Path) -> None:
    import shutil

    shutil.copytree(source, target)


@pytest.mark.parametrize(
    "path",
    [
        "/api/runs/..%2F..%2Fetc",
        "/api/runs/%2E%2E/files/summary.txt",
        "/api/runs/..%2Foutside/files/summary.txt",
        "/api/runs/%2Fetc%2Fpasswd",
        "/api/runs//etc/passwd",
        "/api/runs/cnn%2F..%2F..%2Foutside/files/summary.txt",
        "/api/runs/cnn/..%2F..%2Foutside/files/summary.txt",
        "/api/runs/a/b/c",
        "/api/runs/cnn/files/config.json",
        "/api/runs/cnn/files/..%2F..%2Foutside%2Fsummary.txt",
        "/api/runs/%252e%252e/files/summary.txt",
        "/api/runs/link/files/summary.txt",
        "/api/runs/..%5Coutside",
        "/api/runs/outside%00/files/summary.txt",
    ],
)
def test_run_names_cannot_leave_the_runs_folder(client, runs_dir, path) -> None:
    outside = runs_dir.parent / "outside"
    if not outside.exists():
        shutil_copy(runs_dir / "cnn", outside)  # a real run, just not in the runs folder
        (outside / "summary.txt").write_text("SECRET")
        (runs_dir / "link").symlink_to(outside, target_is_directory=True)
    response = client.get(path)
    assert response.status_code in (400, 404), (path, response.status_code)
    assert b"SECRET" not in response.content
    one_line_error(response, response.status_code)


def test_a_run_file_that_links_out_is_not_served(client, runs_dir, tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET")
    summary = runs_dir / "cnn" / "summary.txt"
    summary.unlink()
    summary.symlink_to(secret)
    response = client.get("/api/runs/cnn/files/summary.txt")
    assert b"SECRET" not in response.content
    one_line_error(response, 404)
    detail = client.get("/api/runs/cnn")
    assert b"SECRET" not in detail.content and detail.json()["files"]["summary"] is None


def test_run_names_in_bodies_cannot_leave_either(client, runs_dir) -> None:
    for ref in ("../cnn", "/etc", str(runs_dir / "cnn"), "cnn/../dnn", "a/b/c", ""):
        response = client.post("/api/predict", json={"run": ref, "pixels": bars()})
        assert response.status_code in (400, 404), ref
    response = client.post("/api/train/resume", json={"run": "../cnn"})
    one_line_error(response, 400)


# --- the protocol ------------------------------------------------------------------------------


def test_errors_are_json_one_liners(client) -> None:
    assert "nothing at" in one_line_error(client.get("/api/nope"), 404)
    assert "not allowed" in one_line_error(client.delete("/api/runs"), 405)
    wrong_type = client.post("/api/filter", content=b"{}", headers={"content-type": "text/plain"})
    assert "application/json" in one_line_error(wrong_type, 415)
    bad_json = client.post(
        "/api/filter", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert "not valid JSON" in one_line_error(bad_json, 400)
    nan = client.post(
        "/api/filter",
        content=b'{"image": "fashion:0", "kernel": "vertical", "weight": NaN}',
        headers={"content-type": "application/json"},
    )
    one_line_error(nan, 400)
    not_object = client.post("/api/filter", json=[1, 2])
    assert "object" in one_line_error(not_object, 400)
    huge = client.post(
        "/api/filter",
        content=b"[" + b"0," * 600_000 + b"0]",
        headers={"content-type": "application/json"},
    )
    one_line_error(huge, 413)


def test_page_and_headers(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and b"convlens lab" in page.content
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    for asset in (
        "lab.js",
        "filters.js",
        "predict.js",
        "runs.js",
        "train.js",
        "util.js",
        "style.css",
    ):
        response = client.get(f"/static/{asset}")
        assert response.status_code == 200, asset
        # nothing fetched from elsewhere (the SVG namespace is a name, not an address)
        assert not re.search(rb"https?://(?!www\.w3\.org/2000/svg)", response.content), asset
    about = client.get("/api").json()
    assert {"path": "/api/filter", "methods": ["POST"]} in about["routes"]


def test_host_header_is_checked_when_asked(runs_dir, tiny_data) -> None:
    from starlette.testclient import TestClient

    from convlens.web import create_app

    app = create_app(runs_dir, data=tiny_data, allowed_hosts=["127.0.0.1", "127.0.0.1:8000"])
    with TestClient(app, base_url="http://127.0.0.1:8000") as good:
        assert good.get("/api/kernels").status_code == 200
    with TestClient(app, base_url="http://evil.example:8000") as bad:
        assert "loopback" in one_line_error(bad.get("/api/kernels"), 400)


def test_a_gmp_run_on_the_page(client, runs_dir, tiny_idx_dir, tiny_runs) -> None:
    """A run with a gmp head: its layer table row as Keras names it, the maps of its conv
    and pool layers and gmp's 1x1 maps (each the largest value of the map before), the
    answer the run's network gives."""
    spec = "conv(8, 3, relu), maxpool(2), conv(8, 3, relu), gmp, dense(3, softmax)"
    tiny_runs(runs_dir, tiny_idx_dir, {"gmp": spec})
    network = Run.open("gmp", runs_dir).load_network()
    detail = client.get("/api/runs/gmp").json()
    row = detail["summary"]["layers"][3]
    assert (row["name"], row["type"], row["output_shape"], row["params"]) == (
        "global_max_pooling2d", "GlobalMaxPooling2D", [8], 0,
    )  # fmt: skip
    assert " global_max_pooling2d (GlobalMaxPooling2D)" in detail["summary_text"]
    body = client.post("/api/features", json={"run": "gmp", "pixels": bars()}).json()
    assert [layer["name"] for layer in body["layers"]] == journey_layer_names(network)
    assert [layer["name"] for layer in body["layers"]] == [
        "conv2d", "max_pooling2d", "conv2d_1", "global_max_pooling2d",
    ]  # fmt: skip
    pooled, before = body["layers"][3], body["layers"][2]
    assert pooled["shape"] == [8, 1, 1] and pooled["type"] == "GlobalMaxPooling2D"
    for tile, source in zip(pooled["maps"], before["maps"], strict=True):
        assert tile["min"] == tile["max"] == pytest.approx(source["max"], abs=1e-6)
    # the 1x1 maps are coloured on the layer's range, so the largest and the smallest
    # differ in colour (on each map's own range every one would be the same black)
    values = [tile["min"] for tile in pooled["maps"]]
    assert all(tile["scale"] == [min(values), max(values)] for tile in pooled["maps"])
    assert "scale" not in before["maps"][0]
    assert max(values) > min(values)
    darkest = pooled["maps"][values.index(min(values))]["png"]
    brightest = pooled["maps"][values.index(max(values))]["png"]
    assert darkest != brightest
    assert body["shape_line"].endswith("conv2d_1 11x11x8 \u2192 global_max_pooling2d 1x1x8")
    want = predict_arrays(network, np.asarray(bars(), np.uint8)[None, None])
    got = np.asarray(body["prediction"]["probabilities"])
    assert np.allclose(got, want[0], atol=1e-6)
