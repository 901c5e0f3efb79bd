"""convlens export RUN --onnx PATH: the trained model for other runtimes."""

from __future__ import annotations

import argparse

from convlens.cli.options import add_runs_option


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export a run (ONNX, Keras)",
        description="Export a run's final weights as ONNX (float images 0..1 in, class "
        "probabilities out, any batch size), checked against PyTorch with ONNX Runtime, "
        "and/or as a Keras 3 .keras file that tf.keras.models.load_model opens (written "
        "without TensorFlow, read back and checked by convlens' Keras importer).",
    )  # fmt: skip
    parser.add_argument("run_ref", metavar="RUN", help="run folder or name")
    parser.add_argument(
        "--onnx", metavar="PATH", help="where to write ONNX (default RUN/model.onnx)"
    )
    parser.add_argument("--keras", metavar="PATH", help="also or instead write a .keras file")
    add_runs_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convlens.export import export_onnx
    from convlens.runs import Run

    run_ = Run.open(args.run_ref, args.runs)
    if args.keras:
        from convlens.interop.keras_export import export_keras

        written = export_keras(run_, args.keras)
        print(
            f"wrote {written.path}; read back by convlens' Keras importer it matches the run "
            f"(max difference {written.max_abs_difference:.1e})"
        )
        if not args.onnx:
            return 0
    result = export_onnx(run_, args.onnx or run_.file("model.onnx"))
    check = (
        f"ONNX Runtime matches PyTorch (max difference {result.max_abs_difference:.1e})"
        if result.max_abs_difference is not None
        else "not checked: install onnxruntime to compare it with PyTorch"
    )
    print(f"wrote {result.path}; {check}")
    return 0
