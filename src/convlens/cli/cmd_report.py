"""convlens report FOLDER: one self-contained HTML page for a run, sweep or comparison."""

from __future__ import annotations

import argparse

from convlens.cli.options import add_runs_option


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a self-contained report.html for a run, sweep or comparison",
        description="Write one HTML file with the folder's tables and figures embedded "
        "(no network, no scripts): for a run its curves, confusion matrix, per-class "
        "accuracy, overfitting verdict and misclassified test images; for a sweep its "
        "results, Pareto figure and sweet spot; for a comparison its table and figure.",
    )
    parser.add_argument(
        "target",
        metavar="FOLDER",
        help="a run, sweep or compare folder (path, or name inside --runs)",
    )
    parser.add_argument(
        "--out", metavar="PATH", help="file or folder to write (default FOLDER/report.html)"
    )
    parser.add_argument(
        "--data-dir", metavar="DIR", help="where a run's data is now, for its misclassified images"
    )
    add_runs_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convlens.reports import write_report

    path = write_report(args.target, args.out, runs_dir=args.runs, data_dir=args.data_dir)
    print(f"wrote {path}")
    return 0
