"""One smoke run on the real Fashion-MNIST files (skipped unless CONVLENS_TEST_DATA names them)."""

from __future__ import annotations

import json

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
