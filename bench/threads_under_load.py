"""Training throughput with and without CPU-bound neighbours, by thread policy.

Starts ``--spinners`` processes that each keep one core busy (started and stopped by
this script), and trains the lesson's ``cnn`` (batch 32, uint8 data on the device, the
default precision) for ``--images`` images per measurement with each policy in turn,
interleaved: ``fixed-N`` threads, and ``idle`` (what ``convlens train`` does without
``--threads``: :class:`convlens.train.cpu.ThreadChooser`). Then the same without the
spinners. Medians of ``--repeats``::

    .venv/bin/python bench/threads_under_load.py [--spinners 1] [--images 3200] \
        [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import time

import torch

from convlens.models.network import build_network
from convlens.models.registry import resolve_model
from convlens.recipe import TrainConfig
from convlens.train.cpu import ThreadChooser, max_threads
from convlens.train.engine import make_optimizer, train_epoch
from convlens.train.runtime import resolve_runtime


def spin(stop) -> None:  # a neighbour: one core of pure Python work until told to stop
    while not stop.is_set():
        sum(range(10_000))


def measure(policy: str, images: int, epoch: int) -> tuple[float, int]:
    """(images/s, threads used) for ``images`` images of cnn training under ``policy``."""
    chooser = ThreadChooser(None if policy == "idle" else int(policy.split("-")[1]))
    if policy == "idle":
        time.sleep(0.5)  # evidence for the chooser, as an epoch would give it
    threads = chooser.choose()
    config = TrainConfig(batch_size=32)
    runtime = resolve_runtime(config)
    torch.manual_seed(0)
    network = build_network(resolve_model("cnn"), (1, 28, 28), 10)
    if runtime.channels_last:
        network = network.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(network.parameters(), config)
    x = torch.randint(0, 256, (images, 1, 28, 28), dtype=torch.uint8)
    y = torch.randint(0, 10, (images,))
    train_epoch(network, optimizer, x[:320], y[:320], config, runtime, epoch=1)  # warm-up
    result = train_epoch(network, optimizer, x, y, config, runtime, epoch=epoch)
    return images / result.seconds, threads


def run_all(policies: list[str], images: int, repeats: int) -> dict:
    rates: dict[str, list[float]] = {p: [] for p in policies}
    used: dict[str, list[int]] = {p: [] for p in policies}
    for repeat in range(repeats):
        for policy in policies:
            rate, threads = measure(policy, images, repeat + 2)
            rates[policy].append(rate)
            used[policy].append(threads)
            print(f"  {policy}: {rate:,.0f} images/s ({threads} threads)", flush=True)
    return {
        p: {"images_per_second": rates[p], "median": statistics.median(rates[p]),
            "threads": used[p]}
        for p in policies
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spinners", type=int, default=1)
    parser.add_argument("--images", type=int, default=3200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    cores = max_threads()
    policies = [f"fixed-{cores}", *([f"fixed-{cores // 2}"] if cores > 1 else []), "idle"]
    results = {}
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=spin, args=(stop,)) for _ in range(args.spinners)]
    try:
        for process in spinners:
            process.start()
        print(f"with {args.spinners} spinning neighbour(s):", flush=True)
        results["loaded"] = run_all(policies, args.images, args.repeats)
    finally:
        stop.set()
        for process in spinners:
            process.join(10)
            if process.is_alive():
                process.terminate()
    print("without:", flush=True)
    results["quiet"] = run_all(policies, args.images, args.repeats)
    for condition, table in results.items():
        reference = table[policies[0]]["median"]
        for policy, row in table.items():
            row["ratio_to_" + policies[0]] = row["median"] / reference
            print(f"{condition} {policy}: median {row['median']:,.0f} images/s "
                  f"({row['median'] / reference:.2f}x {policies[0]})")  # fmt: skip
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {"spinners": args.spinners, "images": args.images, **results}, handle, indent=2
            )


if __name__ == "__main__":
    main()
