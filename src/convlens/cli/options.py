"""Options shared by several commands, and their translation into the library's configs.

Defaults are not repeated here: an option left out stays ``None`` and the config
dataclass supplies its own default, so there is one place for every default.
"""

from __future__ import annotations

import argparse
from typing import Any

from convlens.data.config import DataConfig
from convlens.recipe import RECIPE_FIELDS


def add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data",
        metavar="DATASET",
        dest="dataset",
        help="fashion-mnist (default), mnist, idx:DIR or folder:DIR",
    )
    group.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder with the dataset's files (else $CONVLENS_DATA, the cache, "
        "/usr/share/datasets, a download)",
    )
    group.add_argument(
        "--image-size",
        metavar="HxW",
        type=_size,
        help="resize images to this size (folder data default: 28x28)",
    )
    group.add_argument(
        "--channels", type=int, choices=(1, 3), help="1 for grayscale (default), 3 for colour"
    )
    group.add_argument(
        "--no-download",
        action="store_true",
        help="never download; use local files or the embedded sample",
    )


def add_train_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training (defaults: the lesson's recipe)")
    group.add_argument(
        "--preset",
        metavar="NAME",
        help="start from preset NAME's training recipe (quick: 2 epochs at batch 128, "
        "one-cycle; fast: AdamW, one-cycle, shifts and flips, label smoothing, flip "
        "averaging); the options given here still override it",
    )
    group.add_argument("--epochs", type=int, help="epochs to train (default 5)")
    group.add_argument("--batch-size", type=int, help="images per step (default 32)")
    group.add_argument("--lr", type=float, help="learning rate (default 0.001)")
    group.add_argument("--optimizer", choices=("adam", "adamw", "sgd"), help="default adam")
    group.add_argument(
        "--weight-decay",
        type=float,
        metavar="W",
        help="weight decay: decoupled for adamw, L2 for adam and sgd (default 0)",
    )
    group.add_argument(
        "--schedule",
        choices=("constant", "onecycle"),
        help="learning rate schedule: constant (default), or onecycle (warm up over the "
        "first 25%% of steps, then anneal to lr/1000)",
    )
    group.add_argument(
        "--label-smoothing", type=float, metavar="S", help="label smoothing (default 0)"
    )
    group.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        help="random 2-pixel shifts and horizontal flips of training images (default off)",
    )
    group.add_argument(
        "--tta-flip",
        action=argparse.BooleanOptionalAction,
        help="at test time, average predictions over each image and its mirror (default off)",
    )
    group.add_argument("--seed", type=int, help="random seed (default 0)")
    group.add_argument(
        "--stop-at-accuracy",
        type=float,
        metavar="A",
        help="stop after the first epoch whose train accuracy reaches A (0.91 or 91)",
    )
    group.add_argument(
        "--keep",
        choices=("last", "best"),
        help="save the last epoch's weights (default) or the best test epoch's",
    )
    group.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        help="auto (default): bf16 where the hardware is fast at it",
    )
    group.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        help="channels-last (NHWC) memory layout (default: on whenever precision is bf16)",
    )
    group.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    group.add_argument("--threads", type=int, help="CPU threads for torch")
    group.add_argument(
        "--train-subset",
        type=int,
        metavar="N",
        help="train on N images only (seeded, per class); for quick looks",
    )
    group.add_argument("--test-subset", type=int, metavar="N", help="evaluate on N images only")


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


def data_config(args: argparse.Namespace):

    values: dict[str, Any] = {}
    if args.dataset:
        values["dataset"] = args.dataset
    if args.data_dir:
        values["data_dir"] = args.data_dir
    if args.image_size:
        values["image_size"] = args.image_size
    if args.channels:
        values["channels"] = args.channels
    if args.no_download:
        values["download"] = False
    return DataConfig(**values)


_TRAIN_FIELDS = (
    *RECIPE_FIELDS,
    "seed",
    "stop_at_accuracy",
    "keep",
    "precision",
    "channels_last",
    "device",
    "threads",
    "train_subset",
    "test_subset",
)


_DATA_FIELDS = ("dataset", "data_dir", "image_size", "channels", "no_download")
_FLAGS = {"dataset": "--data"}  # where the option is not the field's name in kebab case

# What --resume may change: how long to train, where the same data now lives, and where
# the training runs (threads, device: the recipe is the same arithmetic).
RESUME_MAY_CHANGE = ("epochs", "data_dir", "threads", "device")


def options_given(args: argparse.Namespace, fields: tuple[str, ...]) -> list[str]:
    """The options among ``fields`` given on the command line, as typed: --lr, --no-augment."""
    given = []
    for field in fields:
        value = getattr(args, field, None)
        if value is None or (field == "no_download" and not value):  # left out
            continue
        flag = _FLAGS.get(field, "--" + field.replace("_", "-"))
        given.append("--no-" + flag[2:] if value is False else flag)
    return given


def recipe_options_given(args: argparse.Namespace) -> list[str]:
    """Training and data options given that --resume cannot honour: a resumed run keeps the
    recipe and data it started with, which is what makes it repeat the uninterrupted run."""
    fields = tuple(f for f in (*_TRAIN_FIELDS, *_DATA_FIELDS, "edit") if f not in RESUME_MAY_CHANGE)
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
    return {f: getattr(args, f) for f in _TRAIN_FIELDS if getattr(args, f, None) is not None}


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


def _size(text: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in text.lower().replace(",", "x").split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size; write HxW, e.g. 28x28") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 4 or max(parts) > 1024:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size from 4x4 to 1024x1024")
    return (parts[0], parts[1])
