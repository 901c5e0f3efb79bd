"""A dataset in memory: uint8 images ``(N, C, H, W)``, int64 labels ``(N,)``, and its story.

The arrays are exactly what the files held (no scaling, no float copy): 70,000
Fashion-MNIST images take 55 MB as uint8 and four times that as float32, so scaling to
``0..1`` happens per batch, where the network needs it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import numpy as np

from convlens.errors import OptionError


@dataclass(frozen=True, eq=False)  # eq on arrays is ambiguous: compare by identity
class Dataset:
    """Train and test splits of one labelled image dataset, plus where it came from."""

    name: str  # "fashion-mnist", "mnist", "idx:DIR", "folder:DIR"
    class_names: tuple[str, ...]
    train_images: np.ndarray  # (N, C, H, W) uint8
    train_labels: np.ndarray  # (N,) int64
    test_images: np.ndarray  # (M, C, H, W) uint8
    test_labels: np.ndarray  # (M,) int64
    source: str  # for people: where the files were read from
    is_sample: bool = False  # True for the embedded 10% sample
    notice: str | None = None  # one line the CLI prints to stderr (e.g. "using the sample")

    def __post_init__(self) -> None:
        # Invariants every consumer relies on; breaking one is a bug in a loader.
        for split in ("train", "test"):
            images = getattr(self, f"{split}_images")
            labels = getattr(self, f"{split}_labels")
            if images.dtype != np.uint8 or images.ndim != 4:
                raise ValueError(
                    f"{split}_images must be uint8 (N, C, H, W), not {images.dtype} {images.shape}"
                )
            if labels.dtype != np.int64 or labels.ndim != 1 or len(labels) != len(images):
                raise ValueError(
                    f"{split}_labels must be int64 (N,) matching {len(images)} images, "
                    f"not {labels.dtype} {labels.shape}"
                )
            if labels.size and (labels.min() < 0 or labels.max() >= len(self.class_names)):
                raise ValueError(f"{split}_labels fall outside 0..{len(self.class_names) - 1}")
        if self.train_images.shape[1:] != self.test_images.shape[1:]:
            raise ValueError(
                f"train images {self.train_images.shape[1:]} and test images "
                f"{self.test_images.shape[1:]} differ in shape"
            )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image, e.g. ``(1, 28, 28)``."""
        c, h, w = self.train_images.shape[1:]
        return (int(c), int(h), int(w))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def fingerprint(self) -> str:
        """SHA-256 of the class names, the shapes and every image and label: the same data
        always gives the same text, other images (even with the same classes) another.
        About 0.1 s for Fashion-MNIST's 70,000 images."""
        digest = hashlib.sha256()
        digest.update(
            json.dumps(
                [list(self.class_names), self.train_images.shape, self.test_images.shape]
            ).encode()
        )
        for array in (self.train_images, self.test_images):
            digest.update(np.ascontiguousarray(array).data)
        for labels in (self.train_labels, self.test_labels):
            digest.update(np.ascontiguousarray(labels, dtype=np.int64).data)
        return "sha256:" + digest.hexdigest()

    def class_counts(self, split: str = "train") -> np.ndarray:
        """Images per class in ``split`` ("train" or "test"): ``(num_classes,)`` int64."""
        labels = self.train_labels if split == "train" else self.test_labels
        return np.bincount(labels, minlength=self.num_classes)

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> Dataset:
        """A seeded, class-stratified random subset: ``train`` and ``test`` images at most.

        ``None`` keeps a split whole; a size at or above the split's length keeps it whole
        too. Each class keeps (about) its share, so 1,000 of Fashion-MNIST's 60,000 gives
        100 per class. Images keep their original order. For fast tests and sweeps.
        """
        rng = np.random.default_rng(seed)
        train_idx = _stratified_pick(self.train_labels, train, rng, "train")
        test_idx = _stratified_pick(self.test_labels, test, rng, "test")
        if train_idx is None and test_idx is None:
            return self
        n_train = len(self.train_labels) if train_idx is None else len(train_idx)
        n_test = len(self.test_labels) if test_idx is None else len(test_idx)
        return dataclasses.replace(
            self,
            train_images=self.train_images if train_idx is None else self.train_images[train_idx],
            train_labels=self.train_labels if train_idx is None else self.train_labels[train_idx],
            test_images=self.test_images if test_idx is None else self.test_images[test_idx],
            test_labels=self.test_labels if test_idx is None else self.test_labels[test_idx],
            source=f"{self.source}; subset of {n_train:,} train / {n_test:,} test (seed {seed})",
        )


def _stratified_pick(
    labels: np.ndarray, size: int | None, rng: np.random.Generator, split: str
) -> np.ndarray | None:
    """Sorted indices of ``size`` labels drawn per class in proportion; None = keep all.

    Shuffle, rank each index within its class, and take the smallest ``rank / class
    count``: the first picks are spread over the classes in proportion to their sizes.
    """
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise OptionError(f"the {split} subset size must be a positive whole number, not {size!r}")
    if size >= len(labels):
        return None
    order = rng.permutation(len(labels))  # (N,)
    shuffled = labels[order]
    counts = np.bincount(shuffled)
    # rank of each shuffled index among those of its class: 0, 1, 2, ...
    by_class = np.argsort(shuffled, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    ranks = np.empty(len(labels), dtype=np.int64)
    ranks[by_class] = np.arange(len(labels)) - np.repeat(starts, counts)
    key = (ranks + 0.5) / counts[shuffled]
    chosen = order[np.argsort(key, kind="stable")[:size]]
    return np.sort(chosen)
