"""What a run trains on, as one typed config saved in its ``config.json`` ("data")."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from convlens.data.dataset import Dataset
from convlens.data.sources import load_dataset
from convlens.option_fields import option


def parse_image_size(text: str) -> tuple[int, int]:
    """``"28x28"`` (or ``"28"``, ``"28,28"``) -> (H, W), from 4 to 1024 a side; else one
    line, as the option ``--image-size`` reports it."""
    import argparse

    try:
        parts = [int(p) for p in text.lower().replace(",", "x").split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size; write HxW, e.g. 28x28") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 4 or max(parts) > 1024:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size from 4x4 to 1024x1024")
    return (parts[0], parts[1])


@dataclass
class DataConfig:
    """What to train on; saved in the run so evaluate/resume read the same data.

    Each field carries its command-line option (``convlens train --data ...``): the CLI
    builds the data options from these fields.
    """

    dataset: str = option(  # fashion-mnist, mnist, idx:DIR, folder:DIR
        "fashion-mnist",
        "fashion-mnist (default), mnist, idx:DIR or folder:DIR",
        flag="--data",
        metavar="DATASET",
    )
    data_dir: str | None = option(  # a folder holding the files (else env, cache, system)
        None,
        "folder with the dataset's files (else $CONVLENS_DATA, the cache, "
        "/usr/share/datasets, a download)",
        metavar="DIR",
    )
    image_size: tuple[int, int] | None = option(  # (H, W) for folder data; None keeps it
        None,
        "resize images to this size (folder data default: 28x28)",
        metavar="HxW",
        parse=parse_image_size,
    )
    channels: int | None = option(  # 1 (grayscale) or 3 (colour); None keeps it
        None, "1 for grayscale (default), 3 for colour", choices=(1, 3)
    )
    download: bool = option(
        True, "never download; use local files or the embedded sample", flag="--no-download"
    )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("image_size") is not None:
            values["image_size"] = tuple(values["image_size"])
        return cls(**values)

    def known_input_shape(self) -> tuple[int, int, int] | None:
        """(C, H, W) of the images, when it is known without loading them: the two
        catalogued datasets are 28x28 grey unless resized; other sources say so once read."""
        if self.dataset not in ("fashion-mnist", "mnist"):
            return None
        height, width = self.image_size or (28, 28)
        return (self.channels or 1, height, width)

    def load(self, progress: bool = True) -> Dataset:
        return load_dataset(
            self.dataset,
            data_dir=self.data_dir,
            image_size=self.image_size,
            channels=self.channels,
            download=self.download,
            progress=progress,
        )
