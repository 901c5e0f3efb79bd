"""Seconds of one evaluation pass over 10,000 images at each batch size, interleaved.

    .venv/bin/python bench/evaluation_batches.py [--models cnn quick fast] [--threads 2] \
        [--engine onnxruntime|channels_last] [--batches 128 256 512 1024] [--rounds 5] \
        [--first-pass] [--json out.json]

Each model (a preset or layer text) is built with fresh weights for 28x28 greyscale
images; each pass is what an epoch's evaluation runs in fp32
(:func:`convlens.train.engine.predict_view_logits` on uint8 images, scaled batch by
batch), through ONNX Runtime (the onnx extra) or the channels_last copy (as without
it). Before every pass one weight moves, as after an epoch's steps, so each pass pays
what a real one pays for new weights (the exported graph reweighted). Rounds go over
the batch sizes in turn, the first pass of all is a warm-up; medians are reported with
each batch's time relative to the first. ``--first-pass`` times instead the first pass of a
network just built (what a run's first evaluation pays: the first batch on the
channels_last copy, the export and the session at the second), a new network every
pass. What it measures is the engine's speed, not
the network's accuracy: the images are random.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from convlens.models import inference
from convlens.models.network import build_network
from convlens.models.registry import resolve_model
from convlens.train.engine import predict_view_logits
from convlens.train.evaluation import FINAL_RUNTIME

IMAGES = 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["cnn", "quick", "fast"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engine", choices=("onnxruntime", "channels_last"), default="onnxruntime")
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 256, 512, 1024])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--first-pass", action="store_true", help="a new network every pass")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.engine == "channels_last":
        inference._export_onnx = lambda network, x: None  # as without the onnx extra
    images = torch.randint(0, 256, (IMAGES, 1, 28, 28), dtype=torch.uint8)
    results = []
    for model in args.models:
        spec = resolve_model(model)
        torch.manual_seed(0)
        network = build_network(spec, (1, 28, 28), 10)
        predict_view_logits(network, images, FINAL_RUNTIME)  # warm-up: builds the engine
        seconds: dict[int, list[float]] = {batch: [] for batch in args.batches}
        for _ in range(args.rounds):
            for batch in args.batches:
                if args.first_pass:
                    network = build_network(spec, (1, 28, 28), 10)  # no engine yet
                with torch.no_grad():
                    next(network.parameters()).add_(1e-4)  # new weights, as after an epoch
                start = time.perf_counter()
                predict_view_logits(network, images, FINAL_RUNTIME, batch_size=batch)
                seconds[batch].append(time.perf_counter() - start)
        engine = inference.engine_name(network)
        if engine != args.engine:
            raise SystemExit(f"{model}: {engine} answered, not {args.engine}")
        medians = {batch: statistics.median(times) for batch, times in seconds.items()}
        first = medians[args.batches[0]]
        print(
            f"{model} ({engine}, {args.threads} threads): "
            + ", ".join(f"{b}: {s:.3f} s ({s / first:.2f}x)" for b, s in medians.items())
        )
        results.append({"model": model, "engine": engine, "seconds": seconds, "median": medians})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "threads": args.threads,
                    "images": IMAGES,
                    "first_pass": args.first_pass,
                    "results": results,
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
