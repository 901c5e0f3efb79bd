"""compare decides with McNemar's exact test: a few images apart is a tie, not a win."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from convlens.cli.main import main
from convlens.compare import Comparison
from convlens.experiments.significance import paired_test


def _row(model: str, correct: np.ndarray) -> dict:
    from convlens.experiments.significance import wilson_interval

    low, high = wilson_interval(int(correct.sum()), len(correct))
    return {
        "model": model,
        "params": 1000,
        "seconds_per_epoch": 1.0,
        "train_accuracy": 0.9,
        "test_accuracy": float(correct.mean()),
        "test_accuracy_low": low,
        "test_accuracy_high": high,
        "test_accuracy_std": 0.0,
        "test_loss": 0.3,
        "test_count": len(correct),
    }


def test_four_images_in_ten_thousand_are_a_tie_within_noise() -> None:
    """The issue's case: cnn right on 4 more of 10,000 images than dnn (p = 2/16)."""
    dnn = np.arange(10_000) >= 900  # 91.00%
    cnn = dnn.copy()
    cnn[:4] = True  # 91.04%
    comparison = Comparison(
        Path("c"),
        (_row("cnn", cnn), _row("dnn", dnn)),
        (0,),
        ((paired_test("cnn", cnn, "dnn", dnn),),),
    )
    text = comparison.format()
    assert "wins" not in text
    assert (
        "cnn and dnn are a tie within noise (4 test images only cnn gets right, 0 only dnn;" in text
    )
    assert "McNemar's exact test, p = 0.12" in text
    assert "95% interval" in text and "90.42%-91.55%" in text  # Wilson: 91.00% of 10,000
    assert comparison.headline == ["cnn and dnn: a tie within noise (p = 0.12)"]


def test_a_real_difference_is_called_one_in_every_seed() -> None:
    worse = np.arange(1000) >= 200  # 80%
    better = np.arange(1000) >= 100  # 90%
    tests = tuple((paired_test("cnn", better, "dnn", worse),) for _ in range(3))
    rows = (
        {**_row("cnn", better), "test_accuracy_std": 0.001},
        {**_row("dnn", worse), "test_accuracy_std": 0.002},
    )
    comparison = Comparison(Path("c"), rows, (0, 1, 2), tests)
    text = comparison.format()
    assert "Test accuracy (mean ± std, 3 seeds)" in text and "90.00% ± 0.10" in text
    assert "cnn is more accurate than dnn in every one of the 3 seeds" in text
    assert "p < 0.001, p < 0.001, p < 0.001" in text


def test_compare_with_repeats_from_the_command_line(tmp_path, tiny_idx_dir, capsys) -> None:
    code = main(
        [
            "compare",
            "flatten, dense(3, softmax)",
            "conv(4, 3, relu), maxpool(2), flatten, dense(3, softmax)",
            "--data",
            f"idx:{tiny_idx_dir}",
            "--epochs",
            "1",
            "--repeats",
            "2",
            "--runs",
            str(tmp_path),
            "--name",
            "c",
            "--quiet",
            "--precision",
            "fp32",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "wins" not in out and "McNemar's exact test per seed: p" in out
    assert "mean ± std, 2 seeds" in out
    info = json.loads((tmp_path / "c" / "compare.json").read_text())
    assert info["seeds"] == [0, 1] and len(info["tests"]) == 2 and len(info["trials"]) == 4
    for trial in info["trials"]:
        assert Path(trial["run"]).name.endswith(f"-seed{trial['seed']}")
        assert (
            trial["test_count"] == 60 and 0 <= trial["test_accuracy_low"] <= trial["test_accuracy"]
        )
    for seed_tests in info["tests"]:  # discordant counts can never exceed the test images
        (test,) = seed_tests
        assert test["only_a"] + test["only_b"] <= test["count"] == 60
    assert (tmp_path / "c" / "compare.png").read_bytes()[:4] == b"\x89PNG"
