"""Keras models read without TensorFlow give Keras' own outputs, to 1e-5.

The references are Keras' predictions, computed when the fixtures were made
(scripts/make_keras_fixtures.py, TensorFlow 2.21 / Keras 3) and committed beside them.
Each trap of the translation has a test that undoes the fix and sees the outputs move.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from convlens.errors import ModelImportError
from convlens.interop import read_model, to_network
from convlens.interop.imported import ImportedModel
from convlens.models.layers import BatchNorm, Conv

IMPORTABLE = ("lesson", "strided", "functional", "logits", "globalmax")


def probabilities(model: ImportedModel, images: np.ndarray) -> np.ndarray:
    network = to_network(model)
    return network.predict_proba(torch.from_numpy(images).float() / 255).double().numpy()


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("name", IMPORTABLE)
def test_outputs_equal_keras_to_1e5(keras_fixtures, name, suffix) -> None:
    model = read_model(keras_fixtures.path(name, suffix))
    got = probabilities(model, keras_fixtures.images())
    want = keras_fixtures.probabilities(name)
    assert np.abs(got - want).max() < 1e-5
    assert (got.argmax(1) == want.argmax(1)).all()


def test_keras_and_h5_files_give_the_same_spec(keras_fixtures) -> None:
    for name in IMPORTABLE:
        keras3 = read_model(keras_fixtures.path(name, ".keras"))
        legacy = read_model(keras_fixtures.path(name, ".h5"))
        assert keras3.spec == legacy.spec
        assert keras3.origin["format"] == "keras" and legacy.origin["format"] == "keras-h5"


def test_the_lesson_shape_reads_as_the_lessons_layers(keras_fixtures) -> None:
    spec = read_model(keras_fixtures.path("lesson")).spec
    kinds = [layer.kind for layer in spec.layers]
    assert kinds == ["conv", "maxpool", "conv", "maxpool", "flatten", "dense", "dense"]
    assert spec.layers[0].activation == "relu" and spec.layers[-1].activation == "softmax"
    assert spec.input_shape == (1, 28, 28)
    assert spec.layer_names()[:3] == ["conv2d", "max_pooling2d", "conv2d_1"]  # Keras' names


def _undo(model: ImportedModel, layers=None, weights=None) -> ImportedModel:
    return dataclasses.replace(
        model,
        spec=model.spec.with_layers(layers or model.spec.layers),
        weights=tuple(weights or model.weights),
    )


def test_trap_flatten_order_nhwc_vs_nchw(keras_fixtures) -> None:
    """Without permuting the first dense layer's rows the lesson model is wrong."""
    model = read_model(keras_fixtures.path("lesson"))
    index = next(i for i, layer in enumerate(model.spec.layers) if layer.kind == "flatten")
    (c, h, w) = model.spec.shapes(model.spec.input_shape)[index - 1]
    weights = [dict(w_) for w_ in model.weights]
    dense = weights[index + 1]["weight"]  # (units, C*H*W) in torch order
    # Back to Keras' row order, as a naive importer would leave it.
    keras_order = dense.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(dense.shape[0], -1)
    weights[index + 1] = {**weights[index + 1], "weight": keras_order}
    naive = probabilities(_undo(model, weights=weights), keras_fixtures.images())
    assert c > 1 and h * w > 1
    assert np.abs(naive - keras_fixtures.probabilities("lesson")).max() > 1e-3


