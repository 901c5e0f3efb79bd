"""convlens journey / filters / explain end to end on a tiny run trained through the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convlens.cli.main import main

SPEC = "conv(8, 3, relu), maxpool(2), conv(8, 3, relu), maxpool(2), flatten, dense(3, softmax)"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_idx_dir, tiny_runs) -> Path:
    """A conv run 'r' and a dense run 'd' on the tiny IDX data (classes '0', '1', '2')."""
    return tiny_runs(
        tmp_path_factory.mktemp("runs"),
        tiny_idx_dir,
        {"r": SPEC, "d": "flatten, dense(3, softmax)"},
    )


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A dark boot-like shape on a white background, as a phone photo would be."""
    image = Image.new("RGB", (120, 90), "white")
    pixels = np.asarray(image).copy()
    pixels[20:70, 60:95] = (30, 20, 10)  # the shaft
    pixels[55:75, 15:100] = (40, 30, 20)  # the foot
    path = tmp_path_factory.mktemp("photos") / "my boot.png"
    Image.fromarray(pixels).save(path)
    return path


def cli(capsys, runs: Path, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--runs", str(runs)])
    out, err = capsys.readouterr()
    return code, out, err


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:4] == b"\x89PNG"


def test_journey_of_the_lessons_images(capsys, runs) -> None:
    code, out, _ = cli(capsys, runs, "journey", "r", "--filter", "1")  # the lesson's filter
    assert code == 0
    assert is_png(runs / "r" / "journey-filter1.png")
    assert (
        "input 28x28x1 -> conv2d 26x26x8 -> max_pooling2d 13x13x8 -> conv2d_1 11x11x8 "
        "-> max_pooling2d_1 5x5x8"
    ) in out
    assert "test #0 (0): predicted" in out and "test #23" in out and "test #28" in out
    assert f"wrote {runs / 'r' / 'journey-filter1.png'}" in out


def test_journey_of_a_class_all_filters_and_a_photo(capsys, runs, photo, tmp_path) -> None:
    code, out, _ = cli(
        capsys,
        runs,
        "journey",
        "r",
        "--class",
        "2",
        "--count",
        "2",
        "--filter",
        "7",
        "--layer",
        "conv2d,conv2d_1",
    )
    assert code == 0 and is_png(runs / "r" / "journey-filter7-2.png")
    assert out.count("(2): predicted") == 2 and "max_pooling2d" not in out

    code, out, _ = cli(
        capsys, runs, "journey", "r", "--all-filters", "--layer", "conv2d_1", "--images", "5"
    )
    assert code == 0 and is_png(runs / "r" / "maps-conv2d_1-test5.png")
    assert "conv2d_1 11x11x8" in out

    out_path = tmp_path / "mine.png"
    code, out, _ = cli(capsys, runs, "journey", "r", "--image", str(photo), "--out", str(out_path))
    assert code == 0 and is_png(out_path) and "my boot.png: predicted" in out


def test_filters(capsys, runs) -> None:
    code, out, _ = cli(capsys, runs, "filters", "r")
    assert code == 0 and is_png(runs / "r" / "filters-conv2d.png")
    assert "conv2d: 8 kernels 3x3 over 1 input channel" in out
    code, out, _ = cli(capsys, runs, "filters", "r", "--layer", "conv2d_1", "--channel", "3")
    assert code == 0 and is_png(runs / "r" / "filters-conv2d_1.png")


def test_explain_a_test_image_and_a_photo(capsys, runs, photo) -> None:
    code, out, _ = cli(capsys, runs, "explain", "r", "--index", "0")
    assert code == 0 and is_png(runs / "r" / "explain-test0.png")
    assert out.startswith("test #0 (0): predicted ") and "Grad-CAM on conv2d_1" in out
    assert "computed on conv2d_1's 11x11 map (row 10 and column 10 do not reach" in out

    code, out, _ = cli(capsys, runs, "explain", "r", str(photo), "--class", "1", "--invert")
    assert code == 0 and is_png(runs / "r" / "explain-my-boot-1.png")
    assert "Grad-CAM on conv2d_1 for '1'" in out


