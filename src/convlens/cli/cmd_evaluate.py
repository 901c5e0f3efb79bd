"""convlens evaluate RUN: test accuracy, per-class accuracy and the confusion matrix."""

from __future__ import annotations

import argparse

from convlens.cli.options import add_runs_option


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a trained run on its test set",
        description="Evaluate a run's final weights on the test split of its data (fp32), "
        "with flip averaging when the run was trained with it, as metrics.json reports.",
    )
    parser.add_argument("run_ref", metavar="RUN", help="run folder or name")
    parser.add_argument("--data-dir", metavar="DIR", help="read the data from here instead")
    parser.add_argument(
        "--tta-flip",
        action=argparse.BooleanOptionalAction,
        help="average predictions over each image and its mirror (default: as the run was "
        "trained; --no-tta-flip evaluates the network alone)",
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
    import dataclasses
    import json

    from convlens.data.config import DataConfig
    from convlens.recipe import TrainConfig
    from convlens.runs import Run
    from convlens.train.evaluation import evaluate_network
    from convlens.train.session import apply_subsets

    run_ = Run.open(args.run_ref, args.runs)
    network = run_.load_network()
    config = run_.config
    data = DataConfig.from_dict(config["data"])
    tta_flip = args.tta_flip
    if tta_flip is None:  # the run's own test-time recipe, so the figures match metrics.json
        tta_flip = bool(config["train"].get("tta_flip", False))
    if args.data_dir:
        data = dataclasses.replace(data, data_dir=args.data_dir)
    dataset = data.load()
    if not args.whole_test_set:  # the run's own test images, as metrics.json judged them
        dataset = apply_subsets(dataset, TrainConfig.from_dict(config["train"]))
    evaluation = evaluate_network(
        network, dataset.test_images, dataset.test_labels, dataset.class_names, tta_flip=tta_flip
    )
    if args.json:
        print(json.dumps({**evaluation.to_dict(), "tta_flip": tta_flip}, indent=2))
    else:
        flip = ", averaged over each image and its mirror" if tta_flip else ""
        print(f"{run_.path} on {dataset.name} ({dataset.source}){flip}")
        print(evaluation.format())
    return 0
