"""``folder:DIR`` datasets from tiny generated images, in both layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convlens.data import load_dataset
from convlens.data.folder import load_folder
from convlens.errors import DataError

SHADES = {"bag": 40, "coat": 120, "shoe": 200}  # each class a solid grey, so labels show


def make_class(folder: Path, shade: int, count: int, suffix: str = ".png") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("L", (12 + i, 10), shade).save(folder / f"img{i:02d}{suffix}")


def make_flat(root: Path, count: int = 5) -> Path:
    for name, shade in SHADES.items():
        make_class(root / name, shade, count)
    return root


def assert_labels_match_pixels(images: np.ndarray, labels: np.ndarray) -> None:
    shades = np.array(list(SHADES.values()))
    np.testing.assert_array_equal(images[:, 0, 5, 5], shades[labels])


def test_flat_layout_split_is_stratified_and_seeded(tmp_path: Path) -> None:
    root = make_flat(tmp_path / "photos")
    (root / "bag" / "notes.txt").write_text("ignored")
    (root / "bag" / ".hidden.png").write_bytes(b"ignored too")
    (root / ".git").mkdir()
    ds = load_folder(root)
    assert ds.name == f"folder:{root}"
    assert ds.class_names == ("bag", "coat", "shoe")
    assert ds.train_images.shape == (12, 1, 28, 28) and ds.test_images.shape == (3, 1, 28, 28)
    assert ds.class_counts("test").tolist() == [1, 1, 1]  # round(5 * 0.2) per class
    assert_labels_match_pixels(ds.train_images, ds.train_labels)
    assert_labels_match_pixels(ds.test_images, ds.test_labels)
    again = load_folder(root)
    np.testing.assert_array_equal(again.test_images, ds.test_images)


def test_train_test_layout_is_kept(tmp_path: Path) -> None:
    root = tmp_path / "split"
    make_flat(root / "train", count=3)
    make_flat(root / "test", count=2)
    ds = load_dataset(f"folder:{root}", image_size=(16, 20), channels=3)
    assert ds.train_images.shape == (9, 3, 16, 20) and ds.test_images.shape == (6, 3, 16, 20)
    assert ds.class_counts("train").tolist() == [3, 3, 3]
    assert "as given" in ds.source


def test_train_test_classes_must_match(tmp_path: Path) -> None:
    root = tmp_path / "split"
    make_flat(root / "train", count=2)
    make_class(root / "test" / "bag", 40, 1)
    make_class(root / "test" / "hat", 90, 1)
    with pytest.raises(DataError, match="only in train: coat, shoe; only in test: hat"):
        load_folder(root)


def test_single_image_classes_stay_in_train(tmp_path: Path) -> None:
    root = tmp_path / "few"
    make_class(root / "a", 10, 1)
    make_class(root / "b", 20, 3, suffix=".jpg")
    ds = load_folder(root)
    assert ds.class_counts("train").tolist() == [1, 2]
    assert ds.class_counts("test").tolist() == [0, 1]


@pytest.mark.parametrize(
    ("layout", "needle"),
    [
        ({}, "no class sub-folders"),
        ({"only": 2}, "only one class"),
        ({"a": 2, "b": 0}, "has no images"),
        ({"a": 1, "b": 1}, "no images left for a test set"),
    ],
)
def test_unusable_folders(tmp_path: Path, layout: dict[str, int], needle: str) -> None:
    root = tmp_path / "data"
    root.mkdir()
    for name, count in layout.items():
        (root / name).mkdir()
        make_class(root / name, 50, count)
    with pytest.raises(DataError, match=needle) as err:
        load_folder(root)
    assert "\n" not in str(err.value)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such folder"):
        load_dataset(f"folder:{tmp_path / 'nope'}")


def test_unreadable_image_is_named(tmp_path: Path) -> None:
    root = make_flat(tmp_path / "photos", count=2)
    (root / "coat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataError) as err:
        load_folder(root)
    assert "broken.png" in str(err.value) and "\n" not in str(err.value)
