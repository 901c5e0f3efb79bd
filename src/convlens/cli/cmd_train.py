"""convlens train MODEL: train into a run folder; --resume RUN continues an interrupted one."""

from __future__ import annotations

import argparse

from convlens.cli.options import (
    add_data_options,
    add_edit_option,
    add_runs_option,
    add_train_options,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model and write a run folder",
        description="Train a preset, spec file or layer list on a dataset. Every epoch is "
        "checkpointed; Ctrl-C stops cleanly and --resume continues.",
    )
    parser.add_argument(
        "model",
        nargs="?",
        help="preset (dnn, cnn, cnn-small, ...), spec file, or layer list (default: the "
        "--preset's own model)",
    )
    parser.add_argument(
        "--resume",
        metavar="RUN",
        help="continue this run folder with its own recipe and data (only --epochs, "
        "--data-dir, --threads and --device may be given with it)",
    )
    parser.add_argument("--name", help="run folder name (default MODEL-DATE-TIME)")
    add_runs_option(parser)
    add_edit_option(parser)
    add_train_options(parser)
    add_data_options(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convlens.cli.options import (
        data_config,
        model_or_preset,
        recipe_options_given,
        training_plan,
    )
    from convlens.errors import OptionError
    from convlens.train.progress import SilentReporter, TqdmReporter
    from convlens.train.session import resume, train

    reporter = SilentReporter() if args.quiet else TqdmReporter()
    if args.resume:
        if args.model or args.preset:
            raise OptionError(
                "give either a MODEL or --preset to train anew, or --resume RUN (which "
                "continues with the run's own recipe), not both"
            )
        refused = recipe_options_given(args)
        if refused:
            raise OptionError(
                f"--resume cannot take {', '.join(refused)}: a resumed run keeps the recipe "
                "and data it was started with, so that it trains as the uninterrupted run "
                "would; only --epochs, --data-dir, --threads and --device may change (to "
                "change the recipe, train a new run)"
            )
        run_ = resume(
            args.resume,
            runs_dir=args.runs,
            epochs=args.epochs,
            data_dir=args.data_dir,
            threads=args.threads,
            device=args.device,
            reporter=reporter,
        )
    else:
        model = model_or_preset(args)
        if not model:
            raise OptionError(
                "name a model to train, e.g. convlens train cnn (or --preset NAME, or --resume RUN)"
            )
        plan = training_plan(args, model)
        run_ = train(
            plan.spec,
            data=data_config(args),
            config=plan.config,
            runs_dir=args.runs,
            name=args.name,
            reporter=reporter,
            recipe_preset=plan.recipe_preset,
        )
    _print_result(run_)
    return 0


def _print_result(run_) -> None:
    if run_.file("metrics.json").exists():
        print(run_)  # the headline, with what the data was when not the full set
