"""Reading request bodies with limits; a JSON body as its endpoint's typed body.

Bodies are read as a stream and abandoned as soon as they pass their limit, so a huge
upload costs the server at most the limit, whatever its Content-Length claims. JSON
endpoints insist on ``Content-Type: application/json``: a cross-site form cannot send
that without the browser asking first (a CORS preflight this server never grants).
:func:`read_json` returns the endpoint's body dataclass, checked field by field
(:mod:`convlens.web.body_fields`).
"""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

from starlette.requests import Request

from convlens.errors import shorten
from convlens.web.body_fields import parse
from convlens.web.errors import TooLarge, UnsupportedMedia, WebError

T = TypeVar("T")

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


async def read_json(request: Request, body_type: type[T]) -> T:
    """The body as a JSON object, checked as a ``body_type`` (415 or 400 otherwise)."""
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
    return parse(body_type, data)


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
