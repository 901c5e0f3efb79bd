"""Shared fixtures: an isolated environment, a tiny learnable dataset, the real files."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from convlens.data import Dataset

_TORCH_THREADS = __import__("torch").get_num_threads()

#: A port nothing listens on: connecting is refused at once.
DEAD_MIRROR = "http://127.0.0.1:9/"


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test touches the user's data, cache, runs, the system copy or the network.

    Every test gets no $CONVLENS_DATA or $CONVLENS_RUNS, an empty cache of its own
    (``root/cache``), a system folder that does not exist (``root/system/NAME``) and
    mirrors that refuse connections at once, with short timeouts.
    """
    from convlens.data import catalog, download

    root = tmp_path_factory.mktemp("isolated")
    monkeypatch.delenv("CONVLENS_DATA", raising=False)
    monkeypatch.delenv("CONVLENS_RUNS", raising=False)
    monkeypatch.setenv("CONVLENS_CACHE", str(root / "cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # torch's own thread count, fixed: two runs of a test never differ in the order of
    # their sums because the machine was busier during one (see convlens.train.cpu)
    monkeypatch.setenv("CONVLENS_THREADS", str(_TORCH_THREADS))
    for name, info in list(catalog.KNOWN.items()):
        monkeypatch.setitem(
            catalog.KNOWN,
            name,
            dataclasses.replace(info, system_dir=root / "system" / name, mirrors=(DEAD_MIRROR,)),
        )
    monkeypatch.setattr(download, "TIMEOUT", 2.0)
    return root


def make_pattern_images(labels: np.ndarray, rng: np.random.Generator, size: int = 28):
    """(N, 1, size, size) uint8: class 0 vertical bars, 1 horizontal bars, 2 a bright box."""
    images = rng.integers(0, 40, size=(len(labels), 1, size, size), dtype=np.uint8)
    for i, label in enumerate(labels):
        offset = int(rng.integers(2, 8))
        if label == 0:
            images[i, 0, :, offset::6] = 220
        elif label == 1:
            images[i, 0, offset::6, :] = 220
        else:
            images[i, 0, offset : offset + 12, offset : offset + 12] = 200
    return images


@pytest.fixture(scope="session")
def tiny_dataset() -> Dataset:
    """Three easy classes a CNN learns in a couple of epochs: 150 train, 60 test images."""
    rng = np.random.default_rng(0)
    train_labels = np.tile(np.arange(3), 50).astype(np.int64)
    test_labels = np.tile(np.arange(3), 20).astype(np.int64)
    return Dataset(
        name="patterns",
        class_names=("vertical", "horizontal", "box"),
        train_images=make_pattern_images(train_labels, rng),
        train_labels=train_labels,
        test_images=make_pattern_images(test_labels, rng),
        test_labels=test_labels,
        source="synthetic patterns (tests/conftest.py)",
    )


@pytest.fixture(scope="session")
def tiny_idx_dir(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Dataset) -> Path:
    """The tiny dataset as the four canonical IDX files, for end-to-end CLI tests."""
    from convlens.data.idx import write_idx

    folder = tmp_path_factory.mktemp("idx")
    write_idx(folder / "train-images-idx3-ubyte.gz", tiny_dataset.train_images[:, 0])
    write_idx(folder / "train-labels-idx1-ubyte.gz", tiny_dataset.train_labels.astype(np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte.gz", tiny_dataset.test_images[:, 0])
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", tiny_dataset.test_labels.astype(np.uint8))
    return folder


def train_tiny_runs(runs_dir: Path, idx_dir: Path, specs: dict[str, str]) -> Path:
    """Train each ``name: spec`` for one fp32 epoch on an IDX folder, through the real CLI.

    Session- and module-scoped fixtures call this to make ordinary run folders that
    journey, explain, the web page and reports then read back.
    """
    from convlens.cli.main import main

    with pytest.MonkeyPatch.context() as patch:  # the autouse isolation is per test
        patch.setenv("CONVLENS_CACHE", str(runs_dir.with_name(runs_dir.name + "-cache")))
        patch.setenv("MPLBACKEND", "Agg")
        for name, spec in specs.items():
            args = [
                "train",
                spec,
                "--data",
                f"idx:{idx_dir}",
                "--epochs",
                "1",
                "--runs",
                str(runs_dir),
                "--name",
                name,
                "--quiet",
                "--precision",
                "fp32",
            ]
            assert main(args) == 0, f"training {name} failed"
    return runs_dir


@pytest.fixture(scope="session")
def tiny_runs():
    """:func:`train_tiny_runs`, for fixtures in other folders (they cannot import conftest)."""
    return train_tiny_runs


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The official Fashion-MNIST files, if $CONVLENS_TEST_DATA names them (make test does)."""
    folder = os.environ.get("CONVLENS_TEST_DATA")
    if not folder or not Path(folder).is_dir():
        pytest.skip("set CONVLENS_TEST_DATA to a folder with the Fashion-MNIST files")
    return Path(folder)
