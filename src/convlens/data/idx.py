"""Read and write IDX files, the format of MNIST and Fashion-MNIST, raw or gzip-compressed.

Layout (big-endian)::

    bytes 0-1   0x00 0x00
    byte  2     element type: 0x08 = unsigned byte (the only type convlens reads)
    byte  3     number of dimensions: 3 for images (magic 2051), 1 for labels (magic 2049)
    then        one uint32 per dimension: (N, rows, cols) or (N,)
    then        the payload, exactly N * rows * cols (or N) bytes, row-major

The reader trusts nothing: a file is gzip when it starts with ``1f 8b`` (whatever its
name), the declared size is checked against a ceiling and against what the file could
possibly hold *before* any buffer is allocated, decompression is bounded by that size,
and truncated or trailing bytes are refused. Every failure is a one-line
:class:`~convlens.errors.DataError` naming the file.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import stat
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from convlens import fileio
from convlens.errors import DataError

#: Largest payload the reader accepts (2 GiB); Fashion-MNIST's biggest file is 47 MB.
MAX_BYTES = 2**31
#: Largest payload of a dataset's four files together (2 GiB): Fashion-MNIST's is 55 MB.
MAX_TOTAL_BYTES = 2**31
#: Largest image side an IDX file may declare (the run folder's limit too).
MAX_SIDE = 4096

# Deflate cannot expand its input more than ~1032:1 (zlib's technical notes), so a gzip
# file of S bytes never holds more than this many times S bytes, plus slack for headers.
_GZIP_MAX_RATIO = 1032
_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08
_KIND_NDIM = {"images": 3, "labels": 1}
_CHUNK = 1 << 20  # bytes read or decompressed at a time
_FIX = "replace it with a good copy (download it again)"


@dataclass(frozen=True)
class IdxFile:
    """What :func:`read_idx_file` found: the array and the digests of the bytes read."""

    path: Path
    array: np.ndarray  # uint8, (N, rows, cols) or (N,)
    content_sha256: str  # SHA-256 of the decompressed IDX bytes (header + payload)
    content_size: int  # bytes once decompressed
    file_sha256: str  # SHA-256 of the bytes on disk (== content_sha256 when raw)
    compressed: bool  # True when the file is gzip


def read_idx(path: str | os.PathLike[str], *, kind: str | None = None) -> np.ndarray:
    """Read an IDX file into a uint8 array: images ``(N, rows, cols)``, labels ``(N,)``.

    ``kind`` ("images" or "labels") demands that magic; ``None`` accepts either.
    """
    return read_idx_file(path, kind=kind).array


def read_idx_file(
    path: str | os.PathLike[str], *, kind: str | None = None, max_bytes: int = MAX_BYTES
) -> IdxFile:
    """Read and validate an IDX file; see the module docstring for what is checked."""
    path = Path(path)
    if kind not in (None, *_KIND_NDIM):
        raise ValueError(f"kind must be 'images', 'labels' or None, not {kind!r}")
    try:
        handle = _open_regular(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; check the path") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an IDX file; name the file itself") from None
    except OSError as err:
        raise DataError(f"{path}: cannot open ({err.strerror or err}); check permissions") from err
    with handle:
        try:
            return _read(path, handle, kind, max_bytes)
        except OSError as err:  # an I/O error mid-read (a disk, a network share)
            raise DataError(f"{path}: read failed ({err.strerror or err}); {_FIX}") from err


def _open_regular(path: Path) -> BinaryIO:
    """Open without blocking (a FIFO would hang ``open``) and only a regular file."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    if stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        raise IsADirectoryError(path)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DataError(f"{path}: not a regular file (a pipe or device); name the IDX file itself")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _read(path: Path, handle: BinaryIO, kind: str | None, max_bytes: int) -> IdxFile:
    file_size = os.fstat(handle.fileno()).st_size
    compressed = handle.read(2) == _GZIP_MAGIC
    handle.seek(0)
    stream = _Stream(path, handle, compressed)

    header = stream.read(4)
    if len(header) < 4:
        raise DataError(f"{path}: too short to be an IDX file ({file_size} bytes); {_FIX}")
    zero, dtype, ndim = header[:2], header[2], header[3]
    magic = int.from_bytes(header, "big")
    if zero != b"\x00\x00" or ndim not in (1, 3):
        raise DataError(
            f"{path}: not an IDX file (magic 0x{magic:08x}; images have 2051 = 0x00000803, "
            f"labels 2049 = 0x00000801); point at the IDX images or labels file"
        )
    if dtype != _UBYTE:
        raise DataError(
            f"{path}: IDX element type 0x{dtype:02x} is not supported (convlens reads "
            "unsigned bytes, type 0x08, as MNIST and Fashion-MNIST use); convert the file"
        )
    if kind is not None and ndim != _KIND_NDIM[kind]:
        found = "images" if ndim == 3 else "labels"
        raise DataError(
            f"{path}: holds {found} (magic {magic}) where {kind} were expected; "
            "check which file is which (train-images-idx3-ubyte vs train-labels-idx1-ubyte)"
        )

    raw_dims = stream.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DataError(f"{path}: truncated inside the header; {_FIX}")
    dims = struct.unpack(f">{ndim}I", raw_dims)
    if ndim == 3 and (dims[1] == 0 or dims[2] == 0):
        raise DataError(f"{path}: declares images of {dims[1]}x{dims[2]} pixels; {_FIX}")
    if ndim == 3 and max(dims[1], dims[2]) > MAX_SIDE:
        raise DataError(
            f"{path}: declares images of {dims[1]}x{dims[2]} pixels, over the {MAX_SIDE:,}-pixel "
            f"limit a side; the header is corrupt, {_FIX}"
        )
    payload = math.prod(dims)
    total = 4 + 4 * ndim + payload
    shape_text = "x".join(str(d) for d in dims)

    # Refuse absurd sizes before allocating anything.
    if payload > max_bytes:
        raise DataError(
            f"{path}: declares {shape_text} = {payload:,} bytes, over the {max_bytes:,} bytes "
            f"it may hold (a dataset's files hold at most {MAX_TOTAL_BYTES:,} together); the "
            f"header is corrupt or the data too big, {_FIX}"
        )
    if compressed and total > file_size * _GZIP_MAX_RATIO + 1024:
        raise DataError(
            f"{path}: declares {shape_text} = {payload:,} bytes, more than a {file_size:,}-byte "
            f"gzip file can hold; the header is corrupt or the file truncated, {_FIX}"
        )
    if not compressed and total != file_size:
        what = "truncated" if file_size < total else "has trailing bytes"
        raise DataError(
            f"{path}: {what}: the header declares {shape_text} ({total:,} bytes with the "
            f"header) but the file has {file_size:,} bytes; {_FIX}"
        )

    buffer = bytearray(payload)
    got = stream.readinto(memoryview(buffer))
    if got < payload:
        raise DataError(
            f"{path}: truncated: the header declares {shape_text} ({payload:,} payload bytes) "
            f"but only {got:,} follow; {_FIX}"
        )
    if stream.read(1):
        raise DataError(
            f"{path}: has trailing bytes after the {shape_text} payload the header declares; {_FIX}"
        )
    array = np.frombuffer(buffer, dtype=np.uint8).reshape(dims)
    return IdxFile(
        path=path,
        array=array,
        content_sha256=stream.content_hash.hexdigest(),
        content_size=total,
        file_sha256=stream.file_hash.hexdigest(),
        compressed=compressed,
    )


