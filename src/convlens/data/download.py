"""Download a known dataset's official ``.gz`` files into the cache, verified.

Each file is tried on every mirror in turn. The bytes stream into a temporary file
beside the target (:func:`convlens.fileio.atomic_open`), are counted and hashed on the
way, and replace the target only when the size and SHA-256 match the official ones: a
cut connection or a wrong mirror never leaves a half or false file in the cache.
"""

from __future__ import annotations

import hashlib
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from convlens import fileio
from convlens.data.catalog import KnownDataset, KnownFile
from convlens.data.verify import check_file
from convlens.errors import ConvlensError, DataError

#: Seconds to wait for a mirror to connect or send the next bytes.
TIMEOUT = 30.0
_CHUNK = 1 << 16
_USER_AGENT = "convlens (https://pypi.org/project/convlens/)"


class _MirrorFailed(Exception):
    """One mirror could not deliver one file; the next mirror is tried."""


class DownloadError(DataError):
    """No mirror delivered a file. ``summary`` is the short reason, for lists of places."""

    def __init__(self, message: str, summary: str) -> None:
        super().__init__(message)
        self.summary = summary


def download_dataset(
    info: KnownDataset, folder: Path, *, progress: bool = True, force: bool = False
) -> list[Path]:
    """Make ``folder`` hold a verified copy of ``info``'s four files; return their paths.

    Files already there and verified are kept unless ``force``. Raises a one-line
    :class:`DataError` listing what each mirror answered when a file cannot be fetched.
    """
    paths = []
    for known in info.files:
        if not force:
            existing = check_file(folder, known)
            if existing.ok and existing.path is not None:
                paths.append(existing.path)
                continue
        paths.append(fetch_file(info, known, folder, progress=progress))
    return paths


def fetch_file(info: KnownDataset, known: KnownFile, folder: Path, *, progress: bool) -> Path:
    """Fetch ``known.stem + ".gz"`` from the first mirror that serves the official bytes."""
    target = folder / f"{known.stem}.gz"
    failures = []
    for base in info.mirrors:
        url = base + target.name
        try:
            _fetch(url, target, known, progress=progress)
        except _MirrorFailed as err:
            failures.append(f"{url}: {err}")
            continue
        return target
    summary = f"{target.name}: " + "; ".join(failures)
    raise DownloadError(
        f"could not download {info.title} {summary}; check the network, or get the files "
        "another way and pass --data-dir DIR",
        summary,
    )


def _fetch(url: str, target: Path, known: KnownFile, *, progress: bool) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as err:
        raise _MirrorFailed(f"HTTP {err.code}") from err
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise _MirrorFailed(f"unreachable ({reason})") from err
    with response:
        length = response.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) != known.gz_size:
            raise _MirrorFailed(f"serves {int(length):,} bytes, not the official {known.gz_size:,}")
        digest = hashlib.sha256()
        received = 0
        bar = _progress_bar(target.name, known.gz_size, enabled=progress)
        try:
            with fileio.atomic_open(target) as handle:
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except OSError as err:  # timeouts and resets mid-transfer
                        raise _MirrorFailed(f"transfer failed ({err})") from err
                    if not chunk:
                        break
                    received += len(chunk)
                    if received > known.gz_size:
                        raise _MirrorFailed(f"sent more than the official {known.gz_size:,} bytes")
                    digest.update(chunk)
                    handle.write(chunk)
                    bar.update(len(chunk))
                if received != known.gz_size:
                    raise _MirrorFailed(
                        f"sent {received:,} bytes, not the official {known.gz_size:,}"
                    )
                if digest.hexdigest() != known.gz_sha256:
                    raise _MirrorFailed("SHA-256 does not match the official file")
        except ConvlensError as err:  # the cache folder is not writable
            raise DataError(str(err)) from err
        finally:
            bar.close()


def _progress_bar(name: str, total: int, *, enabled: bool) -> Any:
    """A tqdm bar on stderr (tqdm imported only when something is downloaded)."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=name,
        file=sys.stderr,
        disable=not enabled,
        leave=False,
    )
