"""convlens import FILE: a Keras, ONNX or PyTorch model as an ordinary convlens run."""

from __future__ import annotations

import argparse

from convlens.cli.options import add_runs_option


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import",
        help="import a Keras (.keras, .h5), ONNX or PyTorch (.pt) model as a run",
        description="Translate a model from another framework into a run folder (spec, "
        "weights, summary) that every convlens command can open: evaluate, predict, "
        "journey, filters, explain, report, export, compare and the web lab. Keras files "
        "are read without TensorFlow. The model is fed images scaled to 0..1, as the "
        "lesson feeds it.",
    )
    parser.add_argument("file", metavar="FILE", help="model file: .keras, .h5, .onnx or .pt")
    parser.add_argument("--name", help="run name (default: the file's name)")
    parser.add_argument(
        "--data",
        metavar="DATASET",
        default=None,
        help="what the run is judged on: fashion-mnist (default), mnist, idx:DIR or "
        "folder:DIR (read at the model's image size)",
    )
    parser.add_argument(
        "--classes",
        metavar="NAMES_OR_FILE",
        help="class names, 'a,b,c' or a file with one name a line (default: the dataset's)",
    )
    parser.add_argument(
        "--spec",
        metavar="MODEL",
        help="for a .pt state_dict: the convlens spec it belongs to (preset, spec file or "
        "layer list)",
    )
    parser.add_argument(
        "--input",
        metavar="HxWxC",
        help="for a .pt state_dict whose spec gives no input shape (default 28x28x1)",
    )
    add_runs_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convlens.cli.cmd_summary import parse_input_shape
    from convlens.errors import ModelImportError
    from convlens.interop import import_model

    shape = parse_input_shape(args.input) if args.input else None
    try:
        run_ = import_model(
            args.file,
            args.name,
            data=args.data,
            classes=args.classes,
            runs_dir=args.runs,
            spec=args.spec,
            input_shape=shape,
        )
    except ModelImportError as err:
        if err.partial_summary:  # the layers that fit, then main prints the reason
            print(err.partial_summary, flush=True)
        raise
    origin = run_.run_config.imported or {}
    print((run_.summary_text() or "").rstrip())
    for note in origin.get("notes") or []:
        print(f"note: {note}")
    print(f"imported {args.file} ({origin.get('format')}) as {run_.path}")
    print(f"next: convlens evaluate {run_.path} --whole-test-set")
    return 0
