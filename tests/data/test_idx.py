"""The IDX reader refuses every malformed file with a one-line DataError, fast and small."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convlens.data.idx import check_labels, encode_idx, read_idx, read_idx_file, write_idx
from convlens.errors import DataError

IMAGES = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)  # (N, rows, cols)
LABELS = np.array([0, 9, 3], dtype=np.uint8)


def header(ndim: int, *dims: int, dtype: int = 0x08) -> bytes:
    return bytes((0, 0, dtype, ndim)) + struct.pack(f">{len(dims)}I", *dims)


def assert_one_line(err: pytest.ExceptionInfo[DataError], *needles: str) -> None:
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_round_trip_images_and_labels(tmp_path: Path, name: str) -> None:
    write_idx(tmp_path / name, IMAGES)
    write_idx(tmp_path / f"labels-{name}", LABELS)
    images = read_idx(tmp_path / name, kind="images")
    labels = read_idx(tmp_path / f"labels-{name}", kind="labels")
    assert images.dtype == np.uint8 and images.shape == (3, 4, 5)
    np.testing.assert_array_equal(images, IMAGES)
    np.testing.assert_array_equal(labels, LABELS)
    assert images.flags.writeable


def test_gzip_is_detected_by_magic_bytes_not_by_name(tmp_path: Path) -> None:
    (tmp_path / "raw.gz").write_bytes(encode_idx(IMAGES))  # raw, misleading name
    (tmp_path / "packed").write_bytes(gzip.compress(encode_idx(IMAGES)))  # gzip, no suffix
    raw, packed = read_idx_file(tmp_path / "raw.gz"), read_idx_file(tmp_path / "packed")
    assert not raw.compressed and packed.compressed
    np.testing.assert_array_equal(raw.array, packed.array)


def test_digests_name_the_content_and_the_file(tmp_path: Path) -> None:
    content = encode_idx(IMAGES)
    packed = gzip.compress(content, compresslevel=1)
    (tmp_path / "a.gz").write_bytes(packed)
    result = read_idx_file(tmp_path / "a.gz")
    assert result.content_sha256 == hashlib.sha256(content).hexdigest()
    assert result.file_sha256 == hashlib.sha256(packed).hexdigest()
    assert result.content_size == len(content)


def test_write_idx_is_deterministic_and_atomic(tmp_path: Path) -> None:
    write_idx(tmp_path / "a.gz", IMAGES)
    first = (tmp_path / "a.gz").read_bytes()
    write_idx(tmp_path / "a.gz", IMAGES)
    assert (tmp_path / "a.gz").read_bytes() == first  # no time stamp in the gzip header
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gz"]  # no temp file left


def test_write_idx_refuses_other_shapes(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_idx(tmp_path / "x", np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(ValueError):
        write_idx(tmp_path / "x", np.array([256]))


def test_multi_member_gzip_reads_whole(tmp_path: Path) -> None:
    content = encode_idx(IMAGES)
    (tmp_path / "m.gz").write_bytes(gzip.compress(content[:20]) + gzip.compress(content[20:]))
    np.testing.assert_array_equal(read_idx(tmp_path / "m.gz"), IMAGES)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "too short"),
        (b"\x00\x00", "too short"),
        (header(1, 3)[:6], "truncated inside the header"),
        (b"\x89PNG\r\n\x1a\n" + bytes(40), "not an IDX file"),
        (bytes((0, 0, 8, 2)) + struct.pack(">2I", 2, 2) + bytes(4), "not an IDX file"),
        (bytes((0, 1, 8, 1)) + struct.pack(">I", 1) + b"\x00", "not an IDX file"),
        (header(3, 1, 2, 2, dtype=0x0D) + bytes(16), "element type 0x0d"),
        (header(3, 1, 0, 28), "0x28 pixels"),
    ],
)
def test_bad_headers(tmp_path: Path, data: bytes, needle: str) -> None:
    path = tmp_path / "bad-idx"
    path.write_bytes(data)
    with pytest.raises(DataError) as err:
        read_idx(path)
    assert_one_line(err, str(path), needle)


def test_wrong_kind_is_named(tmp_path: Path) -> None:
    write_idx(tmp_path / "labels", LABELS)
    with pytest.raises(DataError) as err:
        read_idx(tmp_path / "labels", kind="images")
    assert_one_line(err, "holds labels", "images were expected")


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_payload(tmp_path: Path, gz: bool) -> None:
    data = encode_idx(IMAGES)[:-7]
    path = tmp_path / "t"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataError) as err:
        read_idx(path)
    assert_one_line(err, str(path), "truncated")


@pytest.mark.parametrize("gz", [False, True])
def test_trailing_bytes(tmp_path: Path, gz: bool) -> None:
    data = encode_idx(IMAGES) + b"\x00extra"
    path = tmp_path / "t"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataError) as err:
        read_idx(path)
    assert_one_line(err, str(path), "trailing bytes")


def test_lying_dimensions(tmp_path: Path) -> None:
    # The header claims 100 images of 28x28; the file holds ten.
    data = header(3, 100, 28, 28) + bytes(10 * 28 * 28)
    (tmp_path / "raw").write_bytes(data)
    (tmp_path / "gz").write_bytes(gzip.compress(data))
    for name in ("raw", "gz"):
        with pytest.raises(DataError) as err:
            read_idx(tmp_path / name)
        assert_one_line(err, "100x28x28", "truncated")


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    packed = gzip.compress(encode_idx(IMAGES))
    (tmp_path / "cut.gz").write_bytes(packed[: len(packed) - 12])
    with pytest.raises(DataError) as err:
        read_idx(tmp_path / "cut.gz")
    assert_one_line(err, "cut.gz")


def test_garbage_after_gzip_member(tmp_path: Path) -> None:
    (tmp_path / "g.gz").write_bytes(gzip.compress(encode_idx(IMAGES)) + b"junk")
    with pytest.raises(DataError) as err:
        read_idx(tmp_path / "g.gz")
    assert_one_line(err, "trailing garbage")


def test_zero_padding_after_gzip_is_tolerated(tmp_path: Path) -> None:
    (tmp_path / "z.gz").write_bytes(gzip.compress(encode_idx(IMAGES)) + bytes(64))
    np.testing.assert_array_equal(read_idx(tmp_path / "z.gz"), IMAGES)


@pytest.mark.parametrize(
    "data",
    [
        b"\x1f\x8b" + b"this is not deflate data at all" * 3,
        b"\x1f\x8b\x08\x00" + bytes(6) + b"\xff" * 50,
        b"\x1f\x8b",
    ],
)
def test_gzip_garbage(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "garbage.gz").write_bytes(data)
    with pytest.raises(DataError) as err:
        read_idx(tmp_path / "garbage.gz")
    assert_one_line(err, "garbage.gz")


def test_gzip_crc_error(tmp_path: Path) -> None:
    packed = bytearray(gzip.compress(encode_idx(IMAGES)))
    packed[-6] ^= 0xFF  # inside the CRC32 trailer
    (tmp_path / "crc.gz").write_bytes(bytes(packed))
    with pytest.raises(DataError) as err:
        read_idx(tmp_path / "crc.gz")
    assert_one_line(err, "corrupt gzip data")


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "dims",
    [
        (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF),  # ~8e28 bytes
        (4_000_000, 28, 28),  # 3.1 GB: over the 2 GiB ceiling
        (1_000_000, 28, 28),  # 784 MB: under the ceiling but not in a tiny file
    ],
)
def test_absurd_sizes_fail_fast_without_allocating(tmp_path: Path, gz: bool, dims) -> None:
    data = header(3, *dims) + bytes(100)
    path = tmp_path / "huge"
    path.write_bytes(gzip.compress(data) if gz else data)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(DataError) as err:
            read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0
    assert peak < 4 * 2**20, f"allocated {peak:,} bytes"
    assert_one_line(err, str(path))


def test_gzip_bomb_is_bounded_by_the_declared_size(tmp_path: Path) -> None:
    # A small header followed by 50 MB of zeros (compresses to ~50 KB): read stops early.
    packed = gzip.compress(header(1, 10) + bytes(10) + bytes(50_000_000), compresslevel=1)
    (tmp_path / "bomb.gz").write_bytes(packed)
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as err:
            read_idx(tmp_path / "bomb.gz")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, f"allocated {peak:,} bytes"
    assert_one_line(err, "trailing bytes")


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        read_idx(tmp_path / "nope")
    assert_one_line(err, "no such file")
    with pytest.raises(DataError) as err:
        read_idx(tmp_path)
    assert_one_line(err, "is a folder")


def test_labels_out_of_range(tmp_path: Path) -> None:
    check_labels(np.array([0, 9]), 10, tmp_path / "labels")
    with pytest.raises(DataError) as err:
        check_labels(np.array([0, 3, 10, 1]), 10, tmp_path / "labels")
    assert_one_line(err, "label 10 at index 2", "10 classes")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    prefix=st.sampled_from([b"", header(3, 2, 3, 3), header(1, 5), b"\x00\x00\x08\x03"]),
    body=st.binary(max_size=120),
    gz=st.booleans(),
)
def test_random_bytes_raise_only_data_error(tmp_path: Path, prefix: bytes, body: bytes, gz: bool):
    data = prefix + body
    path = tmp_path / "random"
    path.write_bytes(gzip.compress(data) if gz else data)
    try:
        array = read_idx(path)
    except DataError as err:
        assert "\n" not in str(err)
    else:
        assert array.dtype == np.uint8 and array.ndim in (1, 3)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=200), cut=st.integers(min_value=0, max_value=200))
def test_mangled_gzip_raises_only_data_error(tmp_path: Path, data: bytes, cut: int) -> None:
    packed = gzip.compress(encode_idx(IMAGES))
    mangled = packed[:cut] + data + packed[cut + len(data) :]
    path = tmp_path / "mangled.gz"
    path.write_bytes(mangled)
    with contextlib.suppress(DataError):
        read_idx(path)
