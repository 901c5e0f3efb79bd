"""``convlens serve``: the lab in a browser, on this computer.

The page offers what the commands do: the filter playground (``convlens filter``),
predictions and the journey of a drawing or photo (``predict``, ``journey``,
``explain``), the runs folder (``evaluate``, ``report``) and training (``train``). It
listens on 127.0.0.1 unless told otherwise, so only this computer reaches it.
"""

from __future__ import annotations

import argparse
import sys

from convlens.cli.options import add_data_options, add_runs_option

_EPILOG = """\
examples:
  convlens serve                          then open http://127.0.0.1:8000/
  convlens serve --runs class-runs --port 8080
  convlens serve --data-dir ~/fashion-mnist    train on the full files from the page
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="the lab in a browser: filters, predictions, the journey, runs, training",
        description="Serve a local web page over the library: play with filters, draw and "
        "classify, follow a picture through the layers, compare runs and train new ones. "
        "Needs the web extra: pip install 'convlens[web]'.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_runs_option(parser)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (127.0.0.1: this computer only; 0.0.0.0: your network)",
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="port to listen on (8000; 0 picks a free one)"
    )
    add_data_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from convlens.cli.options import data_config
    from convlens.errors import OptionError
    from convlens.runs import default_runs_dir

    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ModuleNotFoundError as err:
        raise OptionError(
            f"convlens serve needs {err.name}, part of the web extra; install it with: "
            "pip install 'convlens[web]'"
        ) from None
    from convlens.web.server import is_loopback, serve

    runs_dir = Path(args.runs) if args.runs else default_runs_dir()
    data = data_config(args)

    def announce(url: str) -> None:
        print(f"convlens lab at {url}  (runs: {runs_dir}, data: {data.dataset}; Ctrl-C stops)")
        if not is_loopback(args.host):
            print(
                f"warning: listening on {args.host}: anyone who can reach this computer can "
                "use the page, including starting training",
                file=sys.stderr,
            )
        sys.stdout.flush()

    serve(runs_dir, data, host=args.host, port=args.port, announce=announce)
    return 0
