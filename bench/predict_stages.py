"""Where a realistic prediction's time goes: files on disk and the web page's request.

Issue #12's goal 7 asks ``predict`` and the web page for >= 10,000 images/s batched.
The network's own share is ``bench/inference.py``'s; this script times what surrounds
it, stage by stage, on the same images, each stage as wall time and as this process's
CPU time (a busy machine inflates the CPU time far less):

- ``files``: ``convlens predict RUN FILE...``'s work (:func:`convlens.predict_files`)
  on a folder of PNG files: decoding each file (``load_image``), measuring its
  background on the border, preparing it (``prepare_image``: grey, resized keeping the
  aspect, padded, inverted), stacking, and the network on the whole batch
  (``predict_arrays``); ``predict_files`` itself, end to end; and the per-file work
  (decode, background, prepare) serial and on thread pools of 2 and 4: what a pool gains
  where the cores are idle, if Pillow's decoding and resizing run without the GIL (CPU
  time above wall time says that threads ran at once).
- ``request``: the web page's /api/predict for a drawing, as its handler runs once the
  JSON is parsed: the rows of grey levels checked and turned into pixels (``drawing``),
  the picture prepared (``prepare_for``), the network (``look``), and the answer with
  its PNG (``_answer``); and the whole handler, end to end, on the Starlette test client
  (parsing, the thread pool, JSON out) when it is installed.

Pictures: Fashion-MNIST's first test images as 28x28 PNG files (``--size 28``: as a
user's own small files would be) or enlarged to ``--size`` pixels (a photo's decode and
resize). The stages are interleaved round by round; each figure is a median of the
rounds, as images per second of the stage alone::

    .venv/bin/python bench/predict_stages.py RUN [--images 1000] [--size 28]
        [--rounds 5] [--threads 2] [--data-dir DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from convlens.data.images import load_image, prepare_image
from convlens.data.preparation import picture_background
from convlens.predict import predict_arrays, predict_files, prepare_for
from convlens.runs import Run

# Thread pools that the per-file work is timed on, beside the serial loop of predict_files
POOL_THREADS = (2, 4)


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def write_pictures(folder: Path, images: np.ndarray, size: int) -> list[Path]:
    """Each (28, 28) uint8 test image as a PNG file, enlarged to ``size`` (bilinear)."""
    paths = []
    for i, pixels in enumerate(images):
        picture = Image.fromarray(pixels, "L")
        if size != pixels.shape[0]:
            picture = picture.resize((size, size), Image.Resampling.BILINEAR)
        path = folder / f"test-{i:05d}.png"
        picture.save(path)
        paths.append(path)
    return paths


def file_stages(run: Run, paths: list[Path]) -> dict[str, Callable[[], object]]:
    """Each stage of predict_files on ``paths``, over all of them, from its own inputs."""
    network = run.network()
    preparation = run.preparation
    decoded = [load_image(p) for p in paths]
    inverts = [picture_background(image) != preparation.background for image in decoded]
    prepared = [
        prepare_image(image, size=preparation.size, channels=preparation.channels, invert=flip)
        for image, flip in zip(decoded, inverts, strict=True)
    ]
    batch = np.stack(prepared)

    def decode() -> object:
        return [load_image(p) for p in paths]

    def background() -> object:
        return [picture_background(image) for image in decoded]

    def prepare() -> object:
        size, channels = preparation.size, preparation.channels
        return [
            prepare_image(image, size=size, channels=channels, invert=flip)
            for image, flip in zip(decoded, inverts, strict=True)
        ]

    def each_file(path: Path) -> np.ndarray:  # what predict_files does per file
        return prepare_for(network, path)

    pools = {threads: ThreadPoolExecutor(threads) for threads in POOL_THREADS}

    def pooled(threads: int) -> object:  # in order, the whole list submitted at once
        return list(pools[threads].map(each_file, paths))

    return {
        "decode (load_image)": decode,
        "background (border median)": background,
        "prepare (grey, resize, pad, invert)": prepare,
        "stack": lambda: np.stack(prepared),
        "network (predict_arrays on the batch)": lambda: predict_arrays(network, batch),
        "predict_files, end to end": lambda: predict_files(run, paths, network=network),
        "per file (decode, background, prepare), serial": lambda: [each_file(p) for p in paths],
        **{
            f"per file on a pool of {threads} threads": (lambda threads=threads: pooled(threads))
            for threads in POOL_THREADS
        },
    }


def request_stages(
    run: Run, ref: str, drawings: list[list[list[int]]], stack: contextlib.ExitStack
) -> dict:
    """Each stage of /api/predict on ``drawings`` (rows of grey levels), one request
    each, in process; and the whole route on the test client if Starlette has one."""
    from convlens.introspect import look
    from convlens.web.api_predict import _answer
    from convlens.web.pictures import drawing

    network = run.network()
    pixels = [drawing(d) for d in drawings]
    pictures = [Image.fromarray(p, "L") for p in pixels]
    images = [prepare_for(run, p, background="dark") for p in pictures]
    answers = [look(network, image[None]).probabilities[0] for image in images]

    stages: dict[str, Callable[[], object]] = {
        "drawing (rows -> pixels)": lambda: [drawing(d) for d in drawings],
        "prepare_for (resize, invert)": lambda: [
            prepare_for(run, p, background="dark") for p in pictures
        ],
        "network (look, one image)": lambda: [look(network, image[None]) for image in images],
        "answer (PNG, lists)": lambda: [
            _answer(ref, run, image, p) for image, p in zip(images, answers, strict=True)
        ],
    }
    client = _test_client(run, stack)
    if client is not None:

        def whole() -> object:
            for d in drawings:
                response = client.post("/api/predict", json={"run": ref, "pixels": d})
                response.raise_for_status()

        stages["POST /api/predict, end to end (test client)"] = whole
    return stages


def _test_client(run: Run, stack: contextlib.ExitStack):
    """A Starlette test client of the web app serving the run's runs folder (started:
    its lifespan runs until ``stack`` closes), or None without one."""
    try:
        from starlette.testclient import TestClient

        from convlens.web.app import create_app
    except ImportError:
        return None
    return stack.enter_context(TestClient(create_app(runs_dir=run.path.parent)))


def measure(stages: dict[str, Callable[[], object]], count: int, rounds: int) -> dict:
    """Each stage once per round, in rotation; medians over the rounds."""
    for fn in stages.values():
        fn()  # warm: the engine builds its session, caches fill
    walls: dict[str, list[float]] = {name: [] for name in stages}
    cpus: dict[str, list[float]] = {name: [] for name in stages}
    order = list(stages.items())
    for round_ in range(rounds):
        at = round_ % len(order)
        for name, fn in order[at:] + order[:at]:
            wall, cpu = timed(fn)
            walls[name].append(wall)
            cpus[name].append(cpu)
    return {
        name: {
            "images_per_s": count / statistics.median(walls[name]),
            "us_per_image": 1e6 * statistics.median(walls[name]) / count,
            "cpu_us_per_image": 1e6 * statistics.median(cpus[name]) / count,
        }
        for name in stages
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="a run folder of a 28x28 grey model (e.g. cnn)")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200, help="drawings sent")
    parser.add_argument("--size", type=int, default=28, help="the files' side in pixels")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run = Run.open(args.run)
    dataset = run.dataset(args.data_dir, progress=False)
    test = dataset.test_images[: args.images, 0]  # (N, 28, 28) uint8
    drawings = [image.tolist() for image in test[: args.requests]]
    loadavg = Path("/proc/loadavg").read_text().split()[:3]
    with tempfile.TemporaryDirectory() as folder:
        paths = write_pictures(Path(folder), test, args.size)
        files = measure(file_stages(run, paths), len(paths), args.rounds)
    with contextlib.ExitStack() as stack:
        stages = request_stages(run, run.name, drawings, stack)
        requests = measure(stages, len(drawings), args.rounds)
    results = {
        "files": files,
        "request": requests,
        "images": len(test),
        "requests": len(drawings),
        "size": args.size,
        "threads": args.threads,
        "rounds": args.rounds,
        "loadavg_at_start": loadavg,
        "loadavg_at_end": Path("/proc/loadavg").read_text().split()[:3],
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
