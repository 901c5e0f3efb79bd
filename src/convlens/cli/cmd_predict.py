"""convlens predict RUN IMAGE...: the top classes for your own images (files or folders)."""

from __future__ import annotations

import argparse

from convlens.cli.look_inside import add_invert_options
from convlens.cli.options import add_runs_option


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="classify your own images with a trained run",
        description="Prepare each image like the training data (grayscale, resized with its "
        "aspect kept, inverted when the background is light) and print the top classes.",
    )
    parser.add_argument("run_ref", metavar="RUN", help="run folder or name")
    parser.add_argument(
        "images", nargs="+", metavar="IMAGE", help="PNG/JPEG/... files, or folders of them"
    )
    parser.add_argument("--top", type=int, default=3, help="how many classes to show (3)")
    add_invert_options(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_runs_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from convlens.errors import OptionError
    from convlens.predict import predict_files
    from convlens.runs import Run

    if args.top < 1:
        raise OptionError(f"--top {args.top} is not valid; it must be at least 1")
    run_ = Run.open(args.run_ref, args.runs)
    predictions = predict_files(run_, args.images, invert=args.invert)
    if args.json:
        print(
            json.dumps([{"image": p.source, "top": p.top(args.top)} for p in predictions], indent=2)
        )
    else:
        for prediction in predictions:
            print(prediction.format(args.top))
    return 0
