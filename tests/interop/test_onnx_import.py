"""ONNX in: what `convlens export --onnx` writes imports back and computes the same."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

from convlens.cli.main import main
from convlens.errors import ModelImportError
from convlens.interop import import_model, read_model, to_network
from convlens.runs import Run


@pytest.mark.parametrize("name", ["lesson", "strided", "logits"])
def test_export_then_import_round_trips(tmp_path, keras_fixtures, name) -> None:
    runs = tmp_path / "runs"
    original = import_model(keras_fixtures.path(name), runs_dir=runs)
    onnx_file = tmp_path / f"{name}.onnx"
    assert main(["export", name, "--onnx", str(onnx_file), "--runs", str(runs)]) == 0
    back = import_model(onnx_file, name=f"{name}-back", runs_dir=runs)
    x = torch.from_numpy(keras_fixtures.images()).float() / 255
    want = original.load_network().predict_proba(x)
    assert torch.allclose(back.load_network().predict_proba(x), want, atol=1e-6)
    assert back.state()["status"] == "imported" and back.config["imported"]["format"] == "onnx"
    if name == "lesson":  # conv -> maxpool -> relu in the graph reads back as the lesson's

        def kinds(run: Run) -> list[tuple[str, str | None]]:
            return [(x.kind, getattr(x, "activation", None)) for x in run.spec().layers]

        assert kinds(back) == kinds(original)
        assert back.spec().layer_names()[0] == "conv2d"
        assert np.allclose(want.numpy(), keras_fixtures.probabilities(name), atol=1e-5)


def test_an_unsupported_onnx_operation_is_named(tmp_path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["images"], ["a"], name="relu"),
            helper.make_node("Transpose", ["a"], ["b"], name="swap", perm=[0, 2, 3, 1]),
        ],
        "foreign",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 28, 28, 1])],
    )
    path = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), path)
    with pytest.raises(ModelImportError) as caught:
        read_model(path)
    assert "node 2 'swap' (Transpose) is not supported" in str(caught.value)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(ModelImportError, match="not a readable ONNX file"):
        read_model(broken)


def test_from_an_onnx_file_to_a_network(tmp_path, keras_fixtures) -> None:
    runs = tmp_path / "runs"
    import_model(keras_fixtures.path("functional"), runs_dir=runs)
    from convlens.export import export_onnx

    export_onnx(Run.open("functional", runs), tmp_path / "f.onnx")
    network = to_network(read_model(tmp_path / "f.onnx"))
    x = torch.from_numpy(keras_fixtures.images()).float() / 255
    got = network.predict_proba(x).double().numpy()
    assert np.abs(got - keras_fixtures.probabilities("functional")).max() < 1e-5
