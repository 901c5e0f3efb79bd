"""Does the fast path learn as well as fp32? The lesson's recipe, several seeds, both ways.

    .venv/bin/python bench/precision_parity.py --data-dir DIR [--seeds 0 1 2] [--model cnn]
        [--precisions fp32 bf16]

Trains MODEL with the lesson's recipe (batch 32, Adam 1e-3, 5 epochs) once per seed in
each precision (default ``fp32`` and ``bf16``, autocast + channels_last), alternating, and
reports final test accuracy per run, mean and spread, and seconds per epoch.
``--precisions auto`` trains what the default path picks on this CPU (under
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``: an AVX2 laptop's fp32 path).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile

from convlens.data.config import DataConfig
from convlens.recipe import TrainConfig
from convlens.train.session import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument(
        "--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "auto"]
    )
    parser.add_argument("--json")
    args = parser.parse_args()

    data = DataConfig(data_dir=args.data_dir, download=False)
    dataset = data.load(progress=False)
    results: dict[str, list[dict]] = {precision: [] for precision in args.precisions}
    with tempfile.TemporaryDirectory() as runs:
        for seed in args.seeds:
            for precision in results:
                config = TrainConfig(epochs=args.epochs, seed=seed, precision=precision)
                run = train(
                    args.model,
                    data=data,
                    config=config,
                    runs_dir=runs,
                    name=f"{precision}-{seed}",
                    dataset=dataset,
                )
                metrics = run.metrics()
                results[precision].append(
                    {
                        "seed": seed,
                        "test_accuracy": metrics["test_accuracy"],
                        "train_accuracy": metrics["train_accuracy"],
                        "seconds_per_epoch": metrics["seconds_per_epoch"],
                    }
                )
                print(
                    precision,
                    seed,
                    f"{metrics['test_accuracy']:.4f}",
                    f"{metrics['seconds_per_epoch']:.1f} s/epoch",
                    flush=True,
                )
    summary = {
        precision: {
            "test_accuracy_mean": statistics.mean(r["test_accuracy"] for r in rows),
            "test_accuracy_stdev": statistics.stdev(r["test_accuracy"] for r in rows)
            if len(rows) > 1
            else 0.0,
            "seconds_per_epoch_median": statistics.median(r["seconds_per_epoch"] for r in rows),
            "runs": rows,
        }
        for precision, rows in results.items()
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(summary, handle, indent=2)


if __name__ == "__main__":
    main()
