"""Image files in, training-like uint8 arrays out.

A user's photo rarely looks like Fashion-MNIST: it is big, in colour, maybe transparent
or 16-bit, and usually a dark object on a light background, where Fashion-MNIST is a
light object on black. :func:`prepare_image` closes that gap the way the dataset was
made: flatten the mode, grey (or RGB), invert a light background, shrink keeping the
aspect ratio, and pad to the square with the background.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from convlens.errors import ImageError, OptionError

#: Largest image accepted, in pixels (50 megapixels; a phone photo is about 12).
MAX_PIXELS = 50_000_000

#: File suffixes treated as images in folder datasets (compared in lower case).
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")

#: The formats convlens decodes. Each states its decoded size in its header, before any
#: pixel is decoded; container formats whose directory may lie about what they embed
#: (ICO, ICNS: a "256x256" icon holding a 9000x9000 PNG) are not opened at all.
IMAGE_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")  # JPEG: MPO too

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")
_WITH_ALPHA = ("RGBA", "RGBa", "LA", "La", "PA")


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open and fully decode an image file (first frame; EXIF rotation applied).

    Raises a one-line :class:`ImageError` naming the file for anything that is not a
    readable image: missing, empty, not an image, truncated, or over ``MAX_PIXELS``.
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file; check the path")
    if not path.is_file():
        raise ImageError(f"{path}: not a file; name an image file (PNG, JPEG, ...)")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file (0 bytes); replace it with a real image")
    try:
        with warnings.catch_warnings():
            # Pillow warns (then errors) on huge images; make both an error here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.init()  # registers every plugin once, so each of IMAGE_FORMATS is known
            with Image.open(path, formats=IMAGE_FORMATS) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise ImageError(
                        f"{path}: {width}x{height} pixels is over the {MAX_PIXELS:,}-pixel "
                        "limit (a decompression bomb?); shrink the image first"
                    )
                if width == 0 or height == 0:
                    raise ImageError(f"{path}: image has no pixels ({width}x{height})")
                image.seek(0)
                image.load()
                # exif_transpose returns a detached copy, rotated if the camera said so.
                return ImageOps.exif_transpose(image)
    except ImageError:
        raise
    except UnidentifiedImageError as err:
        raise ImageError(
            f"{path}: not an image Pillow can read; use PNG, JPEG, BMP, GIF or WebP"
        ) from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(
            f"{path}: too many pixels (a decompression bomb?); shrink the image first"
        ) from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        # Truncated or corrupt data surfaces as one of these from the decoders.
        raise ImageError(
            f"{path}: cannot decode ({err}); the file is truncated or corrupt"
        ) from err


def prepare_image(
    image: Image.Image | str | os.PathLike[str],
    size: tuple[int, int] = (28, 28),
    channels: int = 1,
    invert: bool | None = None,
) -> np.ndarray:
    """Turn a photo into one training-like image: ``(channels, H, W)`` uint8.

    ``size`` is ``(H, W)``. Alpha is composited on white, the mode flattened to grey
    (``channels=1``) or RGB (``channels=3``); ``invert=None`` inverts when the border is
    light (the median of the edge pixels above 127), since Fashion-MNIST has a black
    background; then the image shrinks to fit ``size`` keeping its aspect ratio and is
    padded to it, centred, with the (inverted) background value.
    """
    height, width = _check_size(size)
    mode = _mode_for(channels)
    if not isinstance(image, Image.Image):
        image = load_image(image)
    image = to_8bit(image).convert(mode)  # "L" or "RGB"
    pixels = np.asarray(image)  # (h, w) or (h, w, 3)
    if invert is None:
        invert = bool(border_median(np.asarray(image.convert("L"))) > 127)
    if invert:
        image = ImageOps.invert(image)
        pixels = np.asarray(image)
    background = border_median(pixels)  # scalar or (3,)

    scale = min(height / image.height, width / image.width)
    new_w = max(1, min(width, round(image.width * scale)))
    new_h = max(1, min(height, round(image.height * scale)))
    if (new_w, new_h) != image.size:
        image = image.resize((new_w, new_h), Image.Resampling.LANCZOS)
    fill = int(background) if channels == 1 else tuple(int(v) for v in background)
    canvas = Image.new(mode, (width, height), fill)
    canvas.paste(image, ((width - new_w) // 2, (height - new_h) // 2))
    out = np.asarray(canvas, dtype=np.uint8)  # (H, W) or (H, W, 3)
    return out[None] if channels == 1 else np.ascontiguousarray(out.transpose(2, 0, 1))


def to_8bit(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit "L" or "RGB": 16-bit and float scaled, alpha on white.

    Palette images become RGB(A) first, CMYK/YCbCr/LAB/HSV become RGB, "1" becomes "L".
    """
    mode = image.mode
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        values = np.asarray(image).astype(np.float64)
        if mode in _SIXTEEN_BIT or (mode == "I" and values.size and values.max() > 255):
            values = values / 257.0  # 0..65535 -> 0..255
        elif mode == "F" and values.size and values.max() <= 1.0:
            values = values * 255.0  # float images in 0..1
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in _WITH_ALPHA:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat = Image.alpha_composite(white, rgba).convert("RGB")
        return flat.convert("L") if mode in ("LA", "La") else flat
    if mode in ("L", "RGB"):
        return image
    if mode == "1":
        return image.convert("L")
    return image.convert("RGB")


