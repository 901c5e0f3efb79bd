"""Inference for the lesson's CNN: single-image latency and batch throughput, side by side.

Engines, each measured on the same weights and the same images, interleaved round by
round in one process:

- ``eager-nchw``: the network as it trains, ``network(x)`` under ``torch.no_grad``
  (what ``predict``, ``evaluate`` and the web page ran before the inference engine);
- ``eager-channels-last``: a channels_last copy under ``torch.inference_mode`` (the
  engine's fallback without the onnx extra);
- ``convlens``: ``convlens.models.inference.logits``, what ``predict``, ``evaluate``, the
  fp32 evaluation passes and the web page call now (ONNX Runtime with the onnx extra);
- ``onnxruntime-file``: ONNX Runtime on the ``convlens export --onnx`` file, as a
  deployment would run it (default session options).

::

    .venv/bin/python bench/inference.py [RUN] [--model cnn] [--threads 1] [--repeats 5]
        [--json out.json]

RUN is a trained run folder (else a freshly initialised ``--model``: the speed does not
depend on the weights' values). Latency: median and p95 of single-image calls. Throughput:
images/s over 2,048 images in batches of 128, 512 and 1,024 (median of the rounds), also
per second of the process's CPU time (what a busy machine inflates least). Also
recorded: what building the engine cost, and the largest difference from eager.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from convlens.models import inference
from convlens.models.network import build_network
from convlens.models.registry import get_preset

BATCHES = (128, 512, 1024)
IMAGES = 2048


def per_call(fn, calls: int) -> list[float]:
    for _ in range(min(20, calls)):
        fn()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def images_per_second(fn, images: torch.Tensor, batch: int) -> tuple[float, float]:
    """(images per second of wall time, images per second of this process's CPU time).

    The CPU figure counts every thread of the process (a session whose idle pool threads
    spin, as the export file's default options do, counts its spinning too). On a busy
    machine it is the one that travels: the wall figure says what share of the cores the
    process got; ``threads`` times the CPU figure bounds what free cores would give."""
    fn(images[:batch])  # warm this batch size
    start, start_cpu = time.perf_counter(), time.process_time()
    for begin in range(0, images.shape[0], batch):
        fn(images[begin : begin + batch])
    cpu = time.process_time() - start_cpu
    return images.shape[0] / (time.perf_counter() - start), images.shape[0] / cpu


def onnx_file_session(network, threads: int):
    """ONNX Runtime on the file ``convlens export --onnx`` writes (default options)."""
    import onnxruntime as ort

    from convlens.export import _Probabilities, _quiet

    path = Path(tempfile.mkdtemp()) / "model.onnx"
    c, h, w = network.input_shape
    with _quiet():
        program = torch.onnx.export(
            _Probabilities(network), (torch.rand(2, c, h, w),), None, dynamo=True,
            input_names=["images"], dynamic_shapes={"images": {0: torch.export.Dim("n")}},
        )  # fmt: skip
    program.save(str(path))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"images": x.numpy()})[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", nargs="?")
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--threads", type=int, default=None, help="torch's and ORT's threads")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1000, help="single-image calls a round")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    if args.run:
        from convlens.runs import Run

        network = Run.open(args.run).network()
    else:
        torch.manual_seed(0)
        network = build_network(get_preset(args.model).spec, (1, 28, 28), 10).eval()
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.random((IMAGES, *network.input_shape), dtype=np.float32))
    one = images[:1]

    twin = copy.deepcopy(network).to(memory_format=torch.channels_last)

    def eager_nchw(x):
        with torch.no_grad():
            return network(x)

    def eager_channels_last(x):
        with torch.inference_mode():
            return twin(x.contiguous(memory_format=torch.channels_last))

    start = time.perf_counter()
    inference.logits(network, images[: inference.EXPORT_AFTER_IMAGES])  # builds the engine
    build_seconds = time.perf_counter() - start
    engines = {
        "eager-nchw": eager_nchw,
        "eager-channels-last": eager_channels_last,
        "convlens": lambda x: inference.logits(network, x),
    }
    with contextlib.suppress(ImportError):  # without the onnx extra: the others only
        engines["onnxruntime-file"] = onnx_file_session(network, threads)

    reference = eager_nchw(images[:256])
    difference = {
        name: float((fn(images[:256]).float() - (reference.softmax(-1) if "file" in name
                     else reference)).abs().max())
        for name, fn in engines.items()
    }  # fmt: skip
    latency = {name: [] for name in engines}
    throughput = {name: {b: [] for b in BATCHES} for name in engines}
    per_cpu = {name: {b: [] for b in BATCHES} for name in engines}
    for _ in range(args.repeats):
        for name, fn in engines.items():
            latency[name].extend(per_call(lambda fn=fn: fn(one), args.calls))
            for batch in BATCHES:
                wall, cpu = images_per_second(fn, images, batch)
                throughput[name][batch].append(wall)
                per_cpu[name][batch].append(cpu)
    results = {
        name: {
            "latency_ms_p50": 1e3 * statistics.median(latency[name]),
            "latency_ms_p95": 1e3 * float(np.percentile(latency[name], 95)),
            **{
                f"images_per_second_batch{b}": statistics.median(throughput[name][b])
                for b in BATCHES
            },
            **{
                f"images_per_cpu_second_batch{b}": statistics.median(per_cpu[name][b])
                for b in BATCHES
            },
            "max_abs_difference_from_eager": difference[name],
        }
        for name in engines
    }
    base = results["eager-nchw"]
    for values in results.values():
        values["latency_ratio_to_eager"] = base["latency_ms_p50"] / values["latency_ms_p50"]
        values["throughput_ratio_to_eager_batch512"] = (
            values["images_per_second_batch512"] / base["images_per_second_batch512"]
        )
    results["convlens"]["engine"] = inference.engine_name(network)
    results["convlens"]["build_seconds"] = build_seconds
    results["threads"] = threads
    results["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
