"""The sweep grid: ``--vary`` axes as *edits to a spec and a recipe*, never new model code.

The lesson's exercises ask "what if the convolutions had 16, 32 or 64 filters?", "what if
there were one, two or three of them?", "what if we trained for 20 epochs?". Each axis
below answers one of them by editing the base :class:`ModelSpec` (:meth:`ModelSpec.edit`,
the same edits as ``convlens train --edit``) or :class:`TrainConfig`; the grid only
enumerates them::

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

import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from convlens.data.config import DataConfig
from convlens.errors import ConvlensError, OptionError
from convlens.models.edits import EDITS, check_editable, edits_of
from convlens.models.footprint import Footprint, footprint
from convlens.models.layers import Shape
from convlens.models.spec import ModelSpec
from convlens.recipe import TrainConfig

MODEL_AXES: tuple[str, ...] = EDITS  # edits to the spec (convlens.models.edits)
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
    # The edited spec on the data's input, worked out once here (shapes, parameters,
    # FLOPs) and handed on to the sweep's costs and the trial's training; None if invalid.
    footprint: Footprint | None = None

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
            spec_point = spec.edit(**edits_of(settings), input_shape=input_shape)
            shapes = spec_point.check_fits(input_shape, num_classes)
            found, error = footprint(spec_point, input_shape, shapes), None
        except ConvlensError as err:
            spec_point, error, found = spec, str(err), None
        points.append(GridPoint(values, spec_point, config_point, error, found))
    return points


def _check_model_axes(spec: ModelSpec, vary: Mapping[str, Sequence[Any]]) -> None:
    """Axes that make no sense for this model at all fail before anything trains."""
    check_editable(spec.layers, spec.name, (axis for axis in vary if axis in MODEL_AXES), "vary")


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
