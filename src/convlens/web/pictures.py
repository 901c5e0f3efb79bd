"""The pictures the page works on, by reference: samples, uploads, and drawings.

Every endpoint that needs a picture takes either ``"image": REF`` or ``"pixels": [[...]]``
(a drawing, rows of 0..255 gray levels). References:

* ``fashion:N``: Fashion-MNIST test image N (local files, else the embedded sample; the
  page never waits on a download);
* ``photo``: matplotlib's photograph of Grace Hopper, the lesson's big picture;

  both named and read by the rule ``convlens filter --sample`` follows
  (:mod:`convlens.byhand.samples`);
* ``upload:ID``: a file sent to ``POST /api/images``, kept in memory by its content hash.

Uploads are decoded once, with the library's limits (:func:`convlens.data.load_image`:
decompression bombs refused), flattened to 8-bit, shrunk to at most ``KEEP_SIDE`` pixels a
side and kept in a small LRU, so the playground can re-filter and the page can re-predict
a photo without sending it again. The cache is bounded: old uploads fall out.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import re
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from convlens.byhand.samples import SampleMissing, fashion_image, load_photo, parse_sample
from convlens.data.images import IMAGE_FORMATS
from convlens.errors import ConvlensError, ImageError, OptionError
from convlens.web.encode import png_data_url
from convlens.web.errors import NotFound, TooLarge, WebError

KEEP_SIDE = 1024  # uploads are kept at most this many pixels a side
PLAYGROUND_SIDE = 600  # the filter playground convolves at most this (the photo is 600x512)
UPLOAD_PIXELS = 25_000_000  # refused before decoding: a 5 MB PNG can claim far more
MAX_UPLOADS = 16  # uploads kept at once (each at most 1024x1024x3 bytes)
MAX_DRAWING_SIDE = 256

_UPLOAD = re.compile(r"upload:([0-9a-f]{16})")


class Pictures:
    """Samples and uploads by reference; safe to share between request threads."""

    def __init__(self, fashion_dir: str | None = None) -> None:
        self._fashion_dir = fashion_dir
        self._lock = threading.Lock()
        self._decoding = threading.BoundedSemaphore(2)  # big decodes at once
        self._fashion: Any = None
        self._photo: Image.Image | None = None
        self._uploads: OrderedDict[str, Image.Image] = OrderedDict()

    # --- the built-in pictures ---------------------------------------------------------

    def fashion(self) -> Any:
        """The Fashion-MNIST test set (a :class:`convlens.data.Dataset`), loaded once."""
        with self._lock:
            if self._fashion is None:
                from convlens.data import load_dataset

                self._fashion = load_dataset(
                    "fashion-mnist", data_dir=self._fashion_dir, download=False, progress=False
                )
            return self._fashion

    def samples(self) -> dict[str, Any]:
        """The first test image of each class, then the photo: what the page offers."""
        dataset = self.fashion()
        labels = np.asarray(dataset.test_labels)
        items = []
        for label, name in enumerate(dataset.class_names):
            found = np.flatnonzero(labels == label)
            if len(found):
                index = int(found[0])
                items.append(
                    {
                        "id": f"fashion:{index}",
                        "label": name,
                        "width": 28,
                        "height": 28,
                        "png": png_data_url(dataset.test_images[index, 0]),
                    }
                )
        photo = self._photo_image()
        thumb = photo.convert("L")
        thumb.thumbnail((96, 96))
        items.append(
            {
                "id": "photo",
                "label": "Photo (Grace Hopper)",
                "width": photo.width,
                "height": photo.height,
                "png": png_data_url(np.asarray(thumb)),
            }
        )
        return {"samples": items, "notice": dataset.notice or None}

    def _photo_image(self) -> Image.Image:
        with self._lock:
            if self._photo is None:
                try:
                    self._photo = load_photo()
                except SampleMissing as err:
                    raise NotFound(str(err)) from None
            return self._photo

    # --- references ------------------------------------------------------------------

    def picture(self, ref: str) -> tuple[Image.Image, str]:
        """A reference -> (8-bit "L" or "RGB" picture, a label for people)."""
        ref = ref.strip()
        upload = _UPLOAD.fullmatch(ref)
        if upload:
            key = upload.group(1)
            with self._lock:
                image = self._uploads.get(key)
                if image is not None:
                    self._uploads.move_to_end(key)
            if image is None:
                raise NotFound(
                    f"upload {key} is no longer kept (the server keeps the last "
                    f"{MAX_UPLOADS}); upload the picture again"
                )
            return image, "your upload"
        try:
            sample = parse_sample(ref)  # the rule `convlens filter --sample` follows
        except OptionError:
            raise WebError(
                f"unknown picture '{ref}'; use fashion:N, photo or an upload:ID "
                "from POST /api/images"
            ) from None
        if sample.kind == "photo":
            return self._photo_image(), "photo (Grace Hopper)"
        try:
            pixels, label = fashion_image(self.fashion(), sample.index)
        except SampleMissing as err:
            raise NotFound(str(err)) from None
        return Image.fromarray(pixels, "L"), label

    def gray(self, ref: str) -> tuple[np.ndarray, str]:
        """A reference -> ((H, W) uint8 gray pixels for the playground, a label).

        Uploads larger than ``PLAYGROUND_SIDE`` are shrunk so a kernel change answers at
        once; the photo and Fashion-MNIST images are used as they are.
        """
        image, label = self.picture(ref)
        gray = image.convert("L")
        if max(gray.size) > PLAYGROUND_SIDE:
            gray.thumbnail((PLAYGROUND_SIDE, PLAYGROUND_SIDE), Image.Resampling.LANCZOS)
        return np.asarray(gray), label

    # --- uploads -----------------------------------------------------------------------

    def add_upload(self, data: bytes) -> dict[str, Any]:
        """Decode an uploaded file with the library's limits; -> its reference and preview."""
        if not data:
            raise ImageError("the uploaded file is empty (0 bytes); choose a picture file")
        key = hashlib.sha256(data).hexdigest()[:16]
        with self._lock:
            image = self._uploads.get(key)
        if image is None:
            image = self._decode(data)
            with self._lock:
                self._uploads[key] = image
                self._uploads.move_to_end(key)
                while len(self._uploads) > MAX_UPLOADS:
                    self._uploads.popitem(last=False)
        preview = image.convert("L")
        preview.thumbnail((96, 96))
        return {
            "id": f"upload:{key}",
            "label": "your upload",
            "width": image.width,
            "height": image.height,
            "png": png_data_url(np.asarray(preview)),
        }

    def _decode(self, data: bytes) -> Image.Image:
        from convlens.data.images import load_image, to_8bit

        with self._decoding, tempfile.TemporaryDirectory(prefix="convlens-upload-") as folder:
            _check_pixels(data)  # inside the limit: even reading headers waits its turn
            path = Path(folder) / "upload"
            path.write_bytes(data)
            try:
                image = to_8bit(load_image(path))  # the one decoder, with its bomb limits
            except ConvlensError as err:
                raise ImageError(str(err).replace(str(path), "the uploaded file")) from None
        image.thumbnail((KEEP_SIDE, KEEP_SIDE), Image.Resampling.LANCZOS)
        return image


