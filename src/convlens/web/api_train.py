"""Training from the page: start, watch (server-sent events), cancel, resume.

Routes::

    GET  /api/train          the current (or last) training, as a snapshot
    POST /api/train          {model, preset, RECIPE..., train_subset, name} -> 202; 409 busy
    POST /api/train/resume   {run, epochs} -> 202; continue an interrupted run
    POST /api/train/cancel   stop after the current step; the run ends "interrupted"
    GET  /api/train/events   text/event-stream: start, epoch, step, epoch_end, note, done

``RECIPE`` is any of :data:`convlens.recipe.RECIPE_FIELDS` (``epochs``, ``batch_size``,
``lr``, ``optimizer``, ``momentum``, ``schedule``, ``warmup``, ``epoch_images``, ...),
on top of the recipe of ``preset`` (default: the model's own when it is a preset; ``""``: the
lesson's defaults). :class:`StartBody` takes them from
:data:`convlens.recipe.RECIPE_FIELDS`, typed by :class:`TrainConfig`'s own fields. Only their
types are checked here; their values are TrainConfig's to judge, so ``"lr": 0`` gets the same
one line as ``convlens train --lr 0``.

The event stream begins with a ``status`` snapshot, then sends each event with its id,
so a page that reconnects (``Last-Event-ID``) misses nothing; it ends with ``end`` once
the training is over. The data comes from :class:`convlens.web.training.WebReporter`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from convlens.recipe import RECIPE_FIELDS, TrainConfig
from convlens.web.bodies import ascii_digits, read_json
from convlens.web.body_fields import flag, number, text, whole
from convlens.web.responses import JSON, json_safe
from convlens.web.state import lab

POLL_SECONDS = 0.2  # how often the stream looks for new events
HEARTBEAT_SECONDS = 15.0  # a comment line now and then keeps proxies from closing it
MAX_EPOCHS = 100


def _recipe_field(field: dataclasses.Field) -> Any:
    """A TrainConfig field as the page sends it: its type, checked here; its value,
    judged by TrainConfig. Left out (or null), the preset's recipe decides."""
    kind = str(field.type)
    if field.name == "epochs":
        return whole(None, 1, MAX_EPOCHS)  # the page's own limit
    if "bool" in kind:
        return flag()
    if "int" in kind:
        return whole()
    if "float" in kind:
        return number()
    return text(limit=100)


_TRAIN_FIELDS = {field.name: field for field in dataclasses.fields(TrainConfig)}

#: ``POST /api/train``: the model, the recipe fields, then the preset, subset and name.
StartBody = dataclasses.make_dataclass(
    "StartBody",
    [
        ("model", str, text(example="cnn")),
        *((name, Any, _recipe_field(_TRAIN_FIELDS[name])) for name in RECIPE_FIELDS),
        ("preset", str | None, text(limit=100)),
        ("train_subset", int | None, whole(None, 1)),
        ("name", str | None, text(limit=100)),
    ],
    frozen=True,
)


@dataclass(frozen=True)
class ResumeBody:
    run: str = text(example="cnn-20250101-120000")
    epochs: int | None = whole(None, 1, MAX_EPOCHS)


def routes() -> list[Route]:
    return [
        Route("/api/train", status, methods=["GET"]),
        Route("/api/train", start, methods=["POST"]),
        Route("/api/train/resume", resume, methods=["POST"]),
        Route("/api/train/cancel", cancel, methods=["POST"]),
        Route("/api/train/events", events, methods=["GET"]),
    ]


async def status(request: Request) -> JSON:
    return JSON(lab(request).training.snapshot())


async def start(request: Request) -> JSON:
    body = await read_json(request, StartBody)
    snapshot = lab(request).training.start(  # quick: checks only
        body.model,
        recipe_fields(body),
        preset=body.preset,
        train_subset=body.train_subset,
        name=body.name,
    )
    return JSON(snapshot, status_code=202)


def recipe_fields(body: Any) -> dict[str, Any]:
    """The recipe fields a :class:`StartBody` gives (left out or null: not overrides)."""
    given = {name: getattr(body, name) for name in RECIPE_FIELDS}
    return {name: value for name, value in given.items() if value is not None}


async def resume(request: Request) -> JSON:
    body = await read_json(request, ResumeBody)
    return JSON(lab(request).training.resume(body.run, body.epochs), status_code=202)


async def cancel(request: Request) -> JSON:
    return JSON(lab(request).training.cancel())


async def events(request: Request) -> StreamingResponse:
    manager = lab(request).training
    snapshot = manager.snapshot()
    given = request.headers.get("last-event-id") or request.query_params.get("after") or ""
    last = int(given) if ascii_digits(given) else snapshot["last_event"]

    async def stream() -> AsyncIterator[str]:
        nonlocal last
        if not ascii_digits(given) or last < manager.oldest_event() - 1:
            yield _sse("status", snapshot)  # new page, or one that missed too much
            last = max(last, snapshot["last_event"])
        quiet = 0.0
        while True:
            pending, active = manager.events_after(last)
            for event in pending:
                yield _sse(event.kind, event.data, event.id)
                last = event.id
            if not active and not pending:
                yield _sse("end", {"status": manager.snapshot()["status"]})
                return
            await asyncio.sleep(POLL_SECONDS)
            quiet = 0.0 if pending else quiet + POLL_SECONDS
            if quiet >= HEARTBEAT_SECONDS:
                quiet = 0.0
                yield ": still here\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _sse(kind: str, data: dict[str, Any], event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    body = json.dumps(json_safe(data), separators=(",", ":"), allow_nan=False)
    return f"{head}event: {kind}\ndata: {body}\n\n"
