"""The built-in pictures to convolve by hand, by name: one rule for ``convlens filter
--sample`` and the web page's picture references.

* ``photo``: matplotlib's photograph of Grace Hopper (600x512), the lesson's big picture;
* ``fashion:N``: Fashion-MNIST test image N, 28x28 (``fashion`` alone is image 0;
  ``fashion-mnist:N`` is the same).

The caller loads the Fashion-MNIST test set its own way (the CLI may download, the page
never waits on one) and hands it to :func:`fashion_image`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from convlens.errors import DataError, OptionError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from convlens.data.dataset import Dataset

#: What ``--list-samples`` and the help say about each name.
SAMPLES = {
    "photo": "a photograph of Grace Hopper shipped with matplotlib, in grayscale (600x512)",
    "fashion:N": "the N-th Fashion-MNIST test image, 28x28 (in the full set, 0 is an ankle boot)",
}

_FASHION = re.compile(r"(?:fashion|fashion-mnist)(?::(\S*))?")


class SampleMissing(DataError):
    """A sample that names no picture here: an index past the end, a missing photo."""


@dataclass(frozen=True)
class Sample:
    """A parsed sample name: ``photo``, or ``fashion`` with a test image index."""

    kind: str  # "photo" or "fashion"
    index: int = 0


def parse_sample(text: str) -> Sample:
    """``"photo"``, ``"fashion:3"``, ``"Fashion"`` -> :class:`Sample`; OptionError otherwise."""
    name = str(text).strip().lower()
    if name == "photo":
        return Sample("photo")
    match = _FASHION.fullmatch(name)
    if not match:
        raise OptionError(
            f"unknown sample {text!r}; choose photo or fashion:N with N a test image index "
            "such as fashion:0"
        )
    digits = match.group(1)
    if digits and not digits.isdigit():
        raise OptionError(f"fashion:{digits} needs a whole number, e.g. fashion:0")
    return Sample("fashion", int(digits) if digits else 0)


def fashion_image(dataset: Dataset, index: int) -> tuple[np.ndarray, str]:
    """Test image ``index`` of ``dataset`` -> ((H, W) uint8, ``"fashion:N (class)"``)."""
    images = dataset.test_images  # (M, 1, 28, 28) uint8
    if not 0 <= index < len(images):
        raise SampleMissing(f"fashion:{index} does not exist; N goes from 0 to {len(images) - 1}")
    name = dataset.class_names[int(dataset.test_labels[index])]
    return images[index, 0], f"fashion:{index} ({name})"


def load_photo() -> Image.Image:
    """The photo as an 8-bit PIL image (RGB, as shipped)."""
    from matplotlib import cbook

    from convlens.data.images import load_image, to_8bit

    try:
        path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    except (OSError, ValueError) as err:
        raise SampleMissing(
            f"matplotlib's sample photo is missing ({err}); give a picture file instead"
        ) from None
    return to_8bit(load_image(Path(path)))
