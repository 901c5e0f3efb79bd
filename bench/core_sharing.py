"""Do this machine's two CPUs share one physical core? A neighbour on the other CPU, measured.

Issue #12's goal 2 puts a pure-Python spinner beside training. If the spinner and
convlens run on separate physical cores, a one-thread convlens should lose nothing to it;
if the two CPUs the operating system sees are the two hyperthreads of one core (common for
2-vCPU cloud machines, and invisible inside the VM: ``lscpu`` may still say one thread per
core), the spinner takes a share of the very execution units a compute-bound kernel uses.

One kernel thread is pinned to the first CPU and timed in alternating rounds with the
second CPU idle, with the spinner pinned to the second CPU, and with the spinner pinned to
the first (time slicing: the reference for "halves"); then two kernel threads, one pinned to
each CPU, with no spinner (what a second CPU adds). Kernels: a bf16 and an fp32 matmul
(compute-bound: AMX or AVX-512 / AVX2 FMA units) and a large elementwise add (memory-bound)::

    .venv/bin/python bench/core_sharing.py [--rounds 5] [--seconds 1.0] [--json out.json]

Prints one line per kernel: the median GFLOP/s (GB/s for the add) of each arrangement and
its ratio to "alone". A ratio near 1.0 under "spinner on the other CPU" means separate
cores; well below 1.0 means they share one. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable

import torch
from threads_under_load import spin  # the neighbour: pure Python work on one CPU


def matmul_kernel(dtype: torch.dtype, size: int = 1024) -> tuple[Callable[[], None], float]:
    """One ``size`` x ``size`` matmul and its FLOPs (2 n^3)."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    out = torch.empty(size, size, dtype=dtype)
    return (lambda: torch.mm(a, b, out=out)), 2.0 * size**3


def add_kernel(elements: int = 16 * 2**20) -> tuple[Callable[[], None], float]:
    """out = a + b over 64 MiB fp32 arrays and its bytes moved (3 x 4 x n)."""
    a, b = torch.randn(elements), torch.randn(elements)
    out = torch.empty(elements)
    return (lambda: torch.add(a, b, out=out)), 12.0 * elements


KERNELS = {
    "matmul bf16 (GFLOP/s)": lambda: matmul_kernel(torch.bfloat16),
    "matmul fp32 (GFLOP/s)": lambda: matmul_kernel(torch.float32),
    "add fp32 (GB/s)": add_kernel,
}


def rate(kernel: str, cpu: int, seconds: float, result: multiprocessing.Queue) -> None:
    """Run ``kernel`` on one thread pinned to ``cpu`` for about ``seconds``; put its rate."""
    os.sched_setaffinity(0, {cpu})
    torch.set_num_threads(1)
    step, work = KERNELS[kernel]()
    for _ in range(3):  # warm: first calls pick kernels and fault pages in
        step()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        step()
        count += 1
    result.put(count * work / elapsed / 1e9)


def pinned_spinner(cpu: int, stop: multiprocessing.Event) -> None:
    os.sched_setaffinity(0, {cpu})
    spin(stop)


def measure(kernel: str, arrangement: str, cpus: tuple[int, int], seconds: float) -> float:
    """The kernel's summed rate over its threads in one arrangement."""
    first, second = cpus
    stop = multiprocessing.Event()
    spinner_cpu = {"spinner on the other CPU": second, "spinner on the same CPU": first}
    spinner = None
    if arrangement in spinner_cpu:
        spinner = multiprocessing.Process(
            target=pinned_spinner, args=(spinner_cpu[arrangement], stop)
        )
        spinner.start()
        time.sleep(0.2)  # let it reach its loop
    kernel_cpus = (first, second) if arrangement == "two threads, one per CPU" else (first,)
    results: multiprocessing.Queue = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=rate, args=(kernel, cpu, seconds, results))
        for cpu in kernel_cpus
    ]
    try:
        for worker in workers:
            worker.start()
        total = sum(results.get() for _ in workers)
        for worker in workers:
            worker.join()
    finally:
        stop.set()
        if spinner is not None:
            spinner.join()
    return total


ARRANGEMENTS = (
    "alone",
    "spinner on the other CPU",
    "spinner on the same CPU",
    "two threads, one per CPU",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="timed seconds a measurement")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("core_sharing.py needs at least two CPUs to compare")
    pair = (cpus[0], cpus[1])
    figures: dict[str, dict[str, list[float]]] = {k: {a: [] for a in ARRANGEMENTS} for k in KERNELS}
    for _ in range(args.rounds):  # alternate arrangements so drift hurts them alike
        for kernel in KERNELS:
            for arrangement in ARRANGEMENTS:
                figures[kernel][arrangement].append(
                    measure(kernel, arrangement, pair, args.seconds)
                )
    summary = {}
    for kernel, by_arrangement in figures.items():
        medians = {a: statistics.median(v) for a, v in by_arrangement.items()}
        summary[kernel] = {"medians": medians, "runs": by_arrangement}
        alone = medians["alone"]
        parts = ", ".join(f"{a} {m:.1f} ({m / alone:.2f}x)" for a, m in medians.items())
        print(f"{kernel}: {parts}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"cpus": list(pair), "rounds": args.rounds, "kernels": summary}, handle,
                      indent=1)  # fmt: skip


if __name__ == "__main__":
    main()
