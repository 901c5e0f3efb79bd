"""Inference for the lesson's CNN: single-image latency and batch throughput, side by side.

Engines, each measured on the same trained weights and the same images, interleaved:
``plain-fp32`` (the model as nn.Sequential, ``model(x)`` under ``torch.no_grad``),
``convlens`` (``Network.predict_proba``: what ``convlens predict`` and the web page call)
and ``onnxruntime`` (the ``convlens export --onnx`` file)::

    .venv/bin/python bench/inference.py RUN [--repeats 5] [--json out.json]

RUN is a trained ``cnn`` run folder. Latency: median over 2,000 single-image calls.
Throughput: images/s over batches of 1,000.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from convlens.export import export_onnx
from convlens.runs import Run


def time_calls(fn, calls: int) -> list[float]:
    for _ in range(min(50, calls)):
        fn()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--json")
    args = parser.parse_args()

    import onnxruntime as ort

    run = Run.open(args.run)
    network = run.load_network()
    plain = torch.nn.Sequential(*network.blocks.values()).eval()  # same weights, plain order
    onnx_path = Path(tempfile.mkdtemp()) / "model.onnx"
    export_onnx(run, onnx_path)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])

    rng = np.random.default_rng(0)
    one = rng.random((1, *run.input_shape), dtype=np.float32)
    batch = rng.random((1000, *run.input_shape), dtype=np.float32)
    one_t, batch_t = torch.from_numpy(one), torch.from_numpy(batch)

    def plain_call(x):
        with torch.no_grad():
            return plain(x).softmax(-1)

    engines = {
        "plain-fp32": lambda x, t: plain_call(t),
        "convlens": lambda x, t: network.predict_proba(t),
        "onnxruntime": lambda x, t: session.run(None, {"images": x})[0],
    }
    latency = {name: [] for name in engines}
    throughput = {name: [] for name in engines}
    for _ in range(args.repeats):
        for name, call in engines.items():
            samples = time_calls(lambda call=call: call(one, one_t), args.calls // args.repeats)
            latency[name].extend(samples)
            took = time_calls(lambda call=call: call(batch, batch_t), 5)
            throughput[name].append(1000 / statistics.median(took))
    results = {
        name: {
            "latency_ms_p50": 1e3 * statistics.median(latency[name]),
            "latency_ms_p95": 1e3 * float(np.percentile(latency[name], 95)),
            "images_per_second_batch1000": statistics.median(throughput[name]),
        }
        for name in engines
    }
    base = results["plain-fp32"]
    for values in results.values():
        values["latency_ratio_to_plain"] = base["latency_ms_p50"] / values["latency_ms_p50"]
        values["throughput_ratio_to_plain"] = (
            values["images_per_second_batch1000"] / base["images_per_second_batch1000"]
        )
    results["threads"] = torch.get_num_threads()
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
