"""The product's own errors: one line each, saying what is wrong, where, and how to fix it.

Everything a user can get wrong (a corrupt file, a malformed spec, an impossible option)
raises a subclass of :class:`ConvlensError`. The CLI prints its message on one line and
exits non-zero; anything else escaping is a bug in convlens and keeps its traceback.
"""

from __future__ import annotations

#: The longest message an error carries, in characters.
MAX_MESSAGE = 2000


def shorten(value: object, limit: int = 80) -> str:
    """A value quoted in an error message, at most ``limit`` characters: text as it is,
    anything else as a bounded repr (a huge list or a 5,000-digit number is cut, never
    printed whole)."""
    if isinstance(value, str):
        text = value
    else:
        import reprlib

        short = reprlib.Repr()
        short.maxlevel, short.maxlist, short.maxdict = 3, 6, 6
        short.maxstring = short.maxother = short.maxlong = limit
        text = short.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ConvlensError(Exception):
    """A problem the user can fix. ``str(err)`` is the whole, single-line message.

    ``field``: the option at fault where there is one (a :class:`TrainConfig` field such
    as ``"lr"``), so a form can put the line beside that control rather than at the
    bottom of the page; the message names it in the user's words either way.
    """

    exit_code = 2
    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        # One line, always: newlines in a message would break the CLI's contract. And a
        # short one: a message quoting a hostile input is cut, never megabytes long.
        line = " ".join(str(message).split())
        if len(line) > MAX_MESSAGE:
            line = line[: MAX_MESSAGE - 3] + "..."
        super().__init__(line)


class DataError(ConvlensError):
    """A dataset that cannot be found, read or trusted."""


class SpecError(ConvlensError):
    """A model spec that cannot be parsed or built."""


class ImageError(ConvlensError):
    """An image file that cannot be decoded or prepared."""


class RunError(ConvlensError):
    """A run folder that is missing, incomplete or inconsistent."""


class OptionError(ConvlensError):
    """An option whose value makes no sense (negative epochs, NaN learning rate, ...)."""


class TrainingDiverged(ConvlensError):
    """The loss became NaN or infinite; the last good checkpoint was kept."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training, after the run folder was left resumable.

    A KeyboardInterrupt still (code that stops on Ctrl-C keeps stopping), carrying the
    line that says how to resume.
    """


class ModelImportError(ConvlensError):
    """A model file from another framework that cannot be imported exactly: damaged, or
    holding a layer or option convlens does not compute the same way.

    ``partial_summary``: when the model does not fit its input, the summary of the layers
    up to the one that fails (``convlens import`` prints it before the reason)."""

    partial_summary: str | None = None
