"""Bring your own model: upload a Keras or ONNX file and it becomes a run to look inside.

Route::

    POST /api/models?name=NAME&format=keras|h5|onnx   the file's raw bytes
                                                      (Content-Type: application/octet-stream)
         -> 201 the new run's row (as in GET /api/runs)

The file is read by :func:`convlens.interop.import_model`, as ``convlens import`` reads
it (no TensorFlow, no code from the file is ever run; Keras Lambda layers and the like
are refused in the library's words), and lands as an ordinary run folder in the runs
folder, written atomically. Pickle-based formats (``.pt``) are not taken from a browser.
The body is limited to ``MODEL_LIMIT`` and abandoned as soon as it passes it; the bytes
go to a private temporary file that is removed whatever happens.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from convlens.runs import check_name, safe_name
from convlens.web.bodies import media_type, read_body
from convlens.web.errors import Conflict, UnsupportedMedia, WebError
from convlens.web.responses import JSON
from convlens.web.state import lab

MODEL_LIMIT = 64 * 1024 * 1024  # bytes: the fast preset as .keras is about 3 MB
#: What the page may upload: format -> the file suffix the importer reads it by.
SUFFIXES = {"keras": ".keras", "h5": ".h5", "onnx": ".onnx"}


def routes() -> list[Route]:
    return [Route("/api/models", upload_model, methods=["POST"])]


async def upload_model(request: Request) -> JSON:
    kind = media_type(request)
    if kind != "application/octet-stream":
        # a cross-site form can send only text/plain, urlencoded or multipart bodies
        raise UnsupportedMedia(
            f"send the model file's bytes with Content-Type: application/octet-stream, not "
            f"{kind or 'none'}"
        )
    form = request.query_params.get("format", "")
    if form not in SUFFIXES:
        raise WebError(
            f"'format' must be one of {', '.join(SUFFIXES)} (a .keras, .h5 or .onnx file), "
            f"not '{form}'"
        )
    given = request.query_params.get("name", "")
    name = check_name(safe_name(given)) if given.strip() else None
    state = lab(request)
    if name and (state.runs_dir / name).exists():
        raise Conflict(f"a run named '{name}' already exists in {state.runs_dir}; choose another")
    data = await read_body(request, MODEL_LIMIT, "the model file")
    if not data:
        raise WebError("the model file is empty")
    row = await run_in_threadpool(_import, request, data, SUFFIXES[form], name)
    return JSON(row, status_code=201)


def _import(request: Request, data: bytes, suffix: str, name: str | None) -> dict[str, Any]:
    from convlens.interop import import_model
    from convlens.web.api_runs import run_row

    state = lab(request)
    with state.compute, tempfile.TemporaryDirectory(prefix="convlens-upload-") as folder:
        path = Path(folder) / f"{name or 'uploaded'}{suffix}"
        path.write_bytes(data)
        run = import_model(path, name, runs_dir=state.runs_dir)
    return run_row(state.runs_dir, run)
