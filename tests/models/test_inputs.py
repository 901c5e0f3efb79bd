"""The network's input: uint8 pixels scaled the lesson's way, x / 255 in float32."""

from __future__ import annotations

import numpy as np
import torch

from convlens.models.inputs import to_float_images


def test_to_float_images_is_torchs_division_for_every_level() -> None:
    """The NumPy division gives the very floats of torch's ``.float().div_(255)`` (the
    reference: what training computes on its uint8 batches), for all 256 levels, and
    for a read-only, non-contiguous batch."""
    levels = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    expected = torch.from_numpy(levels.copy()).float().div_(255.0)
    got = to_float_images(levels)
    assert got.dtype == torch.float32 and got.shape == (1, 1, 16, 16)
    assert torch.equal(got, expected)
    view = np.repeat(levels, 3, axis=0)[:, :, ::2]  # strided
    view.flags.writeable = False
    assert torch.equal(to_float_images(view), torch.from_numpy(view.copy()).float() / 255.0)
