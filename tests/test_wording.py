"""Counts in words: one is singular, every other count (0 included) plural."""

from __future__ import annotations

from convlens.wording import counted, plural


def test_one_is_singular_and_every_other_count_plural() -> None:
    assert [counted(n, "epoch") for n in (0, 1, 2)] == ["0 epochs", "1 epoch", "2 epochs"]
    assert counted(1, "input channel") == "1 input channel"
    assert counted(3, "more file") == "3 more files"
    assert (plural("row", 1), plural("row", 2)) == ("row", "rows")
    assert (plural("index", 1, "indices"), plural("index", 4, "indices")) == ("index", "indices")
