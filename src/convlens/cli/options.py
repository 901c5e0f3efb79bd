"""Options shared by several commands, and their translation into the library's configs.

Defaults are not repeated here: an option left out stays ``None`` and the config
dataclass supplies its own default, so there is one place for every default.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from convlens.data.config import DataConfig
from convlens.option_fields import flag_of, help_of, sets_false
from convlens.recipe import TrainConfig


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """``--data``, ``--data-dir``, ... from :class:`DataConfig`'s fields (see
    :mod:`convlens.option_fields`)."""
    group = parser.add_argument_group("data")
    for field in dataclasses.fields(DataConfig):
        _add_field_option(group, field)


def add_train_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training (defaults: the lesson's recipe)")
    group.add_argument(
        "--preset",
        metavar="NAME",
        help="start from preset NAME's training recipe (quick: 2 epochs of 45,000 "
        "images at batch 128, one-cycle; fast: AdamW, one-cycle, shifts and flips, label "
        "smoothing, flip averaging); the options given here still override it",
    )
    for field in dataclasses.fields(TrainConfig):
        _add_field_option(group, field)


def _add_field_option(group: argparse._ArgumentGroup, field: dataclasses.Field) -> None:
    """``--batch-size`` for TrainConfig.batch_size, from the field's type and metadata.

    Left out, an option stays None so that the config's own default applies (the help
    quotes that default from the field; nothing here restates it).
    """
    meta = field.metadata
    kind = str(field.type)
    extra: dict[str, Any] = {"dest": field.name, "default": None}
    if sets_false(field):  # --no-download: the field defaults to True
        extra["action"] = "store_false"
    elif "bool" in kind:
        extra["action"] = argparse.BooleanOptionalAction
    else:
        extra["type"] = meta.get("parse") or (
            int if "int" in kind else float if "float" in kind else str
        )
        if meta.get("choices"):
            extra["choices"] = meta["choices"]
        if meta.get("metavar"):
            extra["metavar"] = meta["metavar"]
    group.add_argument(flag_of(field), help=help_of(field), **extra)


def add_edit_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--edit",
        metavar="NAME=N",
        action="append",
        help="change the model: filters=N (every conv), convs=N (conv blocks: drop or "
        "repeat the last), dense=N (every hidden dense layer); repeat or comma-separate, "
        "e.g. --edit filters=32,convs=3",
    )


def add_runs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs", metavar="DIR", help="folder of run folders (default $CONVLENS_RUNS or ./runs)"
    )


def data_config(args: argparse.Namespace) -> DataConfig:
    """The DataConfig the data options ask for (left-out options keep its defaults)."""
    values = {}
    for field in dataclasses.fields(DataConfig):
        value = getattr(args, field.name, None)
        if value is not None and value != "":
            values[field.name] = value
    return DataConfig(**values)


#: Every option generated from a config field, by field name.
_FIELDS = {f.name: f for f in (*dataclasses.fields(TrainConfig), *dataclasses.fields(DataConfig))}

# What --resume may change: how long to train, where the same data now lives, and where
# the training runs (threads, device: the recipe is the same arithmetic).
RESUME_MAY_CHANGE = ("epochs", "data_dir", "threads", "device")


def options_given(args: argparse.Namespace, fields: tuple[str, ...]) -> list[str]:
    """The options among ``fields`` given on the command line, as typed: --lr, --no-augment."""
    given = []
    for name in fields:
        value = getattr(args, name, None)
        if value is None:  # left out
            continue
        field = _FIELDS.get(name)
        flag = flag_of(field) if field else "--" + name.replace("_", "-")
        negated = value is False and not (field and sets_false(field))
        given.append("--no-" + flag[2:] if negated else flag)
    return given


def recipe_options_given(args: argparse.Namespace) -> list[str]:
    """Training and data options given that --resume cannot honour: a resumed run keeps the
    recipe and data it started with, which is what makes it repeat the uninterrupted run."""
    every = (*_FIELDS, "edit")
    fields = tuple(f for f in every if f not in RESUME_MAY_CHANGE)
    return options_given(args, fields)


def model_or_preset(args: argparse.Namespace) -> str | None:
    """MODEL, else the --preset's own model: ``convlens train --preset fast`` trains fast."""
    return args.model or args.preset


def recipe_preset(args: argparse.Namespace, model: str | None = None) -> str | None:
    """The preset whose recipe training starts from, or None for the lesson's defaults.

    --preset NAME if given, else MODEL when it names a preset (so ``convlens train fast``
    trains fast as it was meant to), else none (:func:`registry.recipe_preset`).
    """
    from convlens.models import registry

    return registry.recipe_preset(model, args.preset or None)


def train_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields given as options (left-out options are not overrides)."""
    names = (field.name for field in dataclasses.fields(TrainConfig))  # each is an option
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def train_config(args: argparse.Namespace, model: str | None = None):
    """A TrainConfig: the recipe :func:`recipe_preset` names, overridden by the options."""
    from convlens.recipe import recipe_config

    return recipe_config(recipe_preset(args, model), train_overrides(args))


def training_plan(args: argparse.Namespace, model: str):
    """(spec, recipe, recipe preset) for MODEL with --preset, the options and --edit, by
    the library's one rule (:func:`convlens.recipe.plan_training`)."""
    from convlens.models.edits import parse_edits
    from convlens.recipe import plan_training

    data = data_config(args)
    return plan_training(
        model,
        preset=args.preset or None,
        overrides=train_overrides(args),
        edits=parse_edits(getattr(args, "edit", None) or []),
        input_shape=data.known_input_shape(),
    )
