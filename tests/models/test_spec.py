"""The text and file forms of a model spec, and the errors a person gets for bad ones."""

from __future__ import annotations

import json

import pytest

from convlens.errors import SpecError
from convlens.models import Conv, Dense, MaxPool, ModelSpec, load_spec_file, parse_spec
from convlens.models.network import build_network
from convlens.models.registry import PRESETS, resolve_model

CNN_TEXT = (
    "conv(64, 3, relu), maxpool(2), conv(64, 3, relu), maxpool(2), flatten, "
    "dense(128, relu), dense(10, softmax)"
)


def test_text_form_reads_like_the_lesson() -> None:
    spec = parse_spec(CNN_TEXT)
    assert spec.layers[0] == Conv(filters=64, kernel=3, activation="relu")
    assert spec.layers[1] == MaxPool(size=2)
    assert spec.layers[-1] == Dense(units=10, activation="softmax")
    assert spec.layers == PRESETS["cnn"].spec.layers


def test_keras_names_keywords_and_separators() -> None:
    spec = parse_spec(
        "Conv2D(filters=16, kernel=5, padding=same, activation=relu) > "
        "MaxPooling2D(2); Flatten\nDense(10, softmax)"
    )
    assert spec.layers[0] == Conv(filters=16, kernel=5, padding="same", activation="relu")
    assert [layer.kind for layer in spec.layers] == ["conv", "maxpool", "flatten", "dense"]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_text_and_dict_forms_round_trip(name: str) -> None:
    spec = PRESETS[name].spec
    assert parse_spec(spec.to_text()).layers == spec.layers
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_yaml_json_and_toml_files(tmp_path) -> None:
    (tmp_path / "m.yaml").write_text(
        "name: mine\ninput: [28, 28, 1]\nlayers:\n"
        "  - conv: {filters: 8, kernel: 3, activation: relu}\n"
        "  - maxpool\n  - flatten\n  - dense(10, softmax)\n"
    )
    (tmp_path / "m.json").write_text(
        json.dumps(
            {
                "layers": [
                    {"conv": {"filters": 8, "activation": "relu"}},
                    {"maxpool": {}},
                    "flatten",
                    {"dense": {"units": 10, "activation": "softmax"}},
                ]
            }
        )
    )
    (tmp_path / "m.toml").write_text(
        'layers = "conv(8, 3, relu), maxpool(2), flatten, dense(10, softmax)"\n'
    )
    specs = [load_spec_file(tmp_path / f"m.{ext}") for ext in ("yaml", "json", "toml")]
    assert specs[0].name == "mine" and specs[0].input_shape == (1, 28, 28)
    assert specs[1].name == "m"
    assert specs[0].layers == specs[1].layers == specs[2].layers
    assert resolve_model(str(tmp_path / "m.yaml")) == specs[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("conv(64, 3, relu), wibble", "unknown layer 'wibble'"),
        ("conv(3, relu)) , flatten", "unbalanced"),
        ("conv(64, 3, relu", "unclosed"),
        ("conv(relu), flatten, dense(10)", "conv needs filters"),
        ("conv(64, 3, swish), flatten, dense(10)", "unknown activation 'swish'"),
        ("conv(-4, 3), flatten, dense(10)", "filters must be a positive integer"),
        ("conv(8, 3, colour=red), flatten, dense(10)", "conv has no option 'colour'"),
        ("dropout(1.5), flatten, dense(10)", "rate must be in [0, 1)"),
        ("dense(10, softmax, 3, 4)", "too many arguments"),
        ("", "no layers"),
    ],
)
def test_malformed_text_gets_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(text)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("conv(8, 3), dense(10)", "put 'flatten'"),
        ("conv(8, 29), flatten, dense(10)", "does not fit a 28x28 input"),
        (
            "maxpool(2), maxpool(2), maxpool(2), maxpool(2), maxpool(2), flatten, dense(10)",
            "does not fit",
        ),
        ("flatten, dense(128, relu)", "but the data has 10 classes"),
        ("flatten, dense(10, relu)", "must use softmax"),
        ("conv(8, 3, relu), flatten", "must end with a dense layer"),
    ],
)
def test_specs_that_cannot_fit_the_data_are_refused(text: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        build_network(parse_spec(text), (1, 28, 28), 10)
    assert message in str(err.value)


def test_bad_files_name_the_file(tmp_path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("layers: [conv: {filters: 8\n")
    with pytest.raises(SpecError, match=r"broken\.yaml is not valid YAML"):
        load_spec_file(broken)
    with pytest.raises(SpecError, match="does not exist"):
        load_spec_file(tmp_path / "missing.json")
    (tmp_path / "nolayers.json").write_text('{"name": "x"}')
    with pytest.raises(SpecError, match="'layers' list"):
        load_spec_file(tmp_path / "nolayers.json")


def test_unknown_model_lists_the_presets() -> None:
    with pytest.raises(SpecError, match="not a preset \\(dnn, cnn"):
        resolve_model("resnet9000")


def test_duplicate_layer_names_are_refused() -> None:
    spec = ModelSpec(layers=(Dense(units=4, name="a"), Dense(units=10, name="a")))
    with pytest.raises(SpecError, match="two layers are named 'a'"):
        spec.layer_names()


@pytest.mark.parametrize(
    "text",
    [
        "conv(4, 3)",
        "conv(4, 5, stride=2)",
        "conv(4, 3x2, padding=same, stride=2)",
        "conv(4, 4, padding=1, stride=3)",
        "maxpool(2)",
        "maxpool(3, stride=2)",
        "avgpool(3)",
        "avgpool(2, stride=1)",
        "whiten(2)",
        "whiten(3, stride=1)",
    ],
)
@pytest.mark.parametrize("size", [(7, 7), (9, 6), (28, 28)])
def test_window_shapes_are_the_built_modules_shapes(text: str, size: tuple[int, int]) -> None:
    """The one window rule (``layers.window_positions``) against what torch computes."""
    import torch

    (layer,) = parse_spec(text).layers
    in_shape = (2, *size)
    module = layer.build(in_shape)
    with torch.no_grad():
        out = module(torch.zeros(1, *in_shape))
    assert layer.output_shape(in_shape) == tuple(out.shape[1:])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "conv(4, 5x4)",
            "conv: a 5x4 kernel does not fit a 4x4 input; use a smaller kernel, padding "
            "'same', or fewer pooling layers before it",
        ),
        (
            "maxpool(5)",
            "maxpool: a 5x5 window does not fit a 4x4 input; remove a pooling layer or use "
            "a smaller size",
        ),
        (
            "whiten(5)",
            "whiten: a 5x5 patch does not fit a 4x4 input; use a smaller patch or put it first",
        ),
    ],
)
def test_a_window_larger_than_its_map_is_one_line(text: str, message: str) -> None:
    (layer,) = parse_spec(text).layers
    with pytest.raises(SpecError) as err:
        layer.output_shape((1, 4, 4))
    assert str(err.value) == message
