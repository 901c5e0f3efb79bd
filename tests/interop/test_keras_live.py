"""Against real Keras, when TensorFlow is at hand (CI has none: skipped there).

TensorFlow is found in this interpreter, or in the one $CONVLENS_TF_PYTHON names (a
separate environment, since TensorFlow must not share one with the product). Keras itself
loads what ``convlens export --keras`` wrote and predicts what convlens predicts, and
the importer matches a model built and saved by Keras in this very run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from convlens.interop import import_model
from convlens.interop.keras_export import export_keras


def _tensorflow_python() -> str:
    configured = os.environ.get("CONVLENS_TF_PYTHON")
    if configured and Path(configured).exists():
        return configured
    if importlib.util.find_spec("tensorflow") is not None:
        return sys.executable
    pytest.skip("TensorFlow is not installed (set CONVLENS_TF_PYTHON to a Python that has it)")


PROGRAM = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import keras
for job in json.loads(sys.argv[1]):
    if job.get("build"):  # a fresh model, saved by Keras, random weights
        L = keras.layers
        model = keras.Sequential([keras.Input((28, 28, 1)),
            L.Conv2D(6, 3, strides=2, padding="same", activation="relu"), L.BatchNormalization(),
            L.Conv2D(8, (2, 3), padding="same", activation="tanh"), L.MaxPooling2D(2),
            L.Flatten(), L.Dense(10, activation="softmax")])
        for layer in model.layers:
            layer.set_weights([np.random.default_rng(0).normal(0, 0.3, w.shape).astype("float32")
                               + (1.0 if "variance" in w.path else 0.0) for w in layer.weights])
        model.save(job["file"])
    else:
        model = keras.models.load_model(job["file"])
    x = np.load(job["images"])
    np.save(job["out"], model.predict(x, verbose=0))
"""


def _keras_predict(python: str, jobs: list[dict]) -> None:
    done = subprocess.run(
        [python, "-c", PROGRAM, json.dumps(jobs)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_keras_loads_our_export_and_predicts_the_same(tmp_path, keras_fixtures) -> None:
    python = _tensorflow_python()
    torch.manual_seed(0)
    torch_model = nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AvgPool2d(2), nn.Flatten(), nn.Dropout(0.2), nn.Linear(4 * 7 * 7, 10),
    ).eval()  # fmt: skip
    runs = [import_model(keras_fixtures.path(name), runs_dir=tmp_path / "runs")
            for name in ("lesson", "strided", "functional", "logits", "globalmax")]  # fmt: skip
    runs.append(import_model(torch_model, "torch", runs_dir=tmp_path / "runs",
                             input_shape=(1, 28, 28)))  # fmt: skip
    global_max = nn.Sequential(
        nn.Conv2d(1, 6, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 8, 3), nn.Tanh(),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(8, 10),
    ).eval()  # fmt: skip
    runs.append(import_model(global_max, "torch-gmp", runs_dir=tmp_path / "runs",
                             input_shape=(1, 28, 28)))  # fmt: skip
    images = keras_fixtures.images()
    np.save(tmp_path / "x.npy", images.transpose(0, 2, 3, 1).astype(np.float32) / 255)
    jobs = []
    for run in runs:
        path = export_keras(run, tmp_path / f"{run.name}.keras").path
        jobs.append({"file": str(path), "images": str(tmp_path / "x.npy"),
                     "out": str(tmp_path / f"{run.name}.npy")})  # fmt: skip
    _keras_predict(python, jobs)
    for run in runs:
        want = run.load_network().predict_proba(torch.from_numpy(images).float() / 255).numpy()
        got = np.load(tmp_path / f"{run.name}.npy")
        assert np.abs(got - want).max() < 1e-5, run.name


@pytest.mark.slow
def test_a_model_keras_saves_now_imports_exactly(tmp_path, keras_fixtures) -> None:
    python = _tensorflow_python()
    images = keras_fixtures.images()
    np.save(tmp_path / "x.npy", images.transpose(0, 2, 3, 1).astype(np.float32) / 255)
    model = tmp_path / "fresh.keras"
    _keras_predict(python, [{"build": True, "file": str(model), "images": str(tmp_path / "x.npy"),
                             "out": str(tmp_path / "keras.npy")}])  # fmt: skip
    run = import_model(model, runs_dir=tmp_path / "runs")
    got = run.load_network().predict_proba(torch.from_numpy(images).float() / 255).numpy()
    assert np.abs(got - np.load(tmp_path / "keras.npy")).max() < 1e-5
