"""Which images and which class: test-set indices and class names as people type them.

The lesson looks at test images 0, 23 and 28 (three ankle boots in Fashion-MNIST);
people also ask for "three ankle boots" (``--class "Ankle boot" --count 3``) or a class
by its number. These helpers turn those requests into indices, with one-line errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from convlens.errors import OptionError

if TYPE_CHECKING:
    from convlens.data.dataset import Dataset

__all__ = ["LESSON_INDICES", "parse_indices", "pick_images", "resolve_class"]

LESSON_INDICES: tuple[int, ...] = (0, 23, 28)  # the lesson's three shoes


def resolve_class(which: str | int, class_names: Sequence[str]) -> int:
    """A class by name (exact, then any case) or by index, to its index."""
    names = [str(n) for n in class_names]
    text = str(which).strip()
    if text in names:
        return names.index(text)
    lowered = [n.lower() for n in names]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    squeezed = [_squeeze(n) for n in names]  # "ankle-boot", "Ankle_Boot" -> "ankleboot"
    if _squeeze(text) and squeezed.count(_squeeze(text)) == 1:
        return squeezed.index(_squeeze(text))
    if text.lstrip("-").isdigit():
        index = int(text)
        if 0 <= index < len(names):
            return index
    listing = ", ".join(f"{i} {n}" if n != str(i) else n for i, n in enumerate(names))
    raise OptionError(f"unknown class '{which}'; the classes are: {listing}")


def _squeeze(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def parse_indices(text: str) -> list[int]:
    """'0,23,28' (or '0 23 28') to [0, 23, 28]."""
    parts = [p for p in text.replace(",", " ").split() if p]
    if not parts or not all(p.isdigit() for p in parts):
        raise OptionError(
            f"--images takes test-set indices separated by commas, e.g. 0,23,28; got {text!r}"
        )
    return [int(p) for p in parts]


def pick_images(
    dataset: Dataset,
    class_name: str | int | None = None,
    count: int = 3,
    indices: Sequence[int] | None = None,
) -> list[int]:
    """Test-set indices: ``indices`` as given, the first ``count`` test images of
    ``class_name`` (by their true label), or by default the lesson's 0, 23 and 28.

    ``dataset`` is a :class:`convlens.data.Dataset` (its ``test_images``,
    ``test_labels`` and ``class_names`` are read).
    """
    total = len(dataset.test_images)
    if indices is not None and class_name is not None:
        raise OptionError("choose images either by index (--images) or by --class, not both")
    if indices is not None:
        chosen = list(indices)
        if not chosen:
            raise OptionError("no images chosen; give test-set indices such as 0,23,28")
        for index in chosen:
            if not 0 <= index < total:
                raise OptionError(
                    f"test image {index} does not exist; the test set has {total:,} images "
                    f"(0 to {total - 1})"
                )
        return chosen
    if count < 1:
        raise OptionError(f"--count {count} is not valid; it must be at least 1")
    if class_name is not None:
        label = resolve_class(class_name, dataset.class_names)
        found = np.flatnonzero(np.asarray(dataset.test_labels) == label)[:count]
        if len(found) == 0:
            raise OptionError(
                f"the test set has no images of class '{dataset.class_names[label]}'; "
                "choose another --class"
            )
        return [int(i) for i in found]
    lesson = [i for i in LESSON_INDICES if i < total]
    return lesson or list(range(min(len(LESSON_INDICES), total)))
