"""The filter playground's API: one picture through one kernel by hand, then pooling.

Routes (JSON in and out)::

    GET  /api/kernels      the kernel library: names, 3x3 values, what each does
    GET  /api/samples      Fashion-MNIST test images and the photo, as thumbnails
    POST /api/images       upload a picture (raw bytes, at most 5 MB) -> {"id": "upload:..."}
    POST /api/filter       {image, kernel, weight, pool} -> input, filtered, pooled PNGs
    POST /api/pixel        {image, kernel, weight, row, col} -> one output pixel worked out;
                           {..., pool, pool_row, pool_col}: a pooled pixel, its block and
                           the block's largest filtered pixel worked out

The numbers are :mod:`convlens.byhand`' own: ``conv2d`` (valid, stride 1) times the weight,
clamped to 0..255 for display with ``clamp_to_uint8``, pooled with ``max_pool2d`` before
clamping, exactly as ``convlens filter`` draws its slide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from convlens.byhand import (
    ALIASES,
    KERNELS,
    Kernel,
    clamp_to_uint8,
    conv2d,
    explain_pixel,
    max_pool2d,
    parse_kernel,
)
from convlens.byhand.arithmetic import explain_pool
from convlens.web.bodies import UPLOAD_LIMIT, media_type, read_body, read_json
from convlens.web.body_fields import anything, check_whole, flag, number, text, whole
from convlens.web.encode import png_data_url
from convlens.web.errors import UnsupportedMedia, WebError
from convlens.web.responses import JSON
from convlens.web.state import lab

VALUES_SIDE = 256  # raw numbers are sent only for outputs this small (28x28 -> 26x26 is)


@dataclass(frozen=True)
class FilterBody:
    image: str = text(example="fashion:0")  # fashion:N, photo, upload:ID
    kernel: Any = anything()  # a name, typed numbers or rows of numbers (kernel_from)
    weight: float = number(1.0)
    pool: int = whole(2, 0, 8)  # 0: no pooling
    values: bool | None = flag()  # send the raw numbers too


@dataclass(frozen=True)
class PixelBody:
    """One output pixel (``row``, ``col``), or a pooled one (``pool_row``, ``pool_col``)."""

    image: str = text(example="fashion:0")
    kernel: Any = anything()
    weight: float = number(1.0)
    row: int | None = whole(None, 0)
    col: int | None = whole(None, 0)
    pool: int | None = whole()  # for a pooled pixel: from 1 to 8, default 2
    pool_row: int | None = whole(None, 0)
    pool_col: int | None = whole(None, 0)


def routes() -> list[Route]:
    return [
        Route("/api/kernels", kernels, methods=["GET"]),
        Route("/api/samples", samples, methods=["GET"]),
        Route("/api/images", upload, methods=["POST"]),
        Route("/api/filter", filter_image, methods=["POST"]),
        Route("/api/pixel", pixel, methods=["POST"]),
    ]


async def kernels(request: Request) -> JSON:
    return JSON(
        {
            "kernels": [_kernel_json(k) for k in KERNELS.values()],
            "aliases": dict(ALIASES),
        }
    )


async def samples(request: Request) -> JSON:
    return JSON(await run_in_threadpool(lab(request).pictures.samples))


async def upload(request: Request) -> JSON:
    """The body is the file itself (``fetch(url, {body: file})``), not a multipart form."""
    kind = media_type(request)
    if kind and not (kind.startswith("image/") or kind == "application/octet-stream"):
        raise UnsupportedMedia(
            f"send the picture's bytes with an image Content-Type (image/png, image/jpeg, ...), "
            f"not {kind}"
        )
    data = await read_body(request, UPLOAD_LIMIT, "the uploaded file")
    return JSON(await run_in_threadpool(lab(request).pictures.add_upload, data))


async def filter_image(request: Request) -> JSON:
    body = await read_json(request, FilterBody)
    return JSON(await run_in_threadpool(_limited, _filter, request, body))


def _limited(work: Any, request: Request, body: FilterBody) -> dict[str, Any]:
    with lab(request).compute:
        return work(request, body)


async def pixel(request: Request) -> JSON:
    body = await read_json(request, PixelBody)
    return JSON(await run_in_threadpool(_pixel, request, body))


def _filter(request: Request, body: FilterBody) -> dict[str, Any]:
    image, label = lab(request).pictures.gray(body.image)
    kernel = kernel_from(body.kernel)
    weight, pool, want_values = body.weight, body.pool, body.values or False

    filtered = conv2d(image, kernel.values, weight=weight)  # (H, W) -> (H-k+1, W-k+1)
    pooled = max_pool2d(filtered, pool) if pool else None  # -> (H'//pool, W'//pool)
    steps = [_size(image), f"conv {_size(kernel.values)}", _size(filtered)]
    if pooled is not None:
        steps += [f"max pool {pool}", _size(pooled)]
    if want_values and max(filtered.shape) > VALUES_SIDE:
        raise WebError(
            f"raw values are sent only for outputs up to {VALUES_SIDE}x{VALUES_SIDE}; "
            f'this one is {_size(filtered)} (leave out "values")'
        )
    return {
        "image": {"ref": body.image, "label": label, **_picture(image)},
        "kernel": _kernel_json(kernel),
        "weight": weight,
        "pool": pool,
        "pipeline": " \u2192 ".join(steps),
        "filtered": _picture(clamp_to_uint8(filtered), filtered if want_values else None),
        "pooled": None
        if pooled is None
        else _picture(clamp_to_uint8(pooled), pooled if want_values else None),
    }


def _pixel(request: Request, body: PixelBody) -> dict[str, Any]:
    image, _ = lab(request).pictures.gray(body.image)
    kernel = kernel_from(body.kernel)
    weight = body.weight
    pooling = None
    if body.pool_row is not None or body.pool_col is not None:
        pooling = _pooled_block(image, kernel, weight, body)
        row, col = pooling["at"]  # the block's largest filtered pixel: what pooling keeps
    else:
        row, col = body.row, body.col
        if row is None or col is None:
            raise WebError("'row' and 'col' are needed: the output pixel to work out, from 0")
    work = explain_pixel(image, kernel.values, row, col, weight=weight)
    return {
        "pooling": pooling,
        "row": work.row,
        "col": work.col,
        "centre": list(work.centre),
        "neighbourhood": work.neighbourhood.tolist(),
        "weights": work.weights.tolist(),
        "products": work.products.tolist(),
        "total": work.total,
        "weight": work.weight,
        "weighted": work.weighted,
        "clamped": work.clamped,
        "text": work.format(),
    }


def _pooled_block(image: np.ndarray, kernel: Kernel, weight: float, body: PixelBody) -> dict:
    """Pooled pixel ``(pool_row, pool_col)``: its ``pool x pool`` block of filtered values
    (before clamping, as ``max_pool2d`` sees them) and where the block's maximum is.

    Only the block is convolved: the input window it needs is ``pool + k - 1`` a side.
    """
    pool = check_whole("pool", body.pool, 2, 1, 8)
    k_h, k_w = kernel.values.shape
    out_h, out_w = image.shape[0] - k_h + 1, image.shape[1] - k_w + 1
    rows, cols = out_h // pool, out_w // pool
    p_row = body.pool_row or 0
    p_col = body.pool_col or 0
    if rows < 1 or cols < 1 or p_row >= rows or p_col >= cols:
        raise WebError(
            f"the pooled picture is {rows}x{cols}; pool_row goes from 0 to {rows - 1} and "
            f"pool_col from 0 to {cols - 1}"
        )
    top, left = p_row * pool, p_col * pool  # the block's corner in the filtered picture
    window = image[top : top + pool + k_h - 1, left : left + pool + k_w - 1]
    work = explain_pool(conv2d(window, kernel.values, weight=weight), 0, 0, pool)  # the block
    block = work.block  # (pool, pool) filtered values
    r, c = np.unravel_index(int(np.argmax(block)), block.shape)  # the first largest
    return {
        "size": pool,
        "row": p_row,
        "col": p_col,
        "top": top,
        "left": left,
        "block": block.tolist(),
        "clamped": clamp_to_uint8(block).tolist(),
        "max": work.maximum,
        "shown": work.clamped,  # the pooled picture's gray level there
        "at": [top + int(r), left + int(c)],
    }


def kernel_from(value: Any) -> Kernel:
    """A kernel given by name, as typed text, or as rows of numbers: all through
    :func:`convlens.byhand.parse_kernel`, so the page and the CLI accept the same kernels."""
    if value is None:
        raise WebError("'kernel' is missing; give a name such as \"vertical\" or rows of numbers")
    if isinstance(value, str):
        if len(value) > 2000:
            raise WebError("'kernel' is longer than 2000 characters")
        return parse_kernel(value)
    if isinstance(value, list) and value and all(isinstance(r, list) for r in value):
        if len(value) > 15 or any(len(r) > 15 for r in value):
            raise WebError("'kernel' may be at most 15x15")
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) for r in value for v in r
        ):
            raise WebError("'kernel' rows must hold numbers only")
        # repr() round-trips every float exactly, so the text form loses nothing.
        return parse_kernel("; ".join(" ".join(repr(float(v)) for v in r) for r in value))
    raise WebError("'kernel' must be a name, typed numbers, or rows of numbers")


def _kernel_json(kernel: Kernel) -> dict[str, Any]:
    values = kernel.values.tolist()
    return {"name": kernel.name, "values": values, "description": kernel.description}


def _picture(pixels: np.ndarray, values: np.ndarray | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "width": int(pixels.shape[1]),
        "height": int(pixels.shape[0]),
        "png": png_data_url(pixels),
    }
    if values is not None:
        out["values"] = values.tolist()
    return out


def _size(array: np.ndarray) -> str:
    return f"{array.shape[0]}x{array.shape[1]}"
