"""Arrays to PNG data URLs, in the product's colours: gray pictures, inferno feature maps.

The server draws every picture the page shows, so the page needs no plotting code and the
colours are the library's (``convlens.plots.style``): gray for images, inferno for
feature maps, and one highlight colour for "where the network looked". Pictures are sent
at their true size; the page scales them up with ``image-rendering: pixelated`` so a
28x28 image stays 28x28 honest squares.
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache

import numpy as np
from PIL import Image

from convlens.plots.style import FEATURE_CMAP

#: "Where the network looked" (saliency), and the predicted class on the page: orange.
ATTENTION_RGB = (255, 127, 14)


def png_data_url(pixels: np.ndarray) -> str:
    """(H, W) or (H, W, 3) uint8 -> ``data:image/png;base64,...``."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(
        buffer, format="PNG", compress_level=1
    )
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_png(image: np.ndarray) -> str:
    """A network input (C, H, W) uint8 (C = 1 or 3) as a PNG data URL."""
    pixels = image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1)  # (H, W[, 3])
    return png_data_url(pixels)


@lru_cache(maxsize=1)
def _inferno() -> np.ndarray:
    from matplotlib import colormaps

    lut = colormaps[FEATURE_CMAP](np.linspace(0.0, 1.0, 256))[:, :3]  # (256, 3) in 0..1
    return np.rint(lut * 255).astype(np.uint8)


def scale_to_unit(
    values: np.ndarray, scale: tuple[float, float] | None = None
) -> tuple[np.ndarray, float, float]:
    """Values stretched to 0..1 between their own min and max (as matplotlib's imshow
    does by default), or between ``scale``'s (low, high); a flat map becomes all zeros.
    Returns (scaled, min, max)."""
    low, high = scale or (float(values.min()), float(values.max()))
    if not high > low:
        return np.zeros_like(values, dtype=np.float64), low, high
    return (values.astype(np.float64) - low) / (high - low), low, high


def inferno_png(
    values: np.ndarray, scale: tuple[float, float] | None = None
) -> tuple[str, float, float]:
    """One feature map (H, W) float -> (inferno PNG, the min and max its colours span:
    its own, or ``scale``'s)."""
    unit, low, high = scale_to_unit(values, scale)
    return png_data_url(_inferno()[np.rint(unit * 255).astype(np.uint8)]), low, high


def overlay_png(image: np.ndarray, heat: np.ndarray) -> str:
    """The network's input in gray with ``heat`` (H, W) in 0..1 laid over it in orange.

    Opacity follows the heat (at most 80%), so the picture stays visible under the
    brightest evidence and untouched where the network did not look.
    """
    gray = image.mean(axis=0)[..., None]  # (C, H, W) -> (H, W, 1)
    alpha = 0.8 * np.clip(heat, 0.0, 1.0)[..., None]  # (H, W, 1)
    rgb = gray * (1 - alpha) + np.asarray(ATTENTION_RGB, dtype=np.float64) * alpha
    return png_data_url(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))
