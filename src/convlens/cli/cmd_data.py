"""``convlens data``: what dataset would be used, is it the real one, fetch it.

    convlens data info [DATASET] [--data-dir DIR]     name, source, classes, shapes
    convlens data verify [DATASET] [--data-dir DIR]   SHA-256 of every copy found
    convlens data download [fashion-mnist|mnist]      into the cache, verified

No torch here (the data layer does not need it), so these commands start fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from convlens.data.catalog import KnownDataset

_EPILOG = """\
where copies are looked for (fashion-mnist, mnist): --data-dir, else $CONVLENS_DATA, else
the cache (~/.cache/convlens, or $CONVLENS_CACHE), then /usr/share/datasets/<name>
(apt-get install dataset-fashion-mnist), then a download; Fashion-MNIST finally falls
back to the embedded 10% sample.
examples:
  convlens data info
  convlens data info mnist --no-download
  convlens data info folder:my_photos
  convlens data verify --data-dir ~/datasets/fashion-mnist
  convlens data download mnist
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "data",
        help="show, verify or download a dataset",
        description="Show which dataset copy would be used, verify it, or download it.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")

    info = actions.add_parser("info", help="name, source, classes with counts, shapes")
    _add_dataset(info, "fashion-mnist (default), mnist, idx:DIR or folder:DIR")
    _add_places(info)
    info.add_argument("--no-download", action="store_true", help="never download")

    verify = actions.add_parser("verify", help="check the SHA-256 of every copy found")
    _add_dataset(verify, "fashion-mnist (default) or mnist")
    _add_places(verify)

    download = actions.add_parser("download", help="fetch the official files into the cache")
    _add_dataset(download, "fashion-mnist (default) or mnist")
    download.add_argument("--cache-dir", metavar="DIR", help="cache folder (default as above)")
    download.add_argument("--force", action="store_true", help="download even if cached")
    download.add_argument("--quiet", action="store_true", help="no progress bar")

    parser.set_defaults(run=run, data_parser=parser)
    return parser


def _add_dataset(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("dataset", nargs="?", default="fashion-mnist", metavar="DATASET", help=help)


def _add_places(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", metavar="DIR", help="folder with the dataset's files")
    parser.add_argument("--cache-dir", metavar="DIR", help="cache folder (default as above)")


def run(args: argparse.Namespace) -> int:
    command = getattr(args, "data_command", None)
    if command == "info":
        return _info(args)
    if command == "verify":
        return _verify(args)
    if command == "download":
        return _download(args)
    args.data_parser.print_help()
    return 0


def _info(args: argparse.Namespace) -> int:
    from convlens.data import load_dataset
    from convlens.wording import counted

    dataset = load_dataset(
        args.dataset,
        data_dir=args.data_dir,
        cache_dir=args.cache_dir,
        download=not args.no_download,
        progress=sys.stderr.isatty(),
    )
    if dataset.notice:
        print(f"convlens data: {dataset.notice}", file=sys.stderr)
    c, h, w = dataset.input_shape
    train_counts, test_counts = dataset.class_counts("train"), dataset.class_counts("test")
    print(f"dataset  {dataset.name}{'  (embedded sample)' if dataset.is_sample else ''}")
    print(f"source   {dataset.source}")
    print(f"images   {h}x{w}, {counted(c, 'channel')}, uint8 0-255")
    print(f"train    {len(dataset.train_labels):,} images  {dataset.train_images.shape}")
    print(f"test     {len(dataset.test_labels):,} images  {dataset.test_images.shape}")
    print(f"classes  {dataset.num_classes}")
    width = max(len(name) for name in dataset.class_names)
    print(f"  {'label':>5}  {'name':<{width}}  {'train':>7}  {'test':>7}")
    for label, name in enumerate(dataset.class_names):
        print(f"  {label:>5}  {name:<{width}}  {train_counts[label]:>7,}  {test_counts[label]:>7,}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from convlens.data.sources import places
    from convlens.data.verify import check_copy, has_any_file
    from convlens.errors import DataError

    name, info = _known(
        args.dataset,
        "only fashion-mnist and mnist have published digests to verify; "
        "use `convlens data info` to check that the files load",
    )
    found = [p for p in places(name, args.data_dir, args.cache_dir) if has_any_file(p.folder, info)]
    if not found:
        looked = "; ".join(str(p) for p in places(name, args.data_dir, args.cache_dir))
        raise DataError(
            f"no copy of {info.title} to verify (looked in: {looked}); pass --data-dir DIR or "
            f"run `convlens data download {name}`"
        )
    failed = 0
    for place in found:
        print(f"{place}")
        for check in check_copy(place.folder, info):
            shown = check.path.name if check.path else f"{check.stem}[.gz]"
            text = check.detail if check.ok else check.detail.replace(f"{check.path}: ", "")
            print(f"  {check.status.upper():<12} {shown}  {text}")
            failed += not check.ok
    if failed:
        print(f"convlens data: {failed} file(s) failed verification", file=sys.stderr)
        return 1
    return 0


def _download(args: argparse.Namespace) -> int:
    from convlens.data.download import download_dataset
    from convlens.data.sources import cache_root

    name, info = _known(args.dataset, "only fashion-mnist and mnist can be downloaded")
    folder = cache_root(args.cache_dir) / name
    paths = download_dataset(info, folder, progress=not args.quiet, force=args.force)
    for path in paths:
        print(path)
    print(f"{info.title}: verified copy in {folder}", file=sys.stderr)
    return 0


def _known(dataset: str, only: str) -> tuple[str, KnownDataset]:
    """The catalogued dataset (fashion-mnist, mnist) that ``dataset`` names: its name and
    entry; an IDX or folder source is refused in one line, "DATASET: ONLY"."""
    from convlens.data import catalog
    from convlens.data.sources import parse_dataset_spec
    from convlens.errors import DataError

    kind, name = parse_dataset_spec(dataset)
    if kind != "known":
        raise DataError(f"{dataset}: {only}")
    return name, catalog.KNOWN[name]
