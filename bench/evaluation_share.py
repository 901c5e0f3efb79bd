"""How much of a run is evaluation: per-epoch evaluation and the finish against the steps.

Trains ``convlens.train(MODEL)`` on an already loaded dataset (so data loading is not
counted) and times, from the reporter's events:

- steps: each epoch's steps (metrics.csv ``seconds``);
- evaluation: from an epoch's last step to its ``epoch_end`` (batchnorm refresh, test
  pass, training-sample pass, the checkpoint and metrics writes);
- finish: from the last ``epoch_end`` until ``train()`` returns (the fp32 evaluation of the
  saved weights, the curves and confusion figures, metrics.json).

Each is split into its parts by timing the library functions that make them (wrapped
for the run, under the names each version has): ``refresh`` (the
batchnorm refresh), ``test pass`` and ``train sample pass`` (the phase's first and second
evaluation pass), ``writes`` (the rest of the phase: checkpoint, metrics.csv), ``final
re-evaluation`` (the finish's own test pass, 0 when the last epoch's is reused) and
``figures and files`` (the rest of the finish). Only events and names every convlens
version has are used, so an older checkout can be timed the same way (run it with that
checkout's ``src`` on ``PYTHONPATH``)::

    .venv/bin/python bench/evaluation_share.py --data-dir DIR [--model cnn] \
        [--train-subset 2000] [--epochs 1] [--preset fast] [--repeats 3] [--json out.json]

``--preset fast`` trains with that preset's recipe (its views, batch, schedule) for
``--epochs`` epochs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from convlens.data import load_dataset

PARTS = (
    "refresh",
    "test pass",
    "train sample pass",
    "writes",
    "final re-evaluation",
    "figures and files",
)


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


@contextmanager
def timed_parts() -> Iterator[dict[str, float]]:
    """Seconds spent in the functions behind each part, summed over the run."""
    from convlens.train import epoch_evaluation, session

    seconds: dict[str, float] = defaultdict(float)
    passes = [0]  # evaluation passes since the last refresh or epoch end

    def wrap(module, name: str, part: Callable[[], str]):
        original = getattr(module, name)

        def timed(*args, **kwargs):
            label = part()
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[label] += time.perf_counter() - start

        setattr(module, name, timed)
        return original

    def refresh() -> str:
        passes[0] = 0
        return "refresh"

    def evaluation_pass() -> str:
        passes[0] += 1
        return "test pass" if passes[0] % 2 == 1 else "train sample pass"

    # the phase's two passes: evaluate_views since the image alone came out of them too;
    # since the per-epoch test sample, the test pass is predict_view_logits (its logits
    # give the sample's figures too) and evaluate_views the training sample's
    passes_name = (
        "evaluate_views" if hasattr(epoch_evaluation, "evaluate_views") else "evaluate_tensors"
    )
    originals = [
        (epoch_evaluation, "refresh_batchnorm_statistics",
         wrap(epoch_evaluation, "refresh_batchnorm_statistics", refresh)),
        (session, "evaluate_network",
         wrap(session, "evaluate_network", lambda: "final re-evaluation")),
    ]  # fmt: skip
    if hasattr(epoch_evaluation, "predict_view_logits"):
        originals += [
            (epoch_evaluation, "predict_view_logits",
             wrap(epoch_evaluation, "predict_view_logits", lambda: "test pass")),
            (epoch_evaluation, passes_name,
             wrap(epoch_evaluation, passes_name, lambda: "train sample pass")),
        ]  # fmt: skip
    else:
        originals.append(
            (epoch_evaluation, passes_name, wrap(epoch_evaluation, passes_name, evaluation_pass))
        )
    try:
        yield seconds
    finally:
        for module, name, original in originals:
            setattr(module, name, original)


def one_run(model: str, dataset, epochs: int, subset: int | None, preset: str | None) -> dict:
    try:
        from convlens.recipe import TrainConfig
    except ImportError:  # checkouts from before the recipe module
        from convlens.train.config import TrainConfig
    from convlens.train.session import train

    clock = Clock()
    config = TrainConfig(epochs=epochs, train_subset=subset)
    if preset:
        from dataclasses import replace

        from convlens.models.registry import PRESETS

        config = replace(TrainConfig(**PRESETS[preset].recipe), epochs=epochs, train_subset=subset)
    with tempfile.TemporaryDirectory() as runs_dir, timed_parts() as parts:
        run = train(model, config=config, runs_dir=runs_dir, dataset=dataset, reporter=clock)
        finished = time.perf_counter()
        history = run.history()
    steps = sum(row["seconds"] for row in history)
    evaluation = sum(clock.evaluations)
    finish = finished - (clock.last_epoch_end or finished)
    total = steps + evaluation + finish
    parts = dict(parts)
    parts["writes"] = evaluation - sum(
        parts.get(p, 0.0) for p in ("refresh", "test pass", "train sample pass")
    )
    parts["figures and files"] = finish - parts.get("final re-evaluation", 0.0)
    return {
        "steps_seconds": steps,
        "evaluation_seconds": evaluation,
        "finish_seconds": finish,
        "evaluation_share": (evaluation + finish) / total,
        "parts_seconds": {p: parts.get(p, 0.0) for p in PARTS},
        "threads": [row.get("threads") for row in history],
        "test_views": [row.get("test_views") for row in history],
        "train_images": [row.get("train_images") for row in history],
        "test_images": [row.get("test_images") for row in history],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-subset", type=int, default=None)
    parser.add_argument("--preset", default=None, help="train with this preset's recipe")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    dataset = load_dataset("fashion-mnist", data_dir=args.data_dir, download=False)
    results = []
    for repeat in range(args.repeats):
        result = one_run(args.model, dataset, args.epochs, args.train_subset, args.preset)
        results.append(result)
        parts = ", ".join(f"{p} {s:.2f}" for p, s in result["parts_seconds"].items())
        print(
            f"repeat {repeat + 1}: steps {result['steps_seconds']:.1f} s, evaluation "
            f"{result['evaluation_seconds']:.1f} s, finish {result['finish_seconds']:.1f} s: "
            f"{result['evaluation_share']:.0%} of the run ({parts})",
            flush=True,
        )
    summary = {
        "model": args.model,
        "preset": args.preset,
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