def _check_pixels(data: bytes) -> None:
    """Refuse a picture that claims too many pixels before anything is decoded."""
    try:
        Image.init()
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as header:  # the header only
            width, height = header.size
    except Exception:
        return
    if width * height > UPLOAD_PIXELS:
        raise TooLarge(
            f"the uploaded picture is {width}x{height} pixels, over the {UPLOAD_PIXELS:,}-pixel "
            "limit; shrink it first"
        )


def drawing(pixels: Any) -> np.ndarray:
    """A drawing sent as rows of gray levels -> (H, W) uint8, or a one-line error."""
    if not isinstance(pixels, list) or not pixels or not all(isinstance(r, list) for r in pixels):
        raise WebError("'pixels' must be rows of gray levels, e.g. 28 lists of 28 numbers")
    height, width = len(pixels), len(pixels[0])
    if not 1 <= height <= MAX_DRAWING_SIDE or not 1 <= width <= MAX_DRAWING_SIDE:
        raise WebError(f"'pixels' is {height}x{width}; a drawing may be 1 to 256 pixels a side")
    if any(len(row) != width for row in pixels):
        raise WebError(f"'pixels' rows differ in length; every row needs {width} numbers")
    # JSON numbers are ints and floats: their types as one set (C-level loops) are a
    # fraction of the time of an isinstance test per value (BENCHMARKS.md, session 8).
    if not set(map(type, itertools.chain.from_iterable(pixels))) <= _NUMBERS and not all(
        isinstance(v, int | float) and not isinstance(v, bool) for row in pixels for v in row
    ):
        raise WebError("'pixels' must hold numbers from 0 to 255")
    values = itertools.chain.from_iterable(pixels)
    array = np.fromiter(values, np.float64, height * width).reshape(height, width)
    if not (array.min() >= 0 and array.max() <= 255):  # NaN fails both: min/max keep it
        raise WebError("'pixels' must hold numbers from 0 to 255")
    return np.rint(array).astype(np.uint8)


_NUMBERS = {int, float}
