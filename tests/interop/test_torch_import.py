"""PyTorch in: an nn.Sequential, or a .pt state dict beside a spec; outputs equal torch's."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

from convlens.errors import ModelImportError
from convlens.interop import import_model
from convlens.interop.torch import from_torch
from convlens.runs import Run


def _randomise_batchnorm(model: nn.Module) -> nn.Module:
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.3)
            module.running_var.copy_(torch.rand(n, generator=generator) * 0.1 + 1e-3)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
    return model.eval()


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return _randomise_batchnorm(
        nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8, eps=1e-3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Sequential(nn.Conv2d(8, 8, (3, 2), stride=2, bias=False), nn.Tanh()),
            nn.AvgPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(8 * 3 * 3, 16),
            nn.BatchNorm1d(16),
            nn.GELU(),
            nn.Linear(16, 10),
        )
    )


def _images(count: int = 6) -> torch.Tensor:
    return torch.rand(count, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def test_from_torch_computes_what_torch_computes() -> None:
    model = _model()
    network = from_torch(model, (1, 28, 28))
    x = _images()
    with torch.no_grad():
        want = model(x).softmax(-1)
    assert torch.allclose(network.predict_proba(x), want, atol=1e-6)
    kinds = [layer.kind for layer in network.spec.layers]
    assert kinds == ["conv", "batchnorm", "maxpool", "conv", "avgpool", "flatten", "dropout",
                     "dense", "batchnorm", "dense"]  # fmt: skip
    assert network.spec.layers[1].epsilon == 1e-3 and network.spec.layers[1].activation == "relu"


def test_global_average_pooling_and_a_final_softmax() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4, 5), nn.Softmax(dim=1),
    ).eval()  # fmt: skip
    network = from_torch(model, (3, 16, 16))
    x = torch.rand(4, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(network.predict_proba(x), model(x), atol=1e-6)
    assert [layer.kind for layer in network.spec.layers] == ["conv", "gap", "dense"]


def test_global_max_pooling() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(),
        nn.Linear(4, 5),
    ).eval()  # fmt: skip
    network = from_torch(model, (3, 16, 16))
    x = torch.rand(4, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(network.predict_proba(x), model(x).softmax(-1), atol=1e-6)
    assert [layer.kind for layer in network.spec.layers] == ["conv", "batchnorm", "gmp", "dense"]
    refused = [(nn.AdaptiveMaxPool2d(2), "only AdaptiveMaxPool2d(1) followed by"),
               (nn.AdaptiveMaxPool2d(1, return_indices=True), "return_indices")]  # fmt: skip
    for pool, words in refused:
        with pytest.raises(ModelImportError, match=re.escape(words)):
            from_torch(nn.Sequential(nn.Conv2d(1, 2, 3), pool, nn.Flatten(), nn.Linear(2, 3)),
                       (1, 8, 8))  # fmt: skip


@pytest.mark.parametrize(
    ("layer", "words"),
    [
        (nn.Conv2d(1, 2, 3, groups=1, dilation=2), "groups or dilation"),
        (nn.LSTM(4, 4), "layer 2 '1' (LSTM) is not supported"),
        (nn.LeakyReLU(0.2), "LeakyReLU(0.2)"),
    ],
)
def test_unsupported_torch_layers_are_named(layer, words) -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), layer, nn.Flatten(), nn.Linear(2, 3))
    with pytest.raises(ModelImportError, match=None) as caught:
        from_torch(model, (1, 12, 12))
    assert words in str(caught.value) and "convlens imports Conv2d" in str(caught.value)


def test_a_state_dict_beside_a_spec_imports_as_a_run(tmp_path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 13 * 13, 10)
    ).eval()  # fmt: skip
    path = tmp_path / "mine.pt"
    torch.save(model.state_dict(), path)
    spec = "conv(4, 3, relu), maxpool(2), flatten, dense(10, softmax)"
    run = import_model(path, runs_dir=tmp_path / "runs", spec=spec)
    assert Run.open("mine", tmp_path / "runs").state()["status"] == "imported"
    x = _images()
    with torch.no_grad():
        want = model(x).softmax(-1)
    assert torch.allclose(run.load_network().predict_proba(x), want, atol=1e-6)
    assert run.config["imported"]["format"] == "torch-state-dict"


def test_a_pickled_module_is_never_unpickled(tmp_path, capsys) -> None:
    from convlens.cli.main import main

    path = tmp_path / "whole.pt"
    torch.save(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), path)  # a pickled object
    spec = "flatten, dense(10, softmax)"
    assert main(["import", str(path), "--spec", spec, "--runs", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "never pickled objects" in err and "state_dict" in err
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").iterdir())


def test_a_state_dict_that_does_not_fit_the_spec(tmp_path) -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    path = tmp_path / "w.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(ModelImportError, match="spec has 2 layers with weights"):
        import_model(path, runs_dir=tmp_path, spec="flatten, dense(32, relu), dense(10)")
    with pytest.raises(ModelImportError, match="--spec"):
        import_model(path, runs_dir=tmp_path)
    assert np.array_equal(sorted(p.name for p in tmp_path.iterdir()), ["w.pt"])


def test_a_colour_model_judged_on_a_folder_of_its_own_images(tmp_path, capsys) -> None:
    """A 16x16 RGB model: classes and the images' look come from the folder, read at the
    model's size; evaluate then runs on it."""
    from PIL import Image

    from convlens.cli.main import main

    rng = np.random.default_rng(0)
    for label in ("apple", "leaf", "sky"):
        (tmp_path / "pics" / label).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(180, 255, (20, 20, 3), dtype=np.uint8)  # a light background
            Image.fromarray(pixels).save(tmp_path / "pics" / label / f"{i}.png")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 3))
    run = import_model(model, "rgb", runs_dir=tmp_path / "runs", input_shape=(3, 16, 16),
                       data=f"folder:{tmp_path / 'pics'}")  # fmt: skip
    assert run.class_names == ["apple", "leaf", "sky"]
    assert run.preparation.background == "light" and run.preparation.input_shape == (3, 16, 16)
    assert main(["evaluate", "rgb", "--runs", str(tmp_path / "runs"), "--json"]) == 0
    assert '"test_accuracy"' in capsys.readouterr().out
    with pytest.raises(ModelImportError, match="folder:DIR"):
        import_model(model, "rgb2", runs_dir=tmp_path / "runs", input_shape=(3, 16, 16))
