"""convlens sweep MODEL --vary filters=16,32,64: the lesson's exercises as one grid."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from convlens.cli.options import add_data_options, add_runs_option, add_train_options


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="train a grid of model/recipe variations and find the sweet spot",
        description="Train every combination of the --vary axes (x --repeats) on the same "
        "data and seeds, each as a run folder inside runs/sweep-NAME/, and write "
        "results.csv, trials.csv, sweep.json and pareto.png. Run the same command again to "
        "continue an interrupted sweep: finished trials are reused.",
    )
    parser.add_argument(
        "model",
        nargs="?",
        help="preset (cnn, cnn-small, ...), spec file, or layer list (default: the "
        "--preset's own model)",
    )
    parser.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="AXIS=V1,V2",
        help="an axis and its values; repeat for a grid. Axes: filters (every conv), convs "
        "(conv blocks), dense (hidden units), epochs, lr, batch_size",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="trials per configuration, seeds SEED, SEED+1, ... (default 1)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=0.3,
        metavar="POINTS",
        help="sweet spot: the cheapest configuration within this many accuracy points of the "
        "best (default 0.3)",
    )
    parser.add_argument(
        "--cost",
        choices=("seconds", "params", "mflops"),
        default="seconds",
        help="what 'cheaper' means for the Pareto front and the sweet spot: measured training "
        "seconds (default; noisy on a busy machine), or the exact parameter count or MFLOPs "
        "per image",
    )
    parser.add_argument(
        "--workers", type=int, help="parallel trials (default: as many as cores and memory allow)"
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run trials as Ray tasks: a local Ray runtime, or the cluster at ADDRESS "
        "(needs: pip install 'convlens[ray]')",
    )
    parser.add_argument("--name", help="sweep folder runs/sweep-NAME (default: the model's name)")
    add_runs_option(parser)
    add_train_options(parser)
    add_data_options(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


class TqdmSweepReporter:
    """One bar over the trials to train; a line per failed trial."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self._bar: Any = None

    def start(self, total: int, to_train: int, plan: str) -> None:
        from tqdm.auto import tqdm

        reused = total - to_train
        self.note(
            f"{total} trials: {to_train} to train"
            + (f", {reused} already finished (reused)" if reused else "")
            + (f"; {plan}" if to_train else "")
        )
        if to_train:
            self._bar = tqdm(
                total=to_train, desc="sweep", unit="trial", file=self.stream, dynamic_ncols=True
            )

    def trial_done(self, outcome) -> None:
        if not outcome.ok:
            self.note(f"trial {outcome.folder} failed: {outcome.error}")
        if self._bar is not None:
            self._bar.update(1)
            if self._bar.n >= self._bar.total:
                self._bar.close()
                self._bar = None

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)


def run(args: argparse.Namespace) -> int:
    from convlens.cli.options import data_config, model_or_preset, training_plan
    from convlens.errors import OptionError
    from convlens.experiments.grid import parse_vary
    from convlens.experiments.sweep import SilentSweepReporter, sweep

    model = model_or_preset(args)
    if not model:
        raise OptionError("name a model to sweep, e.g. convlens sweep cnn (or --preset NAME)")
    vary = parse_vary(args.vary)
    plan = training_plan(args, model)
    result = sweep(
        plan.spec,
        vary,
        repeats=args.repeats,
        data=data_config(args),
        config=plan.config,
        runs_dir=args.runs,
        name=args.name,
        workers=args.workers,
        executor="process" if args.ray is None else "ray",
        ray_address=args.ray or None,
        margin=args.margin / 100,
        cost=args.cost,
        reporter=SilentSweepReporter() if args.quiet else TqdmSweepReporter(),
        recipe_preset=plan.recipe_preset,
    )
    print(result.format())
    print(
        f"\nwrote {result.path}/results.csv, trials.csv, sweep.json and pareto.png; "
        f"make a page with: convlens report {result.path}"
    )
    return 0
