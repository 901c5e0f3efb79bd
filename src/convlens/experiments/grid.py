"""The sweep grid: ``--vary`` axes as *edits to a spec and a recipe*, never new model code.

The lesson's exercises ask "what if the convolutions had 16, 32 or 64 filters?", "what if
there were one, two or three of them?", "what if we trained for 20 epochs?". Each axis
below answers one of them by editing the base :class:`ModelSpec` or :class:`TrainConfig`::

    filters=16,32,64   every conv layer's filters (and residual blocks')
    convs=1,2,3        conv(+pool) blocks: drop trailing ones, or repeat the last one
    dense=64,128       units of every hidden dense layer (not the output layer)
    epochs=5,20        training epochs
    lr=0.001,0.003     learning rate
    batch_size=32,128  images per step

``expand`` takes the product of the axes (first axis slowest) and gives every point a
readable name (``filters=32,convs=2``) and a stable hash of what it trains, so a sweep
started again with the same settings finds its finished trials by folder name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from convlens.data.config import DataConfig
from convlens.errors import ConvlensError, OptionError
from convlens.models.layers import (
    Conv,
    Dense,
    Flatten,
    GlobalAvgPool,
    LayerSpec,
    MaxPool,
    Residual,
    Shape,
)
from convlens.models.spec import ModelSpec
from convlens.recipe import TrainConfig

MODEL_AXES: tuple[str, ...] = ("filters", "convs", "dense")
TRAIN_AXES: tuple[str, ...] = ("epochs", "lr", "batch_size")
AXES: tuple[str, ...] = MODEL_AXES + TRAIN_AXES
_FLOAT_AXES = ("lr",)

# TrainConfig fields that say how a trial runs, not what it trains: left out of the hash.
_EXECUTION_ONLY = ("threads",)


@dataclass(frozen=True)
class GridPoint:
    """One configuration of a sweep: the edited spec and recipe, or why it cannot train."""

    values: tuple[tuple[str, Any], ...]  # (("filters", 32), ("convs", 2)), in --vary order
    spec: ModelSpec
    config: TrainConfig  # carries the base seed; repeat k trains with seed + k
    error: str | None = None  # why the edited spec cannot train on the data (one line)

    @property
    def name(self) -> str:
        """``filters=32,convs=2``; ``base`` when nothing varies."""
        return ",".join(f"{axis}={_text(value)}" for axis, value in self.values) or "base"

    @property
    def slug(self) -> str:
        """The name in folder-safe characters: ``filters-32_convs-2``."""
        return "_".join(f"{axis}-{_text(value)}" for axis, value in self.values) or "base"

    def key(self, data: DataConfig) -> str:
        """8 hex digits of SHA-256 over the spec, the recipe and the data: equal settings,
        equal key, so a restarted sweep recognises its own trial folders."""
        recipe = {k: v for k, v in self.config.to_dict().items() if k not in _EXECUTION_ONLY}
        blob = json.dumps(
            {"spec": self.spec.to_dict(), "train": recipe, "data": data.to_dict()},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:8]

    def folder(self, data: DataConfig, repeat: int) -> str:
        """The trial's run folder name: ``filters-32_convs-2-1a2b3c4d-r0``."""
        return f"{self.slug}-{self.key(data)}-r{repeat}"


def parse_vary(items: Iterable[str]) -> dict[str, list[Any]]:
    """``["filters=16,32", "epochs=5"]`` -> ``{"filters": [16, 32], "epochs": [5]}``."""
    vary: dict[str, list[Any]] = {}
    for item in items:
        axis, sep, raw = item.partition("=")
        axis = axis.strip().replace("-", "_")
        if not sep or not raw.strip():
            raise OptionError(f"--vary '{item}' needs AXIS=V1,V2,...; e.g. --vary filters=16,32,64")
        if axis in vary:
            raise OptionError(f"--vary {axis} is given twice; list all its values once")
        vary[axis] = [v.strip() for v in raw.split(",")]
    return check_vary(vary)


