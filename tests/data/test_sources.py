"""Where copies come from: search order, verification, downloads, the sample fallback, CLI.

The catalog's digests are swapped for those of tiny fake files (``fake_fashion``), so the
whole search and verification logic runs in milliseconds on made-up data; one test reads
the real files when $CONVLENS_TEST_DATA points at them.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gzip
import hashlib
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from convlens.cli import cmd_data
from convlens.data import FASHION_MNIST_CLASSES, catalog, load_dataset
from convlens.data.idx import write_idx
from convlens.data.sources import parse_dataset_spec, places
from convlens.errors import DataError

DEAD_MIRROR = "http://127.0.0.1:9/"  # as in conftest: nothing listens there


def assert_same(ds, arrays: list[np.ndarray]) -> None:
    np.testing.assert_array_equal(ds.train_images[:, 0], arrays[0])
    np.testing.assert_array_equal(ds.train_labels, arrays[1])
    np.testing.assert_array_equal(ds.test_images[:, 0], arrays[2])
    np.testing.assert_array_equal(ds.test_labels, arrays[3])


# --- specs ------------------------------------------------------------------------------


def test_parse_spec() -> None:
    assert parse_dataset_spec("fashion-mnist") == ("known", "fashion-mnist")
    assert parse_dataset_spec("Fashion_MNIST") == ("known", "fashion-mnist")
    assert parse_dataset_spec("mnist") == ("known", "mnist")
    assert parse_dataset_spec("idx:/a/b") == ("idx", "/a/b")
    assert parse_dataset_spec("folder:pics") == ("folder", "pics")
    with pytest.raises(DataError, match=r"use fashion-mnist, mnist, idx:DIR .* or folder:DIR"):
        parse_dataset_spec("cifar10")
    with pytest.raises(DataError, match="names no folder"):
        parse_dataset_spec("idx:")


def test_unknown_spec_that_is_a_folder_gets_a_hint(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=f"write idx:{tmp_path} or folder:{tmp_path}"):
        load_dataset(str(tmp_path))


# --- search order -----------------------------------------------------------------------


def test_data_dir_argument_wins_over_env_and_cache(
    tmp_path, monkeypatch, fake_fashion, helpers
) -> None:
    arrays = fake_fashion()
    helpers.write_copy(tmp_path / "arg", arrays)
    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path / "env-not-there"))
    ds = load_dataset(data_dir=tmp_path / "arg", download=False)
    assert ds.source == f"--data-dir {tmp_path / 'arg'}"
    assert ds.class_names == FASHION_MNIST_CLASSES and not ds.is_sample and ds.notice is None
    assert ds.input_shape == (1, 28, 28) and ds.num_classes == 10
    assert ds.train_labels.dtype == np.int64
    assert_same(ds, arrays)


def test_env_var_then_subfolder(tmp_path, monkeypatch, fake_fashion, helpers) -> None:
    arrays = fake_fashion()
    helpers.write_copy(tmp_path / "datasets" / "fashion-mnist", arrays, gz=False)
    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path / "datasets"))
    ds = load_dataset(download=False)
    assert ds.source == f"CONVLENS_DATA {tmp_path / 'datasets' / 'fashion-mnist'}"
    assert_same(ds, arrays)


def test_cache_before_system(isolated, fake_fashion, helpers) -> None:
    arrays = fake_fashion()
    helpers.write_copy(isolated / "cache" / "fashion-mnist", arrays)
    helpers.write_copy(isolated / "system" / "fashion-mnist", arrays)
    assert load_dataset(download=False).source.startswith("cache ")


def test_cache_dir_argument(tmp_path, fake_fashion, helpers) -> None:
    helpers.write_copy(tmp_path / "mycache" / "fashion-mnist", fake_fashion())
    ds = load_dataset(cache_dir=tmp_path / "mycache", download=False)
    assert ds.source == f"cache {tmp_path / 'mycache' / 'fashion-mnist'}"


def test_bad_cache_copy_falls_through_to_system(isolated, fake_fashion, helpers) -> None:
    arrays = fake_fashion()
    helpers.write_copy(
        isolated / "cache" / "fashion-mnist", helpers.fake_arrays(seed=1)
    )  # wrong content
    helpers.write_copy(
        isolated / "system" / "fashion-mnist", arrays, level=1
    )  # "Debian" recompressed
    ds = load_dataset(download=False)
    assert ds.source == f"system {isolated / 'system' / 'fashion-mnist'}"
    assert_same(ds, arrays)


def test_explicit_folder_problems_are_errors_not_fallthrough(
    tmp_path, isolated, fake_fashion, helpers
) -> None:
    arrays = fake_fashion()
    helpers.write_copy(
        isolated / "cache" / "fashion-mnist", arrays
    )  # a good copy that must not be used
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no usable Fashion-MNIST copy in --data-dir .*no IDX"):
        load_dataset(data_dir=tmp_path / "empty", download=False)
    helpers.write_copy(tmp_path / "partial", arrays)
    (tmp_path / "partial" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte"):
        load_dataset(data_dir=tmp_path / "partial", download=False)


def test_tampered_content_fails_verification(tmp_path, monkeypatch, fake_fashion, helpers) -> None:
    arrays = fake_fashion()
    arrays[0] = arrays[0].copy()
    arrays[0][3, 10, 10] ^= 1  # one pixel of one image
    helpers.write_copy(tmp_path / "copy", arrays)
    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path / "copy"))
    with pytest.raises(DataError) as err:
        load_dataset(download=False)
    message = str(err.value)
    assert "CONVLENS_DATA" in message and "train-images-idx3-ubyte.gz" in message
    assert "SHA-256 of the content" in message and "unset CONVLENS_DATA" in message
    assert "\n" not in message


def test_mnist_is_verified_by_its_official_gz_only(tmp_path, monkeypatch, helpers) -> None:
    arrays = helpers.fake_arrays()
    monkeypatch.setitem(
        catalog.KNOWN, "mnist", helpers.known_for("mnist", arrays, content_digests=False)
    )
    helpers.write_copy(tmp_path / "gz", arrays)
    ds = load_dataset("mnist", data_dir=tmp_path / "gz", download=False)
    assert ds.class_names == tuple("0123456789") and ds.name == "mnist"
    helpers.write_copy(tmp_path / "recompressed", arrays, level=1)
    with pytest.raises(DataError, match="is not the official"):
        load_dataset("mnist", data_dir=tmp_path / "recompressed")
    helpers.write_copy(tmp_path / "raw", arrays, gz=False)
    with pytest.raises(DataError, match=r"cannot be verified.*idx:DIR"):
        load_dataset("mnist", data_dir=tmp_path / "raw")


def test_places_in_order(isolated, tmp_path, monkeypatch) -> None:
    assert [p.label for p in places("fashion-mnist")] == ["cache", "system"]
    assert places("mnist")[0].folder == isolated / "cache" / "mnist"
    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path))
    assert [(p.label, p.explicit) for p in places("mnist")] == [("CONVLENS_DATA", True)]


# --- the embedded sample ----------------------------------------------------------------


def test_sample_fallback_when_nothing_is_found(isolated) -> None:
    ds = load_dataset("fashion-mnist", download=False)
    assert ds.is_sample and ds.name == "fashion-mnist"
    assert ds.train_images.shape == (6000, 1, 28, 28) and ds.test_images.shape == (1000, 1, 28, 28)
    assert ds.class_counts("train").tolist() == [600] * 10
    assert ds.class_counts("test").tolist() == [100] * 10
    assert ds.notice is not None and "\n" not in ds.notice
    assert "embedded 10% sample (6,000 train / 1,000 test images)" in ds.notice
    assert str(isolated / "cache" / "fashion-mnist") in ds.notice
    assert "download (turned off)" in ds.notice
    assert 0.25 < ds.train_images.mean() / 255 < 0.32  # Fashion-MNIST's 0.286, roughly


def test_sample_files_match_their_readme() -> None:
    readme = (catalog.SAMPLE_DIR / "README.md").read_text(encoding="utf-8")
    for stem in catalog.IDX_STEMS:
        data = (catalog.SAMPLE_DIR / f"{stem}.gz").read_bytes()
        assert f"| `{stem}.gz` | {len(data):,} | `{hashlib.sha256(data).hexdigest()}` |" in readme
    assert "Zalando SE" in (catalog.SAMPLE_DIR / "LICENSE").read_text(encoding="utf-8")


def test_no_sample_means_a_clear_error(isolated) -> None:
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist", download=False, sample=False)
    message = str(err.value)
    assert "no copy of Fashion-MNIST found" in message
    assert f"system {isolated / 'system' / 'fashion-mnist'} (no such folder)" in message
    for fix in ("--data-dir DIR", "CONVLENS_DATA=DIR", "apt-get install dataset-fashion-mnist"):
        assert fix in message


def test_mnist_offline_error_is_quick_and_lists_places(isolated) -> None:
    start = time.perf_counter()
    with pytest.raises(DataError) as err:
        load_dataset("mnist", progress=False)  # the only mirror refuses connections
    assert time.perf_counter() - start < 5
    message = str(err.value)
    assert "no copy of MNIST found" in message and DEAD_MIRROR in message
    assert "unreachable" in message and "--data-dir DIR" in message
    assert not (isolated / "cache" / "mnist" / "train-images-idx3-ubyte.gz").exists()


# --- downloads from a local fake mirror -------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on 127.0.0.1 serving ``tmp_path / "www"``: (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", root
    finally:
        server.shutdown()
        server.server_close()


def test_download_tries_mirrors_verifies_and_caches(
    isolated, mirror, fake_fashion, helpers, monkeypatch
) -> None:
    url, www = mirror
    bad_www = www / "bad"
    arrays = fake_fashion(mirrors=(DEAD_MIRROR, url + "bad/", url))
    helpers.write_copy(www, arrays)
    helpers.write_copy(bad_www, helpers.fake_arrays(seed=7))  # a mirror serving the wrong files
    ds = load_dataset(progress=False)
    cache = isolated / "cache" / "fashion-mnist"
    assert ds.source == f"downloaded into {cache}" and not ds.is_sample
    assert_same(ds, arrays)
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        f"{stem}.gz" for stem in catalog.IDX_STEMS
    )  # no temporary files left behind
    # Offline now: the cached copy is used without the network.
    offline = dataclasses.replace(catalog.KNOWN["fashion-mnist"], mirrors=(DEAD_MIRROR,))
    monkeypatch.setitem(catalog.KNOWN, "fashion-mnist", offline)
    assert load_dataset(progress=False).source == f"cache {cache}"


def test_download_repairs_a_corrupt_cache_file(isolated, mirror, fake_fashion, helpers) -> None:
    url, www = mirror
    arrays = fake_fashion(mirrors=(url,))
    helpers.write_copy(www, arrays)
    cache = isolated / "cache" / "fashion-mnist"
    helpers.write_copy(cache, arrays)
    (cache / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"junk"))
    ds = load_dataset(progress=False)
    assert ds.source == f"downloaded into {cache}"
    assert_same(ds, arrays)


def test_all_mirrors_wrong_falls_back_to_sample(isolated, mirror, fake_fashion, helpers) -> None:
    url, www = mirror
    fake_fashion(mirrors=(url,))
    helpers.write_copy(www, helpers.fake_arrays(seed=3))  # wrong bytes everywhere
    ds = load_dataset(progress=False)
    assert ds.is_sample
    assert "SHA-256 does not match" in ds.notice or "not the official" in ds.notice
    assert not any((isolated / "cache" / "fashion-mnist").glob("*.gz"))


def test_cli_download_and_verify(isolated, mirror, fake_fashion, capsys, helpers) -> None:
    url, www = mirror
    arrays = fake_fashion(mirrors=(url,))
    helpers.write_copy(www, arrays)
    assert run_cli("data", "download", "--quiet") == 0
    assert run_cli("data", "verify") == 0
    out = capsys.readouterr().out
    assert out.count("OK") == 4
    cache = isolated / "cache" / "fashion-mnist"
    write_idx(cache / "train-labels-idx1-ubyte.gz", np.zeros(30, dtype=np.uint8))
    assert run_cli("data", "verify") == 1
    assert "MISMATCH" in capsys.readouterr().out


# --- idx:DIR, conversions, CLI ----------------------------------------------------------


def test_idx_folder_is_format_checked_only(tmp_path: Path, helpers) -> None:
    arrays = helpers.fake_arrays()
    arrays[1] = arrays[1].copy()
    arrays[1][0] = 11  # labels up to 11: twelve classes
    helpers.write_copy(tmp_path / "mine", arrays, gz=False)
    ds = load_dataset(f"idx:{tmp_path / 'mine'}")
    assert ds.name == f"idx:{tmp_path / 'mine'}"
    assert ds.class_names == tuple(str(k) for k in range(12))
    assert_same(ds, arrays)


def test_idx_folder_errors(tmp_path: Path, helpers) -> None:
    with pytest.raises(DataError, match="is not a folder"):
        load_dataset(f"idx:{tmp_path / 'nope'}")
    arrays = helpers.fake_arrays()
    helpers.write_copy(tmp_path / "short", arrays)
    (tmp_path / "short" / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"missing train-labels-idx1-ubyte\[\.gz\]"):
        load_dataset(f"idx:{tmp_path / 'short'}")
    arrays[1] = arrays[1][:-1]
    helpers.write_copy(tmp_path / "uneven", arrays)
    with pytest.raises(DataError, match=r"30 images but .* 29 labels"):
        load_dataset(f"idx:{tmp_path / 'uneven'}")


def test_image_size_and_channels(tmp_path: Path, fake_fashion, helpers) -> None:
    helpers.write_copy(tmp_path / "copy", fake_fashion())
    ds = load_dataset(data_dir=tmp_path / "copy", image_size=(32, 32), channels=3)
    assert ds.train_images.shape == (30, 3, 32, 32) and ds.input_shape == (3, 32, 32)


def test_subset_is_stratified_and_seeded() -> None:
    ds = load_dataset(download=False)  # the sample: 600 / 100 per class
    small = ds.subset(train=100, test=30, seed=4)
    assert small.class_counts("train").tolist() == [10] * 10
    assert small.class_counts("test").tolist() == [3] * 10
    again = ds.subset(train=100, test=30, seed=4)
    np.testing.assert_array_equal(small.train_images, again.train_images)
    assert not np.array_equal(ds.subset(train=100, seed=5).train_labels, small.train_labels)
    assert ds.subset(test=10).train_images is ds.train_images
    assert ds.subset(train=10**6) is ds


def test_cli_info_on_the_sample(capsys) -> None:
    assert run_cli("data", "info", "--no-download") == 0
    captured = capsys.readouterr()
    assert "embedded sample" in captured.out and "Ankle boot" in captured.out
    assert "(6000, 1, 28, 28)" in captured.out
    assert "embedded 10% sample" in captured.err


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="convlens")
    cmd_data.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.run(args)


# --- the real files -----------------------------------------------------------------------


def test_real_fashion_mnist(monkeypatch, real_data_dir) -> None:
    monkeypatch.setenv("CONVLENS_DATA", str(real_data_dir))
    ds = load_dataset("fashion-mnist", download=False, sample=False)
    assert ds.train_images.shape == (60000, 1, 28, 28)
    assert ds.test_images.shape == (10000, 1, 28, 28)
    assert ds.class_counts("train").tolist() == [6000] * 10
    assert ds.train_images.mean() / 255 == pytest.approx(0.28604, abs=5e-6)
