"""convlens compare dnn cnn: the lesson's experiment, side by side (the main job)."""

from __future__ import annotations

import argparse

from convlens.cli.options import add_data_options, add_runs_option, add_train_options


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="train several models on the same data and compare them",
        description="Train each model on the same data, seed and recipe (the lesson's, or "
        "--preset NAME's for every model), print a side-by-side table and write "
        "compare.csv/json/png beside the run folders. Which model is more accurate is "
        "decided with McNemar's exact test on the same test images: a difference with "
        "p >= 0.05 is reported as a tie within noise.",
    )
    parser.add_argument(
        "models",
        nargs="+",
        metavar="MODEL",
        help="presets, spec files or layer lists (e.g. dnn cnn), or existing runs (a name in "
        "--runs or a run folder, e.g. one made by convlens import): judged, not trained",
    )
    parser.add_argument("--name", help="comparison folder name (default compare-DATE-TIME)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        metavar="N",
        help="train every model N times, seeds SEED, SEED+1, ...; report mean ± std and "
        "call a model more accurate only when it is so in every seed (default 1)",
    )
    add_runs_option(parser)
    add_train_options(parser)
    add_data_options(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from convlens.cli.options import data_config, recipe_preset, train_config
    from convlens.compare import compare
    from convlens.train.progress import SilentReporter, TqdmReporter

    def reporter_for(label: str):
        return SilentReporter() if args.quiet else TqdmReporter(label=label)

    comparison = compare(
        args.models,
        data=data_config(args),
        config=train_config(args),
        runs_dir=args.runs,
        name=args.name,
        reporter_for=reporter_for,
        on_note=lambda text: print(text, file=sys.stderr),
        recipe_preset=recipe_preset(args),
        repeats=args.repeats,
    )
    print(comparison.format())
    print(
        f"\nwrote {comparison.path}/compare.png, compare.csv and one run folder per model "
        "trained (existing runs are judged where they are)"
    )
    return 0