def resize_batch(
    images: np.ndarray, size: tuple[int, int] | None = None, channels: int | None = None
) -> np.ndarray:
    """Resize ``(N, C, H, W)`` uint8 images to ``size=(H', W')`` and/or ``channels``.

    For whole datasets (already square, dark background), so this stretches rather than
    pads. Grey to RGB repeats the channel; RGB to grey uses Pillow's weights
    ``L = (299 R + 587 G + 114 B) / 1000``.
    """
    out = images
    if channels is not None:
        _mode_for(channels)
        if out.shape[1] not in (1, 3):
            raise OptionError(f"cannot convert {out.shape[1]}-channel images to {channels}")
    if channels == 1 and out.shape[1] == 3:
        weights = np.array([299, 587, 114], dtype=np.uint32).reshape(1, 3, 1, 1)
        out = ((out.astype(np.uint32) * weights).sum(axis=1, keepdims=True) + 500) // 1000
        out = out.astype(np.uint8)
    if size is not None:  # after going to grey, before going to RGB: fewer planes to resize
        height, width = _check_size(size)
        if out.shape[2:] != (height, width):
            n, c = out.shape[:2]
            resized = np.empty((n, c, height, width), dtype=np.uint8)
            for i in range(n):
                for j in range(c):
                    plane = Image.fromarray(out[i, j])
                    plane = plane.resize((width, height), Image.Resampling.BILINEAR)
                    resized[i, j] = np.asarray(plane)
            out = resized
    if channels == 3 and out.shape[1] == 1:
        out = np.repeat(out, 3, axis=1)
    return out


def border_median(pixels: np.ndarray) -> np.ndarray:
    """Median of the outermost rows and columns: the background's value (per channel)."""
    edges = np.concatenate(
        [pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]], axis=0
    )  # (2W + 2H - 4,) or (..., 3)
    return np.median(edges, axis=0)


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise OptionError(f"image size must be (height, width), not {size!r}") from None
    if height < 1 or width < 1 or height > 4096 or width > 4096:
        raise OptionError(f"image size {height}x{width} is out of range (1-4096 pixels a side)")
    return height, width


def _mode_for(channels: int) -> str:
    if channels == 1:
        return "L"
    if channels == 3:
        return "RGB"
    raise OptionError(f"channels must be 1 (grey) or 3 (RGB), not {channels!r}")
