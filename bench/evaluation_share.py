"""How much of a run is evaluation: per-epoch evaluation and the finish against the steps.

Trains ``convlens.train(MODEL)`` on an already loaded dataset (so data loading is not
counted) and times, from the reporter's events:

- steps: each epoch's steps (metrics.csv ``seconds``);
- evaluation: from an epoch's last step to its ``epoch_end`` (batchnorm refresh, test
  pass, training-sample pass, the checkpoint and metrics writes);
- finish: from the last ``epoch_end`` until ``train()`` returns (the fp32 evaluation of the
  saved weights, the curves and confusion figures, metrics.json).

Only events every convlens version sends are used, so an older checkout can be timed the
same way (run it with that checkout's ``src`` on ``PYTHONPATH``)::

    .venv/bin/python bench/evaluation_share.py --data-dir DIR [--model cnn] \
        [--train-subset 2000] [--epochs 1] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

from convlens.data import load_dataset


class Clock:
    """A reporter that only notes when things happen."""

    def __init__(self) -> None:
        self.last_step: float | None = None
        self.evaluations: list[float] = []
        self.last_epoch_end: float | None = None

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        pass

    def step(self, done: int, total: int, loss: float, accuracy: float) -> None:
        if done == total:
            self.last_step = time.perf_counter()

    def phase(self, name: str, done: int, total: int) -> None:
        pass

    def epoch_end(self, row: dict) -> None:
        now = time.perf_counter()
        if self.last_step is not None:
            self.evaluations.append(now - self.last_step)
        self.last_epoch_end = now

    def note(self, text: str) -> None:
        pass


def one_run(model: str, dataset, epochs: int, subset: int | None) -> dict:
    try:
        from convlens.recipe import TrainConfig
    except ImportError:  # checkouts from before the recipe module
        from convlens.train.config import TrainConfig
    from convlens.train.session import train

    clock = Clock()
    config = TrainConfig(epochs=epochs, train_subset=subset)
    with tempfile.TemporaryDirectory() as runs_dir:
        run = train(model, config=config, runs_dir=runs_dir, dataset=dataset, reporter=clock)
        finished = time.perf_counter()
        history = run.history()
    steps = sum(row["seconds"] for row in history)
    evaluation = sum(clock.evaluations)
    finish = finished - (clock.last_epoch_end or finished)
    total = steps + evaluation + finish
    return {
        "steps_seconds": steps,
        "evaluation_seconds": evaluation,
        "finish_seconds": finish,
        "evaluation_share": (evaluation + finish) / total,
        "threads": [row.get("threads") for row in history],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-subset", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    dataset = load_dataset("fashion-mnist", data_dir=args.data_dir, download=False)
    results = []
    for repeat in range(args.repeats):
        result = one_run(args.model, dataset, args.epochs, args.train_subset)
        results.append(result)
        print(
            f"repeat {repeat + 1}: steps {result['steps_seconds']:.1f} s, evaluation "
            f"{result['evaluation_seconds']:.1f} s, finish {result['finish_seconds']:.1f} s: "
            f"{result['evaluation_share']:.0%} of the run",
            flush=True,
        )
    summary = {
        "model": args.model,
        "epochs": args.epochs,
        "train_subset": args.train_subset,
        "runs": results,
        "median_share": statistics.median(r["evaluation_share"] for r in results),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(summary, handle, indent=2)


if __name__ == "__main__":
    main()
