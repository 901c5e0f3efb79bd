"""Training throughput by thread policy, with and without neighbours on the cores.

Trains the lesson's ``cnn`` (batch 32, uint8 data on the device, the default precision)
for ``--images`` images per measurement, each policy in turn (interleaved, a fresh
network and policy each time, as a new run would start), under each ``--loads``:

- ``none``: nothing started by this script (whatever else the machine runs goes on);
- ``light``: one neighbour that spins in bursts (50-300 ms busy, 200-1,000 ms idle, about
  a quarter of a core: a browser, an editor's indexer);
- ``spinner``: one neighbour that keeps a core busy the whole time.

Policies: ``fixed-N`` threads (``--threads N``), ``idle`` (the cores other processes
left idle over half a second, from ``/proc/stat``: session 3's policy, now only for
``evaluate``) and
``measured`` (what
``convlens train`` does without ``--threads``: :class:`convlens.train.threads.ThreadTuner`,
starting from the idle cores seen while the run set up).
Medians of ``--repeats``, and the threads each measurement used for most of its steps::

    .venv/bin/python bench/threads_under_load.py [--loads none light spinner]
        [--images 6400] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import statistics
import time

import torch

from convlens.models.network import build_network
from convlens.models.registry import resolve_model
from convlens.recipe import TrainConfig
from convlens.train.engine import make_optimizer, train_epoch
from convlens.train.runtime import resolve_runtime
from convlens.train.threads import ThreadChooser, ThreadTuner, max_threads


def spin(stop) -> None:  # a neighbour: one core of pure Python work until told to stop
    while not stop.is_set():
        sum(range(10_000))


def spin_in_bursts(stop) -> None:  # a light neighbour: short bursts, longer pauses
    chance = random.Random(0)
    while not stop.is_set():
        until = time.monotonic() + chance.uniform(0.05, 0.3)
        while time.monotonic() < until:
            sum(range(10_000))
        stop.wait(chance.uniform(0.2, 1.0))


NEIGHBOURS = {"none": None, "light": spin_in_bursts, "spinner": spin}


def measure(policy: str, images: int, epoch: int) -> tuple[float, int]:
    """(images/s, threads used for most steps) for ``images`` images under ``policy``."""
    tuner = None
    if policy == "measured":
        first_guess = ThreadChooser()  # as convlens train does: watch while setting up
    elif policy == "idle":
        chooser = ThreadChooser()
        time.sleep(0.5)  # evidence for the chooser, as an epoch would give it
        chooser.choose()
    else:
        torch.set_num_threads(int(policy.split("-")[1]))
    config = TrainConfig(batch_size=32, device="cpu")  # threads are a CPU question
    runtime = resolve_runtime(config)
    torch.manual_seed(0)
    network = build_network(resolve_model("cnn"), (1, 28, 28), 10)
    if runtime.channels_last:
        network = network.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(network.parameters(), config)
    x = torch.randint(0, 256, (images, 1, 28, 28), dtype=torch.uint8)
    y = torch.randint(0, 10, (images,))
    train_epoch(network, optimizer, x[:320], y[:320], config, runtime, epoch=1)  # warm-up
    if policy == "measured":
        tuner = ThreadTuner(guess=first_guess.choose())
    result = train_epoch(network, optimizer, x, y, config, runtime, epoch=epoch, threads=tuner)
    used = tuner.epoch_threads() if tuner is not None else torch.get_num_threads()
    return images / result.seconds, used


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
    parser.add_argument("--loads", nargs="+", choices=tuple(NEIGHBOURS), default=list(NEIGHBOURS))
    parser.add_argument("--policies", nargs="+", default=None)
    parser.add_argument("--images", type=int, default=6400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    cores = max_threads()
    fixed = [f"fixed-{cores}", *([f"fixed-{cores // 2}"] if cores > 1 else [])]
    policies = args.policies or [*fixed, "idle", "measured"]
    results = {}
    for load in args.loads:
        stop = multiprocessing.Event()
        target = NEIGHBOURS[load]
        neighbour = multiprocessing.Process(target=target, args=(stop,)) if target else None
        try:
            if neighbour is not None:
                neighbour.start()
            print(f"load {load}:", flush=True)
            results[load] = run_all(policies, args.images, args.repeats)
        finally:
            stop.set()
            if neighbour is not None:
                neighbour.join(10)
                if neighbour.is_alive():
                    neighbour.terminate()
    for load, table in results.items():
        reference = table[policies[0]]["median"]
        for policy, row in table.items():
            row["ratio_to_" + policies[0]] = row["median"] / reference
            ratio = row["median"] / reference
            print(f"{load} {policy}: median {row['median']:,.0f} images/s "
                  f"({ratio:.2f}x {policies[0]}), threads {row['threads']}")  # fmt: skip
    if args.json:
        capability = torch.backends.cpu.get_cpu_capability()
        with open(args.json, "w") as handle:
            json.dump({"images": args.images, "cpu_capability": capability, **results}, handle,
                      indent=2)  # fmt: skip


if __name__ == "__main__":
    main()
