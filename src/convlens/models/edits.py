"""Edits to a model spec in the lesson's words, never new model code.

The lesson's exercises ask "what if the convolutions had 16, 32 or 64 filters?", "what if
there were one, two or three of them?", "what if the dense layer had 64 units?". Each
edit answers one of them::

    filters=32   every conv layer's filters (and residual blocks')
    convs=3      conv(+pool) blocks: drop trailing ones, or repeat the last one
    dense=64     units of every hidden dense layer (not the output layer)

``convlens train cnn --edit filters=32`` applies one edit set; a sweep
(:mod:`convlens.experiments.grid`) enumerates them. Both go through ``ModelSpec.edit``,
which hands its layers and name to :func:`edit_layers`: edits work on the spec as data
(layers in, layers out), so this module needs nothing of ``ModelSpec``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from convlens.errors import ConvlensError, OptionError
from convlens.models.layers import (
    Conv,
    Dense,
    Flatten,
    GlobalAvgPool,
    GlobalMaxPool,
    LayerSpec,
    MaxPool,
    Residual,
    Shape,
    output_shapes,
)

#: The edits, in the order they apply (block count first, then widths).
EDITS: tuple[str, ...] = ("filters", "convs", "dense")
_ORDER = ("convs", "filters", "dense")


def edit_layers(
    layers: Sequence[LayerSpec],
    name: str,
    *,
    filters: int | None = None,
    convs: int | None = None,
    dense: int | None = None,
    input_shape: Shape | None = None,
) -> tuple[tuple[LayerSpec, ...], str]:
    """(layers, name) of model ``name`` with the edits given (None leaves that part
    alone): the name becomes ``NAME[filters=32,convs=2]``; both come back unchanged
    when nothing changes.

    ``input_shape`` (C, H, W) lets a repeated conv block drop its pooling once the map is
    too small to pool again; without one, repeated blocks keep their pooling and the
    builder says if they do not fit.
    """
    settings = {k: v for k, v in (("filters", filters), ("convs", convs), ("dense", dense))}
    settings = {k: v for k, v in settings.items() if v is not None}
    check_editable(layers, name, settings)
    edited = list(layers)
    if convs is not None:
        edited = _with_conv_blocks(layers, name, convs, input_shape)
    if filters is not None:
        edited = [
            dataclasses.replace(layer, filters=filters)
            if isinstance(layer, Conv | Residual)
            else layer
            for layer in edited
        ]
    if dense is not None:
        last = max(i for i, layer in enumerate(edited) if isinstance(layer, Dense))
        edited = [
            dataclasses.replace(layer, units=dense)
            if isinstance(layer, Dense) and i != last
            else layer
            for i, layer in enumerate(edited)
        ]
    if edited == list(layers):
        return tuple(layers), name
    said = ",".join(f"{k}={settings[k]}" for k in EDITS if k in settings)
    return tuple(edited), f"{name}[{said}]"


def parse_edits(items: Iterable[str]) -> dict[str, int]:
    """``["filters=32", "convs=2"]`` (or ``"filters=32,convs=2"``) -> ``{"filters": 32, ...}``."""
    edits: dict[str, int] = {}
    for item in items:
        for part in str(item).split(","):
            key, sep, raw = part.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or not raw.strip():
                raise OptionError(f"--edit '{part}' needs NAME=N; e.g. --edit filters=32")
            if key not in EDITS:
                raise OptionError(f"cannot edit '{key}'; the edits are: {', '.join(EDITS)}")
            if key in edits:
                raise OptionError(f"--edit {key} is given twice; give it once")
            try:
                value = int(raw.strip())
            except ValueError:
                raise OptionError(f"--edit {key}: '{raw.strip()}' is not a whole number") from None
            if value < 1:
                raise OptionError(f"--edit {key}: {value} must be above 0")
            edits[key] = value
    return edits


def check_editable(
    layers: Sequence[LayerSpec], name: str, edits: Iterable[str], verb: str = "edit"
) -> None:
    """Edits that make no sense for model ``name`` at all (``verb``: "edit" or "vary")."""
    edits = set(edits)
    has_conv = any(isinstance(layer, Conv | Residual) for layer in layers)
    if ("filters" in edits or "convs" in edits) and not has_conv:
        axis = "filters" if "filters" in edits else "convs"
        raise OptionError(
            f"cannot {verb} {axis}: model '{name}' has no conv layer; use a CNN such as "
            "'cnn', or change dense, epochs, lr or batch_size"
            if verb == "edit"
            else f"cannot {verb} {axis}: model '{name}' has no conv layer; sweep a CNN "
            "such as 'cnn', or vary dense, epochs, lr or batch_size"
        )
    if "dense" in edits and sum(isinstance(layer, Dense) for layer in layers) < 2:
        raise OptionError(
            f"cannot {verb} dense: model '{name}' has no hidden dense layer (only the "
            "output layer, whose units are the classes)"
        )


# The layers a head starts with: the first that makes the maps a vector, or a dense layer.
_HEAD_STARTS = (Flatten, GlobalAvgPool, GlobalMaxPool, Dense)


def split_blocks(
    layers: Sequence[LayerSpec],
) -> tuple[list[LayerSpec], list[list[LayerSpec]], list[LayerSpec]]:
    """(stem, blocks, head). A block is a conv and the image layers after it (batchnorm,
    pooling, dropout) up to the next conv; the head starts at flatten, gap, gmp or dense."""
    head_at = next(
        (i for i, layer in enumerate(layers) if isinstance(layer, _HEAD_STARTS)),
        len(layers),
    )
    stem: list[LayerSpec] = []
    blocks: list[list[LayerSpec]] = []
    for layer in layers[:head_at]:
        if isinstance(layer, Conv | Residual):
            blocks.append([layer])
        elif blocks:
            blocks[-1].append(layer)
        else:
            stem.append(layer)
    return stem, blocks, list(layers[head_at:])


def _with_conv_blocks(
    layers: Sequence[LayerSpec], name: str, count: int, input_shape: Shape | None
) -> list[LayerSpec]:
    """Keep the first ``count`` conv blocks, or repeat the last block up to ``count``.

    A repeated block keeps its pooling only while the map is at least the window's size
    (2x2 for maxpool(2)), so the shapes stay valid as long as the convs themselves fit.
    """
    stem, blocks, head = split_blocks(layers)
    if not blocks:
        raise OptionError("the model has no conv layer; change convs on a CNN such as 'cnn'")
    if count <= len(blocks):
        return [*stem, *itertools.chain.from_iterable(blocks[:count]), *head]
    body = [*stem, *itertools.chain.from_iterable(blocks)]
    template = blocks[-1]
    if input_shape is None:
        return [*body, *(template * (count - len(blocks))), *head]
    shape = output_shapes(body, input_shape, name)[-1]
    for number in range(len(blocks) + 1, count + 1):
        for layer in template:
            if isinstance(layer, MaxPool) and min(shape[1:]) < layer.size:
                continue  # the map is too small to pool again
            try:
                shape = layer.output_shape(shape)
            except ConvlensError:
                raise OptionError(
                    f"conv block {number} does not fit the {shape[1]}x{shape[2]} map left by "
                    f"block {number - 1}; use fewer convs or padding 'same'"
                ) from None
            body.append(layer)
    return [*body, *head]


def edits_of(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The model edits among a sweep point's or a form's settings."""
    return {k: settings[k] for k in EDITS if k in settings}
