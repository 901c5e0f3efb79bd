"""``convlens.predict(run, image)`` of two versions of ``convlens/look.py``, in one process.

What ``convlens.predict(run)`` adds to its network's own call is 15-30 us of a 0.15-0.2
ms call: below the noise between two processes on a shared machine. So this script
loads an older ``look.py`` (``--before FILE``, e.g. ``git show REV:src/convlens/look.py``)
as a second module beside the installed one, each keeping its own run and network, and
times them in blocks of 20 calls a side, in rotation (a notebook's loop calls one run
over and over, so each side finds its own network warm), with ``predict_arrays`` on each
side's own network in the same rotation: each side's figure is quoted as what it adds to
its network. Both sides are asked with the run's path and with one ``Run`` handle.

With ``--stats`` it also times a one-image ``predict_arrays`` call alone against the same
call after one ``os.stat`` of the run's weights file, after two, after an ``os.getpid``
(a syscall with no file-system work) and after ``os.fstat`` of an open file: what the
freshness checks cost between two runs of the network, whose work leaves the kernel's
and Python's caches cold::

    git show a6f6632:src/convlens/look.py > /tmp/look_before.py
    .venv/bin/python bench/predict_run_ab.py RUN --before /tmp/look_before.py
        [--rounds 600] [--threads 2] [--stats] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import convlens.look as after
from convlens.predict import predict_arrays
from convlens.runs import WEIGHTS, Run

BLOCK = 20  # calls in a row of each entry


def load_before(path: str):
    """The older look.py as a module of its own (its imports are the installed convlens)."""
    spec = importlib.util.spec_from_file_location("convlens_look_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def blocks(calls: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Each call's wall time in us, ``BLOCK`` calls of an entry in a row, entries in
    rotation (each first as often as the others), after a warm-up."""
    for fn in calls.values():
        for _ in range(100):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls.items())
    clock = time.perf_counter_ns
    for round_ in range(rounds):
        at = round_ % len(order)
        for name, fn in order[at:] + order[:at]:
            for _ in range(BLOCK):
                start = clock()
                fn()
                samples[name].append((clock() - start) / 1e3)
    return samples


def medians(samples: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in samples.items()}


def versions(run: str, before, pixels: np.ndarray, rounds: int) -> dict:
    handle = Run.open(run)
    sides = {"before": before, "after": after}
    calls: dict[str, Callable[[], object]] = {}
    for side, module in sides.items():
        module.predict(run, pixels)
        module.predict(handle, pixels)
        network = module._LOADED.run(run).network  # the network this side answers with
        calls[f"{side}: predict_arrays(its network)"] = lambda network=network: predict_arrays(
            network, pixels
        )
        calls[f"{side}: predict(path)"] = lambda module=module: module.predict(run, pixels)
        calls[f"{side}: predict(Run)"] = lambda module=module: module.predict(handle, pixels)
    for module in sides.values():  # the same answers
        np.testing.assert_allclose(
            module.predict(handle, pixels).probabilities,
            after.predict(run, pixels).probabilities,
            atol=1e-6,
        )
    p50 = medians(blocks(calls, rounds))
    result: dict[str, dict[str, float]] = {}
    for side in sides:
        network = p50[f"{side}: predict_arrays(its network)"]
        result[side] = {
            "predict_arrays_us": network,
            **{
                f"{entry}_us": p50[f"{side}: {entry}"]
                for entry in ("predict(path)", "predict(Run)")
            },
            **{
                f"{entry}_above_network_us": p50[f"{side}: {entry}"] - network
                for entry in ("predict(path)", "predict(Run)")
            },
        }
    return result


def stat_costs(run: str, pixels: np.ndarray, rounds: int) -> dict[str, float]:
    """One-image predict_arrays alone, and after each kind of check: the extra us."""
    network = Run.open(run).network()
    weights = os.path.join(os.path.abspath(run), WEIGHTS)
    opened = os.open(weights, os.O_RDONLY)
    try:
        checks: dict[str, Callable[[], object]] = {
            "network alone": lambda: None,
            "os.getpid": os.getpid,
            "os.fstat(open file)": lambda: os.fstat(opened),
            "os.stat(weights)": lambda: os.stat(weights),
            "2 x os.stat(weights)": lambda: (os.stat(weights), os.stat(weights)),
        }
        calls = {
            name: (lambda check=check: (check(), predict_arrays(network, pixels)))
            for name, check in checks.items()
        }
        p50 = medians(blocks(calls, rounds))
    finally:
        os.close(opened)
    alone = p50["network alone"]
    return {"network_alone_us": alone} | {
        f"{name}_extra_us": value - alone for name, value in p50.items() if name != "network alone"
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="a run folder of a 28x28 grey model (e.g. cnn)")
    parser.add_argument("--before", required=True, help="the older look.py to compare with")
    parser.add_argument("--rounds", type=int, default=600, help="blocks of each entry")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stats", action="store_true", help="also time the checks alone")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pixels = np.random.default_rng(0).integers(0, 256, (1, 1, 28, 28), dtype=np.uint8)
    loadavg = Path("/proc/loadavg").read_text().split()[:3]
    results: dict[str, object] = {
        "versions": versions(args.run, load_before(args.before), pixels, args.rounds)
    }
    if args.stats:
        results["checks"] = stat_costs(args.run, pixels, args.rounds)
    results |= {
        "rounds": args.rounds,
        "block": BLOCK,
        "threads": args.threads,
        "loadavg_at_start": loadavg,
        "loadavg_at_end": Path("/proc/loadavg").read_text().split()[:3],
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
