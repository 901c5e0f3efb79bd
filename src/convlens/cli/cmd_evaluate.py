"""convlens evaluate RUN: test accuracy, per-class accuracy and the confusion matrix."""

from __future__ import annotations

import argparse

from convlens.cli.options import add_runs_option


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a trained run on its test set",
        description="Evaluate a run's final weights on the test split of its data (fp32), "
        "with the test-time views (flip, shifts) the run was trained with, as metrics.json "
        "reports.",
    )
    parser.add_argument("run_ref", metavar="RUN", help="run folder or name")
    parser.add_argument("--data-dir", metavar="DIR", help="read the data from here instead")
    parser.add_argument(
        "--tta-flip",
        action=argparse.BooleanOptionalAction,
        help="average predictions over each image and its mirror (default: as the run was "
        "trained; --no-tta-flip evaluates the network alone, without shifted copies too)",
    )
    parser.add_argument(
        "--whole-test-set",
        action="store_true",
        help="evaluate every test image, also for a run trained with --test-subset (by "
        "default evaluate uses the run's own subset, as metrics.json does)",
    )
    add_runs_option(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from convlens.runs import Run
    from convlens.train.evaluation import evaluate_run

    run_ = Run.open(args.run_ref, args.runs)
    evaluation, dataset, views = evaluate_run(
        run_, data_dir=args.data_dir, tta_flip=args.tta_flip, whole_test_set=args.whole_test_set
    )
    difference = run_.data_difference(dataset)
    if args.json:
        print(
            json.dumps(
                {**evaluation.to_dict(), **views, "data_difference": difference},
                indent=2,
            )
        )
    else:
        named = [views["tta_flip"] and "its mirror", views["tta_shift"] and "shifted copies"]
        named = [name for name in named if name]
        flip = f", averaged over each image and {' and '.join(named)}" if named else ""
        print(f"{run_.path} on {dataset.name} ({dataset.source}){flip}")
        if difference:
            print(f"NOTE: {difference}.")
        print(evaluation.format())
        print()
        print(evaluation.format_confusion())
    return 0
