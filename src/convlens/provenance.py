"""What a run's figures come from: the full data, a subset, the embedded sample, smoke mode.

Every table, figure and report made from a run carries this, so a figure from the 10%
sample or a 1,000-image subset never passes for one from the full dataset::

    >>> note = DataNote.from_config(run.config)
    >>> note.short      # for a table column: "full", "sample", "subset", "sample, subset"
    >>> note.caveat     # the sentence to print under a figure, or "" for the full data
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DataNote:
    dataset: str  # "fashion-mnist", "folder:DIR", ...
    train_count: int  # images the run trained on
    test_count: int  # images it was tested on
    is_sample: bool = False  # the embedded 10% Fashion-MNIST sample
    subset: bool = False  # a seeded subset of what was loaded (train_subset/test_subset)
    smoke: bool = False  # CONVLENS_SMOKE capped the training

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DataNote:
        """From a run's ``config.json`` (older runs lack ``smoke``: False)."""
        data = config.get("dataset") or {}
        train = config.get("train") or {}
        return cls(
            dataset=str(data.get("name") or (config.get("data") or {}).get("dataset") or "?"),
            train_count=int(data.get("train_count") or 0),
            test_count=int(data.get("test_count") or 0),
            is_sample=bool(data.get("is_sample")),
            subset=train.get("train_subset") is not None or train.get("test_subset") is not None,
            smoke=bool(data.get("smoke")),
        )

    @property
    def short(self) -> str:
        """One or two words for a table's data column."""
        parts = [p for p, on in (("sample", self.is_sample), ("subset", self.subset)) if on]
        if self.smoke:
            parts.append("smoke")
        return ", ".join(parts) or "full"

    @property
    def counts(self) -> str:
        return f"{self.train_count:,} train / {self.test_count:,} test images"

    @property
    def caveat(self) -> str:
        """The sentence to show with any figure from this run; "" for the full data."""
        if self.smoke:
            return (
                f"smoke mode (CONVLENS_SMOKE): capped training on {self.counts}"
                + (" of the embedded 10% sample" if self.is_sample else "")
                + "; a smoke test, not a result"
            )
        if self.is_sample and self.subset:
            return f"trained on the embedded 10% sample, a subset of it ({self.counts})"
        if self.is_sample:
            return (
                f"trained on the embedded 10% sample ({self.counts}): expect lower figures "
                "than on the full data"
            )
        if self.subset:
            return f"trained on a subset of {self.dataset} ({self.counts})"
        return ""

    def describe(self) -> str:
        """'fashion-mnist, 60,000 train / 10,000 test images' plus the caveat."""
        return f"{self.dataset}, {self.counts}" + (f" ({self.short})" if self.caveat else "")


def combined_caveat(notes: Iterable[DataNote]) -> str:
    """One line for a table of several runs: their caveats, each said once."""
    seen: list[str] = []
    for note in notes:
        if note.caveat and note.caveat not in seen:
            seen.append(note.caveat)
    return "; ".join(seen)
