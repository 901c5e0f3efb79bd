"""``convlens filter`` end to end: the figure on disk, the sizes, the arithmetic, the errors."""

from __future__ import annotations

import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convlens.byhand import conv2d, get_kernel
from convlens.byhand.arithmetic import format_number
from convlens.cli.main import main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def shoe(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A 28x28 grayscale PNG with vertical stripes and a block, and its pixels."""
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[:, 5::6] = 200
    pixels[10:18, 8:20] = 120
    path = tmp_path / "shoe.png"
    Image.fromarray(pixels).save(path)
    return path, pixels


def test_image_file_with_worked_arithmetic(shoe, tmp_path, capsys):
    path, pixels = shoe
    out = tmp_path / "figs" / "vertical.png"
    code = main(["filter", str(path), "--kernel", "vertical", "--at", "3,4", "--out", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0
    assert out.read_bytes().startswith(PNG)
    assert "28x28 -> conv 3x3 -> 26x26 -> maxpool 2 -> 13x13" in stdout
    assert f"wrote {out}" in stdout
    expected = conv2d(pixels, get_kernel("vertical").values)[3, 4]
    printed_sum = re.search(r"sum of the 9 products\s+= (\S+)", stdout).group(1)
    assert printed_sum == format_number(expected)
    printed_pixel = re.search(r"filtered pixel \[3, 4\] = (\S+)", stdout).group(1)
    assert printed_pixel == format_number(expected)


def test_photo_sample_default_output_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["filter", "--sample", "photo", "--kernel", "edges"]) == 0
    stdout = capsys.readouterr().out
    assert (tmp_path / "filter-edges.png").read_bytes().startswith(PNG)
    assert "600x512 -> conv 3x3 -> 598x510 -> maxpool 2 -> 299x255" in stdout


def test_typed_kernel_weight_and_no_pooling(shoe, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path, _ = shoe
    args = ["filter", str(path), "-k", "1 1 1 1 1; " * 4 + "1 1 1 1 1", "--weight", "0.04"]
    assert main([*args, "--pool", "0", "--at", "0,0"]) == 0
    stdout = capsys.readouterr().out
    assert (tmp_path / "filter-custom.png").exists()
    assert "28x28 -> conv 5x5 -> 24x24\n" in stdout
    assert "maxpool" not in stdout
    assert "sum of the 25 products" in stdout


def test_fashion_sample_uses_the_test_images(tmp_path, monkeypatch, capsys):
    # A stand-in with the documented interface: fast, offline, and its answer is known.
    images = np.zeros((3, 1, 28, 28), dtype=np.uint8)
    images[2, 0, :, 14] = 255
    calls = []

    def load_dataset(spec="fashion-mnist", *, data_dir=None, download=True, progress=True):
        calls.append((spec, data_dir))
        return types.SimpleNamespace(
            test_images=images,
            test_labels=np.array([0, 1, 9]),
            class_names=(*(f"class {i}" for i in range(9)), "Ankle boot"),
            notice="using a stand-in",
        )

    fake = types.SimpleNamespace(load_dataset=load_dataset)
    monkeypatch.setitem(sys.modules, "convlens.data", fake)
    out = tmp_path / "f.png"
    argv = ["filter", "--sample", "fashion:2", "-k", "horizontal", "--out", str(out)]
    assert main([*argv, "--data-dir", "D", "--at", "0,12"]) == 0
    captured = capsys.readouterr()
    assert calls == [("fashion-mnist", "D")]
    assert (
        "fashion:2 (Ankle boot): 28x28 -> conv 3x3 -> 26x26 -> maxpool 2 -> 13x13" in captured.out
    )
    assert re.search(r"sum of the 9 products\s+= 0$", captured.out, re.M)  # vertical line
    assert captured.err == "using a stand-in\n"
    assert main(["filter", "--sample", "fashion:3", "-k", "vertical", "--out", str(out)]) == 2
    assert "N goes from 0 to 2" in capsys.readouterr().err


def test_fashion_sample_with_the_real_loader(tmp_path, monkeypatch, capsys):
    # The real loader, kept offline: no download, so it uses a local copy or its own sample.
    import convlens.data

    real = convlens.data.load_dataset
    monkeypatch.setattr(
        convlens.data, "load_dataset", lambda spec, **kw: real(spec, **{**kw, "download": False})
    )
    monkeypatch.setenv("CONVLENS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "f.png"
    assert main(["filter", "--sample", "fashion:0", "-k", "vertical", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert re.search(
        r"^fashion:0 \(.+\): 28x28 -> conv 3x3 -> 26x26 -> maxpool 2 -> 13x13$", stdout, re.M
    )
    assert out.read_bytes().startswith(PNG)


def test_listings(capsys):
    assert main(["filter", "--list-kernels"]) == 0
    listing = capsys.readouterr().out
    for name in ("vertical", "horizontal", "laplacian", "edges", "sharpen", "box-blur", "1/9"):
        assert name in listing
    assert main(["filter", "--list-samples"]) == 0
    samples = capsys.readouterr().out
    assert "photo" in samples and "fashion:N" in samples


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--sample", "photo", "-k", "sobel"], "unknown kernel 'sobel'; choose one of"),
        (["--sample", "photo", "-k", "1 2; 3 4"], "odd size"),
        (["--sample", "photo", "-k", "[[1,2,3],[4,5]]"], "every row needs the same count"),
        (["--sample", "photo"], "no kernel"),
        (["-k", "vertical"], "no picture"),
        (["IMAGE", "--sample", "photo", "-k", "vertical"], "not both"),
        (["MISSING", "-k", "vertical"], "no such file"),
        (["JUNK", "-k", "vertical"], "not an image"),
        (["IMAGE", "-k", "vertical", "--at", "26,0"], "row goes from 0 to 25"),
        (["IMAGE", "-k", "vertical", "--at", "three"], "ROW,COL"),
        (["IMAGE", "-k", "vertical", "--pool", "two"], "--pool must be a whole number"),
        (["IMAGE", "-k", "vertical", "--pool", "-1"], "--pool must be 0"),
        (["IMAGE", "-k", "vertical", "--pool", "40"], "at most 26"),
        (["IMAGE", "-k", "vertical", "--weight", "inf"], "finite"),
        (["IMAGE", "-k", "vertical", "--out", "x.docx"], "use .png"),
        (["IMAGE", "-k", "; ".join(["0 " * 31] * 31)], "larger than the image 28x28"),
        (["--sample", "kitten", "-k", "vertical"], "unknown sample 'kitten'"),
        (["--sample", "fashion:one", "-k", "vertical"], "needs a whole number"),
    ],
)
def test_bad_input_is_exit_2_and_one_line(args, fragment, shoe, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "junk.png").write_bytes(b"not a picture")
    names = {"IMAGE": str(shoe[0]), "MISSING": "missing.png", "JUNK": "junk.png"}
    before = set(tmp_path.iterdir())
    assert main(["filter", *(names.get(a, a) for a in args)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("convlens filter: error: ")
    assert fragment in err
    assert set(tmp_path.iterdir()) == before  # nothing half-written


def test_the_filter_path_never_imports_torch(shoe, tmp_path):
    path, _ = shoe
    script = (
        "import sys, argparse\n"
        "from convlens.cli import cmd_filter\n"
        "parser = argparse.ArgumentParser()\n"
        "cmd_filter.add_parser(parser.add_subparsers())\n"
        f"args = parser.parse_args(['filter', {str(path)!r}, '-k', 'vertical', '--at', '1,1',"
        f" '--out', {str(tmp_path / 'o.png')!r}])\n"
        "assert args.run(args) == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_typed_library_numbers_are_named_and_pooling_is_worked_out(shoe, tmp_path, capsys):
    path, _ = shoe
    out = tmp_path / "f.png"
    code = main(
        [
            "filter",
            str(path),
            "--kernel",
            "-1 0 1; -2 0 2; -1 0 1",
            "--at",
            "3,4",
            "--out",
            str(out),
        ]
    )
    stdout = capsys.readouterr().out
    assert code == 0 and out.read_bytes().startswith(PNG)
    assert "these numbers are the library's vertical kernel: Sobel x" in stdout
    assert (
        "Max pooling 2x2: filtered pixel [3, 4] is in the block of rows 2-3, columns 4-5" in stdout
    )
    assert "which becomes pooled pixel [1, 2]" in stdout
