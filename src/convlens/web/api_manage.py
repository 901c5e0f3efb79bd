"""Take a model away, or throw a run out: downloads and deletion.

Routes::

    GET    /api/runs/{run}/download/weights   model.safetensors, as an attachment
    GET    /api/runs/{run}/download/onnx      the run exported to ONNX (the onnx extra)
    GET    /api/runs/{run}/download/keras     the run as a Keras 3 .keras file (h5py)
    DELETE /api/runs/{run}                    {"confirm": RUN} -> the run folder removed

Downloads are made by the library (:func:`convlens.export.export_onnx` and
:func:`convlens.interop.keras_export.export_keras`, as ``convlens export --onnx`` and
``--keras`` make them, each checked against the run), in a temporary folder, and sent
from memory. Deleting names
the run twice (the path and ``confirm``) so no stray request removes one; the folder must
be a run folder inside the runs folder, not a symlink, and not the one training now.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from convlens.runs import WEIGHTS, Run
from convlens.web import api_mistakes
from convlens.web.bodies import read_json
from convlens.web.body_fields import text
from convlens.web.errors import Conflict, NotFound, WebError
from convlens.web.responses import JSON
from convlens.web.runrefs import resolve_run, run_ref
from convlens.web.state import lab

#: What a run can be downloaded as: kind -> (file suffix, media type).
KINDS = {
    "weights": (".safetensors", "application/octet-stream"),
    "onnx": (".onnx", "application/octet-stream"),
    "keras": (".keras", "application/octet-stream"),
}
#: What each export needs installed, and how to get it.
NEEDS = {"onnx": ("onnxscript", "the onnx extra: pip install 'convlens[onnx]'"),
         "keras": ("h5py", "h5py: pip install h5py")}  # fmt: skip


@dataclass(frozen=True)
class DeleteBody:
    confirm: str | None = text(limit=300)  # the run's name again


def routes() -> list[Route]:
    return [Route("/api/runs/{ref:path}/download/{kind}", download, methods=["GET"])]


def delete_route() -> Route:
    """``DELETE /api/runs/{run}``; with the detail route, after the sub-resources."""
    return Route("/api/runs/{ref:path}", delete, methods=["DELETE"])


def formats() -> dict[str, bool]:
    """Which downloads this server can make (ONNX needs the onnx extra, Keras h5py)."""
    found = {
        kind: importlib.util.find_spec(module) is not None for kind, (module, _) in NEEDS.items()
    }
    return {"weights": True, **found}


async def download(request: Request) -> Response:
    state = lab(request)
    kind = request.path_params["kind"]
    if kind not in KINDS:
        raise NotFound(f"a run downloads as {' or '.join(KINDS)}, not '{kind}'")
    run = resolve_run(state.runs_dir, request.path_params["ref"])
    name = run_ref(state.runs_dir, run)
    suffix, media = KINDS[kind]
    filename = name.replace("/", "-") + suffix
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if kind == "weights":
        weights = run.file(WEIGHTS)
        if not weights.is_file() or weights.is_symlink():
            raise Conflict(f"run '{name}' has no final weights yet; finish it first")
        return FileResponse(weights, media_type=media, headers=headers)
    if not formats()[kind]:
        raise Conflict(f"this server cannot export to {kind}: it needs {NEEDS[kind][1]}")
    data = await run_in_threadpool(_exported, request, run, kind, suffix)
    return Response(data, media_type=media, headers=headers)


def _exported(request: Request, run: Run, kind: str, suffix: str) -> bytes:
    from convlens.export import export_onnx
    from convlens.interop.keras_export import export_keras

    if not run.file(WEIGHTS).is_file():
        raise Conflict(f"run '{run.name}' has no final weights yet; finish it first")
    with lab(request).compute, tempfile.TemporaryDirectory(prefix="convlens-export-") as tmp:
        path = Path(tmp) / f"model{suffix}"
        (export_keras if kind == "keras" else export_onnx)(run, path)
        return path.read_bytes()


async def delete(request: Request) -> JSON:
    state = lab(request)
    ref = request.path_params["ref"]
    body = await read_json(request, DeleteBody)
    if body.confirm != ref:
        raise WebError(f'to delete run \'{ref}\', send {{"confirm": "{ref}"}}: its name again')
    run = resolve_run(state.runs_dir, ref)  # inside the runs folder, a run folder
    return JSON(await run_in_threadpool(_delete, state.runs_dir, run, ref, request))


def _delete(runs_dir: Path, run: Run, ref: str, request: Request) -> dict[str, Any]:
    link = runs_dir.joinpath(*ref.split("/"))
    if any(p.is_symlink() for p in (link, link.parent)) or link.resolve() == runs_dir.resolve():
        raise Conflict(f"'{ref}' is a link, not a run folder of {runs_dir}; nothing deleted")
    training = lab(request).training.snapshot()
    if training.get("active") and training.get("run") == ref:
        raise Conflict(f"run '{ref}' is training now; cancel it first, then delete it")
    shutil.rmtree(run.path)
    lab(request).networks.forget(run.path)
    api_mistakes.forget(run)
    return {"deleted": ref, "runs_dir": str(runs_dir)}
