"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every file convlens writes into a run folder or the cache goes through here. The bytes
go to a temporary file in the same folder, are flushed to disk, and then
``os.replace`` swaps them in (atomic on POSIX and Windows within one filesystem).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from convlens.errors import ConvlensError


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary binary file beside ``path``; on success it replaces ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise ConvlensError(
            f"cannot write {path}: {err.strerror or err}; "
            "choose a writable folder (check permissions and free disk space)"
        ) from err
    tmp = Path(tmp_name)
    try:
        # mkstemp makes 0600 files; give the final file the usual umask-based mode.
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ConvlensError(
            f"cannot write {path}: {err.strerror or err}; "
            "check free disk space and that the folder is writable"
        ) from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_umask() -> int:
    # os.umask can only be read by setting it; do that once, at import, before any threads.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path) as handle:
        handle.write(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_csv(path: str | os.PathLike[str], rows: Sequence[dict[str, Any]]) -> None:
    """Write ``rows`` (dicts sharing their keys) as CSV with a header line."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0].keys()), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    write_text(path, buffer.getvalue())


def write_figure(path: str | os.PathLike[str], figure: Any, **savefig_kwargs: Any) -> None:
    """Save a matplotlib figure atomically (format from the suffix)."""
    buffer = io.BytesIO()
    fmt = Path(path).suffix.lstrip(".") or "png"
    figure.savefig(buffer, format=fmt, **savefig_kwargs)
    write_bytes(path, buffer.getvalue())


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, turning a missing or corrupt file into a one-line error."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ConvlensError(f"missing file {path}") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConvlensError(f"cannot read {path}: {err}; the file is corrupt or not JSON") from err


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays, Paths and dataclasses show up in configs and metrics.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
