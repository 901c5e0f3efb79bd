"""A whole ``convlens train`` process of two checkouts, in alternation: where a fresh
process's time goes besides its steps.

Each round runs ``python -m convlens train MODEL --epochs E [--train-subset N] --data-dir
DIR --quiet`` once with the installed convlens ("now") and once with an older checkout's
``src`` first on ``PYTHONPATH`` ("before"), in alternating order, into a temporary runs
folder, and reads back what each run wrote: the wall time of the process, the training
steps (metrics.json ``train_seconds``), the per-epoch evaluation (``eval_seconds``) and
the rest (starting Python and torch, reading the data, building the network, the
finish's evaluation and figures, writing the files)::

    git archive REV src | tar -x -C /tmp/before
    .venv/bin/python bench/fresh_run_ab.py --data-dir DIR --before /tmp/before/src \\
        [--model cnn] [--epochs 1] [--train-subset 2000] [--rounds 5] \\
        [--drop-caches] [--json out.json]

``--drop-caches`` empties the kernel's page cache before every process (root only: it
writes ``/proc/sys/vm/drop_caches``), as after a reboot: every library file is read
from the disk again, which is where imports cost the most.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def one_process(side: str, before_src: str, args: argparse.Namespace, runs: Path) -> dict:
    env = dict(os.environ)
    if side == "before":
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (before_src, env.get("PYTHONPATH"))))
    name = f"{side}-{time.monotonic_ns()}"
    command = [sys.executable, "-m", "convlens", "train", args.model, "--epochs", str(args.epochs)]
    command += ["--data-dir", args.data_dir, "--quiet", "--runs", str(runs), "--name", name]
    if args.train_subset:
        command += ["--train-subset", str(args.train_subset)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if args.drop_caches:
        drop_caches()
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    wall = time.perf_counter() - start
    metrics = json.loads((runs / name / "metrics.json").read_text())
    steps, evaluation = metrics["train_seconds"], metrics["eval_seconds"]
    return {
        "side": side,
        "wall_seconds": wall,
        "steps_seconds": steps,
        "epoch_evaluation_seconds": evaluation,
        "rest_seconds": wall - steps - evaluation,
        "test_accuracy": metrics["test_accuracy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--before", required=True, help="an older checkout's src folder")
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-subset", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--drop-caches", action="store_true")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            order = ("before", "now") if round_ % 2 == 0 else ("now", "before")
            for side in order:
                result = one_process(side, args.before, args, Path(folder))
                results.append({"round": round_ + 1, **result})
                print(
                    f"round {round_ + 1} {side:>6}: {result['wall_seconds']:.2f} s "
                    f"(steps {result['steps_seconds']:.2f}, epoch evaluation "
                    f"{result['epoch_evaluation_seconds']:.2f}, rest {result['rest_seconds']:.2f})",
                    flush=True,
                )
    summary: dict = {"args": vars(args), "runs": results}
    for side in ("before", "now"):
        mine = [r for r in results if r["side"] == side]
        summary[side] = {
            key: statistics.median(r[key] for r in mine)
            for key in ("wall_seconds", "steps_seconds", "epoch_evaluation_seconds", "rest_seconds")
        }
    pairs = [
        now["wall_seconds"] / before["wall_seconds"]
        for now, before in zip(
            (r for r in results if r["side"] == "now"),
            (r for r in results if r["side"] == "before"),
            strict=True,
        )
    ]
    summary["wall_ratio_per_round"] = pairs
    summary["median_wall_ratio"] = statistics.median(pairs)
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
