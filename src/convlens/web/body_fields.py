"""Typed JSON request bodies: a dataclass per endpoint, whose fields say what they take.

::

    @dataclass(frozen=True)
    class DeleteBody:
        confirm: str | None = text(limit=300)

    body = parse(DeleteBody, {"confirm": "cnn"})   # -> DeleteBody(confirm="cnn")

Each field is made by one of :func:`text`, :func:`whole`, :func:`number`, :func:`flag`
or :func:`anything`; :func:`parse` checks every field of the dataclass against the JSON
object in field order (keys it does not name are ignored; a missing key or ``null`` is
the field's default) and refuses the first bad one in one line naming the field and
what it takes (a 400 whose ``"field"`` is that key). A range known only later (a class
number below the run's class count) is checked with the same words by :func:`check_whole`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar

from convlens.errors import shorten
from convlens.web.errors import WebError

T = TypeVar("T")

TEXT_LIMIT = 2000  # characters in a text field unless it says otherwise


def parse(body_type: type[T], data: Mapping[str, Any]) -> T:
    """``data`` (a JSON object) as a ``body_type``, each field checked in order."""
    values = {}
    for field in dataclasses.fields(body_type):  # type: ignore[arg-type]
        check: Callable[[str, Any], Any] = field.metadata["check"]
        values[field.name] = check(field.name, data.get(field.name))
    return body_type(**values)


# --- the fields -------------------------------------------------------------------------


def _field(check: Callable[..., Any], default: Any, **options: Any) -> Any:
    return dataclasses.field(
        default=default, metadata={"check": partial(check, default=default, **options)}
    )


def text(default: str | None = None, *, limit: int = TEXT_LIMIT, example: str | None = None):
    """Text of at most ``limit`` characters; with ``example``, required (and not blank)."""
    return _field(check_text, default, limit=limit, example=example)


def whole(default: int | None = None, low: int | None = None, high: int | None = None):
    """A whole number from ``low`` to ``high``; without ``low``, the type is all that is
    checked (a library config judges the range, in its own words)."""
    return _field(check_whole, default, low=low, high=high)


def number(default: float | None = None):
    """A finite number (whole or not), as a float."""
    return _field(check_number, default)


def flag():
    """true, false, or null/missing for "decide for me" (None)."""
    return _field(check_flag, None)


def anything():
    """Any JSON value, checked by whoever reads it (a drawing's rows, a kernel)."""
    return _field(lambda key, value, default: value, None)


# --- the checks, each usable on its own -----------------------------------------------------


def missing(key: str, example: str) -> WebError:
    return WebError(f'\'{key}\' is missing; give it, e.g. "{key}": "{example}"', field=key)


def check_text(
    key: str,
    value: Any,
    default: str | None = None,
    *,
    limit: int = TEXT_LIMIT,
    example: str | None = None,
) -> str | None:
    if value is None:
        if example is not None:
            raise missing(key, example)
        return default
    if not isinstance(value, str):
        raise WebError(f"'{key}' must be text, not {type(value).__name__}", field=key)
    if len(value) > limit:
        raise WebError(f"'{key}' is longer than {limit} characters", field=key)
    if example is not None and not value.strip():
        raise missing(key, example)
    return value


def check_whole(
    key: str,
    value: Any,
    default: int | None = None,
    low: int | None = None,
    high: int | None = None,
) -> int | None:
    if value is None:
        return default
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value != int(value)
    ):
        raise WebError(f"'{key}' must be a whole number, not {shorten(value)}", field=key)
    value = int(value)
    if low is not None and (value < low or (high is not None and value > high)):
        upper = f" to {high}" if high is not None else " or more"
        raise WebError(f"'{key}' is {value}; it must be from {low}{upper}", field=key)
    return value


def check_number(key: str, value: Any, default: float | None = None) -> float | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WebError(f"'{key}' must be a number, not {shorten(value)}", field=key)
    if not math.isfinite(value):
        raise WebError(f"'{key}' must be a finite number", field=key)
    return float(value)


def check_flag(key: str, value: Any, default: bool | None = None) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise WebError(f"'{key}' must be true, false or null, not {value!r}", field=key)