class _Stream:
    """The decompressed bytes of a raw or gzip file, in bounded pieces, hashed as read.

    Decompression only ever produces as many bytes as the caller asks for, so a gzip
    bomb cannot make the reader allocate more than the (already bounded) declared size.
    Multi-member gzip files (``cat a.gz b.gz``) are read like ``gzip`` does.
    """

    def __init__(self, path: Path, handle: BinaryIO, compressed: bool) -> None:
        self.path = path
        self.handle = handle
        self.compressed = compressed
        self.file_hash = hashlib.sha256()
        self.content_hash = hashlib.sha256()
        self._inflater: zlib._Decompress | None = zlib.decompressobj(wbits=31)
        self._pending = b""  # compressed bytes read from the file, not yet inflated

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; fewer only at the end of the content."""
        buffer = bytearray(size)
        got = self.readinto(memoryview(buffer))
        return bytes(buffer[:got])

    def readinto(self, view: memoryview) -> int:
        filled = 0
        while filled < len(view):
            piece = self._next(min(len(view) - filled, _CHUNK))
            if not piece:
                break
            view[filled : filled + len(piece)] = piece
            filled += len(piece)
        self.content_hash.update(view[:filled])
        return filled

    def _read_file(self, size: int) -> bytes:
        data = self.handle.read(size)
        self.file_hash.update(data)
        return data

    def _next(self, limit: int) -> bytes:
        """At most ``limit`` more content bytes; ``b""`` at a clean end of file."""
        if not self.compressed:
            return self._read_file(limit)
        while True:
            if self._inflater is None:
                # A gzip member ended (zlib checked its CRC and length). Another member
                # may follow, as ``gzip`` allows; zero padding after the last is tolerated.
                rest = self._pending.lstrip(b"\x00")
                while not rest:
                    more = self._read_file(_CHUNK)
                    if not more:
                        return b""
                    rest = more.lstrip(b"\x00")
                if not rest.startswith(_GZIP_MAGIC[: len(rest)]):
                    raise DataError(f"{self.path}: trailing garbage after the gzip data; {_FIX}")
                self._inflater = zlib.decompressobj(wbits=31)
                self._pending = rest
            at_end = False
            if not self._pending:
                self._pending = self._read_file(_CHUNK)
                at_end = not self._pending
            try:
                # With the file exhausted this still flushes output zlib holds back.
                out = self._inflater.decompress(self._pending, limit)
            except zlib.error as err:
                raise DataError(f"{self.path}: corrupt gzip data ({err}); {_FIX}") from err
            if self._inflater.eof:
                self._pending = self._inflater.unused_data
                self._inflater = None
            else:
                self._pending = self._inflater.unconsumed_tail
            if out:
                return out
            if at_end and self._inflater is not None:
                raise DataError(f"{self.path}: the gzip data ends early (file truncated); {_FIX}")


def check_labels(labels: np.ndarray, num_classes: int, path: str | os.PathLike[str]) -> None:
    """Refuse labels outside ``0 .. num_classes - 1`` with a one-line error naming ``path``."""
    if labels.size and int(labels.max()) >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise DataError(
            f"{path}: label {int(labels[bad])} at index {bad} is out of range for "
            f"{num_classes} classes (0-{num_classes - 1}); {_FIX}"
        )


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of a uint8 array shaped ``(N, rows, cols)`` or ``(N,)``."""
    array = np.asarray(array)
    if array.ndim not in (1, 3):
        raise ValueError(f"IDX arrays are (N,) or (N, rows, cols), not {array.shape}")
    if array.dtype != np.uint8:
        if array.size and (array.min() < 0 or array.max() > 255):
            raise ValueError("IDX unsigned-byte arrays hold values 0-255 only")
        array = array.astype(np.uint8)
    header = bytes((0, 0, _UBYTE, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when the name ends in ``.gz``.

    The write is atomic (:mod:`convlens.fileio`), and the gzip header carries no time
    stamp, so the same array always gives the same bytes (the sample's digests rely on it).
    """
    data = encode_idx(array)
    if str(path).endswith(".gz"):
        data = gzip.compress(data, compresslevel=9, mtime=0)
    fileio.write_bytes(path, data)
