"""The kernel library: named convolution filters, and a parser for kernels typed as text.

A kernel is a small square grid of weights with an odd side (3x3, 5x5, ...) so that it
has a centre pixel. The names below are the ones the ``convlens filter`` command and the
docs use; the three filters of the lesson are ``edges`` (alias ``laplacian``),
``horizontal`` and ``vertical``.

Orientation, written down once because it is easy to get backwards: ``vertical`` is the
Sobel x filter; its columns go -1, 0, +1 from left to right, so it responds to a change
of brightness from left to right, which is what a *vertical* edge is. ``horizontal`` is
its transpose and responds to *horizontal* edges.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from convlens.errors import ConvlensError

__all__ = [
    "ALIASES",
    "KERNELS",
    "Kernel",
    "KernelError",
    "get_kernel",
    "kernel_names",
    "library_match",
    "parse_kernel",
]


class KernelError(ConvlensError):
    """A kernel that cannot be parsed or applied (unknown name, even size, too large, ...)."""


@dataclass(frozen=True, eq=False)
class Kernel:
    """A named filter. ``values`` is a read-only float64 array shaped (k, k), k odd."""

    name: str
    values: np.ndarray  # (k, k) float64, read-only
    description: str

    @property
    def size(self) -> int:
        return int(self.values.shape[0])


def _kernel(name: str, rows: list[list[float]], description: str, scale: float = 1.0) -> Kernel:
    values = np.array(rows, dtype=np.float64) * scale
    values.setflags(write=False)  # registry entries are shared; nobody may edit them
    return Kernel(name, values, description)


# The library, in the order `--list-kernels` shows it.
KERNELS: dict[str, Kernel] = {
    k.name: k
    for k in (
        _kernel(
            "vertical",
            [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
            "Sobel x, lights up vertical edges (dark-to-bright from left to right)",
        ),
        _kernel(
            "horizontal",
            [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
            "Sobel y, lights up horizontal edges (dark-to-bright from top to bottom)",
        ),
        _kernel(
            "laplacian",
            [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
            "the lesson's edge detector, a pixel against its four neighbours",
        ),
        _kernel(
            "outline",
            [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
            "a pixel against all eight neighbours, bright outlines on black",
        ),
        _kernel(
            "sharpen",
            [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
            "the image plus its edges: crisper detail",
        ),
        _kernel(
            "box-blur",
            [[1, 1, 1], [1, 1, 1], [1, 1, 1]],
            "the average of the 3x3 neighbourhood (weights 1/9)",
            scale=1 / 9,
        ),
        _kernel(
            "gaussian-blur",
            [[1, 2, 1], [2, 4, 2], [1, 2, 1]],
            "a softer blur that weighs the centre most (weights /16)",
            scale=1 / 16,
        ),
        _kernel(
            "emboss",
            [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
            "a relief effect lit from the top left",
        ),
        _kernel(
            "identity",
            [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
            "changes nothing except losing the 1-pixel border",
        ),
    )
}

# Other names people use for the same filters.
ALIASES: dict[str, str] = {
    "edges": "laplacian",
    "sobel-x": "vertical",
    "sobel-y": "horizontal",
    "blur": "box-blur",
}

_EXAMPLE = "[[0,1,0],[1,-4,1],[0,1,0]] or '0 1 0; 1 -4 1; 0 1 0'"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def kernel_names() -> list[str]:
    """Every name ``get_kernel`` accepts: the library first, then the aliases."""
    return [*KERNELS, *ALIASES]


def get_kernel(name: str) -> Kernel:
    """The library kernel called ``name`` (case-insensitive, ``_`` same as ``-``)."""
    key = name.strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in KERNELS:
        raise KernelError(
            f"unknown kernel {name.strip()!r}; choose one of {', '.join(kernel_names())}, "
            f"or type the numbers, e.g. {_EXAMPLE}"
        )
    return KERNELS[key]


def parse_kernel(text: str) -> Kernel:
    """Turn a name or typed numbers into a :class:`Kernel`.

    Accepted forms (spaces anywhere are fine)::

        vertical                          a library name (see ``kernel_names()``)
        [[0,1,0],[1,-4,1],[0,1,0]]        nested lists, commas or spaces between numbers
        0 1 0; 1 -4 1; 0 1 0              rows separated by ';' (or new lines)
        1/9 1/9 1/9; 1/9 1/9 1/9; ...     entries may be fractions

    The grid must be square with an odd side, so it has a centre. Typed kernels are named
    ``custom``, unless their numbers are exactly a library kernel's: then they get its
    name and description (typing the Sobel x numbers gives ``vertical``). Nothing is
    ``eval``-ed: numbers are read with ``float()``.
    """
    text = str(text).strip()
    if not text:
        raise KernelError(
            f"empty kernel; give a name such as 'vertical' or numbers, e.g. {_EXAMPLE}"
        )
    if _NAME.fullmatch(text) and text.lower() not in ("nan", "inf", "infinity"):
        return get_kernel(text)
    rows = _split_rows(text)
    grid = [
        [_number(token, r, c) for c, token in enumerate(row, 1)] for r, row in enumerate(rows, 1)
    ]
    values = _check_shape(grid)
    values.setflags(write=False)
    known = library_match(values)
    if known is not None:
        return known
    k = values.shape[0]
    return Kernel("custom", values, f"a {k}x{k} kernel typed on the command line")


def library_match(values: np.ndarray) -> Kernel | None:
    """The library kernel with these numbers (to 1e-9, so a typed 1/9 matches), if any."""
    for kernel in KERNELS.values():
        if kernel.values.shape == values.shape and np.allclose(
            kernel.values, values, rtol=0, atol=1e-9
        ):
            return kernel
    return None


def _split_rows(text: str) -> list[list[str]]:
    """'[[a,b],[c,d]]' or 'a b; c d' -> [['a','b'], ['c','d']] (strings, not yet numbers)."""
    if text.count("[") != text.count("]"):
        raise KernelError(f"unbalanced brackets in kernel {text!r}; write it like {_EXAMPLE}")
    body = text
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1].strip()
    if "[" in body or "]" in body:
        inner = re.findall(r"\[([^\[\]]*)\]", body)
        leftover = re.sub(r"\[[^\[\]]*\]", "", body)
        if not inner or leftover.strip(" ,;\n\t"):
            raise KernelError(
                f"cannot read kernel {text!r}: use one level of [row] lists, e.g. {_EXAMPLE}"
            )
        lines = inner
    else:
        lines = re.split(r"[;\n]", body)
    rows = [[t for t in re.split(r"[\s,]+", line.strip()) if t] for line in lines]
    rows = [row for row in rows if row]  # a trailing ';' or blank line is not a row
    if not rows:
        raise KernelError(f"kernel {text!r} has no numbers; write it like {_EXAMPLE}")
    return rows


def _number(token: str, row: int, col: int) -> float:
    """One entry: '2', '-0.5', '1e-3' or a fraction '1/9'. NaN and infinities are refused."""
    where = f"row {row}, column {col}"
    parts = token.split("/")
    try:
        if len(parts) > 2:
            raise ValueError
        value = float(parts[0])
        if len(parts) == 2:
            denominator = float(parts[1])
            if denominator == 0:
                raise KernelError(f"kernel entry {token!r} ({where}) divides by zero")
            value /= denominator
    except ValueError:
        raise KernelError(
            f"kernel entry {token!r} ({where}) is not a number; use numbers like 2, -0.5 or 1/9"
        ) from None
    if not math.isfinite(value):
        raise KernelError(
            f"kernel entry {token!r} ({where}) is not a finite number; NaN and infinity "
            "cannot be convolved"
        )
    return value


def _check_shape(grid: list[list[float]]) -> np.ndarray:
    """Square, odd side, same length rows -> (k, k) float64."""
    for r, row in enumerate(grid[1:], 2):
        if len(row) != len(grid[0]):
            raise KernelError(
                f"kernel row {r} has {len(row)} numbers but row 1 has {len(grid[0])}; "
                "every row needs the same count"
            )
    rows, cols = len(grid), len(grid[0])
    if rows != cols:
        raise KernelError(
            f"kernel is {rows}x{cols} (rows x columns); it must be square, e.g. 3x3 or 5x5"
            + ("; separate rows with ';'" if rows == 1 else "")
        )
    if rows % 2 == 0:
        raise KernelError(
            f"kernel is {rows}x{cols}; use an odd size (1x1, 3x3, 5x5, ...) so it has a centre"
        )
    return np.array(grid, dtype=np.float64)
