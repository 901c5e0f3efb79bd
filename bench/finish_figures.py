"""What the two figures of every run's finish cost: curves.png and confusion.png.

Draws and saves (in memory, as ``fileio.write_figure`` does) the figures ``_finish``
writes, for a one-epoch and a ten-epoch history and Fashion-MNIST's ten classes, and
prints the seconds of each: the first pair in this process (matplotlib's imports and
font loading included: what a ``convlens train`` process pays once), then the median of
``--repeats`` more, wall clock and this process's CPU time (the CPU figure moves less
with the machine's load). Run it with another checkout's ``src`` on ``PYTHONPATH`` to
compare versions::

    .venv/bin/python bench/finish_figures.py [--repeats 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time

import numpy as np

NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot")  # fmt: skip


def history(epochs: int) -> list[dict[str, float]]:
    return [
        {"epoch": e, "train_loss": 0.6 / e, "train_accuracy": 0.80 + 0.01 * e,
         "test_loss": 0.5 / e, "test_accuracy": 0.81 + 0.008 * e, "train_images": 5_000}
        for e in range(1, epochs + 1)
    ]  # fmt: skip


def confusion() -> np.ndarray:
    matrix = np.random.default_rng(0).integers(0, 60, (10, 10))
    np.fill_diagonal(matrix, 900)
    return matrix


def draw_both(epochs: int) -> tuple[float, float, float, float]:
    """(curves wall, confusion wall, curves CPU, confusion CPU) seconds, imports included."""
    wall, cpu = time.perf_counter(), time.process_time()
    from convlens.plots.curves import curves_figure

    curves_figure(history(epochs), "cnn").savefig(io.BytesIO(), format="png")
    mid_wall, mid_cpu = time.perf_counter(), time.process_time()
    from convlens.plots.confusion import confusion_figure

    confusion_figure(confusion(), NAMES, "cnn").savefig(io.BytesIO(), format="png")
    end_wall, end_cpu = time.perf_counter(), time.process_time()
    return mid_wall - wall, end_wall - mid_wall, mid_cpu - cpu, end_cpu - mid_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    import matplotlib  # noqa: F401  (a training process has it imported: environment())

    first = draw_both(args.epochs)
    rows = [draw_both(args.epochs) for _ in range(args.repeats)]
    medians = [statistics.median(r[i] for r in rows) for i in range(4)]
    result = {
        "epochs": args.epochs,
        "first_pair_wall_seconds": {"curves": first[0], "confusion": first[1]},
        "median_wall_seconds": {"curves": medians[0], "confusion": medians[1]},
        "median_cpu_seconds": {"curves": medians[2], "confusion": medians[3]},
    }
    print(
        f"first pair (imports included): curves {first[0]:.3f} s, confusion {first[1]:.3f} s; "
        f"median of {args.repeats}: curves {medians[0]:.3f} s, confusion {medians[1]:.3f} s "
        f"wall ({medians[2]:.3f}, {medians[3]:.3f} s CPU); both {medians[0] + medians[1]:.3f} s"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
