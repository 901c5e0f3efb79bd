"""Which engine should judge an epoch: the training's bf16 network or fp32 ONNX Runtime.

Per epoch the weights change, so the fp32 inference engine
(:mod:`convlens.models.inference`) exports the network again (an ONNX export and a new
session) before it answers; the bf16 pass (the network itself under autocast,
channels_last, as it trains) needs no export. This times one epoch's evaluation passes
(``--images`` test-sized images, the image alone) both ways, alternating, a fresh weight
change before each so that the export is paid every time, and prints medians::

    .venv/bin/python bench/evaluation_engines.py --data-dir DIR [--models cnn fast] \\
        [--images 15000] [--repeats 5] [--threads 2] [--json out.json]

Run it natively (bf16 is auto's precision with AVX512-BF16) and, for the AVX2 rows,
with ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` (auto trains in fp32 there,
so the per-epoch passes already use the fp32 engine).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from convlens.data import load_dataset
from convlens.models.inputs import to_tensor
from convlens.models.network import build_network
from convlens.models.registry import resolve_model
from convlens.train.engine import predict_view_logits
from convlens.train.runtime import Runtime

ENGINES = {
    "bf16 network (autocast, channels_last)": Runtime(torch.device("cpu"), "bf16", True),
    "fp32 inference engine (export each epoch)": Runtime(torch.device("cpu"), "fp32", True),
}


def nudge(network: torch.nn.Module) -> None:
    """A new version of the weights, as an epoch's steps make (the engine must rebuild)."""
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.mul_(1.0 + 1e-6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--models", nargs="+", default=["cnn", "fast"])
    parser.add_argument("--images", type=int, default=15_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = load_dataset("fashion-mnist", data_dir=args.data_dir, download=False)
    images = to_tensor(dataset.train_images[: args.images])
    results = {}
    for model in args.models:
        torch.manual_seed(0)
        network = build_network(resolve_model(model), dataset.input_shape, dataset.num_classes).to(
            memory_format=torch.channels_last
        )
        network.eval()
        seconds: dict[str, list[float]] = {name: [] for name in ENGINES}
        for repeat in range(args.repeats):
            for name, runtime in ENGINES.items():
                nudge(network)
                start = time.perf_counter()
                predict_view_logits(network, images, runtime)
                seconds[name].append(time.perf_counter() - start)
            print(
                f"{model} repeat {repeat + 1}: "
                + ", ".join(f"{name} {s[-1]:.2f} s" for name, s in seconds.items()),
                flush=True,
            )
        medians = {name: statistics.median(s) for name, s in seconds.items()}
        results[model] = {
            "seconds": seconds,
            "median_seconds": medians,
            "median_images_per_second": {n: args.images / s for n, s in medians.items()},
        }
    summary = {"images": args.images, "threads": torch.get_num_threads(), "models": results}
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(summary, handle, indent=2)


if __name__ == "__main__":
    main()
