"""How the training images look, and making anything a user has look the same.

A network only knows the images it was trained on: their size, grey or colour, pixels
scaled from 0..255 to 0..1, and which way round they are. Fashion-MNIST shows light
garments on a black background; a user's own folder of handwritten digits shows dark ink
on white paper. :class:`Preparation` records that (training measures it and saves it in
the run's ``config.json``), and two functions bring a user's input to it:

- :func:`prepare_picture`: a photo or file -> ``(C, H, W)`` uint8, inverted only when its
  background is the other way round from the training data's. The CLI, the library and
  the web page's upload path all call it.
- :func:`as_images`: whatever a notebook user holds (NumPy arrays or torch tensors of
  uint8 pixels or floats, ``(H, W)``, ``(N, H, W)``, ``(H, W, C)``, ``(N, H, W, C)``,
  ``(N, C, H, W)``, PIL images, paths, or a list of them) -> ``(N, C, H, W)`` uint8.

No torch here: a tensor is read through its ``numpy()`` without importing torch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from convlens.data.images import border_median, load_image, prepare_image, resize_batch
from convlens.errors import ImageError

BACKGROUNDS = ("dark", "light")

#: How pixels become the network's input, as the lesson does it (``images / 255.0``).
SCALING = "pixel / 255 (0..1)"

_MEASURED_IMAGES = 2000  # border pixels of this many training images decide the background


@dataclass(frozen=True)
class Preparation:
    """The look of the training images: what every input is made to match."""

    size: tuple[int, int]  # (H, W)
    channels: int  # 1 grey, 3 RGB
    background: str = "dark"  # "dark": light objects on black (Fashion-MNIST); or "light"
    scaling: str = SCALING

    @classmethod
    def default(cls, input_shape: Sequence[int]) -> Preparation:
        """For a run saved before preparations were recorded: Fashion-MNIST's look.
        (Made once per shape: every one-image prediction of such a network asks.)"""
        key = tuple(input_shape)
        made = _DEFAULTS.get(key)
        if made is None or type(made) is not cls:
            c, h, w = (int(v) for v in key)
            made = _DEFAULTS[key] = cls(size=(h, w), channels=c)
        return made

    @classmethod
    def measure(cls, images: np.ndarray) -> Preparation:
        """The preparation of training images ``(N, C, H, W)`` uint8.

        The background is the median, over (up to 2,000 evenly spaced) images, of each
        image's border median in grey: above 127 it is light.
        """
        n, c, h, w = images.shape
        picked = images[:: max(1, n // _MEASURED_IMAGES)][:_MEASURED_IMAGES]
        grey = picked.mean(axis=1)  # (n, H, W)
        borders = [float(border_median(image)) for image in grey]
        level = float(np.median(borders)) if borders else 0.0
        return cls(size=(int(h), int(w)), channels=int(c), background=_background(level))

    @classmethod
    def from_dict(cls, data: Any, input_shape: Sequence[int]) -> Preparation:
        """From ``config.json``; the default for a run that recorded none."""
        if not isinstance(data, dict):
            return cls.default(input_shape)
        base = cls.default(input_shape)
        background = data.get("background")
        return cls(
            size=base.size,
            channels=base.channels,
            background=background if background in BACKGROUNDS else base.background,
            scaling=str(data.get("scaling") or SCALING),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": list(self.size),
            "channels": self.channels,
            "background": self.background,
            "scaling": self.scaling,
        }

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)``."""
        return (self.channels, *self.size)

    def describe(self) -> str:
        """'28x28 grey, light objects on a dark background, pixel / 255 (0..1)'."""
        h, w = self.size
        colour = "grey" if self.channels == 1 else "RGB"
        look = (
            "light objects on a dark background"
            if self.background == "dark"
            else "dark objects on a light background"
        )
        return f"{h}x{w} {colour}, {look}, {self.scaling}"


_DEFAULTS: dict[tuple, Preparation] = {}


def picture_background(image: Image.Image) -> str:
    """ "dark" or "light": the median of a picture's border pixels in grey."""
    from convlens.data.images import to_8bit

    return _background(float(border_median(np.asarray(to_8bit(image).convert("L")))))


def prepare_picture(
    picture: Image.Image | str | os.PathLike[str],
    preparation: Preparation,
    *,
    invert: bool | None = None,
    background: str | None = None,
) -> np.ndarray:
    """A user's picture as the network's input: ``(C, H, W)`` uint8, like the training data.

    Grey or RGB as trained, shrunk to the training size keeping its aspect ratio and
    padded with its background (:func:`convlens.data.images.prepare_image`). It is
    inverted when its own background (``background``, e.g. "dark" for a drawing of
    white strokes on black; else measured on its border) differs from the training
    data's; ``invert`` True or False overrides that.
    """
    image = picture if isinstance(picture, Image.Image) else load_image(picture)
    if invert is None:
        own = background if background in BACKGROUNDS else picture_background(image)
        invert = own != preparation.background
    return prepare_image(image, size=preparation.size, channels=preparation.channels, invert=invert)


