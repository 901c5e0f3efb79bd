"""convlens export RUN --onnx PATH: the trained model for other runtimes."""

from __future__ import annotations

import argparse

from convlens.cli.options import add_runs_option


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export a trained run (ONNX)",
        description="Export a run's final weights as ONNX (float images 0..1 in, class "
        "probabilities out, any batch size), checked against PyTorch with ONNX Runtime.",
    )  # fmt: skip
    parser.add_argument("run_ref", metavar="RUN", help="run folder or name")
    parser.add_argument("--onnx", metavar="PATH", help="where to write (default RUN/model.onnx)")
    add_runs_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convlens.export import export_onnx
    from convlens.runs import Run

    run_ = Run.open(args.run_ref, args.runs)
    result = export_onnx(run_, args.onnx or run_.file("model.onnx"))
    check = (
        f"ONNX Runtime matches PyTorch (max difference {result.max_abs_difference:.1e})"
        if result.max_abs_difference is not None
        else "not checked: install onnxruntime to compare it with PyTorch"
    )
    print(f"wrote {result.path}; {check}")
    return 0
