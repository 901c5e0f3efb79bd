"""Entry point of the ``convlens`` command: parse, dispatch, turn user errors into one line."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

# Sub-command modules, in the order --help lists them. Each defines add_parser() and run().
COMMANDS: tuple[str, ...] = (
    "summary",
    "train",
    "import",
    "evaluate",
    "runs",
    "predict",
    "compare",
    "export",
    "sweep",
    "report",
    "filter",
    "journey",
    "filters",
    "explain",
    "data",
    "serve",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convlens",
        description="Build, train, compare and look inside convolutional image classifiers.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"convlens.cli.cmd_{name}")
        except ModuleNotFoundError as err:
            if err.name == f"convlens.cli.cmd_{name}":
                continue  # a command still being built; the others stay usable
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    from convlens.errors import ConvlensError
    from convlens.notices import ConvlensWarning

    # The commands print their notices themselves (one line on stderr); the library's
    # warning of the same sentence would say it twice.
    warnings.filterwarnings("ignore", category=ConvlensWarning)
    restore = _stop_like_ctrl_c()
    try:
        return int(args.run(args) or 0)
    except ConvlensError as err:
        print(f"convlens {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt as interrupt:
        detail = f": {interrupt}" if str(interrupt) else ""
        print(f"convlens {args.command}: interrupted{detail}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `convlens ... | head` closed the pipe: not an error; silence the final flush.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        restore()  # the work is done: a signal now just ends the process


def _stop_like_ctrl_c() -> Callable[[], None]:
    """SIGTERM (``kill``, systemd, schedulers) and SIGHUP (a closed terminal) stop a
    command as Ctrl-C does: a training ends "interrupted", resumable, with its hint.
    Signals someone chose to ignore (``nohup``) stay ignored. Returns what puts the
    previous handlers back.

    Python cannot raise out of some code (a ``__del__``, a weakref or import callback): a
    stop raised there would be printed as "Exception ignored" and lost, and the command
    would go on. ``sys.unraisablehook`` catches exactly that case and sends the signal
    again, so the stop comes at the next line of ordinary code. A stop that lands during
    an import waits for its end the same way (raised inside an extension module's import,
    it would abort the process).
    """
    changed: list[int] = []
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGHUP"):
            number = getattr(signal, name, None)
            if number is not None and signal.getsignal(number) == signal.SIG_DFL:
                signal.signal(number, _raise_interrupt)
                changed.append(number)
    previous_hook = sys.unraisablehook
    if changed:
        sys.unraisablehook = _resend_lost_stops(previous_hook)

    def restore() -> None:
        for number in changed:
            signal.signal(number, signal.SIG_DFL)
        sys.unraisablehook = previous_hook

    return restore


class _StopSignal(KeyboardInterrupt):
    """A SIGTERM or SIGHUP on its way to stop the command (a KeyboardInterrupt, so
    everything that stops on Ctrl-C stops on it too)."""

    def __init__(self, number: int) -> None:
        super().__init__(f"stopped by {signal.Signals(number).name}")
        self.number = number


def _raise_interrupt(number: int, frame: FrameType | None) -> None:
    if _importing(frame):
        # An import can run Python inside a C++ call (torch's extension modules do): a
        # stop raised there aborts the whole process ("terminate called after throwing
        # pybind11::error_already_set") and would leave a module half imported. It comes
        # again a moment later, until the import is done.
        _send_again(number)
        return
    raise _StopSignal(number)


RESEND_AFTER = 0.005  # seconds: by then the code that swallowed the stop has mostly returned
_IMPORT_MACHINERY = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


def _importing(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs inside an import (a module's body or its machinery)."""
    while frame is not None:
        if frame.f_code.co_filename in _IMPORT_MACHINERY:
            return True
        frame = frame.f_back
    return False


def _send_again(number: int) -> None:
    """Send signal ``number`` to this process again in :data:`RESEND_AFTER` seconds, from
    another thread (sent from here, it would be handled here again at once)."""
    resend = threading.Timer(RESEND_AFTER, os.kill, (os.getpid(), number))
    resend.daemon = True
    resend.start()


def _resend_lost_stops(hook: Callable[[Any], None]) -> Callable[[Any], None]:
    def handle(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, _StopSignal):
            hook(unraisable)
            return
        # Not from here: a signal sent now would be handled inside this very hook (and
        # lost again). From another thread a moment later, it lands in ordinary code, or
        # comes back here to be sent once more.
        _send_again(unraisable.exc_value.number)

    return handle


def _version() -> str:
    from convlens.version import __version__

    return __version__


if __name__ == "__main__":
    sys.exit(main())
