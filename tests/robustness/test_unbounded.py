"""Inputs that ask for unbounded work: YAML alias bombs, endless layers, deep nesting,
data files that decode to gigabytes, folders of a million files, a thousand classes.

Each is refused in one line (exit 2 from the CLI) in bounded time and memory: the CLI
cases run in a child process under RLIMIT_AS (tests/robustness/conftest.py).
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convlens.errors import ConvlensError, DataError, SpecError
from convlens.models.spec import (
    MAX_LAYERS,
    MAX_NESTING,
    MAX_SPEC_BYTES,
    MAX_YAML_VALUES,
    load_spec_file,
    parse_spec,
)

# 80 in CI (CONVLENS_FUZZ_EXAMPLES=150), growing with the long run's budget
EXAMPLES = max(1, int(os.environ.get("CONVLENS_FUZZ_EXAMPLES", "150")) * 80 // 150)


def laughs(levels: int = 9, width: int = 9) -> str:
    """The classic alias bomb: each anchor is ``width`` copies of the one before."""
    lines = ['a0: &a0 ["lol"]']
    for k in range(1, levels):
        lines.append(f"a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


BOMB = f"a{9 - 1}"


@pytest.mark.parametrize(
    "place",
    [
        f"name: *{BOMB}\nlayers: [flatten, dense(10)]",
        f"input: *{BOMB}\nlayers: [flatten, dense(10)]",
        f"layers:\n  - dense: {{units: *{BOMB}}}",
        f"layers: *{BOMB}",
    ],
)
def test_yaml_alias_bombs_are_one_line(tmp_path, place) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(laughs() + place + "\n")
    assert path.stat().st_size < 1000  # 9**8 = 43 million values once expanded
    started = time.perf_counter()
    with pytest.raises(SpecError, match=f"{MAX_YAML_VALUES:,}") as err:
        load_spec_file(path)
    assert time.perf_counter() - started < 1 and len(str(err.value)) < 1000


def test_an_alias_bomb_through_the_cli_is_exit_2_under_a_memory_limit(tmp_path, limited_cli):
    path = tmp_path / "bomb.yaml"
    path.write_text(laughs() + f"layers: *{BOMB}\n")
    result = limited_cli("summary", str(path), timeout=120)
    assert result.returncode == 2, result.stderr[-500:]
    assert result.stderr.count("\n") == 1 and f"{MAX_YAML_VALUES:,}" in result.stderr


def test_an_alias_that_contains_itself_is_one_line(tmp_path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("layers: &l [flatten, *l]\n")
    with pytest.raises(SpecError, match="contains itself"):
        load_spec_file(path)


def test_200000_layers_are_refused_at_once(tmp_path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text("layers:\n" + "  - dropout\n" * 200_000 + "  - dense: {units: 10}\n")
    started = time.perf_counter()
    with pytest.raises(SpecError):  # over the file size limit, or over the layer count
        load_spec_file(path)
    text = ", ".join(["dropout"] * (MAX_LAYERS + 1))
    with pytest.raises(SpecError, match=f"{MAX_LAYERS:,}"):
        parse_spec(text)
    assert time.perf_counter() - started < 5


def test_many_layers_are_named_in_linear_time() -> None:
    spec = parse_spec(", ".join(["dropout"] * (MAX_LAYERS - 1) + ["dense(10)"]))
    started = time.perf_counter()
    names = spec.layer_names()
    assert len(set(names)) == MAX_LAYERS
    assert time.perf_counter() - started < 1  # quadratic was minutes at 200k


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_deep_nesting_is_one_line(tmp_path, suffix) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text('{"layers": ' + "[" * 50_000 + "]" * 50_000 + "}")
    with pytest.raises(SpecError) as err:
        load_spec_file(path)
    assert "\n" not in str(err.value)
    path.write_text('{"layers": ' + "[" * (MAX_NESTING + 2) + "]" * (MAX_NESTING + 2) + "}")
    with pytest.raises(SpecError, match="nests deeper"):
        load_spec_file(path)


def test_a_spec_file_over_the_size_limit_is_refused_unread(tmp_path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as handle:
        handle.truncate(50 * 2**30)  # sparse: 50 GB that take no disk
    with pytest.raises(SpecError, match=f"{MAX_SPEC_BYTES:,}"):
        load_spec_file(path)
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(SpecError, match="not a regular file"):
        load_spec_file(fifo)


def test_error_messages_quoting_hostile_input_stay_short() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec("conv(" + "9" * 100_000)
    assert len(str(err.value)) < 2000
    with pytest.raises(ConvlensError) as err:
        raise ConvlensError("x" * 10_000_000)
    assert len(str(err.value)) <= 2000


# The grammar of alias documents: anchors made of lists or mappings of earlier aliases,
# used in any of the spec's fields.
@st.composite
def alias_documents(draw) -> str:
    levels = draw(st.integers(1, 12))
    lines = [f"x0: &x0 {draw(st.sampled_from(['[flatten]', '1', 'relu', '{units: 3}']))}"]
    for k in range(1, levels):
        width = draw(st.integers(1, 12))
        refs = [f"*x{draw(st.integers(0, k - 1))}" for _ in range(width)]
        if draw(st.booleans()):
            lines.append(f"x{k}: &x{k} [{', '.join(refs)}]")
        else:
            lines.append(f"x{k}: &x{k} {{{', '.join(f'k{i}: {r}' for i, r in enumerate(refs))}}}")
    target = f"*x{levels - 1}"
    place = draw(st.sampled_from([
        f"name: {target}\nlayers: [flatten, dense(3)]",
        f"input: {target}\nlayers: [flatten, dense(3)]",
        f"layers:\n  - dense: {{units: {target}}}",
        f"layers:\n  - conv: {target}\n  - flatten\n  - dense(3)",
        f"layers: {target}",
    ]))  # fmt: skip
    return "\n".join(lines) + "\n" + place + "\n"


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=alias_documents())
def test_fuzzed_yaml_aliases_end_cleanly_and_quickly(tmp_path_factory, document) -> None:
    path = tmp_path_factory.mktemp("alias") / "model.yaml"
    path.write_text(document)
    started = time.perf_counter()
    try:
        spec = load_spec_file(path)
        spec.shapes((1, 28, 28))
    except SpecError as err:
        assert "\n" not in str(err) and len(str(err)) <= 2000
    assert time.perf_counter() - started < 2


def idx_gz(path, dims, payload: bytes = b"") -> None:
    header = struct.pack(">I", 0x0800 | len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    with gzip.open(path, "wb") as handle:
        handle.write(header + payload)


def test_an_idx_image_of_46000_pixels_a_side_is_refused_unallocated(tmp_path, limited_cli):
    folder = tmp_path / "idx"
    folder.mkdir()
    # The header is all the reader needs to refuse it: nothing of the payload is read.
    idx_gz(folder / "train-images-idx3-ubyte.gz", [1, 46000, 46000], b"\x00" * 4096)
    idx_gz(folder / "train-labels-idx1-ubyte.gz", [1], b"\x00")
    idx_gz(folder / "t10k-images-idx3-ubyte.gz", [1, 28, 28], b"\x00" * 784)
    idx_gz(folder / "t10k-labels-idx1-ubyte.gz", [1], b"\x00")
    result = limited_cli("train", "cnn", "--data", f"idx:{folder}", "--epochs", "1",
                         "--runs", str(tmp_path / "runs"), "--quiet", timeout=60)  # fmt: skip
    assert result.returncode == 2, result.stderr[-500:]
    assert "4,096" in result.stderr and result.stderr.count("\n") == 1


def test_idx_files_share_one_size_budget(tmp_path, monkeypatch) -> None:
    from convlens.data import sources

    monkeypatch.setattr(sources, "MAX_TOTAL_BYTES", 100_000)
    folder = tmp_path / "idx"
    folder.mkdir()
    images = np.zeros((60, 28, 28), np.uint8)  # 47,040 bytes each: two fit, three do not
    from convlens.data.idx import write_idx

    write_idx(folder / "train-images-idx3-ubyte.gz", np.concatenate([images, images]))
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(120, np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte.gz", images)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(60, np.uint8))
    with pytest.raises(DataError, match="together") as err:
        sources.load_idx_folder(folder, name=f"idx:{folder}")
    assert "t10k-images" in str(err.value)


def folder_dataset(root, classes: int, per_class: int) -> None:
    from PIL import Image

    for k in range(classes):
        (root / f"c{k:04d}").mkdir(parents=True)
        for i in range(per_class):
            Image.new("L", (8, 8), (k * 37 + i) % 256).save(root / f"c{k:04d}" / f"{i}.png")


@pytest.mark.parametrize(
    ("limit", "value", "words"),
    [("MAX_CLASSES", 3, "class sub-folders"), ("MAX_IMAGES", 5, "images")],
)
def test_folder_datasets_have_caps(tmp_path, monkeypatch, limit, value, words) -> None:
    from convlens.data import folder

    folder_dataset(tmp_path / "d", classes=4, per_class=2)
    monkeypatch.setattr(folder, limit, value)
    with pytest.raises(DataError, match=words) as err:
        folder.load_folder(tmp_path / "d")
    assert "\n" not in str(err.value)


def test_a_folder_image_over_the_file_size_cap_is_refused_unread(tmp_path) -> None:
    from convlens.data import folder

    folder_dataset(tmp_path / "d", classes=2, per_class=2)
    with (tmp_path / "d" / "c0000" / "huge.png").open("wb") as handle:
        handle.truncate(folder.MAX_FILE_BYTES + 1)  # sparse
    with pytest.raises(DataError, match="over the") as err:
        folder.load_folder(tmp_path / "d")
    assert "huge.png" in str(err.value)


def test_folder_data_that_would_decode_past_the_budget_is_refused(tmp_path, monkeypatch):
    from convlens.data import folder

    folder_dataset(tmp_path / "d", classes=2, per_class=2)
    monkeypatch.setattr(folder, "MAX_TOTAL_BYTES", 4 * 28 * 28 * 3 - 1)  # 4 images at 28x28x3
    with pytest.raises(DataError, match="bytes, over"):
        folder.load_folder(tmp_path / "d", channels=3)
    folder.load_folder(tmp_path / "d", channels=1)  # a third of it fits


def test_the_confusion_figure_of_300_classes_is_bounded() -> None:
    from convlens.plots.confusion import MAX_INCHES, confusion_figure

    k = 300
    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 20, size=(k, k))
    started = time.perf_counter()
    figure = confusion_figure(matrix, [f"class {i}" for i in range(k)], "many")
    width, height = figure.get_size_inches()
    assert max(width, height) <= MAX_INCHES + 1
    import io

    figure.savefig(io.BytesIO(), format="png")
    assert time.perf_counter() - started < 20  # 150 classes took 49 s and 2.4 GB


def test_json_metrics_with_many_classes_still_read(tmp_path) -> None:
    from convlens import fileio

    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"confusion": np.zeros((1000, 1000), int).tolist()}))
    assert len(fileio.read_json(path)["confusion"]) == 1000