def test_explain_a_dense_model_shows_gradients_only(capsys, runs) -> None:
    code, out, _ = cli(capsys, runs, "explain", "d", "--index", "3")
    assert code == 0 and is_png(runs / "d" / "explain-test3.png")
    assert "input gradients only" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["journey", "r", "--layer", "conv9"], "no layer named 'conv9'"),
        (["journey", "r", "--layer", "dense"], "not feature maps"),
        (["journey", "r", "--filter", "8"], "filter 8 does not exist in layer 'conv2d'"),
        (["journey", "r", "--images", "60"], "test image 60 does not exist"),
        (["journey", "r", "--images", "a,b"], "--images takes test-set indices"),
        (["journey", "r", "--class", "shoe"], "unknown class 'shoe'"),
        (["journey", "r", "--all-filters", "--layer", "conv2d,conv2d_1"], "one layer"),
        (["journey", "r", "--out", "x.xyz"], "cannot save a figure as .xyz"),
        (["journey", "d"], "no conv or pool layer"),
        (["journey", "nowhere"], "no run at"),
        (["filters", "r", "--layer", "max_pooling2d"], "not a conv layer"),
        (["filters", "d"], "no conv layer"),
        (["explain", "r", "--index", "999"], "--index 999 is outside the test set"),
        (["explain", "r"], "give one image"),
        (["explain", "r", "missing.png"], "missing.png: no such file"),
        (["explain", "r", "--index", "0", "--class", "eleven"], "unknown class 'eleven'"),
        (["explain", "r", "--index", "0", "--layer", "dense"], "not feature maps"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, runs, argv, message) -> None:
    code, _, err = cli(capsys, runs, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"convlens {argv[0]}: error: ")
    assert message in err


def test_an_unreadable_image_is_one_line(capsys, runs, tmp_path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    code, _, err = cli(capsys, runs, "explain", "r", str(broken))
    assert code == 2 and err.count("\n") == 1 and "broken.png" in err


@pytest.fixture(scope="module")
def killed(runs) -> str:
    """A copy of run 'r' whose conv2d_1 filter 1 is dead: a bias of -1000 before its relu."""
    import shutil

    from torch import nn

    from convlens.models.weights import save_weights
    from convlens.runs import WEIGHTS, Run

    shutil.copytree(runs / "r", runs / "killed")
    run = Run(runs / "killed")
    network = run.load_network()
    conv = next(m for m in network.blocks["conv2d_1"].modules() if isinstance(m, nn.Conv2d))
    with torch_no_grad():
        conv.bias[1] = -1000.0
    save_weights(network, run.file(WEIGHTS), network.spec.to_dict())
    return "killed"


def torch_no_grad():
    import torch

    return torch.no_grad()


def test_the_default_journey_follows_a_live_filter_and_says_why(capsys, runs, killed) -> None:
    import re

    code, out, _ = cli(capsys, runs, "journey", killed)
    assert code == 0
    found = re.search(
        r"following filter (\d+): the lesson's filter 1 is silent in (\d+) of 12", out
    )
    assert found and found.group(1) != "1" and int(found.group(2)) >= 3  # dead in conv2d_1
    assert f"filter {found.group(1)} is the first live in every layer on these images" in out
    assert is_png(runs / killed / f"journey-filter{found.group(1)}.png")
    code, out, _ = cli(capsys, runs, "journey", killed, "--filter", "1")
    assert code == 0 and "following" not in out
    assert "filter 1 of conv2d_1 is dead: 0 on every one of 60 test images" in out


def test_dead_filters_are_marked_in_all_filters_and_filters(capsys, runs, killed) -> None:
    code, out, _ = cli(capsys, runs, "journey", killed, "--all-filters", "--layer", "conv2d_1")
    assert code == 0 and "dead filters of conv2d_1 (0 on all 60 test images): 1" in out
    code, out, _ = cli(capsys, runs, "filters", killed, "--layer", "conv2d_1")
    assert code == 0 and "dead filters (output 0 on all 60 test images): 1" in out
    assert "drawn: the mean over the 8 input channels" in out
    assert "--channel 0..7 draws one input channel's kernels" in out


def test_choose_filter_and_dead_filters_on_a_known_network(runs, killed) -> None:
    from convlens.introspect.liveness import choose_filter, dead_filters
    from convlens.runs import Run

    network = Run(runs / killed).load_network()
    images = np.zeros((2, 1, 28, 28), np.uint8)
    images[:, 0, 8:20, 8:20] = 255
    dead = dead_filters(network, images, ["conv2d_1"])["conv2d_1"]
    assert dead[1] and dead.dtype == bool
    choice = choose_filter(network, images, ["conv2d", "conv2d_1"])
    assert choice.index != 1 and "the lesson's filter 1 is silent in 2 of 4 panels" in choice.reason
