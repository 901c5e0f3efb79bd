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
import stat
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
    """Write ``rows`` as CSV with a header line: the union of their keys, in first-seen
    order; a row without a key gets an empty cell."""
    buffer = io.StringIO()
    if rows:
        fields = list(dict.fromkeys(key for row in rows for key in row))
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n", restval="")
        writer.writeheader()
        writer.writerows(rows)
    write_text(path, buffer.getvalue())


def write_figure(path: str | os.PathLike[str], figure: Any, **savefig_kwargs: Any) -> None:
    """Save a matplotlib figure atomically (format from the suffix)."""
    buffer = io.BytesIO()
    fmt = Path(path).suffix.lstrip(".") or "png"
    figure.savefig(buffer, format=fmt, **savefig_kwargs)
    write_bytes(path, buffer.getvalue())


#: The most bytes a small file of a run folder (JSON, CSV, text) may hold when read back.
SMALL_FILE_LIMIT = 64 * 2**20


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes.

    A FIFO, a device (``/dev/zero``, also behind a symlink), a socket or a folder is
    refused without blocking or reading: the file is opened non-blocking and checked
    with ``fstat`` before a byte is read, and no more than ``limit`` + 1 bytes are ever
    read (a file that grows meanwhile is refused too). ``FileNotFoundError`` passes
    through; everything else is a one-line :class:`ConvlensError`.
    """
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise
    except OSError as err:
        raise ConvlensError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConvlensError(
                f"{path} is not a regular file ({_kind(info.st_mode)}); replace it with the "
                "file itself"
            )
        if info.st_size > limit:
            raise ConvlensError(
                f"{path} is {info.st_size:,} bytes, over the {limit:,}-byte limit for this "
                "file; it is not the file convlens wrote"
            )
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise ConvlensError(f"{path} grew past the {limit:,}-byte limit while being read")
        return b"".join(chunks)
    except OSError as err:
        raise ConvlensError(f"cannot read {path}: {err.strerror or err}") from None
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a plain file"


def read_text(path: str | os.PathLike[str], limit: int = SMALL_FILE_LIMIT) -> str:
    """A regular text file of at most ``limit`` bytes, as UTF-8 (see :func:`read_regular`)."""
    try:
        return read_regular(path, limit).decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConvlensError(f"cannot read {path}: not UTF-8 text ({err.reason})") from None


def read_json(path: str | os.PathLike[str], limit: int = SMALL_FILE_LIMIT) -> Any:
    """Read a JSON file, turning a missing, special, huge or corrupt file into a one-line
    error (NaN and Infinity are accepted: metrics may hold them)."""
    path = Path(path)
    try:
        return json.loads(read_text(path, limit))
    except FileNotFoundError as err:
        raise ConvlensError(f"missing file {path}") from err
    except (json.JSONDecodeError, RecursionError) as err:
        detail = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise ConvlensError(
            f"cannot read {path}: {detail}; the file is corrupt or not JSON"
        ) from None


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
