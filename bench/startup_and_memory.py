"""`convlens --help` wall time, `import convlens` cost, and the memory peak of training runs.

    .venv/bin/python bench/startup_and_memory.py --data-dir DIR [--json out.json]

Wall times are medians of 10 runs of a fresh process. Memory is the peak resident set
size (ru_maxrss) of a child process that trains ``dnn`` and ``cnn`` for one epoch on the
full training set.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def wall(command: list[str], times: int = 10) -> float:
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def peak_rss_mb(command: list[str]) -> float:
    """Peak RSS of one child (run alone: RUSAGE_CHILDREN keeps the largest child so far)."""
    code = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
        "capture_output=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *command], check=True, capture_output=True, text=True
    ).stdout
    return int(out.strip()) / 1024  # kB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--json")
    args = parser.parse_args()
    results = {
        "convlens_help_seconds": wall([str(BIN / "convlens"), "--help"]),
        "python_startup_seconds": wall([sys.executable, "-c", "pass"]),
        "import_convlens_seconds": wall([sys.executable, "-c", "import convlens"]),
        "import_torch_seconds": wall([sys.executable, "-c", "import torch"], times=5),
    }
    with tempfile.TemporaryDirectory() as runs:
        for model in ("dnn", "cnn"):
            results[f"train_{model}_1_epoch_peak_rss_mb"] = peak_rss_mb(
                [
                    str(BIN / "convlens"),
                    "train",
                    model,
                    "--epochs",
                    "1",
                    "--data-dir",
                    args.data_dir,
                    "--runs",
                    runs,
                    "--name",
                    model,
                    "--quiet",
                ]
            )
    results["self_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