def check_vary(vary: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """Validate axis names and turn values into numbers (``"16"`` -> 16, ``"1e-3"`` -> 0.001)."""
    checked: dict[str, list[Any]] = {}
    for axis, values in vary.items():
        if axis not in AXES:
            raise OptionError(f"cannot vary '{axis}'; the sweep axes are: {', '.join(AXES)}")
        if isinstance(values, str):
            values = values.split(",")  # "16,32" as on the command line
        elif isinstance(values, int | float):
            values = [values]
        if not values:
            raise OptionError(f"--vary {axis} has no values; e.g. --vary {axis}=1,2")
        numbers = [_number(axis, value) for value in values]
        if len(set(numbers)) != len(numbers):
            raise OptionError(f"--vary {axis} lists a value twice: {_join(numbers)}")
        checked[axis] = numbers
    return checked


def expand(
    spec: ModelSpec,
    config: TrainConfig,
    vary: Mapping[str, Sequence[Any]],
    input_shape: Shape,
    num_classes: int | None = None,
) -> list[GridPoint]:
    """Every combination of the axes, first axis slowest; invalid points carry ``error``.

    ``input_shape`` (C, H, W) is the data's: "does the edited spec fit?" depends on it.
    An axis that cannot apply to the model at all (``convs`` on a model without convs)
    raises :class:`OptionError` before anything trains.
    """
    vary = check_vary(vary)
    _check_model_axes(spec, vary)
    points = []
    for combo in itertools.product(*vary.values()):
        values = tuple(zip(vary, combo, strict=True))
        settings = dict(values)
        try:
            config_point = _edit_config(config, settings)
        except OptionError as err:
            raise OptionError(f"--vary {_point_name(values)}: {err}") from None
        try:
            spec_point = edit_spec(spec, settings, input_shape)
            _check_fits(spec_point, input_shape, num_classes)
            error = None
        except ConvlensError as err:
            spec_point, error = spec, str(err)
        points.append(GridPoint(values, spec_point, config_point, error))
    return points


def edit_spec(spec: ModelSpec, settings: Mapping[str, Any], input_shape: Shape) -> ModelSpec:
    """Apply the model axes in a fixed order: block count, then filters, then dense units."""
    layers = list(spec.layers)
    if "convs" in settings:
        layers = _with_conv_blocks(layers, settings["convs"], input_shape)
    if "filters" in settings:
        layers = [
            dataclasses.replace(layer, filters=settings["filters"])
            if isinstance(layer, Conv | Residual)
            else layer
            for layer in layers
        ]
    if "dense" in settings:
        last = max(i for i, layer in enumerate(layers) if isinstance(layer, Dense))
        layers = [
            dataclasses.replace(layer, units=settings["dense"])
            if isinstance(layer, Dense) and i != last
            else layer
            for i, layer in enumerate(layers)
        ]
    if layers == list(spec.layers):
        return spec
    name = ",".join(f"{k}={_text(settings[k])}" for k in MODEL_AXES if k in settings)
    return spec.with_layers(layers, name=f"{spec.name}[{name}]")


def split_blocks(
    layers: Sequence[LayerSpec],
) -> tuple[list[LayerSpec], list[list[LayerSpec]], list[LayerSpec]]:
    """(stem, blocks, head). A block is a conv and the image layers after it (batchnorm,
    pooling, dropout) up to the next conv; the head starts at flatten, gap or dense."""
    head_at = next(
        (i for i, layer in enumerate(layers) if isinstance(layer, Flatten | GlobalAvgPool | Dense)),
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


def _with_conv_blocks(layers: list[LayerSpec], count: int, input_shape: Shape) -> list[LayerSpec]:
    """Keep the first ``count`` conv blocks, or repeat the last block up to ``count``.

    A repeated block keeps its pooling only while the map is at least the window's size
    (2x2 for maxpool(2)), so the shapes stay valid as long as the convs themselves fit.
    """
    stem, blocks, head = _checked_split(layers)
    if count <= len(blocks):
        return [*stem, *itertools.chain.from_iterable(blocks[:count]), *head]
    body = [*stem, *itertools.chain.from_iterable(blocks)]
    shape = _shape_after(body, input_shape)
    template = blocks[-1]
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


def _checked_split(layers: Sequence[LayerSpec]):
    stem, blocks, head = split_blocks(layers)
    if not blocks:
        raise OptionError("the model has no conv layer; vary convs on a CNN such as 'cnn'")
    return stem, blocks, head


def _check_model_axes(spec: ModelSpec, vary: Mapping[str, Sequence[Any]]) -> None:
    """Axes that make no sense for this model at all fail before anything trains."""
    has_conv = any(isinstance(layer, Conv | Residual) for layer in spec.layers)
    if ("filters" in vary or "convs" in vary) and not has_conv:
        axis = "filters" if "filters" in vary else "convs"
        raise OptionError(
            f"cannot vary {axis}: model '{spec.name}' has no conv layer; sweep a CNN such as "
            "'cnn', or vary dense, epochs, lr or batch_size"
        )
    if "dense" in vary and sum(isinstance(layer, Dense) for layer in spec.layers) < 2:
        raise OptionError(
            f"cannot vary dense: model '{spec.name}' has no hidden dense layer (only the "
            "output layer, whose units are the classes)"
        )


def _check_fits(spec: ModelSpec, input_shape: Shape, num_classes: int | None) -> None:
    """Shapes and the class count, as the builder will check them, without building."""
    shapes = spec.shapes(input_shape)
    if num_classes is not None and shapes[-1] != (num_classes,):
        raise OptionError(
            f"the model ends with {shapes[-1]} outputs but the data has {num_classes} classes"
        )


def _shape_after(layers: Sequence[LayerSpec], input_shape: Shape) -> Shape:
    shape = tuple(input_shape)
    for layer in layers:
        shape = layer.output_shape(shape)
    return shape


def _edit_config(config: TrainConfig, settings: Mapping[str, Any]) -> TrainConfig:
    changes = {axis: settings[axis] for axis in TRAIN_AXES if axis in settings}
    return config.replace(**changes) if changes else config  # replace() re-validates


def _number(axis: str, value: Any) -> int | float:
    if isinstance(value, bool):
        raise OptionError(f"--vary {axis}: {value!r} is not a number")
    try:
        number = float(value) if axis in _FLOAT_AXES else _whole(value)
    except (TypeError, ValueError):
        kind = "number" if axis in _FLOAT_AXES else "whole number"
        raise OptionError(f"--vary {axis}: '{value}' is not a {kind}, e.g. {axis}=1,2") from None
    if not number > 0 or number != number or number == float("inf"):
        raise OptionError(f"--vary {axis}: {value!r} must be above 0")
    return number


def _whole(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(value)
        return int(value)
    return int(str(value).strip())


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _join(values: Iterable[Any]) -> str:
    return ",".join(_text(v) for v in values)


def _point_name(values: Sequence[tuple[str, Any]]) -> str:
    return ",".join(f"{axis}={_text(value)}" for axis, value in values) or "base"
