"""Predict classes for images: arrays from a dataset, or a user's own photos.

A photo is prepared to look like the training data first (see
:func:`convlens.data.preparation.prepare_picture`): grey or colour as the run was
trained, resized keeping its aspect ratio to the run's input size, and inverted when its
background is the other way round from the training images' (the run records theirs:
Fashion-MNIST's garments are light on black, a folder of ink drawings dark on white).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from convlens.data.folder import image_files
from convlens.data.images import IMAGE_SUFFIXES
from convlens.data.preparation import Preparation, as_images, prepare_picture
from convlens.errors import ImageError
from convlens.models import inference
from convlens.models.inputs import to_float_images
from convlens.models.network import Network
from convlens.models.tta import tta_views
from convlens.runs import Run


@dataclass(frozen=True)
class Prediction:
    source: str  # the file, or "test[23]"
    image: np.ndarray  # (C, H, W) uint8, what the network saw
    probabilities: np.ndarray  # (K,) float
    class_names: tuple[str, ...]

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        order = np.argsort(-self.probabilities)[:k]
        return [(self.class_names[i], float(self.probabilities[i])) for i in order]

    @property
    def label(self) -> str:
        return self.top(1)[0][0]

    def format(self, k: int = 3) -> str:
        ranked = ", ".join(f"{name} {p:.1%}" for name, p in self.top(k))
        return f"{self.source}: {ranked}"


def predict_arrays(
    network: Network,
    images: Any,
    batch_size: int = 500,
    *,
    tta_flip: bool = False,
    tta_shift: bool = False,
) -> np.ndarray:
    """Probabilities (N, K) for uint8 images (N, C, H, W), in fp32 on the CPU.

    Other images (floats, other layouts, PIL images, paths) are prepared like the
    network's training data first (:func:`convlens.data.preparation.as_images`).

    ``tta_flip`` averages each image's probabilities with its mirror's, ``tta_shift``
    with shifted copies (:mod:`convlens.models.tta`), as a run trained with them was
    evaluated (see :func:`convlens.train.engine.predict_view_logits`).
    """
    images = as_images(images, preparation_of(network))
    return prepared_probabilities(
        network, images, batch_size, tta_flip=tta_flip, tta_shift=tta_shift
    )


def prepared_probabilities(
    network: Network,
    images: np.ndarray,
    batch_size: int = 500,
    *,
    tta_flip: bool = False,
    tta_shift: bool = False,
) -> np.ndarray:
    """:func:`predict_arrays` for images already as the network takes them: uint8
    (N, C, H, W) from :func:`~convlens.data.preparation.as_images`.

    One image whose engine is ready for the network as it is (weights, eval mode) is
    answered after that one check (:func:`convlens.models.inference.ready_pixel_probabilities`);
    anything else first puts the network on the CPU in eval mode.
    """
    if not (tta_flip or tta_shift):
        answer = inference.ready_pixel_probabilities(network, images)
        if answer is not None:
            return answer
    network = inference.on_cpu_in_eval(network)
    out = []
    for start in range(0, len(images), batch_size):  # no autograd: inputs need no grad
        if not (tta_flip or tta_shift):
            out.append(inference.pixel_probabilities(network, images[start : start + batch_size]))
            continue
        x = to_float_images(images[start : start + batch_size])
        views = tta_views(x, flip=tta_flip, shift=tta_shift)
        mean = sum(w * network.predict_proba(v) for w, v in views)
        out.append((mean / sum(w for w, _ in views)).numpy())
    if len(out) == 1:
        return out[0]  # one batch: no copy
    return np.concatenate(out) if out else np.zeros((0, network.num_classes), np.float32)


def preparation_of(run_or_network: Run | Network) -> Preparation:
    """How the training images looked, from a run or a network loaded from one."""
    if isinstance(run_or_network, Run):
        return run_or_network.preparation
    return run_or_network.preparation or Preparation.default(run_or_network.input_shape)


def prepare_for(
    run_or_network: Run | Network,
    picture: str | os.PathLike[str] | Image.Image,
    invert: bool | None = None,
    *,
    background: str | None = None,
) -> np.ndarray:
    """A user's picture (a file or a PIL image) as the network's input: (C, H, W) uint8.

    Inverted when its background differs from the training images' (``background``
    "dark" or "light" says the picture's own, e.g. "dark" for white strokes drawn on
    black; else it is measured on the border); ``invert`` True/False overrides.
    The CLI, the library and the web page's upload path all prepare pictures here.
    """
    return prepare_picture(
        picture, preparation_of(run_or_network), invert=invert, background=background
    )


def image_paths(paths: Sequence[str | os.PathLike[str]]) -> list[str | os.PathLike[str]]:
    """Each path as given, and for a folder the image files directly in it, sorted by name
    (:func:`convlens.data.folder.image_files`: other suffixes and hidden files left out);
    a folder without one is one line."""
    found: list[str | os.PathLike[str]] = []
    for path in paths:
        if not os.path.isdir(path):
            found.append(path)
            continue
        images = image_files(Path(path), str(path))
        if not images:
            raise ImageError(
                f"{path}: no image files in this folder ({', '.join(IMAGE_SUFFIXES)}); name "
                "image files, or a folder that holds some"
            )
        found.extend(images)
    return found


def predict_files(
    run: Run,
    paths: Sequence[str | os.PathLike[str]],
    *,
    invert: bool | None = None,
    network: Network | None = None,
) -> list[Prediction]:
    """Prepare and classify each image file (a folder: each image file in it, see
    :func:`image_paths`) with the run's final weights, one file after another.

    Decoding and preparing the files is most of the time (BENCHMARKS.md, "Session 11":
    at 28x28 decoding 27% and the network 33% of a file's time, at 512x512 the files'
    decoding and resizing 89%); on a shared 2-core machine a thread pool gained nothing
    that was not a larger share of busy cores, so the files stay on one thread.
    """
    paths = image_paths(paths)
    network = network or run.network()
    images = np.stack([prepare_for(network, p, invert) for p in paths])
    probabilities = predict_arrays(network, images)
    names = tuple(run.class_names)
    return [
        Prediction(str(p), img, prob, names)
        for p, img, prob in zip(paths, images, probabilities, strict=True)
    ]
