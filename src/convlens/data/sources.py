"""Where a dataset comes from: one function, :func:`load_dataset`, for every kind of spec.

Specs::

    fashion-mnist   the default; found (in this order) in the data_dir argument or
    mnist           $CONVLENS_DATA, the cache, the system folder, a download, and for
                    Fashion-MNIST finally the embedded 10% sample
    idx:DIR         any four IDX files under their canonical names (format checks only)
    folder:DIR      one sub-folder of images per class (see convlens.data.folder)

A folder the user named (``data_dir`` or ``$CONVLENS_DATA``) must hold a good copy:
anything wrong there is an error, never a silent fall-through to another copy. The
places convlens looks on its own (cache, system) are skipped when unusable, and the
reasons are reported if nothing else works.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convlens.data import catalog
from convlens.data.catalog import KnownDataset
from convlens.data.dataset import Dataset
from convlens.data.download import DownloadError, download_dataset
from convlens.data.idx import MAX_BYTES, MAX_TOTAL_BYTES, IdxFile, check_labels, read_idx_file
from convlens.data.images import resize_batch
from convlens.data.verify import check_copy, has_any_file, locate
from convlens.errors import DataError
from convlens.notices import SampleDataWarning, say
from convlens.wording import counted

ENV_DATA = "CONVLENS_DATA"
ENV_CACHE = "CONVLENS_CACHE"

_SPEC_FORMS = "fashion-mnist, mnist, idx:DIR (four IDX files) or folder:DIR (a folder per class)"


@dataclass(frozen=True)
class Place:
    """A folder where a copy may be, and how it was chosen (for messages)."""

    label: str  # "--data-dir", "CONVLENS_DATA", "cache", "system"
    folder: Path
    explicit: bool  # named by the user: problems there are errors

    def __str__(self) -> str:
        return f"{self.label} {self.folder}"


class _Unusable(Exception):
    """A place holds no usable copy; the message is the short reason."""


def load_dataset(
    spec: str = "fashion-mnist",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    download: bool = True,
    progress: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    sample: bool = True,
) -> Dataset:
    """Load a dataset as uint8 ``(N, C, H, W)`` arrays, verified where digests are known.

    ``image_size`` is ``(H, W)`` and ``channels`` 1 or 3: None keeps the files' own (28x28
    grey for the IDX datasets; folder datasets default to 28x28 grey). ``sample=False``
    turns off the last-resort fallback to the embedded Fashion-MNIST sample.
    """
    kind, arg = parse_dataset_spec(spec)
    if kind == "folder":
        from convlens.data.folder import load_folder

        return load_folder(arg, image_size=image_size or (28, 28), channels=channels or 1)
    if kind == "idx":
        dataset = load_idx_folder(Path(arg).expanduser(), name=f"idx:{arg}")
    else:
        dataset = _load_known(
            catalog.KNOWN[arg],
            data_dir=data_dir,
            cache_dir=cache_dir,
            download=download,
            progress=progress,
            sample=sample,
        )
    return _convert(dataset, image_size, channels)


def parse_dataset_spec(spec: str) -> tuple[str, str]:
    """``("known", name)``, ``("idx", DIR)`` or ``("folder", DIR)``; DataError otherwise."""
    text = str(spec).strip()
    for prefix in ("idx", "folder"):
        if text.lower().startswith(prefix + ":"):
            arg = text[len(prefix) + 1 :]
            if not arg:
                raise DataError(f"dataset {spec!r} names no folder; write {prefix}:DIR")
            return prefix, arg
    key = text.lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist"}.get(key, key)
    if key in catalog.KNOWN:
        return "known", key
    hint = ""
    if text and Path(text).expanduser().is_dir():
        hint = f" (for a folder write idx:{text} or folder:{text})"
    raise DataError(f"unknown dataset {spec!r}{hint}; use {_SPEC_FORMS}")


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: ``cache_dir``, else $CONVLENS_CACHE, else ~/.cache/convlens.

    ``$XDG_CACHE_HOME`` replaces ``~/.cache`` where set. Each dataset has a sub-folder.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "convlens"


def places(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> list[Place]:
    """Where a known dataset is looked for, in order (the download goes to the cache).

    A named folder (``data_dir``, else $CONVLENS_DATA) is the only place when given.
    """
    info = catalog.KNOWN[name]
    if data_dir is not None:
        return [Place("--data-dir", _dataset_subfolder(Path(data_dir).expanduser(), info), True)]
    if os.environ.get(ENV_DATA):
        root = Path(os.environ[ENV_DATA]).expanduser()
        return [Place(ENV_DATA, _dataset_subfolder(root, info), True)]
    return [
        Place("cache", cache_root(cache_dir) / info.name, False),
        Place("system", info.system_dir, False),
    ]


def _dataset_subfolder(root: Path, info: KnownDataset) -> Path:
    """``root`` itself, or ``root/fashion-mnist`` (etc.) when only that holds the files."""
    if has_any_file(root, info):
        return root
    for sub in info.subfolders:
        if has_any_file(root / sub, info):
            return root / sub
    return root


def _load_known(
    info: KnownDataset,
    *,
    data_dir: str | os.PathLike[str] | None,
    cache_dir: str | os.PathLike[str] | None,
    download: bool,
    progress: bool,
    sample: bool,
) -> Dataset:
    looked: list[str] = []
    for place in places(info.name, data_dir, cache_dir):
        try:
            return _read_verified(info, place.folder, source=str(place))
        except _Unusable as err:
            if place.explicit:
                undo = "drop --data-dir" if place.label == "--data-dir" else f"unset {ENV_DATA}"
                stems = ", ".join(f"{f.stem}[.gz]" for f in info.files)
                unverified = (
                    "" if info.files[0].content_sha256 else ", load it unverified as idx:DIR,"
                )
                raise DataError(
                    f"no usable {info.title} copy in {place} ({err}); put the official "
                    f"files there ({stems}){unverified} or {undo}"
                ) from None
            looked.append(f"{place} ({err})")

    if download:
        cache = cache_root(cache_dir) / info.name
        try:
            download_dataset(info, cache, progress=progress)
            return _read_verified(info, cache, source=f"downloaded into {cache}")
        except DownloadError as err:
            looked.append(f"download ({err.summary})")
        except _Unusable as err:
            looked.append(f"download ({err})")
    else:
        looked.append("download (turned off)")

    where = "; ".join(looked)
    if sample and info.name == "fashion-mnist":
        try:
            dataset = load_sample()
        except DataError as err:
            looked.append(f"embedded sample ({err})")
        else:
            notice = (
                f"no full copy of {info.title} found (looked in: {where}); using the "
                f"embedded 10% sample ({len(dataset.train_labels):,} train / "
                f"{len(dataset.test_labels):,} test images). Point --data-dir (in Python: "
                f"data_dir=, or ${ENV_DATA}) at the full files for real results."
            )
            say(notice, SampleDataWarning)
            return dataclasses.replace(dataset, notice=notice)
    fixes = [
        "pass --data-dir DIR holding the four IDX files",
        f"set {ENV_DATA}=DIR",
        f"run `convlens data download {info.name}` when online",
    ]
    if info.apt_package:
        fixes.append(f"`apt-get install {info.apt_package}`")
    raise DataError(
        f"no copy of {info.title} found (looked in: {'; '.join(looked)}); "
        f"{', '.join(fixes[:-1])}, or {fixes[-1]}"
    )


def _read_verified(info: KnownDataset, folder: Path, *, source: str) -> Dataset:
    """The dataset in ``folder`` if all four files are there and verified; else _Unusable."""
    if not folder.is_dir():
        raise _Unusable("no such folder" if not folder.exists() else "not a folder")
    missing = [f.stem for f in info.files if locate(folder, f.stem) is None]
    if len(missing) == len(info.files):
        raise _Unusable("no IDX files")
    if missing:
        raise _Unusable(f"missing {', '.join(missing)}")
    checks = check_copy(folder, info)
    files = [check.idx for check in checks if check.ok and check.idx is not None]
    bad = [check for check in checks if not check.ok]
    if bad:
        more = f" (and {counted(len(bad) - 1, 'more file')})" if len(bad) > 1 else ""
        raise _Unusable(bad[0].detail + more)
    return _assemble(info.name, info.class_names, files, source=source)


def load_sample() -> Dataset:
    """The embedded 10% Fashion-MNIST sample (6,000 train / 1,000 test), format-checked."""
    folder = catalog.SAMPLE_DIR
    files = []
    for stem in catalog.IDX_STEMS:
        path = locate(folder, stem)
        if path is None:
            raise DataError(
                f"the embedded sample is missing {folder / stem}.gz; reinstall convlens"
            )
        files.append(read_idx_file(path, kind="images" if "-images-" in stem else "labels"))
    dataset = _assemble(
        "fashion-mnist", catalog.FASHION_MNIST_CLASSES, files, source=f"embedded sample {folder}"
    )
    return dataclasses.replace(dataset, is_sample=True)


def load_idx_folder(folder: Path, *, name: str) -> Dataset:
    """Four IDX files under canonical names, checked for format only (no digests).

    Class names are "0".."9", or "0".."K-1" when the largest label K-1 is above 9.
    """
    if not folder.is_dir():
        raise DataError(f"{name}: {folder} is not a folder; name the folder holding the IDX files")
    paths = {stem: locate(folder, stem) for stem in catalog.IDX_STEMS}
    missing = [f"{stem}[.gz]" for stem, path in paths.items() if path is None]
    if missing:
        raise DataError(
            f"{name}: missing {', '.join(missing)} in {folder}; "
            "idx:DIR needs the four files under their canonical names"
        )
    files, left = [], MAX_TOTAL_BYTES  # the four files share one budget
    for stem, path in paths.items():
        if path is not None:
            kind = "images" if "-images-" in stem else "labels"
            files.append(read_idx_file(path, kind=kind, max_bytes=min(MAX_BYTES, left)))
            left -= files[-1].array.nbytes
    top = max(int(files[1].array.max(initial=0)), int(files[3].array.max(initial=0)))
    # The labels say how many classes there are: 0..max, named by their numbers.
    class_names = tuple(str(k) for k in range(top + 1))
    return _assemble(name, class_names, files, source=str(folder))


def _assemble(
    name: str, class_names: tuple[str, ...], files: list[IdxFile], *, source: str
) -> Dataset:
    """Four parsed IDX files (train images, train labels, test images, test labels)."""
    train_x, train_y, test_x, test_y = files
    for images, labels in ((train_x, train_y), (test_x, test_y)):
        if len(images.array) != len(labels.array):
            raise DataError(
                f"{images.path} holds {len(images.array):,} images but {labels.path} "
                f"{len(labels.array):,} labels; the files do not belong together"
            )
        if len(images.array) == 0:
            raise DataError(f"{images.path}: holds no images; use a file with images in it")
        check_labels(labels.array, len(class_names), labels.path)
    if train_x.array.shape[1:] != test_x.array.shape[1:]:
        raise DataError(
            f"train images are {'x'.join(map(str, train_x.array.shape[1:]))} but test images "
            f"{'x'.join(map(str, test_x.array.shape[1:]))} ({test_x.path}); use matching files"
        )
    return Dataset(
        name=name,
        class_names=tuple(class_names),
        train_images=train_x.array[:, None],  # (N, H, W) -> (N, 1, H, W)
        train_labels=train_y.array.astype(np.int64),
        test_images=test_x.array[:, None],
        test_labels=test_y.array.astype(np.int64),
        source=source,
    )


def _convert(dataset: Dataset, image_size: tuple[int, int] | None, channels: int | None) -> Dataset:
    if image_size is None and channels is None:
        return dataset
    return dataclasses.replace(
        dataset,
        train_images=resize_batch(dataset.train_images, image_size, channels),
        test_images=resize_batch(dataset.test_images, image_size, channels),
    )
