"""Build the embedded 10% Fashion-MNIST sample that ships inside the package.

    python scripts/build_sample.py DIR          # DIR holds the four official files
    python scripts/build_sample.py              # DIR from $CONVLENS_DATA

The source is verified against the official content digests first. The sample is
stratified and seeded: 600 training images per class (6,000) and 100 test images per
class (1,000), kept in their original order, written as four gzipped IDX files with no
time stamp in the gzip header, so the same source and seed always give the same bytes.
Also written: LICENSE (Fashion-MNIST's MIT notice) and README.md (how it was built, with
the SHA-256 of each file).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

import numpy as np

from convlens import fileio
from convlens.data import load_dataset
from convlens.data.catalog import FASHION_MNIST_CLASSES, IDX_STEMS, SAMPLE_DIR
from convlens.data.idx import write_idx
from convlens.errors import ConvlensError

TRAIN_PER_CLASS = 600
TEST_PER_CLASS = 100
SEED = 20170825  # Fashion-MNIST's release date

LICENSE = """\
The embedded sample in this folder is a subset of Fashion-MNIST
(https://github.com/zalandoresearch/fashion-mnist), distributed under the MIT License:

The MIT License (MIT) Copyright © 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy of this \
software and associated documentation files (the “Software”), to deal in the Software \
without restriction, including without limitation the rights to use, copy, modify, merge, \
publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons \
to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or \
substantial portions of the Software.

THE SOFTWARE IS PROVIDED “AS IS”, WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, \
INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR \
PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE \
FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR \
OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER \
DEALINGS IN THE SOFTWARE.
"""


def pick(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``per_class`` random images of each class 0-9."""
    chosen = [rng.choice(np.flatnonzero(labels == k), per_class, replace=False) for k in range(10)]
    return np.sort(np.concatenate(chosen))


def build(source: Path, out: Path) -> list[tuple[str, int, str]]:
    """Write the sample into ``out``; return (file name, bytes, sha256) per IDX file."""
    full = load_dataset("fashion-mnist", data_dir=source, download=False, sample=False)
    rng = np.random.default_rng(SEED)
    train = pick(full.train_labels, TRAIN_PER_CLASS, rng)
    test = pick(full.test_labels, TEST_PER_CLASS, rng)
    arrays = (
        full.train_images[train, 0],  # (6000, 28, 28)
        full.train_labels[train].astype(np.uint8),  # (6000,)
        full.test_images[test, 0],  # (1000, 28, 28)
        full.test_labels[test].astype(np.uint8),  # (1000,)
    )
    written = []
    for stem, array in zip(IDX_STEMS, arrays, strict=True):
        path = out / f"{stem}.gz"
        write_idx(path, array)
        data = path.read_bytes()
        written.append((path.name, len(data), hashlib.sha256(data).hexdigest()))
    fileio.write_text(out / "LICENSE", LICENSE)
    fileio.write_text(out / "README.md", readme(written))
    return written


def readme(written: list[tuple[str, int, str]]) -> str:
    rows = "\n".join(f"| `{name}` | {size:,} | `{digest}` |" for name, size, digest in written)
    classes = ", ".join(FASHION_MNIST_CLASSES)
    n_train, n_test = f"{10 * TRAIN_PER_CLASS:,}", f"{10 * TEST_PER_CLASS:,}"
    return f"""\
# Embedded Fashion-MNIST sample

A 10% stratified sample of Fashion-MNIST: {TRAIN_PER_CLASS} training images per class
({n_train} in all) and {TEST_PER_CLASS} test images per class ({n_test}),
drawn with seed {SEED} from the official files (verified by the SHA-256 of their content)
and kept in their original order. Labels 0-9: {classes}.

convlens falls back to it, with a notice, when no full copy can be found or downloaded,
so that the lesson runs anywhere; real results need the full dataset (`--data-dir`).

Built by `scripts/build_sample.py` in the convlens repository:

    python scripts/build_sample.py DIR   # DIR holds the four official Fashion-MNIST files

The files are gzipped IDX written without a time stamp, so a rebuild gives the same bytes:

| file | bytes | sha256 |
| --- | --- | --- |
{rows}

License: MIT, Copyright (c) 2017 Zalando SE; see LICENSE.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "source",
        nargs="?",
        default=os.environ.get("CONVLENS_DATA"),
        help="folder with the four official Fashion-MNIST files (default: $CONVLENS_DATA)",
    )
    parser.add_argument("--out", type=Path, default=SAMPLE_DIR, help="where to write the sample")
    args = parser.parse_args(argv)
    if not args.source:
        parser.error("name the Fashion-MNIST folder (or set CONVLENS_DATA)")
    try:
        written = build(Path(args.source), args.out)
    except ConvlensError as err:
        print(f"build_sample: error: {err}", file=sys.stderr)
        return err.exit_code
    for name, size, digest in written:
        print(f"{args.out / name}  {size:>9,} bytes  sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
