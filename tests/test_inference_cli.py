"""``convlens evaluate`` and ``predict``, run as a user runs them (a subprocess), print
what the eager fp32 network computes: the fast inference engine changes no figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from convlens.predict import prepare_for
from convlens.runs import Run

SPEC = "conv(8, 3, relu), maxpool(2), flatten, dropout(0.2), dense(16, relu), dense(3, softmax)"


@pytest.fixture(scope="module")
def run(tiny_runs, tiny_idx_dir, tmp_path_factory) -> Run:
    runs = tiny_runs(tmp_path_factory.mktemp("runs"), tiny_idx_dir, {"r": SPEC})
    return Run.open(runs / "r")


def convlens(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "convlens", *args, "--json"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "CONVLENS_THREADS": ""},  # threads chosen as users get them
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def eager_logits(run: Run, images: np.ndarray) -> torch.Tensor:
    network = run.network()
    with torch.no_grad():
        return network(torch.from_numpy(images).float() / 255)


def test_evaluate_prints_the_eager_networks_figures(run):
    dataset = run.dataset()
    logits = eager_logits(run, dataset.test_images)
    labels = torch.from_numpy(dataset.test_labels.astype(np.int64))
    evaluated = convlens("evaluate", str(run.path))
    assert evaluated["test_count"] == len(labels)
    predicted = logits.argmax(1)
    assert evaluated["test_accuracy"] == pytest.approx((predicted == labels).float().mean().item())
    loss = torch.nn.functional.cross_entropy(logits, labels).item()
    assert evaluated["test_loss"] == pytest.approx(loss, abs=1e-5)
    confusion = np.zeros((3, 3), dtype=int)
    np.add.at(confusion, (labels.numpy(), predicted.numpy()), 1)
    assert evaluated["confusion"] == confusion.tolist()
    assert evaluated["test_accuracy"] == run.metrics()["test_accuracy"]


def test_predict_prints_the_eager_networks_probabilities(run, tmp_path):
    images = run.dataset().test_images[:3]  # (3, 1, 28, 28) uint8
    paths = []
    for index, image in enumerate(images):
        paths.append(tmp_path / f"{index}.png")
        Image.fromarray(image[0]).save(paths[-1])
    printed = convlens("predict", str(run.path), *map(str, paths), "--top", "3")
    prepared = np.stack([prepare_for(run, path) for path in paths])  # as predict saw them
    expected = eager_logits(run, prepared).softmax(-1).numpy()
    for row, probabilities in zip(printed, expected, strict=True):
        assert len(row["top"]) == 3
        for label, probability in row["top"]:
            index = list(run.class_names).index(label)
            assert probability == pytest.approx(float(probabilities[index]), abs=1e-5)


def test_predict_on_a_folder_is_its_image_files_by_name(run, tmp_path, capsys):
    """A folder stands for the image files directly in it, sorted by name (hidden files,
    other suffixes and sub-folders left out): the same answers as naming the files."""
    from convlens.cli.main import main

    folder = tmp_path / "photos"
    (folder / "inner").mkdir(parents=True)
    images = run.dataset().test_images[:3]
    for name, image in zip(("b.png", "a.PNG", "inner/c.png"), images, strict=True):
        Image.fromarray(image[0]).save(folder / name, format="PNG")
    Image.fromarray(images[2][0]).save(folder / ".hidden.png")
    (folder / "notes.txt").write_text("not an image")
    by_folder = convlens("predict", str(run.path), str(folder), "--top", "2")
    named = [str(folder / "a.PNG"), str(folder / "b.png")]
    assert [row["image"] for row in by_folder] == named
    assert by_folder == convlens("predict", str(run.path), *named, "--top", "2")

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    assert main(["predict", str(run.path), str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{empty}: no image files in this folder (.png, .jpg" in err
