"""convlens summary MODEL: the Keras-style table, and with --explain the why of each shape."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "summary",
        help="print a model's layers, output shapes and parameter counts",
        description="Print the Keras-style summary of a preset, a spec file or a layer list.",
    )
    parser.add_argument(
        "model", help="preset (dnn, cnn, ...), spec file, or 'conv(32,3,relu), ...'"
    )
    parser.add_argument(
        "--explain", action="store_true", help="say why every output shape is what it is"
    )
    parser.add_argument(
        "--input",
        metavar="HxWxC",
        default=None,
        help="input shape (default: the spec's, else 28x28x1)",
    )
    parser.add_argument("--classes", type=int, default=None, help="number of classes to expect")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--list", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from convlens.errors import SpecError
    from convlens.models.network import build_network
    from convlens.models.registry import resolve_model
    from convlens.models.summary import summarize, summary_until_failure

    spec = resolve_model(args.model)
    shape = parse_input_shape(args.input) if args.input else spec.input_shape or (1, 28, 28)
    try:
        network = build_network(spec, shape, args.classes)
    except SpecError:
        partial = summary_until_failure(spec, shape)
        if partial and not args.json:  # the layers that fit, then main prints the reason
            print(partial, flush=True)
        raise
    summary = summarize(network)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(summary.format(explain=args.explain))
    return 0


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """'28x28x1' or '28x28' -> (C, H, W)."""
    from convlens.errors import OptionError

    try:
        h, w, *c = (int(v) for v in text.lower().split("x"))
        if len(c) > 1 or min(h, w, *c) < 1:
            raise ValueError
    except ValueError:
        raise OptionError(f"--input '{text}' is not HxW or HxWxC, e.g. 28x28x1") from None
    return (c[0] if c else 1, h, w)
