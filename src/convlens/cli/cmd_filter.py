"""``convlens filter``: one picture through one kernel by hand, then max pooling.

The lesson's exercise as a command: convolve a grayscale picture with a 3x3 (or 5x5, ...)
kernel in NumPy, multiply by a weight, clamp to 0..255, pool, and save the slide. With
``--at ROW,COL`` it also prints the arithmetic behind one output pixel. No torch here:
this is the operation written out, not a layer.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import Any

from convlens.errors import OptionError

_EPILOG = """\
sizes are height x width. examples:
  convlens filter --sample photo --kernel vertical
  convlens filter --sample fashion:0 --kernel horizontal --at 10,12
  convlens filter shoe.png --kernel '0 1 0; 1 -4 1; 0 1 0' --weight 0.5 --out edges.png
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "filter",
        help="convolve a picture with a kernel by hand, then max-pool it",
        description=(
            "Convolve a grayscale picture with a kernel (valid: a 3x3 kernel loses a 1-pixel "
            "border), multiply by a weight, clamp to 0..255, max-pool, and save the figure."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "image", nargs="?", metavar="IMAGE", help="a picture file; converted to grayscale"
    )
    parser.add_argument(
        "--sample", metavar="NAME", help="a built-in picture instead: photo or fashion:N"
    )
    parser.add_argument(
        "--kernel",
        "-k",
        metavar="K",
        help="a kernel name (see --list-kernels) or numbers: '[[0,1,0],[1,-4,1],[0,1,0]]' "
        "or '0 1 0; 1 -4 1; 0 1 0' (odd, square; fractions like 1/9 allowed)",
    )
    parser.add_argument(
        "--pool", default="2", metavar="N", help="max-pool window after the conv (0: none; 2)"
    )
    parser.add_argument(
        "--weight", default="1", metavar="W", help="multiply the sums by W before clamping (1)"
    )
    parser.add_argument(
        "--at",
        metavar="ROW,COL",
        help="print the arithmetic of this filtered pixel (0-based, in the filtered image)",
    )
    parser.add_argument(
        "--out", metavar="PATH", help="where to save the figure (default: filter-<kernel>.png)"
    )
    parser.add_argument(
        "--data-dir", metavar="DIR", help="where the Fashion-MNIST files are (for fashion:N)"
    )
    parser.add_argument("--list-kernels", action="store_true", help="show the kernel names")
    parser.add_argument("--list-samples", action="store_true", help="show the sample names")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    if args.list_kernels or args.list_samples:
        if args.list_kernels:
            _print_kernels()
        if args.list_samples:
            from convlens.byhand.samples import SAMPLES

            for name, text in SAMPLES.items():
                print(f"{name:<10}  {text}")
        return 0

    from convlens.byhand import conv2d, explain_pixel, max_pool2d, parse_kernel
    from convlens.byhand.arithmetic import explain_pool

    if not args.kernel:
        raise OptionError(
            "no kernel: give --kernel NAME (e.g. vertical; --list-kernels shows them) "
            "or numbers such as --kernel '0 1 0; 1 -4 1; 0 1 0'"
        )
    kernel = parse_kernel(args.kernel)
    typed_name = re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", args.kernel.strip()) is not None
    # A name as typed (an alias stays an alias); typed numbers that equal a library
    # kernel take its name.
    label = args.kernel.strip().lower().replace("_", "-") if typed_name else kernel.name
    pool = _pool(args.pool)
    weight = _weight(args.weight)
    at = _at(args.at) if args.at is not None else None
    out = Path(args.out) if args.out else Path(f"filter-{label}.png")
    _check_format(out)
    image, source = _load(args)  # (H, W) uint8

    filtered = conv2d(image, kernel.values, weight=weight)  # (H, W) -> (H-k+1, W-k+1)
    sizes = [f"{_size(image)} -> conv {_size(kernel.values)} -> {_size(filtered)}"]
    if pool:
        sizes.append(f"maxpool {pool} -> {_size(max_pool2d(filtered, pool))}")
    explained = explain_pixel(image, kernel.values, *at, weight=weight) if at else None

    from convlens.fileio import write_figure
    from convlens.plots.hand_kernel import filter_figure

    figure = filter_figure(image, kernel, pool=pool, weight=weight, kernel_name=label, mark=at)
    write_figure(out, figure, dpi=150)

    print(f"{source}: " + " -> ".join(sizes))
    if kernel.name != "custom" and not typed_name:
        print(f"these numbers are the library's {kernel.name} kernel: {kernel.description}")
    if explained is not None:
        print()
        print(explained.format())
        value = _number(filtered[at])
        print(f"\nfiltered pixel [{at[0]}, {at[1]}] = {value} (after the weight, before clamping)")
        if pool:
            print()
            print(explain_pool(filtered, at[0], at[1], pool).format())
        print()
    print(f"wrote {out}")
    return 0


