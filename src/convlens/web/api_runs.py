"""The runs folder as the page sees it: a table, one run's details, its figures.

Routes::

    GET /api/runs                     every run with its headline figures
    GET /api/runs/{run}               one run: config, history, metrics, summary table
    GET /api/runs/{run}/files/{file}  curves.png, confusion.png or summary.txt
    GET /api/presets                  the models the Train tab offers, with their recipes

``{run}`` is ``NAME`` or ``GROUP/NAME`` (see :mod:`convlens.web.runrefs`). Everything is
read through :class:`convlens.runs.Run`, as ``convlens evaluate`` and ``report`` read it;
a damaged run shows up as damaged in the table instead of breaking it.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Route

from convlens.errors import ConvlensError
from convlens.run_config import DatasetFacts
from convlens.runs import (
    CHECKPOINT,
    CONFIG,
    CONFUSION,
    CURVES,
    METRICS_JSON,
    SUMMARY,
    WEIGHTS,
    Run,
    list_runs,
)
from convlens.web import api_manage
from convlens.web.errors import NotFound, error_body
from convlens.web.responses import JSON
from convlens.web.runrefs import resolve_run, run_ref
from convlens.web.state import lab
from convlens.web.training import cancelled_message

#: The files of a run the page may fetch, by name; nothing else is ever served.
FILES = {CURVES: "image/png", CONFUSION: "image/png", SUMMARY: "text/plain; charset=utf-8"}


def routes() -> list[Route]:
    return [
        Route("/api/runs", runs_table, methods=["GET"]),
        Route("/api/presets", presets, methods=["GET"]),
        Route("/api/runs/{ref:path}/files/{file}", run_file, methods=["GET"]),
    ]


def detail_route() -> Route:
    """Last in the table: ``{ref:path}`` would otherwise swallow the sub-resources."""
    return Route("/api/runs/{ref:path}", run_detail, methods=["GET"])


async def runs_table(request: Request) -> JSON:
    state = lab(request)
    rows = await run_in_threadpool(
        lambda: [run_row(state.runs_dir, run) for run in list_runs(state.runs_dir)]
    )
    return JSON({"runs_dir": str(state.runs_dir), "runs": rows})


async def run_detail(request: Request) -> JSON:
    state = lab(request)
    run = resolve_run(state.runs_dir, request.path_params["ref"])
    return JSON(await run_in_threadpool(_detail, state.runs_dir, run))


async def run_file(request: Request) -> FileResponse:
    state = lab(request)
    name = request.path_params["file"]
    if name not in FILES:
        raise NotFound(f"a run has no file '{name}' to show; ask for {', '.join(FILES)}")
    run = resolve_run(state.runs_dir, request.path_params["ref"])
    path = own_file(run, name)
    if path is None:
        raise NotFound(f"run '{run.name}' has no {name} yet (it is written when the run ends)")
    return FileResponse(path, media_type=FILES[name], headers={"Cache-Control": "no-cache"})


async def presets(request: Request) -> JSON:
    from convlens.web.training import lesson_recipe, recipe_options

    listing = await run_in_threadpool(_presets)
    return JSON({"presets": listing, "defaults": lesson_recipe(), "options": recipe_options()})


# --- reading runs ------------------------------------------------------------------------


def own_file(run: Run, name: str) -> Path | None:
    """``run``'s file ``name`` if it exists and lies in the run folder (not a symlink out)."""
    path = run.file(name)
    if not path.is_file() or not path.resolve().is_relative_to(run.path.resolve()):
        return None
    return path


def run_row(runs_dir: Path, run: Run) -> dict[str, Any]:
    """The headline figures of one run, or, for a run that cannot be read, a "damaged"
    row that says why: one broken folder never hides the others."""
    try:
        ref = run_ref(runs_dir, run)
    except ValueError:  # a symlink to a folder outside the runs folder
        ref = Path(os.path.relpath(run.path, runs_dir)).as_posix()
        return _damaged(
            ref,
            f"its folder is a link to {run.path.resolve()}, outside {runs_dir}; the lab "
            "reads only runs inside its runs folder",
        )
    try:
        return _row(ref, run)
    except ConvlensError as err:
        return _damaged(ref, str(err))
    except (KeyError, TypeError, ValueError, AttributeError, OSError) as err:
        return _damaged(ref, f"{run.path} is damaged ({type(err).__name__}: {err})")


def _damaged(ref: str, why: str) -> dict[str, Any]:
    return {"name": ref, "status": "damaged", "message": error_body(why)["error"],
            "has_weights": False}  # fmt: skip


