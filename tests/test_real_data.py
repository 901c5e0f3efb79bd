"""One smoke run on the real Fashion-MNIST files (skipped unless CONVLENS_TEST_DATA names them)."""

from __future__ import annotations

import json
import tempfile

import pytest

from convlens.cli.main import main


def test_cnn_learns_real_fashion_mnist(real_data_dir, tmp_path, capsys) -> None:
    code = main(
        [
            "train",
            "cnn",
            "--data-dir",
            str(real_data_dir),
            "--epochs",
            "1",
            "--train-subset",
            "4000",
            "--test-subset",
            "1000",
            "--runs",
            str(tmp_path),
            "--name",
            "smoke",
            "--quiet",
        ]
    )
    _, err = capsys.readouterr()
    assert code == 0, err
    metrics = json.loads((tmp_path / "smoke" / "metrics.json").read_text())
    # 4,000 images, one epoch: well above chance (10%); the full recipe reaches ~90%.
    assert metrics["test_accuracy"] > 0.70
    assert metrics["class_names"][9] == "Ankle boot"
    config = json.loads((tmp_path / "smoke" / "config.json").read_text())
    assert config["dataset"]["is_sample"] is False
    assert config["dataset"]["train_count"] == 4000


@pytest.mark.parametrize("model", ["cnn", "quick"])
def test_the_fast_path_learns_as_well_as_fp32(real_data_dir, model) -> None:
    """bf16 + channels_last (the default where the CPU has bf16) against exact fp32.

    Same seed, same batches: the paths differ only in rounding. On 12,000 real images
    for one epoch, test accuracy agrees within 1.5 points (BENCHMARKS.md has the
    full-data, multi-seed parity: 0.13 points apart on average).
    """
    from convlens.data import load_dataset
    from convlens.models.registry import PRESETS
    from convlens.recipe import TrainConfig
    from convlens.train.session import train

    dataset = load_dataset("fashion-mnist", data_dir=str(real_data_dir), download=False)
    accuracy = {}
    for precision in ("fp32", "bf16"):
        config = TrainConfig(
            **{
                **PRESETS[model].recipe,
                "precision": precision,
                "epochs": 1,
                "train_subset": 12000,
                "test_subset": 2000,
            }
        )
        with tempfile.TemporaryDirectory() as runs:
            run = train(model, config=config, runs_dir=runs, name=precision, dataset=dataset)
            accuracy[precision] = run.metrics()["test_accuracy"]
            assert json.loads(run.file("env.json").read_text())["precision"] == precision
    assert accuracy["fp32"] > 0.75
    assert abs(accuracy["fp32"] - accuracy["bf16"]) <= 0.015, accuracy
