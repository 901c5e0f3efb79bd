"""ModelSpec.edit: the lesson's "what if" questions as edits to a spec, from the CLI too."""

from __future__ import annotations

import json

import pytest

from convlens.cli.main import main
from convlens.errors import OptionError
from convlens.models import resolve_model
from convlens.models.layers import Conv, Dense, MaxPool
from convlens.models.network import build_network
from convlens.models.summary import summarize
from convlens.recipe import plan_training

MNIST = (1, 28, 28)


def test_edits_change_filters_blocks_and_hidden_units() -> None:
    cnn = resolve_model("cnn")
    edited = cnn.edit(filters=32, dense=64)
    assert edited.name == "cnn[filters=32,dense=64]"
    assert [layer.filters for layer in edited.layers if isinstance(layer, Conv)] == [32, 32]
    assert [layer.units for layer in edited.layers if isinstance(layer, Dense)] == [64, 10]
    # 320 + 9,248 + (5*5*32*64 + 64) + 650, worked out by hand
    assert summarize(build_network(edited, MNIST, 10)).total == 320 + 9_248 + 51_264 + 650
    one = cnn.edit(convs=1, input_shape=MNIST)
    kinds = [type(layer) for layer in one.layers]
    assert kinds.count(Conv) == 1 and kinds.count(MaxPool) == 1
    assert cnn.edit() is cnn  # nothing asked, nothing changed


def test_an_edit_that_cannot_apply_is_one_clear_error() -> None:
    with pytest.raises(OptionError, match="cannot edit filters: model 'dnn' has no conv"):
        resolve_model("dnn").edit(filters=8)
    with pytest.raises(OptionError, match="cannot edit dense"):
        resolve_model("conv(8, 3), flatten, dense(10)").edit(dense=8)


def test_the_plan_applies_edits_and_keeps_the_presets_recipe() -> None:
    spec, config, recipe = plan_training("fast", edits={"filters": 16}, overrides={"epochs": 1})
    assert recipe == "fast" and config.epochs == 1 and config.optimizer == "adamw"
    assert all(layer.filters == 16 for layer in spec.layers if hasattr(layer, "filters"))


def test_train_edit_from_the_command_line(tmp_path, tiny_idx_dir, capsys) -> None:
    model = "conv(8, 3, relu), maxpool(2), flatten, dense(16, relu), dense(3, softmax)"
    code = main(["train", model, "--edit", "filters=4", "--edit", "dense=5", "--data",
                 f"idx:{tiny_idx_dir}", "--epochs", "1", "--train-subset", "30", "--runs",
                 str(tmp_path), "--name", "r", "--quiet", "--precision", "fp32"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    layers = json.loads((tmp_path / "r" / "config.json").read_text())["model"]["layers"]
    assert layers[0]["conv"]["filters"] == 4 and layers[3]["dense"]["units"] == 5
    assert main(["train", model, "--edit", "width=4", "--runs", str(tmp_path)]) == 2
    assert "cannot edit 'width'; the edits are: filters, convs, dense" in capsys.readouterr().err
