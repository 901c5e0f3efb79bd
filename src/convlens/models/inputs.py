"""What a network takes in: images as tensors, scaled the lesson's way.

The data layer keeps images as uint8 ``(N, C, H, W)`` arrays; the network takes float32
in 0..1 of the same shape. Training keeps the uint8 tensor on the device and scales each
batch as it goes; everything else (introspection, prediction) scales once here.
"""

from __future__ import annotations

import numpy as np
import torch


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """A NumPy array as a CPU tensor, sharing memory where it can."""
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:  # torch.from_numpy warns on read-only memory
        array = array.copy()
    return torch.from_numpy(array)


def to_float_images(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 in 0..1, as the network expects (the lesson's /255)."""
    return to_tensor(images).float().div_(255.0)