def test_trap_tf_same_padding_with_stride_2(keras_fixtures, monkeypatch) -> None:
    """PyTorch-style symmetric padding shifts every strided 'same' output by a pixel."""
    from convlens.models import layers

    model = read_model(keras_fixtures.path("strided"))
    assert any(
        isinstance(x, Conv) and x.padding == "same" and x.stride == 2 for x in model.spec.layers
    )
    tf_rule = layers.same_padding
    # PyTorch's padding=k//2 on both sides for the odd kernels (the even one keeps TF's
    # rule, which symmetric padding cannot express at all).
    monkeypatch.setattr(
        layers,
        "same_padding",
        lambda size, k, s: (k // 2, k // 2) if k % 2 else tf_rule(size, k, s),
    )
    naive = probabilities(model, keras_fixtures.images())
    assert np.abs(naive - keras_fixtures.probabilities("strided")).max() > 1e-3


def test_same_padding_puts_the_odd_zero_at_the_bottom_right() -> None:
    from convlens.models.layers import same_padding

    assert same_padding(28, 3, 2) == (0, 1)  # 14 outputs need 13*2 + 3 - 28 = 1 zero
    assert same_padding(7, 3, 2) == (1, 1)
    assert same_padding(14, 4, 1) == (1, 2)  # an even kernel
    assert same_padding(28, 3, 1) == (1, 1)  # the lesson's stride 1: unchanged
    assert same_padding(4, 1, 2) == (0, 0)


def test_trap_batchnorm_epsilon(keras_fixtures) -> None:
    model = read_model(keras_fixtures.path("strided"))
    norms = [layer for layer in model.spec.layers if isinstance(layer, BatchNorm)]
    assert norms and all(layer.epsilon == pytest.approx(1e-3) for layer in norms)
    torch_default = [
        dataclasses.replace(x, epsilon=1e-5) if isinstance(x, BatchNorm) else x
        for x in model.spec.layers
    ]
    naive = probabilities(_undo(model, layers=torch_default), keras_fixtures.images())
    assert np.abs(naive - keras_fixtures.probabilities("strided")).max() > 1e-3


def test_batchnorm_momentum_in_torch_convention(keras_fixtures) -> None:
    """Keras' momentum is the old average's weight; PyTorch's is the new batch's."""
    lesson = read_model(keras_fixtures.path("strided")).spec.layers
    functional = read_model(keras_fixtures.path("functional")).spec.layers
    assert [x.momentum for x in lesson if isinstance(x, BatchNorm)] == [0.01, 0.01]
    assert [x.momentum for x in functional if isinstance(x, BatchNorm)] == [pytest.approx(0.1)]
    network = to_network(read_model(keras_fixtures.path("functional")))
    assert [m.momentum for m in network.modules() if isinstance(m, torch.nn.BatchNorm2d)] == [
        pytest.approx(0.1)
    ]


def test_trap_kernel_layouts_non_square(keras_fixtures) -> None:
    """A (3, 2) kernel stays (3, 2): (kh, kw, in, out) -> (out, in, kh, kw), not (kw, kh)."""
    model = read_model(keras_fixtures.path("strided"))
    index = next(i for i, x in enumerate(model.spec.layers) if getattr(x, "kernel", None) == (3, 2))
    assert model.weights[index]["weight"].shape == (8, 6, 3, 2)


def test_the_functional_chain_drops_only_what_is_trivial(keras_fixtures) -> None:
    model = read_model(keras_fixtures.path("functional"))
    assert [layer.kind for layer in model.spec.layers] == [
        "conv", "batchnorm", "avgpool", "conv", "gap", "dense", "dropout", "dense",
    ]  # fmt: skip
    assert model.spec.layers[1].activation == "relu"  # the ReLU layer, folded
    assert model.spec.layers[-1].activation == "softmax"  # the Softmax layer, folded
    assert model.spec.layers[3].bias is False
    assert any("Rescaling" in note for note in model.origin["notes"])


def test_an_activation_after_pooling_is_a_layer_of_its_own(keras_fixtures) -> None:
    model = read_model(keras_fixtures.path("logits"))
    assert [layer.kind for layer in model.spec.layers][:3] == ["conv", "maxpool", "activation"]
    assert model.spec.layers[1].stride == 2 and model.spec.layers[1].size == 3


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_unsupported_layer_is_named_with_its_position(keras_fixtures, suffix) -> None:
    with pytest.raises(ModelImportError) as caught:
        read_model(keras_fixtures.path("unsupported", suffix))
    message = str(caught.value)
    assert "layer 2 'depthwise_conv2d' (DepthwiseConv2D) is not supported" in message
    assert "Conv2D, MaxPooling2D" in message and "\n" not in message


def test_a_branching_model_is_refused(keras_fixtures) -> None:
    with pytest.raises(ModelImportError, match="single chain"):
        read_model(keras_fixtures.path("branched"))


def test_damaged_and_foreign_files_get_one_line(tmp_path, keras_fixtures) -> None:
    truncated = tmp_path / "cut.keras"
    truncated.write_bytes(keras_fixtures.path("lesson").read_bytes()[:3000])
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    weights_only = tmp_path / "w.h5"
    import h5py

    with h5py.File(weights_only, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    for path, match in (
        (truncated, "damaged"),
        (text, "neither"),
        (weights_only, "holds no model"),
        (tmp_path / "missing.keras", "does not exist"),
    ):
        with pytest.raises(ModelImportError, match=match):
            read_model(path)


def test_a_fifo_or_device_named_like_a_model_is_refused_without_blocking(tmp_path) -> None:
    import os

    fifo = tmp_path / "model.keras"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path / "zero.h5"):
        if path.name == "zero.h5":
            path.symlink_to("/dev/zero")
        with pytest.raises(ModelImportError, match="not a regular file"):
            read_model(path)


def _with_global_max_pooling(source, out, **config) -> None:
    """``source`` (a Keras file with one GlobalAveragePooling2D) with that layer made a
    GlobalMaxPooling2D, as Keras writes one: its class, its name global_max_pooling2d
    (and the references to it), its weights group; ``config`` overrides its config."""
    import io
    import json
    import shutil
    import zipfile

    import h5py

    def edited(text: str | bytes) -> str:
        model = json.loads(text)
        (layer,) = [x for x in model["config"]["layers"]
                    if x["class_name"] == "GlobalAveragePooling2D"]  # fmt: skip
        layer["class_name"] = "GlobalMaxPooling2D"
        layer["config"].update(config)
        return json.dumps(model).replace("global_average_pooling2d", "global_max_pooling2d")

    if source.suffix == ".h5":
        shutil.copy(source, out)
        with h5py.File(out, "r+") as file:
            file.attrs["model_config"] = edited(file.attrs["model_config"])
            file["model_weights"].move("global_average_pooling2d", "global_max_pooling2d")
        return
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(out, "w") as copy:
        weights = io.BytesIO(archive.read("model.weights.h5"))
        with h5py.File(weights, "r+") as file:
            file.move("layers/global_average_pooling2d", "layers/global_max_pooling2d")
        copy.writestr("metadata.json", archive.read("metadata.json"))
        copy.writestr("config.json", edited(archive.read("config.json")))
        copy.writestr("model.weights.h5", weights.getvalue())


def test_a_global_max_pooling2d_model_of_keras_reads_as_gmp(keras_fixtures) -> None:
    """Keras' own GlobalMaxPooling2D model (its outputs are checked above, to 1e-5)."""
    spec = read_model(keras_fixtures.path("globalmax")).spec
    kinds = [(layer.kind, getattr(layer, "activation", None)) for layer in spec.layers]
    assert kinds == [("conv", "relu"), ("maxpool", None), ("conv", None), ("batchnorm", "relu"),
                     ("conv", "tanh"), ("gmp", None), ("dense", "softmax")]  # fmt: skip
    assert spec.layer_names()[5] == "global_max_pooling2d"  # Keras' name
    assert spec.shapes((1, 28, 28))[4:6] == [(12, 5, 5), (12,)]


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_global_max_pooling2d_reads_as_gmp(tmp_path, keras_fixtures, suffix) -> None:
    """The functional fixture with its GlobalAveragePooling2D made a GlobalMaxPooling2D:
    the same network with gmp in gap's place, whose gmp output is NumPy's max of the
    conv's maps."""
    from convlens.models.layers import GlobalAvgPool, GlobalMaxPool

    path = tmp_path / f"max{suffix}"
    _with_global_max_pooling(keras_fixtures.path("functional", suffix), path)
    model = read_model(path)
    average = read_model(keras_fixtures.path("functional", suffix))
    kinds = [layer.kind for layer in model.spec.layers]
    assert kinds == ["conv", "batchnorm", "avgpool", "conv", "gmp", "dense", "dropout", "dense"]
    assert model.spec.layer_names()[4] == "global_max_pooling2d"
    swapped = [GlobalMaxPool(name="global_max_pooling2d") if isinstance(layer, GlobalAvgPool)
               else layer for layer in average.spec.layers]  # fmt: skip
    assert model.spec.layers == tuple(swapped)
    network = to_network(model)
    reference = to_network(_undo(average, layers=tuple(swapped)))
    x = torch.from_numpy(keras_fixtures.images()).float() / 255
    with torch.no_grad():
        assert torch.equal(network(x), reference(x))
        outputs = network.trace(x)
    maps = outputs[network.names[3]].numpy()  # (N, 8, 10, 10)
    assert np.array_equal(outputs["global_max_pooling2d"].numpy(), maps.max(axis=(2, 3)))
    assert not np.allclose(probabilities(model, keras_fixtures.images()),
                           keras_fixtures.probabilities("functional"), atol=1e-3)  # fmt: skip


@pytest.mark.parametrize(
    ("config", "words"),
    [({"keepdims": True}, "keepdims=True"), ({"data_format": "channels_first"}, "channels_first")],
)
def test_global_max_pooling2d_that_convlens_cannot_compute_is_named(
    tmp_path, keras_fixtures, config, words
) -> None:
    path = tmp_path / "max.keras"
    _with_global_max_pooling(keras_fixtures.path("functional"), path, **config)
    with pytest.raises(ModelImportError) as caught:
        read_model(path)
    message = str(caught.value)
    assert "'global_max_pooling2d' (GlobalMaxPooling2D) is not supported" in message
    assert words in message and "\n" not in message