def as_images(inputs: Any, preparation: Preparation, *, invert: bool | None = None) -> np.ndarray:
    """Anything a user holds as a batch of network inputs: ``(N, C, H, W)`` uint8.

    - Paths and PIL images go through :func:`prepare_picture` (one image each).
    - Arrays and tensors: uint8 pixels, or floats in 0..1 (scaled by 255) or 0..255;
      ``(H, W)`` is one grey image, ``(N, H, W)`` several, ``(H, W, C)`` one colour
      image (C 3 or 4, or C 1 when H and W are not), ``(N, H, W, C)`` or
      ``(N, C, H, W)`` a batch, at the training size: they are taken as they are, like
      the test images (only grey/RGB converted). An array of another size is refused
      with a hint: a picture to be resized and matched goes in as a path or PIL image.
    - A list or tuple of any of these is stacked.
    """
    if _already_prepared(inputs, preparation):  # the usual batch: nothing to do
        return np.ascontiguousarray(inputs)
    if isinstance(inputs, (str, os.PathLike, Image.Image)):
        return prepare_picture(inputs, preparation, invert=invert)[None]
    if isinstance(inputs, (list, tuple)):
        if not inputs:
            raise ImageError("no images given; pass an array, a path, a PIL image or a list")
        if all(isinstance(v, (int, float, np.number)) for v in inputs):
            return as_images(np.asarray(inputs), preparation, invert=invert)
        return np.concatenate([as_images(v, preparation, invert=invert) for v in inputs])
    array = _to_numpy(inputs)
    pixels = _to_uint8(array)  # same shape, uint8
    batch = _to_nchw(pixels, preparation.channels)  # (N, c, h, w)
    c, h, w = batch.shape[1:]
    if (h, w) != preparation.size:
        ch, (th, tw) = preparation.channels, preparation.size
        raise ImageError(
            f"the model takes {th}x{tw} images, shaped ({ch}, {th}, {tw}) each or "
            f"(N, {ch}, {th}, {tw}) as a batch, got an array shaped "
            f"{tuple(array.shape)} ({h}x{w}); pass a picture as a file path or PIL image "
            "to have it resized and prepared like the training data"
        )
    if c == 4:
        batch = batch[:, :3]  # RGBA arrays: the colour, as a PIL image would flatten
    return np.ascontiguousarray(resize_batch(batch, channels=preparation.channels))


def _already_prepared(inputs: Any, preparation: Preparation) -> bool:
    """A uint8 (N, C, H, W) array as the network takes it, whose layout
    :func:`_to_nchw` reads as (N, C, H, W): the steps below would return it unchanged."""
    if not isinstance(inputs, np.ndarray) or inputs.dtype != np.uint8 or inputs.ndim != 4:
        return False
    if inputs.size == 0:
        return False  # refused below, with the reason
    _, c, h, w = inputs.shape
    return c == preparation.channels and (h, w) == preparation.size and w not in (1, 3, 4)


def _background(level: float) -> str:
    return "light" if level > 127 else "dark"


def _to_numpy(inputs: Any) -> np.ndarray:
    if hasattr(inputs, "detach") and hasattr(inputs, "cpu"):  # a torch tensor
        inputs = inputs.detach().cpu()
        if str(inputs.dtype) == "torch.bfloat16" or str(inputs.dtype) == "torch.float16":
            inputs = inputs.float()
        inputs = inputs.numpy()
    array = np.asarray(inputs)
    if array.dtype == object or array.size == 0:
        raise ImageError(
            f"cannot read {type(inputs).__name__} of shape {array.shape} as images; pass "
            "uint8 pixels or floats in 0..1, shaped (H, W), (N, H, W), (N, H, W, C) or "
            "(N, C, H, W)"
        )
    return array


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """uint8 as is; bool as 0/255; integers in 0..255; floats in 0..1 (x255) or 0..255."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise ImageError(
                f"integer pixels must lie in 0..255, these span {low}..{high}; scale them "
                "to uint8 first"
            )
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ImageError("the images hold NaN or infinite values; pass finite pixels")
        low, high = float(array.min()), float(array.max())
        if low < 0 or high > 255:
            raise ImageError(
                f"float pixels must lie in 0..1 (or 0..255), these span {low:.3g}..{high:.3g}; "
                "undo any normalisation (mean/std) first"
            )
        scaled = array * 255.0 if high <= 1.0 else array
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    raise ImageError(f"cannot read {array.dtype} values as pixels; pass uint8 or floats")


def _to_nchw(pixels: np.ndarray, channels: int) -> np.ndarray:
    """Any of the accepted layouts as (N, C, H, W); see :func:`as_images`."""
    shape = pixels.shape
    colour = (1, 3, 4)
    if pixels.ndim == 2:  # (H, W)
        return pixels[None, None]
    if pixels.ndim == 3:
        if shape[0] == channels and channels > 1 and shape[-1] not in colour:  # (C, H, W)
            return pixels[None]
        if shape[-1] in (3, 4) or (shape[-1] == 1 and shape[0] > 4 and shape[1] > 4):
            return pixels.transpose(2, 0, 1)[None]  # (H, W, C)
        return pixels[:, None]  # (N, H, W)
    if pixels.ndim == 4:
        if shape[1] in colour and shape[-1] not in colour:
            return pixels  # (N, C, H, W)
        if shape[-1] in colour:
            return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))  # (N, H, W, C)
        if shape[1] == channels:
            return pixels
    raise ImageError(
        f"cannot tell the layout of images shaped {shape}; pass (H, W), (N, H, W), "
        f"(H, W, C), (N, H, W, C) or (N, C, H, W) with C of 1 or 3"
    )
