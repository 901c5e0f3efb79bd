"""Bring your own model through the page's API, and take one away as Keras."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convlens.interop import import_model
from convlens.predict import predict_arrays
from convlens.runs import Run
from tests.web.test_api import bars, one_line_error

KERAS = Path(__file__).parents[1] / "interop" / "fixtures" / "keras"
OCTETS = {"Content-Type": "application/octet-stream"}

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def upload(client, path: Path, query: str):
    return client.post(f"/api/models?{query}", content=path.read_bytes(), headers=OCTETS)


@pytest.mark.parametrize(("file", "form"), [("lesson.keras", "keras"), ("strided.h5", "h5")])
def test_an_uploaded_model_is_an_ordinary_run(client, runs_dir, tmp_path, file, form) -> None:
    response = upload(client, KERAS / file, f"format={form}&name=mine")
    assert response.status_code == 201, response.text
    row = response.json()
    assert row["name"] == "mine" and row["status"] == "imported" and row["has_weights"]
    detail = client.get("/api/runs/mine").json()
    assert detail["imported"]["file"] == f"mine.{form}" and detail["imported"]["format"].startswith(
        "keras"
    )
    assert "mine" in [r["name"] for r in client.get("/api/runs").json()["runs"]]
    # the same network as the library's own import of the same file
    direct = import_model(KERAS / file, "direct", runs_dir=tmp_path / "direct")
    image = np.asarray(bars(), dtype=np.uint8)[None, None]
    expected = predict_arrays(direct.network(), image)[0]
    web = client.post("/api/predict", json={"run": "mine", "pixels": bars()}).json()
    assert np.allclose(web["probabilities"], expected, atol=1e-6)
    features = client.post("/api/features", json={"run": "mine", "pixels": bars()})
    assert features.status_code == 200 and features.json()["layers"]


@pytest.mark.parametrize(
    ("file", "query", "headers", "status", "words"),
    [
        ("lesson.keras", "format=keras", {"Content-Type": "text/plain"}, 415, "octet-stream"),
        ("lesson.keras", "format=keras", {"Content-Type": "multipart/form-data"}, 415, ""),
        ("lesson.keras", "format=pt", OCTETS, 400, "'format'"),
        ("lesson.keras", "", OCTETS, 400, "'format'"),
        ("lesson.keras", "format=keras&name=cnn", OCTETS, 409, "already exists"),
        ("lesson.keras", "format=onnx", OCTETS, 400, ""),  # not an ONNX file
        ("unsupported.keras", "format=keras", OCTETS, 400, ""),  # a layer convlens lacks
    ],
)
def test_uploads_that_cannot_be_models_are_one_line(
    client, runs_dir, file, query, headers, status, words
) -> None:
    before = sorted(p.name for p in runs_dir.iterdir())
    response = client.post(
        f"/api/models?{query}", content=(KERAS / file).read_bytes(), headers=headers
    )
    assert words in one_line_error(response, status)
    assert sorted(p.name for p in runs_dir.iterdir()) == before  # nothing half-written left


def test_an_oversized_model_is_refused_before_reading_it_all(client, monkeypatch) -> None:
    from convlens.web import api_models

    monkeypatch.setattr(api_models, "MODEL_LIMIT", 1000)
    response = client.post("/api/models?format=keras", content=b"x" * 5000, headers=OCTETS)
    assert "limit" in one_line_error(response, 413)
    empty = client.post("/api/models?format=keras", content=b"", headers=OCTETS)
    assert "empty" in one_line_error(empty, 400)


def test_download_keras_opens_again_as_the_same_model(client, runs_dir, tmp_path) -> None:
    response = client.get("/api/runs/cnn/download/keras")
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"] == 'attachment; filename="cnn.keras"'
    path = tmp_path / "cnn.keras"
    path.write_bytes(response.content)
    classes = Run.open("cnn", runs_dir).class_names
    again = import_model(path, "again", classes=classes, runs_dir=tmp_path / "again")
    image = np.asarray(bars(), dtype=np.uint8)[None, None]
    original = predict_arrays(Run.open("cnn", runs_dir).network(), image)[0]
    assert np.allclose(predict_arrays(again.network(), image)[0], original, atol=1e-5)
    assert client.get("/api/runs/cnn").json()["downloads"]["keras"] is True
