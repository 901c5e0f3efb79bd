"""The app factory: routes, error answers, security headers, the static page.

``create_app(runs_dir)`` is all a test or ``convlens serve`` needs. The page itself is
plain HTML, CSS and JavaScript modules in ``static/`` (no build step, nothing fetched from
other hosts: the Content-Security-Policy below forbids it, so the page works offline).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from convlens.data.config import DataConfig
from convlens.errors import ConvlensError
from convlens.runs import default_runs_dir
from convlens.version import __version__
from convlens.web import (
    api_kernel,
    api_manage,
    api_mistakes,
    api_models,
    api_predict,
    api_runs,
    api_train,
)
from convlens.web.errors import error_body, status_for
from convlens.web.pictures import Pictures
from convlens.web.responses import JSON
from convlens.web.runrefs import NetworkCache
from convlens.web.state import LabState, lab
from convlens.web.training import TrainingManager

log = logging.getLogger("convlens.web")

STATIC = Path(__file__).parent / "static"

#: Everything from this server, nothing from anywhere else; pictures may be data: URLs.
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def create_app(
    runs_dir: str | Path | None = None,
    *,
    data: DataConfig | None = None,
    allowed_hosts: Sequence[str] | None = None,
) -> Starlette:
    """The lab's ASGI app over the runs in ``runs_dir`` (default ``$CONVLENS_RUNS`` or
    ``./runs``). ``data`` is what training from the page uses (default Fashion-MNIST,
    found as the CLI finds it); ``allowed_hosts`` restricts the Host header (``convlens
    serve`` passes the loopback names when it listens on loopback, which stops DNS
    rebinding pages from reaching it).
    """
    runs = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    data = data or DataConfig()
    fashion_dir = data.data_dir if data.dataset == "fashion-mnist" else None
    state = LabState(
        runs_dir=runs,
        data=data,
        pictures=Pictures(fashion_dir),
        networks=NetworkCache(runs),
        training=TrainingManager(runs, data),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        state.training.shutdown()  # a training in progress ends "interrupted", resumable

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/api", about, methods=["GET"]),
        *api_kernel.routes(),
        *api_predict.routes(),
        *api_runs.routes(),
        *api_train.routes(),
        *api_mistakes.routes(),
        *api_models.routes(),
        *api_manage.routes(),
        api_runs.detail_route(),
        api_manage.delete_route(),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(SecurityHeaders)]
    if allowed_hosts:
        middleware.append(Middleware(HostCheck, allowed_hosts=allowed_hosts))
    middleware.append(Middleware(SameOriginWrites))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            ConvlensError: convlens_error,
            HTTPException: http_error,
            Exception: unexpected_error,
        },
        lifespan=lifespan,
    )
    app.state.lab = state
    return app


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def about(request: Request) -> JSON:
    """What this server is and what it offers: a map of the API."""
    state = lab(request)
    routes = [
        {"path": route.path, "methods": sorted(route.methods or [])}
        for route in request.app.routes
        if isinstance(route, Route) and route.path.startswith("/api")
    ]
    return JSON(
        {
            "convlens": __version__,
            "runs_dir": str(state.runs_dir),
            "data": state.data.to_dict(),
            "routes": routes,
        }
    )


# --- errors: always {"error": "one line"} -----------------------------------------------


async def convlens_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConvlensError)
    named = {"field": exc.field} if exc.field else {}  # the form control it is about
    extra = {**named, **getattr(exc, "extra", {})}
    return JSON(error_body(str(exc), **extra), status_code=status_for(exc))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {
        404: f"nothing at {request.url.path}; the page is at / and the API at /api",
        405: f"{request.method} is not allowed on {request.url.path}",
    }
    message = messages.get(exc.status_code, str(exc.detail))
    return JSON(error_body(message), status_code=exc.status_code, headers=exc.headers)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSON(
        error_body(f"internal error ({type(exc).__name__}); the server log has the details"),
        status_code=500,
    )


class SecurityHeaders:
    """Adds the CSP and friends to every answer (a pure ASGI middleware, so the
    server-sent event stream passes through unbuffered)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in _HEADERS.items():
                    headers.setdefault(key, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class HostCheck:
    """Answers only requests whose Host header is one of ``allowed_hosts``.

    A page on another site can point its own domain name at 127.0.0.1 (DNS rebinding)
    and would then pass the browser's same-origin checks; it cannot fake the Host header.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.allowed = {host.lower() for host in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = Headers(scope=scope).get("host", "").lower()
            if host not in self.allowed:
                answer = JSON(
                    error_body(
                        f"this server answers to its loopback address only (127.0.0.1 or "
                        f"localhost), not to Host '{host}'; open the address it printed"
                    ),
                    status_code=400,
                )
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


class SameOriginWrites:
    """Refuses a state-changing request (POST, PUT, PATCH, DELETE) that another site's
    page could have sent (cross-site request forgery).

    Two independent checks, both required:

    * the browser's own word: ``Sec-Fetch-Site`` must be ``same-origin`` (or ``none``: typed
      by the user), and ``Origin``, when sent, must be this server's (``http://HOST``);
      another loopback port is another origin, so a page on ``127.0.0.1:9000`` is refused;
    * on POST, a content type a plain HTML form cannot send: ``application/json``, or
      for the upload endpoints an image type or ``application/octet-stream``. A
      cross-site page can only send those after a CORS preflight, which this server never
      grants (PUT, PATCH and DELETE always need one, whatever their content type).

    Requests without the browser headers (curl, scripts, tests) pass the first check; a
    browser always sends them on cross-site requests.
    """

    SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
    # Raw-byte upload endpoints: what they take, and whether an image type is accepted
    # beside application/octet-stream (both need a preflight from another site).
    UPLOADS: ClassVar[dict[str, Upload]] = {
        "/api/images": ("picture", True),
        "/api/models": ("model file", False),
    }

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in self.SAFE:
            problem = cross_site_problem(
                Headers(scope=scope),
                upload=self.UPLOADS.get(scope["path"]),
                form_method=scope["method"] == "POST",
            )
            if problem:
                answer = JSON(error_body(problem), status_code=problem_status(problem))
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


_MEDIA_PROBLEM = "send"  # problems about the content type start with this word

Upload = tuple[str, bool]  # (what is uploaded, whether image/* content types are accepted)


def cross_site_problem(headers: Headers, *, upload: Upload | None, form_method: bool) -> str | None:
    """Why a state-changing request must be refused, or None."""
    site = headers.get("sec-fetch-site", "").lower()
    if site and site not in ("same-origin", "none"):
        return (
            f"refused: a page on another site (Sec-Fetch-Site: {site[:20]}) may not change "
            "anything here; use the lab's own page"
        )
    origin = headers.get("origin")
    if origin is not None:
        host = headers.get("host", "").lower()
        if origin.lower() not in (f"http://{host}", f"https://{host}"):
            return (
                f"refused: a request from {origin[:80]!r} may not change anything here; "
                "only the lab's own page may (open the address the server printed)"
            )
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    if not form_method:
        return None
    if upload:
        what, images = upload
        if not (kind == "application/octet-stream" or (images and kind.startswith("image/"))):
            types = "an image Content-Type (image/png, image/jpeg, ...) or " if images else ""
            return (
                f"send the {what}'s bytes with {types}Content-Type: application/octet-stream, "
                f"not {kind[:60] or 'none'}"
            )
    elif kind != "application/json":
        return (
            "send the request as JSON with Content-Type: application/json "
            f"(not {kind[:60] or 'none'}), even when it has no fields: {{}}"
        )
    return None


def problem_status(problem: str) -> int:
    return 415 if problem.startswith(_MEDIA_PROBLEM) else 403


_HEADERS: dict[str, Any] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
}
