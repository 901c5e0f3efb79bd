"""Shared fixtures for the data layer's tests: isolation from the machine, fake datasets.

Isolation (no $CONVLENS_DATA, a fresh cache, no system copy, dead mirrors) comes from the
autouse ``isolated`` fixture in tests/conftest.py. The real-data test takes the
``real_data_dir`` fixture ($CONVLENS_TEST_DATA).

Test modules get the helpers below through the ``helpers`` fixture rather than
``from conftest import ...``, which breaks as soon as another test folder has a conftest.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from convlens.data import catalog
from convlens.data.catalog import IDX_STEMS, KnownDataset, KnownFile
from convlens.data.idx import encode_idx

#: A port nothing listens on (the autouse ``isolated`` fixture points every mirror here).
DEAD_MIRROR = "http://127.0.0.1:9/"


def fake_arrays(n_train: int = 30, n_test: int = 10, seed: int = 0) -> list[np.ndarray]:
    """Tiny IDX-ready arrays: train images (n, 28, 28), labels (n,), test images, labels."""
    rng = np.random.default_rng(seed)
    train_y = (np.arange(n_train) % 10).astype(np.uint8)
    test_y = (np.arange(n_test) % 10).astype(np.uint8)
    train_x = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    test_x = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    return [train_x, train_y, test_x, test_y]


def write_copy(folder: Path, arrays: list[np.ndarray], *, gz: bool = True, level: int = 9) -> None:
    """The four files under canonical names; ``level`` changes the .gz bytes, not the content."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, array in zip(IDX_STEMS, arrays, strict=True):
        data = encode_idx(array)
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data, compresslevel=level, mtime=0))
        else:
            (folder / stem).write_bytes(data)


def known_for(name: str, arrays: list[np.ndarray], *, content_digests: bool = True) -> KnownDataset:
    """The catalog entry of ``name`` with digests of ``arrays`` (as level-9 .gz files).

    ``content_digests=False`` publishes only the .gz digests, as the MNIST entry does.
    """
    files = []
    for stem, array in zip(IDX_STEMS, arrays, strict=True):
        content = encode_idx(array)
        gz = gzip.compress(content, compresslevel=9, mtime=0)
        files.append(
            KnownFile(
                stem,
                len(gz),
                hashlib.sha256(gz).hexdigest(),
                len(content) if content_digests else None,
                hashlib.sha256(content).hexdigest() if content_digests else None,
            )
        )
    return dataclasses.replace(catalog.KNOWN[name], files=tuple(files))


@pytest.fixture
def fake_fashion(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., list[np.ndarray]]:
    """Make the catalog's Fashion-MNIST entry expect small fake arrays; returns them."""

    def install(n_train: int = 30, n_test: int = 10, seed: int = 0, **changes) -> list[np.ndarray]:
        arrays = fake_arrays(n_train, n_test, seed)
        info = dataclasses.replace(known_for("fashion-mnist", arrays), **changes)
        monkeypatch.setitem(catalog.KNOWN, "fashion-mnist", info)
        return arrays

    return install


@pytest.fixture
def helpers() -> SimpleNamespace:
    """``fake_arrays``, ``write_copy``, ``known_for`` and ``DEAD_MIRROR`` for test modules."""
    return SimpleNamespace(
        fake_arrays=fake_arrays, write_copy=write_copy, known_for=known_for, DEAD_MIRROR=DEAD_MIRROR
    )
