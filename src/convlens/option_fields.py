"""Dataclass fields that carry their command-line option: help, choices, metavar, flag.

A config dataclass (:class:`~convlens.recipe.TrainConfig`,
:class:`~convlens.data.config.DataConfig`) declares each field with :func:`option`, and
``convlens.cli.options`` builds the options from the fields: the help, the choices and
the default are said once, where the field is, and a new field is a new option.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


def option(
    default: Any,
    help: str,
    *,
    choices: tuple[Any, ...] | None = None,
    metavar: str | None = None,
    flag: str | None = None,
    parse: Callable[[str], Any] | None = None,
) -> Any:
    """A field with what its command-line option says.

    ``help``: ``{default}`` in it is filled in from the field's default, so the default
    is never restated. ``flag``: the option's name when it is not ``--the-field`` (e.g.
    ``--data`` for ``dataset``); a ``--no-...`` flag on a field that defaults to True
    sets it False. ``parse``: turns the option's text into the field's value (an
    ``argparse`` type: it raises ``argparse.ArgumentTypeError`` with one line).
    """
    return dataclasses.field(
        default=default,
        metadata={
            "help": help,
            "choices": choices,
            "metavar": metavar,
            "flag": flag,
            "parse": parse,
        },
    )


def help_of(field: dataclasses.Field) -> str:
    """The field's help as its option says it, ``{default}`` filled in: what ``--help``
    prints and the web page's recipe controls show on hover."""
    text = field.metadata.get("help", "")
    return text.format(default=field.default) if "{default" in text else text


def flag_of(field: dataclasses.Field) -> str:
    """The option a field is set with: ``--batch-size`` for ``batch_size``."""
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def sets_false(field: dataclasses.Field) -> bool:
    """Whether the field's option is a ``--no-...`` switch that sets it False."""
    return flag_of(field).startswith("--no-") and field.default is True
