"""Options shared by several commands, and their translation into the library's configs.

Defaults are not repeated here: an option left out stays ``None`` and the config
dataclass supplies its own default, so there is one place for every default.
"""

from __future__ import annotations

import argparse
from typing import Any


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
    group.add_argument("--epochs", type=int, help="epochs to train (default 5)")
    group.add_argument("--batch-size", type=int, help="images per step (default 32)")
    group.add_argument("--lr", type=float, help="learning rate (default 0.001)")
    group.add_argument("--optimizer", choices=("adam", "adamw", "sgd"), help="default adam")
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
    group.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    group.add_argument("--threads", type=int, help="CPU threads for torch")
    group.add_argument(
        "--train-subset",
        type=int,
        metavar="N",
        help="train on N images only (seeded, per class); for quick looks",
    )
    group.add_argument("--test-subset", type=int, metavar="N", help="evaluate on N images only")


def add_runs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs", metavar="DIR", help="folder of run folders (default $CONVLENS_RUNS or ./runs)"
    )


def data_config(args: argparse.Namespace):
    from convlens.train.config import DataConfig

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
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "seed",
    "stop_at_accuracy",
    "keep",
    "precision",
    "device",
    "threads",
    "train_subset",
    "test_subset",
)


def train_config(args: argparse.Namespace, base: dict[str, Any] | None = None):
    """A TrainConfig from a preset's recipe (``base``) overridden by the given options."""
    from convlens.train.config import TrainConfig

    values = dict(base or {})
    for field in _TRAIN_FIELDS:
        value = getattr(args, field, None)
        if value is not None:
            values[field] = value
    return TrainConfig(**values)


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
