"""A user's own folder of dark-on-light images: the run records its look, and predict
prepares the user's files to match it (issue 17, point 5: it used to invert them)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from convlens.cli.main import main
from convlens.runs import Run
from tests.conftest import make_pattern_images

SMALL = "conv(8, 3, relu), maxpool(2), flatten, dense(16, relu), dense(3, softmax)"
CLASSES = ("vertical", "horizontal", "box")


def write_folder(root, per_class: int, seed: int) -> list[tuple[str, int]]:
    """Dark patterns on white paper, 28x28 PNGs: root/CLASS/NNN.png; -> (path, label)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), per_class)
    images = 255 - make_pattern_images(labels, rng)  # (N, 1, 28, 28): light background
    files = []
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:03d}.png"
        Image.fromarray(image[0]).save(path)
        files.append((str(path), int(label)))
    return files


def test_predict_gets_its_own_light_background_test_images_right(tmp_path, capsys) -> None:
    data = tmp_path / "ink"
    write_folder(data / "train", 40, seed=1)
    test_files = write_folder(data / "test", 10, seed=2)
    code = main(
        ["train", SMALL, "--data", f"folder:{data}", "--epochs", "4", "--batch-size", "16",
         "--precision", "fp32", "--runs", str(tmp_path), "--name", "ink", "--quiet"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    run = Run(tmp_path / "ink")
    assert run.preparation.background == "light"
    test_accuracy = run.metrics()["test_accuracy"]
    assert test_accuracy >= 0.8  # the run learned its own data (chance: 1 in 3)

    capsys.readouterr()
    code = main(["predict", str(run.path), *[p for p, _ in test_files], "--json"])
    assert code == 0
    predicted = [CLASSES.index(item["top"][0][0]) for item in json.loads(capsys.readouterr().out)]
    right = sum(p == label for p, (_, label) in zip(predicted, test_files, strict=True))
    # Its own test files, read by predict, score what the run's evaluation scored.
    assert right / len(test_files) == pytest.approx(test_accuracy, abs=1e-6)
