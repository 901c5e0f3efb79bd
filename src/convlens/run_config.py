"""What a run was asked to do, as one typed, versioned config: its ``config.json``.

::

    RunConfig
      model        ModelSpec     the layers (also in spec.json, beside the weights)
      train        TrainConfig   the recipe and where it ran
      data         DataConfig    what was loaded (evaluate, resume and report reload it)
      class_names  (K,) names    the data's classes, in label order
      input_shape  (C, H, W)     the images the network takes
      dataset      DatasetFacts  what the loaded data turned out to be (source, counts)
      name, preset, recipe, created, convlens_version, format

``format`` is the layout's version. Runs written before it was recorded (convlens
0.1.0, ``tests/fixtures/runs``) are format 1, the layout described here; a reader
meeting a format newer than it knows says so instead of guessing. Keys a reader does
not know are kept in ``extra`` and written back unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from convlens.data.config import DataConfig
from convlens.errors import RunError
from convlens.models.spec import ModelSpec
from convlens.provenance import DataNote
from convlens.recipe import TrainConfig

if TYPE_CHECKING:
    from convlens.data.dataset import Dataset

#: The config.json layout this convlens writes and the newest it reads.
FORMAT = 1

_KEYS = (
    "format",
    "name",
    "model",
    "preset",
    "recipe",
    "data",
    "dataset",
    "train",
    "class_names",
    "input_shape",
    "created",
    "convlens_version",
)


@dataclass(frozen=True)
class DatasetFacts:
    """What the data a run trained on turned out to be, once loaded (for people)."""

    name: str | None = None
    source: str | None = None
    is_sample: bool | None = None
    train_count: int | None = None
    test_count: int | None = None
    smoke: bool | None = None  # trained in smoke mode (CONVLENS_SMOKE): capped epochs and data
    preparation: dict[str, Any] | None = None  # how its images look (data.preparation)
    fingerprint: str | None = None  # Dataset.fingerprint(): resume refuses other images

    @classmethod
    def of(
        cls, dataset: Dataset, *, smoke: bool, preparation: dict[str, Any] | None
    ) -> DatasetFacts:
        return cls(
            name=dataset.name,
            source=dataset.source,
            is_sample=dataset.is_sample,
            train_count=len(dataset.train_labels),
            test_count=len(dataset.test_labels),
            smoke=smoke,
            preparation=preparation,
            fingerprint=dataset.fingerprint(),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetFacts:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        """The recorded facts only: a run from before a fact was recorded lacks its key."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class RunConfig:
    """One run's ``config.json`` as typed objects; see the module docstring."""

    model: ModelSpec
    train: TrainConfig
    data: DataConfig
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]  # (C, H, W)
    dataset: DatasetFacts | None = None
    name: str | None = None
    preset: str | None = None  # the model's preset, when the model is one
    recipe: str | None = None  # the preset whose recipe training started from
    created: str | None = None
    convlens_version: str | None = None
    format: int = FORMAT
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys this reader does not know

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def imported(self) -> dict[str, Any] | None:
        """Where an imported model came from (``convlens import``), else None."""
        return self.extra.get("imported")

    @property
    def data_note(self) -> DataNote:
        """What the run was trained and tested on (see :mod:`convlens.provenance`)."""
        facts = self.dataset or DatasetFacts()
        train = self.train
        return DataNote(
            dataset=str(facts.name or self.data.dataset or "?"),
            train_count=int(facts.train_count or 0),
            test_count=int(facts.test_count or 0),
            is_sample=bool(facts.is_sample),
            subset=train.train_subset is not None or train.test_subset is not None,
            smoke=bool(facts.smoke),
        )

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The config.json layout (key order as convlens 0.1.0 wrote it, then ``format``)."""
        data: dict[str, Any] = {
            "name": self.name,
            "model": self.model.to_dict(),
            "preset": self.preset,
            "recipe": self.recipe,
            "data": self.data.to_dict(),
        }
        if self.dataset is not None:
            data["dataset"] = self.dataset.to_dict()
        data |= {
            "train": self.train.to_dict(),
            "class_names": list(self.class_names),
            "input_shape": list(self.input_shape),
            "created": self.created,
            "convlens_version": self.convlens_version,
            "format": self.format,
        }
        return {**data, **self.extra}

    @classmethod
    def from_dict(cls, data: Any, source: str = "config.json") -> RunConfig:
        """Parse and check a config.json's contents; ``source`` names the file in errors.

        The shape every reader relies on is checked first, so a hand-edit that breaks it
        is named here rather than failing somewhere deep in a loader; then each section
        is parsed by its own config class (which names a bad value in its own words).
        """
        check_layout(data, source)
        facts = data.get("dataset")
        return cls(
            model=ModelSpec.from_dict(data["model"], source=source),
            train=TrainConfig.from_dict(data["train"]),
            data=DataConfig.from_dict(data["data"]),
            class_names=tuple(data["class_names"]),
            input_shape=tuple(data["input_shape"]),
            dataset=DatasetFacts.from_dict(facts) if isinstance(facts, dict) else None,
            name=data.get("name"),
            preset=data.get("preset"),
            recipe=data.get("recipe"),
            created=data.get("created"),
            convlens_version=data.get("convlens_version"),
            format=data.get("format", 1),
            extra={k: v for k, v in data.items() if k not in _KEYS},
        )


def check_layout(data: Any, source: str = "config.json") -> None:
    """The shape of config.json that every reader relies on (without parsing sections)."""

    def damaged(what: str) -> RunError:
        return RunError(f"{source}: {what}; the run's config is damaged (train the run again)")

    if not isinstance(data, dict):
        raise damaged("not a JSON object")
    version = data.get("format", 1)
    if not (isinstance(version, int) and not isinstance(version, bool) and version >= 1):
        raise damaged(f"'format' must be a whole number from 1, not {version!r}")
    if version > FORMAT:
        raise RunError(
            f"{source} is in run format {version}, newer than this convlens reads "
            f"({FORMAT}); upgrade convlens to open it"
        )
    for key in ("model", "data", "train"):
        if not isinstance(data.get(key), dict):
            raise damaged(f"'{key}' is missing or not a mapping")
    shape = data.get("input_shape")
    if not (
        isinstance(shape, list)
        and len(shape) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 4096 for v in shape)
    ):
        raise damaged(f"'input_shape' must be [C, H, W], not {shape!r}")
    names = data.get("class_names")
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise damaged("'class_names' must be a non-empty list of names")
