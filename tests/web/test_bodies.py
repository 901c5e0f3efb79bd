"""Typed request bodies: each field kind takes what it says and refuses the rest in one
line that names the field; the training body is TrainConfig's recipe fields."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pytest

from convlens.recipe import RECIPE_FIELDS
from convlens.web.body_fields import (
    anything,
    check_whole,
    flag,
    number,
    parse,
    text,
    whole,
)
from convlens.web.errors import WebError


@dataclass(frozen=True)
class Body:
    run: str = text(example="cnn")
    note: str | None = text(limit=5)
    count: int = whole(3, 1, 10)
    any_int: int | None = whole()
    at_least: int | None = whole(None, 0)
    weight: float = number(1.0)
    invert: bool | None = flag()
    rows: Any = anything()


def test_defaults_fill_what_is_left_out_and_unknown_keys_are_ignored() -> None:
    body = parse(Body, {"run": "cnn", "other": [1, 2], "count": None})
    assert body == Body(run="cnn", note=None, count=3, any_int=None, at_least=None,
                        weight=1.0, invert=None, rows=None)  # fmt: skip


def test_values_come_back_typed() -> None:
    body = parse(Body, {"run": "r", "count": 4.0, "any_int": -7, "weight": 2, "invert": False,
                        "rows": [[0, 1]], "note": "hi"})  # fmt: skip
    assert (body.count, body.any_int, body.weight, body.invert) == (4, -7, 2.0, False)
    assert isinstance(body.count, int) and isinstance(body.weight, float)
    assert body.rows == [[0, 1]] and body.note == "hi"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, '\'run\' is missing; give it, e.g. "run": "cnn"'),
        ({"run": "  "}, '\'run\' is missing; give it, e.g. "run": "cnn"'),
        ({"run": 3}, "'run' must be text, not int"),
        ({"run": "r", "note": "toolong"}, "'note' is longer than 5 characters"),
        ({"run": "r", "count": 11}, "'count' is 11; it must be from 1 to 10"),
        ({"run": "r", "count": 1.5}, "'count' must be a whole number, not 1.5"),
        ({"run": "r", "count": True}, "'count' must be a whole number, not True"),
        ({"run": "r", "count": "2"}, "'count' must be a whole number, not 2"),
        ({"run": "r", "at_least": -1}, "'at_least' is -1; it must be from 0 or more"),
        ({"run": "r", "weight": "x"}, "'weight' must be a number, not x"),
        ({"run": "r", "weight": float("inf")}, "'weight' must be a finite number"),
        ({"run": "r", "invert": "yes"}, "'invert' must be true, false or null, not 'yes'"),
    ],
)
def test_a_bad_field_is_one_line_naming_it(data: dict[str, Any], message: str) -> None:
    with pytest.raises(WebError) as caught:
        parse(Body, data)
    assert str(caught.value) == message


def test_fields_are_checked_in_order() -> None:
    with pytest.raises(WebError, match="'run'"):
        parse(Body, {"count": 99})


def test_a_range_known_later_has_the_same_words() -> None:
    assert check_whole("target", 2, None, 0, 9) == 2 and check_whole("target", None) is None
    with pytest.raises(WebError, match=r"^'target' is 10; it must be from 0 to 9$"):
        check_whole("target", 10, None, 0, 9)


def test_the_training_body_is_trainconfigs_recipe() -> None:
    from convlens.web.api_train import StartBody, recipe_fields

    names = [field.name for field in dataclasses.fields(StartBody)]
    assert names == ["model", *RECIPE_FIELDS, "preset", "train_subset", "name"]
    body = parse(StartBody, {"model": "cnn", "lr": 0.01, "augment": True, "epochs": 2})
    assert recipe_fields(body) == {"epochs": 2, "lr": 0.01, "augment": True}
    with pytest.raises(WebError, match="'batch_size' must be a whole number"):
        parse(StartBody, {"model": "cnn", "batch_size": 0.5})
    with pytest.raises(WebError, match="'epochs' is 101; it must be from 1 to 100"):
        parse(StartBody, {"model": "cnn", "epochs": 101})
