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


@pytest.mark.parametrize("name", ["lesson", "strided", "logits", "globalmax"])
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


GMP_SPEC = (
    "conv(6, 3, same, activation=none), batchnorm(relu), maxpool(2), conv(8, 3, relu), gmp, "
    "dense(3, softmax)"
)


def test_a_gmp_net_exports_and_imports_back(tiny_dataset, tmp_path) -> None:
    """torch's exporter writes gmp as ReduceMax over H and W (keepdims) and a Reshape,
    the relu after it (forward() pools first); it reads back as gmp after a conv(relu),
    and ONNX Runtime, the import and the run agree to 1e-6."""
    import onnx
    import onnxruntime as ort

    from convlens.export import export_onnx
    from convlens.recipe import TrainConfig
    from convlens.train.session import train

    run = train(GMP_SPEC, config=TrainConfig(precision="fp32", epochs=1), runs_dir=tmp_path,
                name="gmp", dataset=tiny_dataset)  # fmt: skip
    path = tmp_path / "gmp.onnx"
    assert export_onnx(run, path).max_abs_difference < 1e-4
    ops = [node.op_type for node in onnx.load(path).graph.node if node.op_type != "Constant"]
    at = ops.index("ReduceMax")
    assert ops[at - 1 : at + 3] == ["Conv", "ReduceMax", "Reshape", "Relu"]
    imported = read_model(path)
    # the exporter folds the batchnorm into the conv before it; the relus come back
    kinds = [(layer.kind, getattr(layer, "activation", None)) for layer in imported.spec.layers]
    assert kinds == [("conv", "relu"), ("maxpool", None), ("conv", "relu"), ("gmp", None),
                     ("dense", "softmax")]  # fmt: skip
    assert imported.spec.layer_names()[3] == "global_max_pooling2d"
    images = tiny_dataset.test_images.astype(np.float32) / 255
    with torch.no_grad():
        want = run.load_network()(torch.from_numpy(images)).softmax(-1)
        got = to_network(imported)(torch.from_numpy(images)).softmax(-1)
    assert torch.allclose(got, want, atol=1e-6, rtol=0)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    answered = session.run(None, {"images": images})[0]
    np.testing.assert_allclose(answered, want.numpy(), atol=1e-6, rtol=0)


def _chain_with(pool_nodes, tmp_path, opset: int = 18):
    """A hand-built graph: conv(2, 3) on 1x6x6, then ``pool_nodes`` from 'c' to 'v', then
    Gemm to 3 classes; and its weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    dense = rng.standard_normal((3, 2)).astype(np.float32)
    stored = [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(dense, "d"),
              numpy_helper.from_array(np.zeros(3, np.float32), "b"),
              numpy_helper.from_array(np.array([2, 3], np.int64), "hw"),
              numpy_helper.from_array(np.array([1], np.int64), "channels")]  # fmt: skip
    nodes = [
        helper.make_node("Conv", ["images", "w"], ["c"], name="conv", kernel_shape=[3, 3]),
        *pool_nodes,
        helper.make_node("Gemm", ["v", "d", "b"], ["logits"], name="dense", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "pooled",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 1, 6, 6])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])], stored,
    )  # fmt: skip
    path = tmp_path / "pooled.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path, weight, dense


@pytest.mark.parametrize(
    "case", ["GlobalMaxPool", "ReduceMax keepdims", "ReduceMax no keepdims", "ReduceMax opset 13"]
)
def test_global_max_pooling_graphs_import_as_gmp(case, tmp_path) -> None:
    from onnx import helper

    if case == "GlobalMaxPool":
        pool = [helper.make_node("GlobalMaxPool", ["c"], ["p"], name="pool"),
                helper.make_node("Flatten", ["p"], ["v"], name="flat")]  # fmt: skip
    elif case == "ReduceMax keepdims":
        pool = [helper.make_node("ReduceMax", ["c", "hw"], ["p"], name="pool", keepdims=1),
                helper.make_node("Flatten", ["p"], ["v"], name="flat")]  # fmt: skip
    elif case == "ReduceMax no keepdims":
        pool = [helper.make_node("ReduceMax", ["c", "hw"], ["v"], name="pool", keepdims=0)]
    else:  # before opset 18 the axes were an attribute
        pool = [helper.make_node("ReduceMax", ["c"], ["v"], name="pool", axes=[-1, -2],
                                 keepdims=0)]  # fmt: skip
    path, weight, dense = _chain_with(pool, tmp_path, opset=13 if "13" in case else 18)
    imported = read_model(path)
    assert [layer.kind for layer in imported.spec.layers] == ["conv", "gmp", "dense"]
    network = to_network(imported)
    x = torch.rand(5, 1, 6, 6, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        got = network(x)
    conv = torch.nn.functional.conv2d(x, torch.from_numpy(weight))
    want = torch.amax(conv, dim=(2, 3)) @ torch.from_numpy(dense).T
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_a_max_over_other_axes_is_named(tmp_path) -> None:
    from onnx import helper

    pool = [helper.make_node("ReduceMax", ["c", "channels"], ["v"], name="pool", keepdims=0)]
    path, _, _ = _chain_with(pool, tmp_path)
    with pytest.raises(ModelImportError) as caught:
        read_model(path)
    assert "node 2 'pool' (ReduceMax) is not supported (a max over other axes than H and W)" in (
        str(caught.value)
    )
