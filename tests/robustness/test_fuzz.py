"""Every parser, fed junk: it ends in the product's own one-line error, or in a valid result.

Never a traceback from deep inside, never a hang, never a huge allocation. The number of
examples per parser is ``$CONVLENS_FUZZ_EXAMPLES`` (CI: 150). The long fuzz run, outside
CI, is the same file with a large budget::

    CONVLENS_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest tests/robustness/test_fuzz.py
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from convlens.errors import ConvlensError
from convlens.models.spec import ModelSpec, load_spec_file, parse_spec

EXAMPLES = int(os.environ.get("CONVLENS_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text built from the spec language's own pieces finds more than random unicode.
SPEC_WORDS = st.sampled_from([
    "conv", "Conv2D", "maxpool", "flatten", "dense", "dropout", "batchnorm", "gap", "gmp",
    "residual", "avgpool", "(", ")", ",", ";", ">", "=", "relu", "softmax", "same", "valid",
    "filters", "kernel", "units", "rate", "stride", "padding", "0", "1", "3", "-2", "64", "0.5",
    "1e9", "nan", "inf", "true", "none", " ", "\n", "'", '"', "é", "\x00",
])  # fmt: skip
SPEC_TEXT = st.one_of(st.lists(SPEC_WORDS, max_size=30).map("".join), st.text(max_size=80))


def ends_cleanly(action) -> object:
    """Run ``action``; a ConvlensError with one line is fine, anything else fails the test."""
    try:
        return action()
    except ConvlensError as err:
        assert "\n" not in str(err) and str(err)
        return None


@FUZZ
@given(text=SPEC_TEXT)
def test_spec_text(text: str) -> None:
    spec = ends_cleanly(lambda: parse_spec(text))
    if spec is not None:  # parsed: building for 28x28 must also end cleanly (tiny nets only)
        ends_cleanly(lambda: spec.shapes((1, 28, 28)))


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 200)
    | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                [
                    "layers",
                    "name",
                    "input",
                    "conv",
                    "dense",
                    "filters",
                    "units",
                    "kernel",
                    "activation",
                    "maxpool",
                    "flatten",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@FUZZ
@given(data=JSONISH)
def test_spec_mappings(data) -> None:
    ends_cleanly(lambda: ModelSpec.from_dict(data))


@FUZZ
@given(raw=st.binary(max_size=300), suffix=st.sampled_from([".yaml", ".json", ".toml"]))
def test_spec_files(tmp_path_factory, raw: bytes, suffix: str) -> None:
    path = tmp_path_factory.mktemp("spec") / f"model{suffix}"
    path.write_bytes(raw)
    ends_cleanly(lambda: load_spec_file(path))


@FUZZ
@given(
    text=st.one_of(
        st.lists(
            st.sampled_from([*list("[]0123456789-+.,;/ e\n"), "nan", "inf", "1/9", "sobel"]),
            max_size=40,
        ).map("".join),
        st.text(max_size=40),
    )
)
def test_kernel_text(text: str) -> None:
    from convlens.byhand import parse_kernel

    kernel = ends_cleanly(lambda: parse_kernel(text))
    if kernel is not None:
        assert kernel.values.shape[0] == kernel.values.shape[1] and kernel.values.shape[0] % 2
        assert np.isfinite(kernel.values).all()


def idx_header(magic: int, dims: list[int]) -> bytes:
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims)


@FUZZ
@given(
    magic=st.sampled_from([2049, 2051, 2050, 0, 0x0803, 0x0D03]),
    dims=st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=4),
    payload=st.binary(max_size=200),
    compress=st.booleans(),
    truncate=st.integers(0, 40),
)
def test_idx_files(tmp_path_factory, magic, dims, payload, compress, truncate) -> None:
    from convlens.data.idx import read_idx

    raw = idx_header(magic, dims) + payload
    raw = raw[: max(0, len(raw) - truncate)]
    if compress:
        raw = gzip.compress(raw)
    path = tmp_path_factory.mktemp("idx") / "train-images-idx3-ubyte.gz"
    path.write_bytes(raw)
    ends_cleanly(lambda: read_idx(path))  # huge declared sizes must be refused, not allocated


def image_bytes(mode: str, size: tuple[int, int], fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format=fmt)
    return buffer.getvalue()


@FUZZ
@given(
    case=st.sampled_from(
        [
            ("L", "PNG"),
            ("RGBA", "PNG"),
            ("P", "PNG"),
            ("I;16", "PNG"),
            ("CMYK", "JPEG"),
            ("RGB", "JPEG"),
            ("1", "BMP"),
            ("LA", "PNG"),
            ("F", "TIFF"),
        ]
    ),
    width=st.integers(1, 64),
    height=st.integers(1, 64),
    cut=st.integers(0, 400),
    junk=st.binary(max_size=64),
)
def test_images(tmp_path_factory, case, width, height, cut, junk) -> None:
    from convlens.data.images import prepare_image

    mode, fmt = case
    raw = image_bytes(mode, (width, height), fmt)
    raw = raw[: max(0, len(raw) - cut)] + junk  # intact, truncated or with garbage appended
    path = tmp_path_factory.mktemp("img") / f"photo.{fmt.lower()}"
    path.write_bytes(raw)
    image = ends_cleanly(lambda: prepare_image(path))
    if image is not None:
        assert image.shape == (1, 28, 28) and image.dtype == np.uint8


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_dataset):
    from convlens.recipe import TrainConfig
    from convlens.train.session import train

    return train(
        "conv(4, 3, relu), maxpool(2), flatten, dense(3, softmax)",
        config=TrainConfig(precision="fp32", epochs=1, batch_size=32),
        runs_dir=tmp_path_factory.mktemp("runs"),
        name="r",
        dataset=tiny_dataset,
    )


@FUZZ
@given(
    target=st.sampled_from(
        [
            "config.json",
            "spec.json",
            "model.safetensors",
            "state.json",
            "metrics.csv",
            "checkpoint.safetensors",
        ]
    ),
    edit=st.sampled_from(["delete", "truncate", "garbage", "json-edit"]),
    junk=st.binary(max_size=64),
    key=st.sampled_from(["model", "input_shape", "class_names", "train", "data"]),
    value=JSONISH,
)
def test_run_folder_loader(tmp_path_factory, finished_run, target, edit, junk, key, value) -> None:
    import shutil

    from convlens.runs import Run

    folder = tmp_path_factory.mktemp("damaged") / "r"
    shutil.copytree(finished_run.path, folder)
    path = folder / target
    if edit == "delete":
        path.unlink()
    elif edit == "truncate":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    elif edit == "garbage":
        path.write_bytes(junk)
    elif target == "config.json":
        config = json.loads(path.read_text())
        config[key] = value
        path.write_text(json.dumps(config))

    def load():
        run = Run.open(folder)
        run.load_network()
        run.history()
        run.state()
        return run

    ends_cleanly(load)