def _row(ref: str, run: Run) -> dict[str, Any]:
    """Final figures from metrics.json, else the last epoch's."""
    config = run.run_config
    facts = config.dataset or DatasetFacts()
    state = run.state()
    history = run.history()
    metrics = run.metrics() if run.file(METRICS_JSON).exists() else {}
    last = history[-1] if history else {}
    final = bool(metrics)
    status = state.get("status", "new")
    resumable = status == "interrupted"  # from its last epoch, or from the start before one
    message = state.get("message") or None
    if status == "interrupted":  # the CLI's "resume with: convlens ..." is not the page's way
        done = int(state.get("epochs_done", len(history))) if run.file(CHECKPOINT).exists() else 0
        message = cancelled_message(done, config.train.epochs)
    return {
        "name": ref,
        "model": config.model.name,
        "preset": config.preset,
        "recipe": config.recipe,  # the preset whose recipe it started from
        # runs from before convlens recorded it lack the key (a question about the file)
        "recipe_recorded": "recipe" in run.config,
        "status": status,
        "message": message,
        "resumable": resumable,
        "epochs_done": int(state.get("epochs_done", len(history))),
        "epochs": config.train.epochs,
        "final": final,
        "test_accuracy": metrics.get("test_accuracy", last.get("test_accuracy")),
        # measured at the end of the last epoch; None for runs from before that measurement,
        # which have only the running mean over the steps (kept apart, named so)
        "train_accuracy": metrics.get("train_accuracy", last.get("train_accuracy")),
        "running_accuracy": metrics.get("running_accuracy", last.get("running_accuracy")),
        # test-time views behind test_accuracy and train_accuracy (None: not recorded)
        "test_views": metrics.get("test_views"),
        "train_views": metrics.get("train_views"),
        "seconds_per_epoch": metrics.get("seconds_per_epoch", last.get("seconds")),
        "params": _params(run),
        "dataset": facts.name or config.data.dataset,
        "is_sample": bool(facts.is_sample),
        "train_count": facts.train_count,  # images per epoch
        "test_count": facts.test_count,
        "created": config.created,
        "has_weights": run.file(WEIGHTS).exists(),
        "input_shape": list(config.input_shape),
        "classes": list(config.class_names),
    }


def _detail(runs_dir: Path, run: Run) -> dict[str, Any]:
    row = run_row(runs_dir, run)
    if row["status"] == "damaged":
        return row
    from convlens.models.summary import summarize

    config = run.run_config
    summary_path = own_file(run, SUMMARY)
    base = f"/api/runs/{row['name']}/files/"
    return {
        **row,
        "spec": config.model.to_text(),
        "train": config.train.to_dict(),
        "data": config.data.to_dict(),
        "imported": config.imported,  # where an imported model came from, else None
        "history": run.history(),
        "metrics": run.metrics() if run.file(METRICS_JSON).exists() else None,
        "summary": summarize(_network(run)).to_dict(),
        "summary_text": run.summary_text() if summary_path else None,
        "downloads": api_manage.formats(),
        "files": {
            key: base + name if own_file(run, name) else None
            for key, name in (("curves", CURVES), ("confusion", CONFUSION), ("summary", SUMMARY))
        },
    }


def _network(run: Run) -> Any:
    """The run's network with untrained weights: enough to count and describe layers."""
    from convlens.models.network import build_network

    return build_network(run.spec(), run.input_shape, len(run.class_names) or None)


_params_cache: dict[tuple[str, int], int | None] = {}
_params_lock = threading.Lock()


def _params(run: Run) -> int | None:
    """Parameter count, built once per run config (the table would rebuild every model)."""
    try:
        key = (str(run.path), run.file(CONFIG).stat().st_mtime_ns)
    except OSError:
        return None
    with _params_lock:
        if key in _params_cache:
            return _params_cache[key]
    try:
        from convlens.models.network import count_params

        count = sum(count_params(_network(run)))
    except ConvlensError:
        count = None
    with _params_lock:
        _params_cache[key] = count
    return count


@lru_cache(maxsize=1)
def _presets() -> list[dict[str, Any]]:
    """Presets with their parameter counts on 28x28 gray images, ten classes, and their
    recipes: what they change in the lesson's (``{}`` for a preset that trains with it)."""
    from convlens.models.network import build_network, count_params
    from convlens.models.registry import PRESETS

    out = []
    for name, preset in PRESETS.items():
        try:
            params: int | None = sum(count_params(build_network(preset.spec, (1, 28, 28), 10)))
        except ConvlensError:
            params = None
        out.append(
            {
                "name": name,
                "description": preset.description,
                "spec": preset.spec.to_text(),
                "params": params,
                "recipe": dict(preset.recipe),
            }
        )
    return out
