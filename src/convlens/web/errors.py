"""HTTP errors as the library's own one-line errors, each with its status code.

Every failure the page can cause is a :class:`~convlens.errors.ConvlensError`; the app
turns it into ``{"error": "one line"}`` with :func:`status_for` as the code. Library
errors (a bad kernel, a spec that does not parse) are the client's to fix: 400. The web
layer adds the codes only it knows about: nothing there (404), busy (409), too big (413),
wrong content type (415).
"""

from __future__ import annotations

from typing import Any

from convlens.errors import ConvlensError

_MAX_MESSAGE = 600  # characters; a message longer than this is cut, never split


class WebError(ConvlensError):
    """A request the server cannot answer as asked; ``status`` is the HTTP code."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message, field=field)
        self.extra = extra  # more JSON fields for the answer, e.g. the busy run's name


class NotFound(WebError):
    status = 404


class Conflict(WebError):
    """The server's state forbids it now: a training is running, a folder exists."""

    status = 409


class TooLarge(WebError):
    status = 413


class UnsupportedMedia(WebError):
    status = 415


def status_for(err: ConvlensError) -> int:
    """The HTTP status for a library or web error: its own, else 400 (the user can fix it)."""
    return int(getattr(err, "status", 400))


def error_body(message: str, **extra: Any) -> dict[str, Any]:
    """``{"error": "one line", ...}``: newlines folded, very long messages cut. The
    error's ``field``, where it names one, is among ``extra`` (``"field": "lr"``)."""
    line = " ".join(str(message).split()) or "unknown error"
    if len(line) > _MAX_MESSAGE:
        line = line[: _MAX_MESSAGE - 3] + "..."
    return {"error": line, **extra}
