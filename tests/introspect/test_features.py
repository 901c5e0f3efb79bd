"""Feature maps, the journey and learned filters, checked against torch.nn.functional."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convlens.errors import ImageError, OptionError, SpecError
from convlens.introspect import (
    feature_maps,
    image_layer_names,
    journey,
    journey_layer_names,
    learned_filters,
    pick_images,
    resolve_class,
)
from convlens.models import parse_spec, resolve_model
from convlens.models.network import build_network

THREE_CONV = (
    "conv(32, 3, relu), maxpool(2), conv(64, 3, relu), maxpool(2), "
    "conv(64, 3, relu), flatten, dense(10, softmax)"
)


def network(spec: str, shape=(1, 28, 28), classes: int = 10):
    torch.manual_seed(0)
    model = resolve_model(spec) if "(" not in spec else parse_spec(spec)
    return build_network(model, shape, classes).eval()


@pytest.fixture(scope="module")
def cnn():
    return network("cnn")


def images(n: int = 3, shape=(1, 28, 28), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def test_journey_of_the_lesson_cnn(cnn) -> None:
    result = journey(cnn, images(3), 1, class_names=[f"c{k}" for k in range(10)])
    assert result.layers == ("conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1")
    assert [s[1] for s in result.shapes] == [26, 13, 11, 5]
    assert [result.maps[n].shape for n in result.layers] == [
        (3, 26, 26),
        (3, 13, 13),
        (3, 11, 11),
        (3, 5, 5),
    ]
    assert result.predicted.shape == (3,) and np.all(
        (result.probability > 0) & (result.probability <= 1)
    )
    assert result.predicted_name(0).startswith("c")
    assert "conv2d 26x26x64 -> max_pooling2d 13x13x64" in result.shape_line()


def test_journey_of_a_deeper_spec_has_more_columns() -> None:
    result = journey(network(THREE_CONV), images(2), 5)
    assert result.layers == ("conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "conv2d_2")
    assert [result.maps[n].shape[1:] for n in result.layers] == [
        (26, 26),
        (13, 13),
        (11, 11),
        (5, 5),
        (3, 3),
    ]


def test_filter_out_of_range_names_the_layer_and_range() -> None:
    with pytest.raises(OptionError, match=r"layer 'conv2d', which has 32 filters.*0 to 31"):
        journey(network(THREE_CONV), images(1), 40)
    with pytest.raises(OptionError, match=r"0 to 63"):
        journey(network("cnn"), images(1), -1)


def test_the_journey_map_is_the_filters_channel(cnn) -> None:
    x = images(2)
    maps = feature_maps(cnn, x)
    result = journey(cnn, x, 7)
    for name in result.layers:
        np.testing.assert_array_equal(result.maps[name], maps[name][:, 7])


def test_feature_maps_equal_a_direct_computation(cnn) -> None:
    x = images(2)
    maps = feature_maps(cnn, x)
    assert list(maps) == image_layer_names(cnn) == journey_layer_names(cnn)
    assert all(m.dtype == np.float32 for m in maps.values())
    conv = cnn.blocks["conv2d"][0]
    reference = F.relu(F.conv2d(torch.from_numpy(x).float() / 255, conv.weight, conv.bias))
    np.testing.assert_allclose(maps["conv2d"], reference.detach().numpy(), rtol=1e-5, atol=1e-6)
    pooled = F.max_pool2d(torch.from_numpy(maps["conv2d"]), 2).numpy()
    np.testing.assert_array_equal(maps["max_pooling2d"], pooled)


def test_feature_maps_of_chosen_layers_and_bad_layers(cnn) -> None:
    maps = feature_maps(cnn, images(1), ["conv2d_1"])
    assert list(maps) == ["conv2d_1"] and maps["conv2d_1"].shape == (1, 64, 11, 11)
    with pytest.raises(SpecError, match=r"no layer named 'conv9'.*conv2d, max_pooling2d"):
        feature_maps(cnn, images(1), ["conv9"])
    with pytest.raises(SpecError, match=r"'dense' .* vector of 128 numbers"):
        feature_maps(cnn, images(1), ["dense"])
    with pytest.raises(ImageError, match=r"\(N, 1, 28, 28\)"):
        feature_maps(cnn, images(1, (1, 32, 32)))


def test_learned_filters_are_the_conv_weights(cnn) -> None:
    np.testing.assert_array_equal(
        learned_filters(cnn), cnn.blocks["conv2d"][0].weight.detach().numpy()
    )
    assert learned_filters(cnn, "conv2d_1").shape == (64, 64, 3, 3)
    with pytest.raises(SpecError, match=r"'max_pooling2d' is not a conv layer.*conv2d, conv2d_1"):
        learned_filters(cnn, "max_pooling2d")
    with pytest.raises(SpecError, match=r"'nope' does not exist.*conv2d, conv2d_1"):
        learned_filters(cnn, "nope")
    with pytest.raises(SpecError, match=r"no conv layer"):
        learned_filters(network("dnn"))


def test_a_dense_model_has_no_journey() -> None:
    dnn = network("dnn")
    assert feature_maps(dnn, images(1)) == {}
    with pytest.raises(OptionError, match=r"no conv or pool layer.*convlens explain"):
        journey(dnn, images(1), 1)


def test_colour_images_go_through(tmp_path) -> None:
    from convlens.fileio import write_figure
    from convlens.plots.journey import journey_figure, layer_maps_figure

    model = network("conv(8, 3, relu), maxpool(2), flatten, dense(4, softmax)", (3, 32, 32), 4)
    x = images(2, (3, 32, 32))
    result = journey(model, x, 0)
    assert result.maps["conv2d"].shape == (2, 30, 30)
    assert feature_maps(model, x)["max_pooling2d"].shape == (2, 8, 15, 15)
    write_figure(tmp_path / "j.png", journey_figure(result, ["a", "b"]))
    maps = feature_maps(model, x[:1], ["conv2d"])["conv2d"][0]
    write_figure(tmp_path / "m.png", layer_maps_figure(maps, "conv2d", x[0], "a"))
    assert (tmp_path / "j.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "m.png").stat().st_size > 0


def test_class_names_resolve_by_name_case_spelling_or_number() -> None:
    names = ["T-shirt/top", "Trouser", "Ankle boot"]
    assert resolve_class("Ankle boot", names) == 2
    assert resolve_class("ankle BOOT", names) == 2
    assert resolve_class("ankle-boot", names) == 2
    assert resolve_class("1", names) == 1
    assert resolve_class(0, names) == 0
    with pytest.raises(OptionError, match=r"unknown class 'Boots'.*2 Ankle boot"):
        resolve_class("Boots", names)
    with pytest.raises(OptionError, match=r"unknown class '3'"):
        resolve_class("3", names)


def test_pick_images(tiny_dataset) -> None:
    assert pick_images(tiny_dataset) == [0, 23, 28]  # the lesson's, when they exist
    box = pick_images(tiny_dataset, "box", count=4)
    assert len(box) == 4 and all(tiny_dataset.test_labels[i] == 2 for i in box)
    assert box == sorted(box) and box[0] == 2
    assert pick_images(tiny_dataset, indices=[5, 1]) == [5, 1]
    with pytest.raises(OptionError, match=r"test image 60 does not exist.*0 to 59"):
        pick_images(tiny_dataset, indices=[60])
    with pytest.raises(OptionError, match=r"not both"):
        pick_images(tiny_dataset, "box", indices=[1])
    with pytest.raises(OptionError, match=r"unknown class"):
        pick_images(tiny_dataset, "circle")


def test_look_is_the_answer_and_the_maps_of_one_pass(cnn) -> None:
    from convlens.introspect import look
    from convlens.predict import predict_arrays

    batch = images(130)  # more than one trace batch (128)
    names = journey_layer_names(cnn)
    seen = look(cnn, batch, names)
    assert np.allclose(seen.probabilities, predict_arrays(cnn, batch), atol=1e-6)
    assert np.allclose(seen.probabilities.sum(axis=1), 1, atol=1e-5)
    assert list(seen.maps) == names  # layer order, the probabilities kept apart
    expected = feature_maps(cnn, batch, names)
    for name in names:
        assert np.array_equal(seen.maps[name], expected[name])
    assert np.array_equal(seen.predicted, seen.probabilities.argmax(axis=1))
    alone = look(cnn, batch[:1])
    assert alone.maps == {} and np.allclose(alone.probabilities, seen.probabilities[:1])
    with pytest.raises(SpecError, match="gives a vector"):
        look(cnn, batch[:1], ["dense"])


def test_look_for_the_answer_alone_runs_the_inference_engine(cnn) -> None:
    """/api/predict asks look() with no layers: the fast engine answers, as the trace
    would to 1e-5, and from the second call on it is ONNX Runtime when installed."""
    from convlens.introspect import look
    from convlens.models import inference

    batch = images(5)
    traced = look(cnn, batch, journey_layer_names(cnn)).probabilities
    for _ in range(2):
        alone = look(cnn, batch)
        assert alone.maps == {} and alone.probabilities.shape == traced.shape
        assert np.abs(alone.probabilities - traced).max() <= 1e-5
    assert inference.engine_name(cnn) in ("onnxruntime", "channels_last")


def test_a_gmp_net_is_looked_inside_to_its_gmp_layer() -> None:
    """trace() has the gmp layer (the largest value of each map of the layer before); the
    journey's last column is gmp, its maps 1x1 (as maxpool(3) of 3x3 maps shows them);
    Grad-CAM and the cells that reach the output work as for gap, and Grad-CAM on gmp's
    1x1 maps is one line."""
    from convlens.introspect import explain, look
    from convlens.introspect.reach import reaching_cells

    net = network("conv(8, 3, relu), maxpool(2), conv(6, 3, relu), gmp, dense(10, softmax)")
    x = images(4)
    with torch.no_grad():
        outputs = net.trace(torch.from_numpy(x).float() / 255)
    assert list(outputs) == ["conv2d", "max_pooling2d", "conv2d_1", "global_max_pooling2d",
                             "dense"]  # fmt: skip
    largest = torch.amax(outputs["conv2d_1"], (2, 3))
    assert torch.equal(outputs["global_max_pooling2d"], largest)
    names = ["conv2d", "max_pooling2d", "conv2d_1", "global_max_pooling2d"]
    assert journey_layer_names(net) == names == image_layer_names(net)
    result = journey(net, x, 5)
    assert result.shape_line().endswith("conv2d_1 11x11x6 -> global_max_pooling2d 1x1x6")
    assert result.shapes[-1] == (6, 1, 1)
    assert np.array_equal(result.maps["global_max_pooling2d"], largest[:, 5, None, None].numpy())
    maps = feature_maps(net, x, ["global_max_pooling2d"])["global_max_pooling2d"]
    assert maps.shape == (4, 6, 1, 1) and np.array_equal(maps[:, :, 0, 0], largest.numpy())
    seen = look(net, x, ["global_max_pooling2d"])
    assert np.allclose(seen.probabilities, outputs["dense"].numpy(), atol=1e-6)
    assert np.array_equal(seen.maps["global_max_pooling2d"], maps)
    explanation = explain(net, x[0])
    assert explanation.cam_layer == "conv2d_1" and explanation.cam.shape == (28, 28)
    with pytest.raises(SpecError, match="keeps one number of each map, so Grad-CAM") as err:
        explain(net, x[0], layer="global_max_pooling2d")
    assert "such as conv2d_1" in str(err.value)
    assert all(reach.complete for reach in reaching_cells(net).values())
    gap = network("conv(8, 3, relu), gap, dense(10, softmax)")
    assert journey_layer_names(gap) == ["conv2d"]  # gap: no column
    with pytest.raises(SpecError, match=r"'global_average_pooling2d' .* vector of 8 numbers"):
        feature_maps(gap, x, ["global_average_pooling2d"])


def test_a_1x1_map_is_silent_only_where_it_is_0() -> None:
    """``maxpool(3)`` of 3x3 maps (session 8's max-pool head) makes 1x1 maps, which always
    hold one value: silent only where that value is 0 (nothing fired before the relu)."""
    from convlens.introspect.liveness import choose_filter, dead_filters, silent_maps

    maps = np.array([[[[0.0]], [[0.7]], [[-0.2]]], [[[0.0]], [[0.0]], [[1.5]]]])  # (2, 3, 1, 1)
    assert silent_maps(maps).tolist() == [[True, False, False], [True, True, False]]
    wide = np.zeros((1, 2, 2, 2))
    wide[0, 1, 0, 0] = 0.3
    assert silent_maps(wide).tolist() == [[True, False]]  # more cells: one value everywhere
    net = network("conv(3, 3, relu), maxpool(2), conv(3, 3, relu), maxpool(3), flatten, dense(10)",
                  shape=(1, 12, 12))  # fmt: skip
    with torch.no_grad():
        net.blocks["conv2d_1"][0].bias.copy_(torch.tensor([-100.0, 1.0, 1.0]))  # 0 never fires
    assert net.shapes[net.names.index("max_pooling2d_1")] == (3, 1, 1)
    x = images(4, (1, 12, 12))
    dead = dead_filters(net, x, ["conv2d_1", "max_pooling2d_1"])
    assert dead["max_pooling2d_1"].tolist() == [True, False, False] == dead["conv2d_1"].tolist()
    choice = choose_filter(net, x, ["conv2d_1", "max_pooling2d_1"])
    assert choice.index == 1 and "the lesson's" in choice.reason
