"""ONNX export: probabilities out, any batch size, equal to PyTorch within 1e-4."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convlens.cli.main import main
from convlens.export import export_onnx
from convlens.recipe import TrainConfig
from convlens.train.session import train

ort = pytest.importorskip("onnxruntime")


def test_export_matches_pytorch(tiny_dataset, tmp_path, capsys) -> None:
    run = train(
        "conv(4, 3, relu), maxpool(2), flatten, dense(3, softmax)",
        config=TrainConfig(precision="fp32", epochs=1), runs_dir=tmp_path, name="r",
        dataset=tiny_dataset,
    )  # fmt: skip
    result = export_onnx(run, tmp_path / "m.onnx")
    assert result.max_abs_difference is not None and result.max_abs_difference < 1e-4

    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    images = tiny_dataset.test_images[:5].astype(np.float32) / 255
    probabilities = session.run(None, {"images": images})[0]
    assert probabilities.shape == (5, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    with torch.no_grad():
        want = run.load_network()(torch.from_numpy(images)).softmax(-1).numpy()
    np.testing.assert_allclose(probabilities, want, atol=1e-4)

    assert main(["export", str(run.path)]) == 0
    assert "matches PyTorch" in capsys.readouterr().out
    assert (run.path / "model.onnx").is_file()