# --- inputs --------------------------------------------------------------------------


def _load(args: argparse.Namespace) -> tuple[Any, str]:
    """-> ((H, W) uint8 pixels, a short name for them)."""
    if args.image and args.sample:
        raise OptionError("give either an IMAGE path or --sample, not both")
    if args.image:
        return _read_image(Path(args.image)), args.image
    if not args.sample:
        raise OptionError(
            "no picture: give an IMAGE path or --sample photo or --sample fashion:N "
            "(--list-samples shows them)"
        )
    from convlens.byhand.samples import load_photo, parse_sample

    sample = parse_sample(args.sample)
    if sample.kind == "photo":
        import numpy as np

        return np.asarray(load_photo().convert("L")), "photo"  # ITU-R 601 luma
    return _fashion(sample.index, args.data_dir)


def _read_image(path: Path) -> Any:
    """Any picture file -> (H, W) uint8 gray (alpha on white, 16-bit scaled, EXIF rotated)."""
    from convlens.convolution import grey_pixels

    return grey_pixels(path)  # one-line ImageError for missing, corrupt, huge files


def _fashion(index: int, data_dir: str | None) -> tuple[Any, str]:
    """-> ((28, 28) uint8, 'fashion:N (class)'); the loader may fall back to its sample."""
    from convlens.byhand.samples import fashion_image
    from convlens.data import load_dataset

    dataset = load_dataset("fashion-mnist", data_dir=data_dir, download=True, progress=True)
    image, label = fashion_image(dataset, index)
    if dataset.notice:
        print(dataset.notice, file=sys.stderr)
    return image, label


def _pool(text: str) -> int:
    try:
        pool = int(str(text).strip())
    except ValueError:
        raise OptionError(f"--pool must be a whole number (0 for none), got {text!r}") from None
    if pool < 0:
        raise OptionError(f"--pool must be 0 (no pooling) or more, got {pool}")
    return pool


def _weight(text: str) -> float:
    try:
        weight = float(text)
    except ValueError:
        raise OptionError(f"--weight must be a number such as 1 or 0.5, got {text!r}") from None
    if not math.isfinite(weight):
        raise OptionError(f"--weight must be a finite number, got {text!r}")
    return weight


def _at(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(-?\d+)\s*[, ]\s*(-?\d+)\s*", text)
    if not match:
        raise OptionError(f"--at takes ROW,COL as two whole numbers, e.g. --at 5,7; got {text!r}")
    return int(match.group(1)), int(match.group(2))


def _check_format(out: Path) -> None:
    from matplotlib.backend_bases import FigureCanvasBase

    suffix = out.suffix.lstrip(".").lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix and suffix not in formats:
        raise OptionError(
            f"cannot save a figure as .{suffix} ({out}); use .png, .pdf, .svg or .jpg"
        )


# --- output --------------------------------------------------------------------------


def _print_kernels() -> None:
    from convlens.byhand import ALIASES, KERNELS

    for name, kernel in KERNELS.items():
        rows = "; ".join(" ".join(_number(v, fraction=True) for v in row) for row in kernel.values)
        print(f"{name:<14} {kernel.description}")
        print(f"{'':<14} {rows}")
    aliases = ", ".join(f"{alias} = {name}" for alias, name in ALIASES.items())
    print(f"\nalso: {aliases}")
    print("or type the numbers: --kernel '[[0,1,0],[1,-4,1],[0,1,0]]' or '0 1 0; 1 -4 1; 0 1 0'")


def _size(array: Any) -> str:
    return f"{array.shape[0]}x{array.shape[1]}"


def _number(value: float, *, fraction: bool = False) -> str:
    from convlens.byhand.arithmetic import format_number

    return format_number(value, fraction=fraction)
