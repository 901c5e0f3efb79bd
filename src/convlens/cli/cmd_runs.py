"""convlens runs: the run folders in the runs folder, with their headline figures."""

from __future__ import annotations

import argparse

from convlens.cli.options import add_runs_option


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "runs", help="list the runs with their status and test accuracy",
        description="List the run folders (and those inside compare/sweep folders).",
    )  # fmt: skip
    add_runs_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convlens.errors import ConvlensError
    from convlens.runs import default_runs_dir, list_runs

    root = args.runs or default_runs_dir()
    rows = []
    for found in list_runs(root):
        try:
            config, state = found.run_config, found.state()
        except ConvlensError as err:  # a damaged run is listed, not fatal
            rows.append((str(found.path), "?", "damaged", "", "", "", str(err)[:40]))
            continue
        accuracy = ""
        if found.file("metrics.json").exists():
            accuracy = f"{found.metrics()['test_accuracy']:.2%}"
        epochs = f"{state.get('epochs_done', 0)}/{config.train.epochs}"
        if config.imported:  # trained elsewhere: no epochs here to count
            epochs = "-"
        rows.append((str(found.path), config.model.name, state.get("status", "?"), epochs,
                     accuracy, config.data_note.short, config.created or ""))  # fmt: skip
    if not rows:
        print(f"no runs in {root}; train one with: convlens train cnn")
        return 0
    # DATA: full, sample (the embedded 10%), subset, smoke (CONVLENS_SMOKE capped it)
    header = ("RUN", "MODEL", "STATUS", "EPOCHS", "TEST ACC", "DATA", "CREATED")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0
