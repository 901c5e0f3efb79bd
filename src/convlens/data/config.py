"""What a run trains on, as one typed config saved in its ``config.json`` ("data")."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from convlens.data.dataset import Dataset
from convlens.data.sources import load_dataset


@dataclass
class DataConfig:
    """What to train on; saved in the run so evaluate/resume read the same data."""

    dataset: str = "fashion-mnist"  # fashion-mnist, mnist, idx:DIR, folder:DIR
    data_dir: str | None = None  # a folder holding the files (else env, cache, system)
    image_size: tuple[int, int] | None = None  # (H, W) for folder data; None keeps it
    channels: int | None = None  # 1 (grayscale) or 3 (colour); None keeps it
    download: bool = True

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
