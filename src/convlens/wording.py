"""Counts in words for people: "1 epoch", "5 epochs", "rows 3-5".

Every floor prints counts (the summary's channels, a sweep's workers and threads, a
run's epochs, a data source's bad files), so the one rule lives on the bottom floor:
one is singular, every other count (0 included) takes the plural, English's "s" unless
the noun says otherwise.
"""

from __future__ import annotations


def plural(noun: str, count: int, plural_form: str | None = None) -> str:
    """``noun`` for a count of one, else its plural: ``plural("row", 3)`` -> "rows"."""
    if count == 1:
        return noun
    return plural_form if plural_form is not None else noun + "s"


def counted(count: int, noun: str, plural_form: str | None = None) -> str:
    """The count and its noun: ``counted(1, "epoch")`` -> "1 epoch", ``counted(0,
    "epoch")`` -> "0 epochs"."""
    return f"{count} {plural(noun, count, plural_form)}"
