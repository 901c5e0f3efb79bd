"""`convlens export --keras`: a .keras file laid out as Keras writes it, that predicts the
same. CI has no TensorFlow, so the file is compared with one Keras itself wrote (the
lesson fixture) layer by layer and tensor by tensor; test_keras_live.py loads it in
real Keras when TensorFlow is at hand."""

from __future__ import annotations

import io
import json
import zipfile

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from convlens.cli.main import main
from convlens.errors import ConvlensError
from convlens.interop import import_model, read_model, to_network
from convlens.interop.keras_export import export_keras


def _contents(path) -> tuple[dict, dict[str, tuple[int, ...]]]:
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        shapes: dict[str, tuple[int, ...]] = {}
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as weights:
            weights.visititems(
                lambda name, item: (
                    shapes.__setitem__(name, item.shape) if isinstance(item, h5py.Dataset) else None
                )
            )
    return config, shapes


def test_the_file_is_laid_out_as_keras_lays_it_out(tmp_path, keras_fixtures, capsys) -> None:
    runs = tmp_path / "runs"
    import_model(keras_fixtures.path("lesson"), runs_dir=runs)
    out = tmp_path / "back.keras"
    assert main(["export", "lesson", "--keras", str(out), "--runs", str(runs)]) == 0
    assert "matches the run" in capsys.readouterr().out
    ours, our_tensors = _contents(out)
    theirs, their_tensors = _contents(keras_fixtures.path("lesson"))
    assert our_tensors == their_tensors  # the same paths, the same (kh, kw, in, out) shapes
    assert ours["class_name"] == theirs["class_name"] == "Sequential"
    for mine, keras in zip(ours["config"]["layers"], theirs["config"]["layers"], strict=True):
        assert mine["class_name"] == keras["class_name"]
        assert set(mine["config"]) <= set(keras["config"])  # nothing Keras does not know
        for key in ("filters", "kernel_size", "strides", "padding", "activation", "units",
                    "pool_size", "batch_shape", "name"):  # fmt: skip
            assert mine["config"].get(key) == keras["config"].get(key), key


def test_the_same_tensors_as_keras_wrote(tmp_path, keras_fixtures) -> None:
    """Import then export gives back Keras' own numbers (the flatten rows permuted back)."""
    run = import_model(keras_fixtures.path("strided"), runs_dir=tmp_path)
    out = export_keras(run, tmp_path / "strided.keras").path
    with zipfile.ZipFile(out) as mine, zipfile.ZipFile(keras_fixtures.path("strided")) as keras:
        a = h5py.File(io.BytesIO(mine.read("model.weights.h5")), "r")
        b = h5py.File(io.BytesIO(keras.read("model.weights.h5")), "r")
        names: list[str] = []
        b.visititems(lambda n, item: names.append(n) if isinstance(item, h5py.Dataset) else None)
        for name in names:
            assert np.allclose(a[name][()], b[name][()], atol=1e-7), name


@pytest.mark.parametrize("name", ["lesson", "strided", "functional", "logits", "globalmax"])
def test_export_then_import_computes_the_same(tmp_path, keras_fixtures, name) -> None:
    run = import_model(keras_fixtures.path(name), runs_dir=tmp_path)
    exported = export_keras(run, tmp_path / f"{name}-out.keras")
    assert exported.max_abs_difference < 1e-6
    x = torch.from_numpy(keras_fixtures.images()).float() / 255
    got = to_network(read_model(exported.path)).predict_proba(x).double().numpy()
    assert np.abs(got - keras_fixtures.probabilities(name)).max() < 1e-5


def test_a_torch_model_with_numeric_padding_goes_out_too(tmp_path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 14 * 14, 10),
    ).eval()  # fmt: skip
    run = import_model(model, "torchy", runs_dir=tmp_path, input_shape=(1, 28, 28))
    exported = export_keras(run, tmp_path / "torchy.keras")
    config, _ = _contents(exported.path)
    kinds = [layer["class_name"] for layer in config["config"]["layers"]]
    assert kinds == ["InputLayer", "ZeroPadding2D", "Conv2D", "BatchNormalization", "Activation",
                     "Flatten", "Dense"]  # fmt: skip
    assert config["config"]["layers"][3]["config"]["epsilon"] == 1e-5  # torch's, kept
    assert config["config"]["layers"][3]["config"]["momentum"] == 0.9


def test_layers_keras_cannot_express_are_refused(tmp_path) -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.LeakyReLU(), nn.Flatten(), nn.Linear(1352, 3))
    run = import_model(model, "leaky", runs_dir=tmp_path, input_shape=(1, 28, 28),
                       classes=["a", "b", "c"])  # fmt: skip
    with pytest.raises(ConvlensError, match="leaky_relu"):
        export_keras(run, tmp_path / "leaky.keras")
    assert not (tmp_path / "leaky.keras").exists()
    with pytest.raises(ConvlensError, match=r"'\.keras' files"):
        export_keras(run, tmp_path / "x.h5")


def test_gmp_goes_out_as_global_max_pooling2d(tmp_path, keras_fixtures) -> None:
    """Written with the config keys Keras writes for a global pooling layer (those of the
    fixture's GlobalAveragePooling2D), and read back computing the same."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(4, 10),
    ).eval()  # fmt: skip
    run = import_model(model, "gmp", runs_dir=tmp_path, input_shape=(1, 28, 28))
    assert [layer.kind for layer in run.spec().layers] == ["conv", "gmp", "dense"]
    exported = export_keras(run, tmp_path / "gmp.keras")
    assert exported.max_abs_difference < 1e-6
    config, _ = _contents(exported.path)
    (pool,) = [x for x in config["config"]["layers"] if x["class_name"].startswith("Global")]
    assert pool["class_name"] == "GlobalMaxPooling2D"
    assert pool["config"]["name"] == "global_max_pooling2d"
    assert pool["config"]["keepdims"] is False
    assert pool["config"]["data_format"] == "channels_last"
    theirs, _ = _contents(keras_fixtures.path("functional"))
    (keras,) = [x for x in theirs["config"]["layers"] if x["class_name"].startswith("Global")]
    assert set(pool["config"]) <= set(keras["config"])
    x = torch.rand(6, 1, 28, 28)
    with torch.no_grad():
        want = model(x).softmax(-1)
    back = to_network(read_model(exported.path))
    assert [layer.kind for layer in back.spec.layers] == ["conv", "gmp", "dense"]
    assert torch.allclose(back.predict_proba(x), want, atol=1e-6)
