"""The web lab's Runs, Predict and journey endpoints on an imported Keras model."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("starlette")

from convlens.interop import import_model
from convlens.predict import predict_arrays


@pytest.fixture
def client(tmp_path, keras_fixtures):
    from starlette.testclient import TestClient

    from convlens.web import create_app

    for name in ("strided", "functional"):
        import_model(keras_fixtures.path(name), runs_dir=tmp_path)
    with TestClient(create_app(tmp_path)) as test_client:
        yield test_client, tmp_path


@pytest.mark.parametrize("name", ["strided", "functional"])
def test_predict_features_and_saliency_of_an_imported_run(client, keras_fixtures, name) -> None:
    from convlens.runs import Run

    test_client, runs_dir = client
    pixels = keras_fixtures.images()[0, 0]  # a real test image, white on black
    body = test_client.post("/api/predict", json={"run": name, "pixels": pixels.tolist()})
    assert body.status_code == 200, body.text
    answer = body.json()
    network = Run.open(name, runs_dir).load_network()
    want = predict_arrays(network, pixels[None, None])[0]
    assert np.allclose(answer["probabilities"], want, atol=1e-6)
    assert np.allclose(want, keras_fixtures.probabilities(name)[0], atol=1e-5)  # = Keras
    assert answer["classes"][0] == "T-shirt/top"
    features = test_client.post("/api/features", json={"run": name, "pixels": pixels.tolist()})
    assert features.status_code == 200 and features.json()["layers"]
    saliency = test_client.post("/api/saliency", json={"run": name, "pixels": pixels.tolist()})
    assert saliency.status_code == 200, saliency.text


def test_imported_runs_are_listed_with_their_state(client) -> None:
    test_client, _ = client
    table = test_client.get("/api/runs").json()
    rows = table["runs"] if isinstance(table, dict) else table
    statuses = {row["name"]: row["status"] for row in rows}
    assert statuses == {"strided": "imported", "functional": "imported"}
    detail = test_client.get("/api/runs/strided")
    assert detail.status_code == 200 and detail.json()["imported"]["format"] == "keras"
