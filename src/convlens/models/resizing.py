"""Which smaller images a model can train on (progressive resizing, ``TrainConfig.resize``).

A fully convolutional network up to a global pooling (``gap`` or ``gmp``) gives the same
head whatever the image's size: ``fast`` on 20x20 images pools (128, 2, 2) maps instead of
(128, 3, 3) into the same 128 values, so its early epochs can train on smaller images at
about (20/28)^2 = 0.51x the pixels a step, and its last epochs at the size it is judged
at. A model whose convolutions end in ``flatten`` cannot: the dense layer after it
expects the flattened size of full-size maps. :func:`check_resizable` says which.
"""

from __future__ import annotations

from collections.abc import Iterable

from convlens.errors import SpecError
from convlens.models.layers import Shape
from convlens.models.spec import ModelSpec


def resized_shape(input_shape: Shape, size: int) -> Shape:
    """(C, H, W) with the longer side scaled to ``size`` pixels and the other alike
    (rounded, at least 1): (1, 28, 28) at 20 -> (1, 20, 20)."""
    channels, height, width = input_shape
    longer = max(height, width)
    return (
        channels,
        max(1, round(height * size / longer)),
        max(1, round(width * size / longer)),
    )


def check_resizable(spec: ModelSpec, input_shape: Shape, sizes: Iterable[int]) -> None:
    """Raise one line unless ``spec`` can train on ``input_shape`` (C, H, W) images scaled
    down to each of ``sizes`` and still be the same network at ``input_shape``: every
    layer fits the smaller maps, and from the first layer whose output is a vector
    (gap, gmp or flatten) on, every shape is the one of full-size images."""
    full = spec.shapes(input_shape)
    names = spec.layer_names()
    longer = max(input_shape[1:])
    for size in sorted(set(sizes)):
        if size >= longer:
            raise SpecError(
                f"resize {size}: progressive resizing trains on smaller images than the "
                f"data's {input_shape[1]}x{input_shape[2]}; give sizes under {longer}",
                field="resize",
            )
        shape = resized_shape(input_shape, size)
        where = f"{shape[1]}x{shape[2]}"
        try:
            small = spec.shapes(shape)
        except SpecError as err:
            raise SpecError(
                f"resize {size}: model '{spec.name}' cannot take {where} images ({err}); "
                "choose a larger size",
                field="resize",
            ) from None
        head = next((i for i, out in enumerate(full) if len(out) == 1), len(full) - 1)
        if small[head:] != full[head:]:
            raise SpecError(
                f"resize {size}: model '{spec.name}' cannot train on {where} images: its "
                f"layer '{names[head]}' gives {small[head][0]} values there against "
                f"{full[head][0]} at {input_shape[1]}x{input_shape[2]}, so the layers after "
                "it change with the image size; end the convolutions with gap or gmp instead "
                "of flatten, or drop --resize",
                field="resize",
            )
