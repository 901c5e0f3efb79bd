"""A confusion-matrix cell, opened: the test images of one (true, predicted) pair.

Route::

    GET /api/runs/{run}/mistakes?true=T&predicted=P&limit=N

The run's test set is found again as ``convlens report`` finds it
(:func:`convlens.reports.run_report.predictions_on_test_set`: the same images, subset and
flip averaging it was evaluated with), so the counts agree with its confusion matrix.
The predictions are kept for the last few runs (keyed by the weights file's stamp): one
pass over 10,000 images takes a second or two, a click on another cell none.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from convlens.errors import ConvlensError
from convlens.runs import WEIGHTS, Run
from convlens.web.encode import image_png
from convlens.web.errors import Conflict, WebError
from convlens.web.responses import JSON
from convlens.web.runrefs import resolve_run, run_ref
from convlens.web.state import lab

MAX_IMAGES = 48  # images sent per cell at most
KEPT_RUNS = 2  # runs whose test-set predictions are kept in memory


def routes() -> list[Route]:
    return [Route("/api/runs/{ref:path}/mistakes", mistakes, methods=["GET"])]


async def mistakes(request: Request) -> JSON:
    state = lab(request)
    run = resolve_run(state.runs_dir, request.path_params["ref"])
    query = request.query_params
    true, predicted = _class_index(query, "true"), _class_index(query, "predicted")
    limit = _limit(query.get("limit", "24"))
    predictions = await run_in_threadpool(_predictions, request, run)
    return JSON(cell(run_ref(state.runs_dir, run), predictions, true, predicted, limit))


@dataclass(frozen=True)
class TestPredictions:
    """One run's answers on its test set, as it was evaluated."""

    images: np.ndarray  # (N, C, H, W) uint8
    labels: np.ndarray  # (N,) int
    probabilities: np.ndarray  # (N, K)
    class_names: list[str]
    tta_flip: bool  # averaged with each image's mirror, as the run was evaluated
    tta_shift: bool  # and with shifted copies (convlens.models.tta)

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)  # (N,)


_kept: OrderedDict[tuple[Path, int, int], TestPredictions] = OrderedDict()
_kept_lock = threading.Lock()


def forget(run: Run) -> None:
    """Drop a run's kept predictions (it was deleted or retrained)."""
    with _kept_lock:
        for key in [k for k in _kept if k[0] == run.path.resolve()]:
            del _kept[key]


def _predictions(request: Request, run: Run) -> TestPredictions:
    from convlens.reports.run_report import predictions_on_test_set

    try:
        stat = run.file(WEIGHTS).stat()
    except FileNotFoundError:
        raise Conflict(
            f"run '{run.name}' has no final weights yet, so its test images have no answers; "
            "pick a finished run"
        ) from None
    key = (run.path.resolve(), stat.st_mtime_ns, stat.st_size)
    with _kept_lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key]
    state = lab(request)
    with state.compute:
        try:
            images, labels, probabilities = predictions_on_test_set(run)
        except ConvlensError:
            if not state.data.data_dir:
                raise
            # the run's data folder may be gone; the server's own data is the next place
            images, labels, probabilities = predictions_on_test_set(run, state.data.data_dir)
    views = run.run_config.train.tta_options()
    found = TestPredictions(
        images,
        np.asarray(labels, dtype=np.int64),
        probabilities,
        list(run.class_names),
        views["tta_flip"],
        views["tta_shift"],
    )
    with _kept_lock:
        _kept[key] = found
        while len(_kept) > KEPT_RUNS:
            _kept.popitem(last=False)
    return found


def cell(name: str, found: TestPredictions, true: int, predicted: int, limit: int) -> dict:
    """The images with label ``true`` predicted as ``predicted``, most confident first."""
    classes = len(found.class_names)
    for value, what in ((true, "true"), (predicted, "predicted")):
        if value >= classes:
            raise WebError(f"'{what}' is a class number from 0 to {classes - 1}, not {value}")
    answers = found.predicted
    chosen = np.flatnonzero((found.labels == true) & (answers == predicted))
    confidence = found.probabilities[chosen, predicted]
    order = chosen[np.argsort(-confidence, kind="stable")][:limit]
    names = found.class_names
    items = []
    for index in order:
        p = found.probabilities[index]
        top = np.argsort(-p, kind="stable")[:3]
        items.append(
            {
                "index": int(index),
                "png": image_png(found.images[index]),
                "confidence": float(p[predicted]),
                "true_probability": float(p[true]),
                "top": [{"label": names[k], "probability": float(p[k])} for k in top],
            }
        )
    return {
        "run": name,
        "true": true,
        "predicted": predicted,
        "true_label": names[true],
        "predicted_label": names[predicted],
        "count": len(chosen),
        "of": int(np.count_nonzero(found.labels == true)),
        "tta_flip": found.tta_flip,
        "tta_shift": found.tta_shift,
        "items": items,
    }


def _class_index(query: Any, key: str) -> int:
    text = query.get(key)
    if text is None or not text.isdigit() or len(text) > 6:
        raise WebError(f"'{key}' must be a class number from 0 (a row or column of the matrix)")
    return int(text)


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_IMAGES:
        raise WebError(f"'limit' must be a number from 1 to {MAX_IMAGES}")
    return int(text)
