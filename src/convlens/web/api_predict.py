"""Predict and journey: what a trained run says about a picture, and why.

Routes (JSON in and out; the picture is ``"pixels"`` (a drawing) or ``"image": REF``)::

    POST /api/predict    {run, pixels | image, invert} -> probabilities for every class
    POST /api/features   {run, ...} -> every conv and pool layer's feature maps (inferno;
                         gmp's as 1x1 maps), and under "prediction" what /api/predict
                         answers, from the same pass
    POST /api/saliency   {run, ..., target} -> Grad-CAM (or input gradients) overlay
    POST /api/unit       {run, ..., layer, index, row, col} -> one pixel of a learned
                         feature map worked out: per input channel, window x weights
    GET  /api/runs/{run}/filters/{layer}?index=F -> the weights of one learned filter

A photo is prepared as ``convlens predict`` prepares it (:func:`prepare_for`: gray or
RGB as the run was trained, shrunk with its aspect kept, inverted when its background
is the other way round from the run's training images). A drawing is white on black,
like Fashion-MNIST: it is inverted only for a run trained on a light background, and
resized if the run takes another size. The probabilities and maps come from
:func:`convlens.introspect.look` (one ``Network.trace()`` pass for both), saliency and the
worked pixel from :mod:`convlens.introspect` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from convlens.introspect import (
    explain,
    explain_unit,
    journey_layer_names,
    learned_filters,
    look,
)
from convlens.models.network import Network
from convlens.predict import prepare_for
from convlens.runs import Run
from convlens.web.bodies import ascii_digits, read_json
from convlens.web.body_fields import anything, check_whole, flag, missing, text, whole
from convlens.web.encode import image_png, inferno_png, overlay_png
from convlens.web.errors import WebError
from convlens.web.pictures import drawing
from convlens.web.responses import JSON
from convlens.web.state import lab

MAX_MAPS = 64  # feature maps sent per layer unless asked for fewer


@dataclass(frozen=True)
class PictureBody:
    """A run and a picture: what every look at a trained network starts from."""

    run: str = text(example="cnn-20250101-120000")
    pixels: Any = anything()  # a drawing: rows of gray levels, white on black
    image: str | None = text()  # or a picture: fashion:N, photo, upload:ID
    invert: bool | None = flag()  # for a picture; null: by its background


@dataclass(frozen=True)
class FeaturesBody(PictureBody):
    max_maps: int = whole(MAX_MAPS, 1, 512)


@dataclass(frozen=True)
class SaliencyBody(PictureBody):
    target: int | None = whole()  # a class of the run (checked once the run is known)


@dataclass(frozen=True)
class UnitBody(PictureBody):
    layer: str = text(example="conv2d")
    index: int = whole(0, 0)
    row: int = whole(0, 0)
    col: int = whole(0, 0)


def routes() -> list[Route]:
    return [
        Route("/api/predict", predict, methods=["POST"]),
        Route("/api/features", features, methods=["POST"]),
        Route("/api/saliency", saliency, methods=["POST"]),
        Route("/api/unit", unit, methods=["POST"]),
        Route("/api/runs/{ref:path}/filters/{layer}", learned_filter, methods=["GET"]),
    ]


async def predict(request: Request) -> JSON:
    body = await read_json(request, PictureBody)
    return JSON(await run_in_threadpool(_limited, _predict, request, body))


async def features(request: Request) -> JSON:
    body = await read_json(request, FeaturesBody)
    return JSON(await run_in_threadpool(_limited, _features, request, body))


async def saliency(request: Request) -> JSON:
    body = await read_json(request, SaliencyBody)
    return JSON(await run_in_threadpool(_limited, _saliency, request, body))


async def unit(request: Request) -> JSON:
    body = await read_json(request, UnitBody)
    return JSON(await run_in_threadpool(_limited, _unit, request, body))


def _limited(work: Any, request: Request, body: PictureBody) -> dict[str, Any]:
    with lab(request).compute:
        return work(request, body)


async def learned_filter(request: Request) -> JSON:
    return JSON(await run_in_threadpool(_learned_filter, request))


# --- the work, in a worker thread ------------------------------------------------------


def network_input(request: Request, body: PictureBody) -> tuple[Run, Network, np.ndarray]:
    """-> (run, network, the picture as the network's input: (C, H, W) uint8)."""
    run, network = lab(request).networks.get(body.run)
    if body.pixels is not None:
        if body.image is not None:
            raise WebError("give either 'pixels' (a drawing) or 'image' (a picture), not both")
        picture = Image.fromarray(drawing(body.pixels), "L")
        # White strokes on black: inverted only for a run trained on a light background.
        return run, network, prepare_for(run, picture, background="dark")
    if body.image is None or not body.image.strip():
        raise missing("image", "fashion:0")
    picture, _ = lab(request).pictures.picture(body.image)
    return run, network, prepare_for(run, picture, body.invert)


def _predict(request: Request, body: PictureBody) -> dict[str, Any]:
    run, network, image = network_input(request, body)
    return _answer(body.run, run, image, look(network, image[None]).probabilities[0])


def _answer(ref: str | None, run: Run, image: np.ndarray, probabilities: np.ndarray) -> dict:
    """What /api/predict says about ``image`` (C, H, W) uint8, from its (K,) probabilities."""
    names = run.class_names
    best = int(probabilities.argmax())
    return {
        "run": ref,
        "classes": names,
        "probabilities": [float(p) for p in probabilities],
        "predicted": best,
        "label": names[best],
        "image": {"shape": list(image.shape), "png": image_png(image)},
    }


def _features(request: Request, body: FeaturesBody) -> dict[str, Any]:
    run, network, image = network_input(request, body)
    limit = body.max_maps
    names = journey_layer_names(network)  # conv and pool layers, in order
    seen = look(network, image[None], names)  # one pass: the answer and every map
    specs = network.layer_specs()
    layers = []
    for name in names:
        out = seen.maps[name][0]  # (C_l, H_l, W_l)
        # A 1x1 map (gmp, maxpool(3) of 3x3 maps) on its own range is one colour whatever
        # its value: such a layer's maps are coloured on the layer's range ("scale"), so
        # they compare; "min" and "max" stay each map's own (for 1x1, its value).
        scale = (float(out.min()), float(out.max())) if out.shape[1:] == (1, 1) else None
        tiles = []
        for index in range(min(limit, out.shape[0])):
            values = out[index]
            png, _, _ = inferno_png(values, scale)
            tile = {"index": index, "png": png, "min": float(values.min()),
                    "max": float(values.max())}  # fmt: skip
            if scale is not None:
                tile["scale"] = list(scale)
            tiles.append(tile)
        layers.append(
            {
                "name": name,
                "type": specs[name].keras_type,
                "conv": name in network.conv_layer_names(),
                "shape": list(out.shape),
                "maps": tiles,
            }
        )
    c, h, w = image.shape
    steps = [f"input {h}x{w}x{c}"] + [
        f"{layer['name']} {layer['shape'][1]}x{layer['shape'][2]}x{layer['shape'][0]}"
        for layer in layers
    ]
    return {
        "run": body.run,
        "image": {"shape": list(image.shape), "png": image_png(image)},
        "layers": layers,
        "shape_line": " \u2192 ".join(steps),
        "note": None
        if layers
        else f"model '{network.spec.name}' has no conv or pool layer, so there are no "
        "feature maps: it looks at the picture as one long row of numbers",
        "prediction": _answer(body.run, run, image, seen.probabilities[0]),
    }


def _saliency(request: Request, body: SaliencyBody) -> dict[str, Any]:
    run, network, image = network_input(request, body)
    target = check_whole("target", body.target, None, 0, network.num_classes - 1)
    result = explain(network, image, target)  # Grad-CAM where a conv layer exists
    heat = result.cam if result.cam is not None else result.gradients  # (H, W) in 0..1
    names = run.class_names
    return {
        "run": body.run,
        "method": "Grad-CAM" if result.cam is not None else "input gradients",
        "layer": result.cam_layer,
        "target": result.target,
        "label": names[result.target],
        "png": overlay_png(image.astype(np.float64), heat),
        "heat": np.round(heat, 4).tolist(),
    }


def _learned_filter(request: Request) -> dict[str, Any]:
    ref, layer = request.path_params["ref"], request.path_params["layer"]
    _, network = lab(request).networks.get(ref)
    text = request.query_params.get("index", "0")
    if not ascii_digits(text):
        raise WebError(f"'index' must be a filter number from 0, not {text[:20]!r}")
    weights = learned_filters(network, layer)  # (F, C, k, k)
    index = int(text)
    if index >= weights.shape[0]:
        raise WebError(
            f"layer '{layer}' has {weights.shape[0]} filters; 'index' goes from 0 to "
            f"{weights.shape[0] - 1}"
        )
    kernel = weights[index]  # (C, k, k)
    return {
        "layer": layer,
        "index": index,
        "shape": list(kernel.shape),
        "weights": np.round(kernel.astype(np.float64), 5).tolist(),
        "min": float(kernel.min()),
        "max": float(kernel.max()),
    }


def _unit(request: Request, body: UnitBody) -> dict[str, Any]:
    """The arithmetic of one feature-map pixel: what the Step-through panel shows."""
    _, network, image = network_input(request, body)
    work = explain_unit(network, image, body.layer, body.index, body.row, body.col)
    return {
        "layer": work.layer,
        "index": work.filter_index,
        "row": work.row,
        "col": work.col,
        "input": work.input_name,
        "top": work.top,
        "left": work.left,
        "kernel": list(work.kernel),
        "channels": [
            {
                "channel": ch.channel,
                "window": np.round(ch.window, 5).tolist(),
                "weights": np.round(ch.weights, 5).tolist(),
                "products": np.round(ch.products, 5).tolist(),
                "sum": ch.total,
            }
            for ch in work.channels
        ],
        "bias": work.bias,
        "activation": work.activation,
        "pre_activation": work.pre_activation,
        "value": work.value,
        "layer_value": work.layer_value,
    }
