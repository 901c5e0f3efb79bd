"""JSON out: strict JSON (no NaN), compact, never cached.

A run's metrics can hold NaN (a class the test split never shows has no accuracy);
Python writes that as the bare word ``NaN``, which is not JSON and breaks the page's
``response.json()``. Every answer goes through :func:`json_safe`, so it becomes null.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.responses import JSONResponse


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (dicts, lists, tuples)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


class JSON(JSONResponse):
    """A JSONResponse that cleans non-finite numbers and is never cached."""

    def __init__(self, content: Any, status_code: int = 200, **kwargs: Any) -> None:
        headers = {"Cache-Control": "no-store", **(kwargs.pop("headers", None) or {})}
        super().__init__(content, status_code=status_code, headers=headers, **kwargs)

    def render(self, content: Any) -> bytes:
        return json.dumps(
            json_safe(content), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")
