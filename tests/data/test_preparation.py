"""Preparing what a user holds like the training data: layouts, dtypes, polarity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from convlens.data.preparation import Preparation, as_images, prepare_picture
from convlens.errors import ImageError

GREY = Preparation(size=(28, 28), channels=1)
RGB = Preparation(size=(28, 28), channels=3)


def pixels(shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_every_layout_and_dtype_gives_the_same_uint8_batch() -> None:
    batch = pixels((3, 1, 28, 28))  # (N, C, H, W): the reference
    floats = batch.astype(np.float32) / 255
    same = [
        batch,
        batch[:, 0],  # (N, H, W)
        batch.transpose(0, 2, 3, 1),  # (N, H, W, C)
        floats,  # floats in 0..1
        floats * 255,  # floats in 0..255
        torch.from_numpy(batch),
        torch.from_numpy(floats),
        list(batch[:, 0]),  # a list of (H, W)
    ]
    for inputs in same:
        out = as_images(inputs, GREY)
        assert out.dtype == np.uint8 and out.shape == (3, 1, 28, 28)
        np.testing.assert_array_equal(out, batch)
    np.testing.assert_array_equal(as_images(batch[0, 0], GREY), batch[:1])  # (H, W)


def test_a_batch_already_prepared_is_taken_as_it_is() -> None:
    """The shortcut for uint8 (N, C, H, W) at the training size returns what the full
    path returns (the same array, no copy), and leaves every other case to it: the
    wrong channels, an empty batch, a width the layout rules would read as channels."""
    batch = pixels((2, 1, 28, 28))
    assert as_images(batch, GREY) is batch
    assert as_images(pixels((2, 3, 28, 28)), GREY).shape == (2, 1, 28, 28)  # to grey
    with pytest.raises(ImageError, match="cannot read"):
        as_images(np.zeros((0, 1, 28, 28), np.uint8), GREY)
    narrow = Preparation(size=(4, 3), channels=1)  # (N, 1, 4, 3) reads as (N, H, W, C)
    with pytest.raises(ImageError, match="4x3 images"):
        as_images(pixels((2, 1, 4, 3)), narrow)


def test_colour_layouts_and_grey_to_rgb() -> None:
    image = pixels((28, 28, 3))
    out = as_images(image, RGB)  # (H, W, C)
    np.testing.assert_array_equal(out[0], image.transpose(2, 0, 1))
    grey = as_images(pixels((2, 28, 28)), RGB)  # grey to RGB repeats the channel
    assert grey.shape == (2, 3, 28, 28) and (grey[:, 0] == grey[:, 2]).all()


def test_bad_arrays_are_refused_in_one_line() -> None:
    with pytest.raises(ImageError, match=r"\(N, 1, 28, 28\).*file path or PIL image"):
        as_images(pixels((1, 1, 32, 32)), GREY)
    with pytest.raises(ImageError, match="undo any normalisation"):
        as_images(np.full((28, 28), -0.5, np.float32), GREY)
    with pytest.raises(ImageError, match=r"0\.\.255"):
        as_images(np.full((28, 28), 300, np.int32), GREY)
    with pytest.raises(ImageError, match="NaN"):
        as_images(np.full((28, 28), np.nan), GREY)


def test_the_background_is_measured_from_the_training_images() -> None:
    dark = np.zeros((10, 1, 28, 28), np.uint8)
    dark[:, :, 8:20, 8:20] = 230  # light objects on black, like Fashion-MNIST
    assert Preparation.measure(dark).background == "dark"
    assert Preparation.measure(255 - dark).background == "light"
    assert Preparation.measure(255 - dark).to_dict() == {
        "size": [28, 28],
        "channels": 1,
        "background": "light",
        "scaling": "pixel / 255 (0..1)",
    }


def test_a_picture_is_inverted_only_when_its_background_differs(tmp_path) -> None:
    ink = np.full((56, 56), 250, np.uint8)  # dark ink on white paper
    ink[10:46, 25:31] = 5
    path = tmp_path / "one.png"
    Image.fromarray(ink).save(path)
    light = Preparation(size=(28, 28), channels=1, background="light")
    kept = prepare_picture(path, light)  # same polarity: not inverted
    assert kept[0, 0, 0] > 200 and kept[0, 14, 14] < 60
    flipped = prepare_picture(path, GREY)  # a dark-background run: inverted
    assert flipped[0, 0, 0] < 50 and flipped[0, 14, 14] > 190
    drawing = Image.fromarray(255 - ink)  # white strokes on black, said so
    np.testing.assert_array_equal(prepare_picture(drawing, light, background="dark"), kept)
    np.testing.assert_array_equal(prepare_picture(path, light, invert=True), flipped)
