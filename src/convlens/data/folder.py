"""``folder:DIR``: a dataset from one sub-folder of images per class.

Two layouts::

    DIR/Bag/*.png, DIR/Coat/*.jpg, ...             split here: 20% of each class to test
    DIR/train/Bag/..., DIR/test/Bag/..., ...       split kept as given (same classes)

Class names are the sorted sub-folder names; hidden files and folders (".*") and files
that are not images (by suffix) are ignored. Every image goes through
:func:`convlens.data.images.prepare_image` (28x28 grey by default, aspect kept, padded),
without inversion unless asked: these are the user's own training data, kept as they are.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from convlens.data.dataset import Dataset
from convlens.data.idx import MAX_TOTAL_BYTES
from convlens.data.images import IMAGE_SUFFIXES, _check_size, _mode_for, prepare_image
from convlens.errors import DataError, ImageError

#: Images a folder dataset may hold (train and test together).
MAX_IMAGES = 1_000_000
#: Classes (sub-folders) a folder dataset may have.
MAX_CLASSES = 1_000
#: Bytes one image file may have (a 50-megapixel photo as PNG is about 100 MB at worst).
MAX_FILE_BYTES = 128 * 2**20


def load_folder(
    root: str | os.PathLike[str],
    *,
    image_size: tuple[int, int] = (28, 28),
    channels: int = 1,
    invert: bool | None = False,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Load ``root`` as a dataset of ``(N, channels, H, W)`` uint8 images; see the module doc.

    Without ``train/`` and ``test/`` sub-folders, each class with at least 2 images gives
    ``round(test_fraction * n)`` of them (at least 1, at most n - 1) to test, chosen by
    ``seed``; a class with one image keeps it for training.
    """
    name = f"folder:{root}"
    image_size = _check_size(image_size)
    _mode_for(channels)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{name}: no such folder; name a folder holding one sub-folder per class")
    train_dir, test_dir = root / "train", root / "test"
    if train_dir.is_dir() and test_dir.is_dir():
        train_files = _class_files(train_dir, name)
        test_files = _class_files(test_dir, name, allow_empty=True)
        if sorted(train_files) != sorted(test_files):
            only_train = sorted(set(train_files) - set(test_files))
            only_test = sorted(set(test_files) - set(train_files))
            raise DataError(
                f"{name}: train/ and test/ hold different classes (only in train: "
                f"{', '.join(only_train) or '-'}; only in test: {', '.join(only_test) or '-'}); "
                "give both the same sub-folders"
            )
        classes = sorted(train_files)
        train = [(path, k) for k, c in enumerate(classes) for path in train_files[c]]
        test = [(path, k) for k, c in enumerate(classes) for path in test_files[c]]
        source = f"{root} (train/ and test/ as given)"
    else:
        files = _class_files(root, name)
        classes = sorted(files)
        train, test = _split(files, classes, test_fraction, seed)
        source = f"{root} ({test_fraction:.0%} of each class held out for test, seed {seed})"
    if not test:
        raise DataError(
            f"{name}: no images left for a test set; give each class at least 2 images "
            "(or a test/ folder)"
        )
    count = len(train) + len(test)
    if count > MAX_IMAGES:
        raise DataError(
            f"{name}: {count:,} images, over the {MAX_IMAGES:,} a folder dataset may hold; use a "
            "subset of the folders"
        )
    decoded = count * channels * image_size[0] * image_size[1]
    if decoded > MAX_TOTAL_BYTES:
        raise DataError(
            f"{name}: {count:,} images of {image_size[0]}x{image_size[1]}x{channels} make "
            f"{decoded:,} bytes, over the {MAX_TOTAL_BYTES:,}-byte limit for a dataset; use "
            "fewer images or a smaller image size"
        )
    train_x, train_y = _load(train, image_size, channels, invert)
    test_x, test_y = _load(test, image_size, channels, invert)
    return Dataset(
        name=name,
        class_names=tuple(classes),
        train_images=train_x,
        train_labels=train_y,
        test_images=test_x,
        test_labels=test_y,
        source=source,
    )


def _class_files(folder: Path, name: str, *, allow_empty: bool = False) -> dict[str, list[Path]]:
    """``{class name: sorted image paths}`` from the visible sub-folders of ``folder``."""
    classes = sorted(
        _bounded(
            (p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
            MAX_CLASSES,
            f"{name}: {folder} has more than {MAX_CLASSES:,} class sub-folders",
        )
    )
    if not classes:
        raise DataError(
            f"{name}: {folder} has no class sub-folders; put each class's images in a "
            "sub-folder named after the class"
        )
    if len(classes) < 2:
        raise DataError(
            f"{name}: {folder} has only one class ({classes[0].name}); a classifier needs at "
            "least 2 class sub-folders"
        )
    files = {}
    for class_dir in classes:
        images = image_files(class_dir, name)
        if not images and not allow_empty:
            raise DataError(
                f"{name}: {class_dir} has no images ({', '.join(IMAGE_SUFFIXES)}); add some "
                "or remove the folder"
            )
        files[class_dir.name] = images
    return files


def image_files(folder: Path, name: str) -> list[Path]:
    """The image files directly in ``folder``, sorted by name: files with an image suffix
    (:data:`~convlens.data.images.IMAGE_SUFFIXES`), hidden ones (".*") left out; more than
    ``MAX_IMAGES`` is one line that starts with ``name``."""
    return sorted(
        _bounded(
            (
                p
                for p in folder.iterdir()
                if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
            ),
            MAX_IMAGES,
            f"{name}: {folder} has more than {MAX_IMAGES:,} images",
        )
    )


def _bounded(items: Iterable[Path], limit: int, what: str) -> list[Path]:
    """At most ``limit`` items; one more is a one-line error (the listing stops there)."""
    found = []
    for item in items:
        if len(found) == limit:
            raise DataError(f"{what}; split it or use fewer")
        found.append(item)
    return found


def _split(
    files: dict[str, list[Path]], classes: list[str], test_fraction: float, seed: int
) -> tuple[list[tuple[Path, int]], list[tuple[Path, int]]]:
    """Seeded stratified split: each class sends about ``test_fraction`` of it to test."""
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test fraction must be between 0 and 1, not {test_fraction}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label, cls in enumerate(classes):
        paths = files[cls]
        n = len(paths)
        n_test = 0 if n < 2 else min(n - 1, max(1, round(n * test_fraction)))
        held_out = set(rng.permutation(n)[:n_test].tolist())
        for i, path in enumerate(paths):  # keep file order within each split
            (test if i in held_out else train).append((path, label))
    return train, test


def _load(
    items: list[tuple[Path, int]], size: tuple[int, int], channels: int, invert: bool | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(N, channels, H, W)`` uint8 images and ``(N,)`` int64 labels."""
    images = np.empty((len(items), channels, *size), dtype=np.uint8)
    for i, (path, _) in enumerate(items):
        try:
            nbytes = path.stat().st_size
        except OSError as err:
            raise DataError(f"{path}: cannot read ({err.strerror or err})") from None
        if nbytes > MAX_FILE_BYTES:
            raise DataError(
                f"{path}: {nbytes:,} bytes, over the {MAX_FILE_BYTES:,} an image file may have; "
                "shrink it or leave it out"
            )
        try:
            images[i] = prepare_image(path, size=size, channels=channels, invert=invert)
        except ImageError as err:
            raise DataError(str(err)) from err
    labels = np.array([label for _, label in items], dtype=np.int64)
    return images, labels
