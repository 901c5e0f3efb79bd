"""The lab in a browser: a thin web layer over the library (``convlens serve``).

The page calls the same functions as the command line, over a small JSON API:

* filter playground: :mod:`convlens.byhand` (hand convolution, pooling, one pixel's arithmetic);
* predict and journey: :mod:`convlens.predict` and :mod:`convlens.introspect`;
* runs: :mod:`convlens.runs`;
* training: :func:`convlens.train.session.train` in a background thread, one at a time.

Nothing is computed here that the library does not already compute; the web modules only
check requests, turn arrays into PNGs and JSON, and keep a few caches. Starlette and
uvicorn are an optional extra (``pip install 'convlens[web]'``), imported only here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> Starlette:
    """Build the ASGI app; see :func:`convlens.web.app.create_app`."""
    from convlens.web.app import create_app as _create_app

    return _create_app(*args, **kwargs)
