"""Reading request bodies with limits, and the typed fields of JSON requests.

Bodies are read as a stream and abandoned as soon as they pass their limit, so a huge
upload costs the server at most the limit, whatever its Content-Length claims. JSON
endpoints insist on ``Content-Type: application/json``: a cross-site form cannot send
that without the browser asking first (a CORS preflight this server never grants).
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import Request

from convlens.errors import shorten
from convlens.web.errors import TooLarge, UnsupportedMedia, WebError

JSON_LIMIT = 1_000_000  # bytes: a drawn 28x28 picture is about 4 KB of JSON
UPLOAD_LIMIT = 5 * 1024 * 1024  # bytes: a phone photo as JPEG is 2-4 MB


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The whole body, or a one-line 413 as soon as it passes ``limit`` bytes."""
    too_large = TooLarge(
        f"{what} is larger than the {_size(limit)} limit; send a smaller file or shrink it first"
    )
    length = request.headers.get("content-length", "")
    if ascii_digits(length) and int(length) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_json(request: Request) -> Fields:
    """The body as a JSON object wrapped in :class:`Fields` (415 or 400 otherwise)."""
    if media_type(request) != "application/json":
        raise UnsupportedMedia("send the request as JSON with Content-Type: application/json")
    body = await read_body(request, JSON_LIMIT, "the JSON body")
    try:
        data = json.loads(
            body or b"{}", parse_constant=_no_constants, parse_float=_float, parse_int=_int
        )
    except RecursionError:
        raise WebError("the JSON body is nested too deeply; send a flat object") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise WebError(f"the body is not valid JSON ({shorten(str(err))})") from None
    if not isinstance(data, dict):
        raise WebError('the JSON body must be an object, e.g. {"run": "NAME"}')
    return Fields(data)


class Fields:
    """Typed access to a JSON object; every refusal names the field and what it takes."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def __contains__(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def text(self, key: str, default: str | None = None, *, limit: int = 2000) -> str | None:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise WebError(f"'{key}' must be text, not {type(value).__name__}")
        if len(value) > limit:
            raise WebError(f"'{key}' is longer than {limit} characters")
        return value

    def required_text(self, key: str, example: str) -> str:
        value = self.text(key)
        if value is None or not value.strip():
            raise WebError(f'\'{key}\' is missing; give it, e.g. "{key}": "{example}"')
        return value

    def integer(
        self, key: str, default: int | None, low: int | None = None, high: int | None = None
    ) -> int | None:
        """A whole number from ``low`` to ``high``; without ``low``, the type is all that
        is checked (a library config judges the range, in its own words)."""
        value = self.data.get(key)
        if value is None:
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value != int(value)
        ):
            raise WebError(f"'{key}' must be a whole number, not {shorten(value)}")
        value = int(value)
        if low is not None and (value < low or (high is not None and value > high)):
            upper = f" to {high}" if high is not None else " or more"
            raise WebError(f"'{key}' is {value}; it must be from {low}{upper}")
        return value

    def number(self, key: str, default: float | None) -> float | None:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise WebError(f"'{key}' must be a number, not {shorten(value)}")
        if not math.isfinite(value):
            raise WebError(f"'{key}' must be a finite number")
        return float(value)

    def flag(self, key: str) -> bool | None:
        """true, false, or null/missing for "decide for me"."""
        value = self.data.get(key)
        if value is None or isinstance(value, bool):
            return value
        raise WebError(f"'{key}' must be true, false or null, not {value!r}")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


#: Whole numbers in a request have at most this many digits (no field needs more).
MAX_DIGITS = 18


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as infinity
        raise ValueError(f"{shorten(text)} is too large a number")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError(f"{shorten(text)} is too large a number")
    return int(text)


def ascii_digits(text: str) -> bool:
    """Whether ``text`` is a whole number in ASCII digits (``str.isdigit`` also accepts
    '²' and other Unicode digits, which ``int`` refuses)."""
    return text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS


def _size(limit: int) -> str:
    return f"{limit / 1024 / 1024:g} MB" if limit >= 1024 * 1024 else f"{limit / 1000:g} KB"
