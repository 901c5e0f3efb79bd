"""What the look-inside commands (journey, filters, explain) share: the run, its test
images, a user's photo, and where the figure goes.

Not a command itself (``main.COMMANDS`` does not list it). Heavy imports stay inside the
functions so that ``convlens --help`` does not load torch or matplotlib.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convlens.cli.options import add_runs_option
from convlens.errors import OptionError

if TYPE_CHECKING:
    from convlens.data.dataset import Dataset
    from convlens.runs import Run


def add_invert_options(parser: argparse.ArgumentParser) -> None:
    """--invert / --no-invert for photos; left out, a light background is inverted."""
    invert = parser.add_mutually_exclusive_group()
    invert.add_argument(
        "--invert",
        dest="invert",
        action="store_const",
        const=True,
        help="always invert a photo (dark object on a light background)",
    )
    invert.add_argument(
        "--no-invert",
        dest="invert",
        action="store_const",
        const=False,
        help="never invert a photo (default: invert when the border is light)",
    )
    parser.set_defaults(invert=None)


def add_look_options(
    parser: argparse.ArgumentParser,
    *,
    photos: bool = True,
    data_dir_help: str = "read the test set from here instead",
) -> None:
    """The options journey, explain and filters end with: --out (the figure), --data-dir
    (the test set), --invert/--no-invert when they take ``photos``, and --runs."""
    parser.add_argument("--out", metavar="PATH", help="figure file (default: in the run folder)")
    parser.add_argument("--data-dir", metavar="DIR", help=data_dir_help)
    if photos:
        add_invert_options(parser)
    add_runs_option(parser)


def open_run(args: argparse.Namespace) -> tuple[Any, Any]:
    """(Run, Network) for ``args.run_ref`` inside ``args.runs``; the network in eval mode."""
    from convlens.runs import Run

    run = Run.open(args.run_ref, args.runs)
    return run, run.network()


def load_test_set(run: Run, data_dir: str | None) -> Dataset:
    """The run's dataset as it was trained (:meth:`Run.dataset`), every test image of it
    (``--index`` counts in the whole test split), optionally from another folder; its
    one-line notice (e.g. "using the embedded sample") goes to stderr."""
    dataset = run.dataset(data_dir, subsets=False)
    if dataset.notice:
        print(dataset.notice, file=sys.stderr)
    return dataset


def reference_images(run: Any, data_dir: str | None, dataset: Dataset | None = None) -> Any:
    """The first few hundred test images (N, C, H, W) uint8, on which a filter that never
    fires is called dead; None (and a note on stderr) when the test set cannot be read."""
    from convlens.errors import ConvlensError
    from convlens.introspect.liveness import REFERENCE_IMAGES

    if dataset is None:
        try:
            dataset = load_test_set(run, data_dir)
        except ConvlensError as err:
            print(
                f"(dead filters not marked: the test set could not be read: {err})", file=sys.stderr
            )
            return None
    return dataset.test_images[:REFERENCE_IMAGES]


def read_photo(run: Any, path: str, invert: bool | None) -> Any:
    """A user's image file prepared like the training data: (C, H, W) uint8."""
    from convlens.predict import prepare_for

    return prepare_for(run, path, invert)


def describe_test_image(dataset: Dataset, index: int) -> str:
    """'test #23 (Ankle boot)': an index and its true class."""
    return f"test #{index} ({dataset.class_names[int(dataset.test_labels[index])]})"


def figure_path(out: str | None, run: Any, default_name: str) -> Path:
    """``--out`` if given (its suffix must be a figure format), else inside the run folder."""
    if not out:
        return run.path / default_name
    path = Path(out)
    suffix = path.suffix.lstrip(".").lower()
    from matplotlib.backend_bases import FigureCanvasBase

    if suffix and suffix not in FigureCanvasBase.get_supported_filetypes():
        raise OptionError(f"cannot save a figure as .{suffix} ({out}); use .png, .pdf or .svg")
    return path if suffix else path.with_suffix(".png")


def slug(text: str) -> str:
    """'Ankle boot' -> 'ankle-boot', for file names."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")[:40] or "image"


def save(figure: Any, path: Path) -> None:
    from convlens.fileio import write_figure

    write_figure(path, figure, dpi=110)
