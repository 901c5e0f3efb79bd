"""Grad-CAM and input gradients: the arithmetic against autograd, and a sanity check that
a trained model's heat sits on the part of the image that decides the class."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convlens.errors import ImageError, OptionError, SpecError
from convlens.introspect import cam_layer_name, explain, grad_cam, input_gradients
from convlens.introspect.saliency import _centres
from convlens.models import parse_spec, resolve_model
from convlens.models.network import build_network


def network(spec: str, shape=(1, 28, 28), classes: int = 10):
    torch.manual_seed(0)
    model = resolve_model(spec) if "(" not in spec else parse_spec(spec)
    return build_network(model, shape, classes).eval()


def image(shape=(1, 28, 28), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture(scope="module")
def cnn():
    return network("cnn")


def test_grad_cam_is_an_input_sized_map_in_0_1(cnn) -> None:
    assert cam_layer_name(cnn) == "conv2d_1"
    heat = grad_cam(cnn, image())
    assert heat.shape == (28, 28) and heat.dtype == np.float32
    assert heat.min() >= 0 and heat.max() <= 1


def test_grad_cam_by_hand_on_the_first_conv_layer(cnn) -> None:
    """On conv2d (26x26, cell i over input pixel i + 1) the inner pixels are the cells.

    Cells 24-25 never reach the output (max_pooling2d drops nothing, but conv2d_1's row
    10 is dropped by max_pooling2d_1, and it is the only reader of max_pooling2d's row
    12, i.e. conv2d's rows 24-25): they are left out, input pixel 25 takes cell 23's
    value and input pixels 26-27 reach nothing and stay 0."""
    x_uint8 = image(seed=1)
    x = torch.from_numpy(x_uint8[None]).float() / 255
    activation = cnn.blocks["conv2d"](x)
    activation.retain_grad()
    logits = _forward_from(cnn, activation, start=1)
    target = int(logits.argmax())
    logits[0, target].backward()
    assert activation.grad[..., 24:, :].abs().max() == 0  # dropped: no gradient at all
    assert activation.grad[..., :, 24:].abs().max() == 0
    weights = activation.grad.mean(dim=(2, 3), keepdim=True)
    expected = F.relu((weights * activation).sum(dim=1))[0, :24, :24].detach()
    expected = (expected / expected.max()).numpy()
    heat = grad_cam(cnn, x_uint8, layer="conv2d")
    np.testing.assert_allclose(heat[1:25, 1:25], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(heat[0, 1:25], expected[0], rtol=1e-4, atol=1e-5)  # border
    np.testing.assert_allclose(heat[25, 1:25], expected[23], rtol=1e-4, atol=1e-5)
    assert not heat[26:].any() and not heat[:, 26:].any()


def _forward_from(net, x: torch.Tensor, start: int) -> torch.Tensor:
    for block in list(net.blocks.values())[start:]:
        x = block(x)
    return x


def test_cells_sit_over_the_centre_of_what_they_see(cnn) -> None:
    assert _centres(cnn, "conv2d") == (1.0, 1.0)
    assert _centres(cnn, "max_pooling2d") == (2.0, 1.5)
    assert _centres(cnn, "conv2d_1") == (2.0, 3.5)
    assert _centres(cnn, "max_pooling2d_1") == (4.0, 4.5)


def test_target_class_and_bad_choices(cnn) -> None:
    x = image()
    result = explain(cnn, x, target_class=3)
    assert result.target == 3 and result.cam is not None
    assert result.probabilities.shape == (10,)
    assert result.probabilities.sum() == pytest.approx(1, abs=1e-5)
    with pytest.raises(OptionError, match=r"class 10 does not exist.*0 to 9"):
        grad_cam(cnn, x, target_class=10)
    with pytest.raises(SpecError, match=r"no layer named 'conv7'"):
        grad_cam(cnn, x, layer="conv7")
    # An (H, W) array is one grey image now (issue 16); another size is still refused.
    np.testing.assert_array_equal(grad_cam(cnn, x[0]), grad_cam(cnn, x))
    with pytest.raises(ImageError, match=r"\(1, 28, 28\)"):
        grad_cam(cnn, image((32, 32)))


def test_input_gradients_equal_autograd_for_the_dense_model() -> None:
    dnn = network("dnn")
    x_uint8 = image(seed=2)
    x = (torch.from_numpy(x_uint8[None]).float() / 255).requires_grad_(True)
    logits = dnn(x)
    logits[0, 4].backward()
    expected = x.grad[0].abs().amax(dim=0)
    expected = (expected / expected.max()).numpy()
    np.testing.assert_allclose(
        input_gradients(dnn, x_uint8, target_class=4), expected, rtol=1e-5, atol=1e-7
    )


def test_a_dense_model_has_no_grad_cam_but_explains_with_gradients() -> None:
    dnn = network("dnn")
    with pytest.raises(OptionError, match=r"no conv layer.*input gradients"):
        grad_cam(dnn, image())
    result = explain(dnn, image())
    assert result.cam is None and result.cam_layer is None
    assert result.gradients.shape == (28, 28) and result.gradients.max() == pytest.approx(1)


@pytest.mark.parametrize(
    "spec",
    [
        "cnn-bn",
        "conv(8, 3, relu), conv(8, 3, relu), "
        "conv(8, 3, relu), maxpool(2), flatten, dense(10, softmax)",
    ],
)
def test_any_sequential_depth(spec: str) -> None:
    net = network(spec)
    heat = grad_cam(net, image())
    assert heat.shape == (28, 28) and heat.min() >= 0 and heat.max() <= 1


def test_colour_images(tmp_path) -> None:
    from convlens.fileio import write_figure
    from convlens.plots.saliency import explain_figure

    net = network(
        "conv(8, 3, relu), maxpool(2), conv(8, 3, relu), flatten, dense(5, softmax)", (3, 32, 32), 5
    )
    x = image((3, 32, 32))
    assert grad_cam(net, x).shape == (32, 32)
    assert input_gradients(net, x).shape == (32, 32)
    write_figure(tmp_path / "e.png", explain_figure(explain(net, x), list("abcde"), "x"))
    assert (tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"


def _box_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 1, 28, 28) uint8 dark noise; class 1 adds a 6..10 pixel box of exactly 200."""
    x = rng.integers(0, 40, (len(labels), 1, 28, 28), dtype=np.uint8)
    for i in np.flatnonzero(labels == 1):
        size = int(rng.integers(6, 11))
        row, col = rng.integers(0, 28 - size, 2)
        x[i, 0, row : row + size, col : col + size] = 200
    return x


def test_grad_cam_looks_at_the_box(tmp_path) -> None:
    """Box or no box: the only evidence for 'box' is the box, wherever it is, so a trained
    model's Grad-CAM must sit on it. (tiny_dataset's box class will not do: a model tells
    it from the bar classes by the absence of bars, which Grad-CAM's relu discards.)"""
    from convlens.data import Dataset
    from convlens.recipe import TrainConfig
    from convlens.train.session import train

    rng = np.random.default_rng(0)
    train_labels = np.tile(np.arange(2), 100).astype(np.int64)
    test_labels = np.tile(np.arange(2), 10).astype(np.int64)
    data = Dataset(
        "boxes",
        ("empty", "box"),
        _box_images(train_labels, rng),
        train_labels,
        _box_images(test_labels, rng),
        test_labels,
        source="test_saliency.py",
    )
    spec = "conv(8, 3, relu), maxpool(2), conv(8, 3, relu), flatten, dense(2, softmax)"
    run = train(
        spec,
        config=TrainConfig(precision="fp32", batch_size=16, epochs=5),
        runs_dir=tmp_path,
        name="r",
        dataset=data,
    )
    assert run.metrics()["test_accuracy"] == 1.0
    net = run.load_network()
    for x in data.test_images[test_labels == 1]:
        heat = grad_cam(net, x)  # the predicted class: box
        box = x[0] == 200
        assert heat[box].mean() > 3 * heat[~box].mean()


def _patch_network():
    """A hand-built cnn-shaped network that sees only input pixels 11..14 x 11..14.

    Both convs are 1-filter identities (centre weight 1, no bias), so conv2d_1 cell i is
    input pixel pair (2i + 3, 2i + 4) and max_pooling2d_1 cell q is input pixels
    4q + 3 .. 4q + 6. The dense layer reads only pooled cell (2, 2): input 11..14.
    """
    from torch import nn

    net = network(
        "conv(1, 3, relu), maxpool(2), conv(1, 3, relu), maxpool(2), flatten, dense(2, softmax)",
        classes=2,
    )
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.zero_()
                module.weight[0, 0, 1, 1] = 1.0
                module.bias.zero_()
            elif isinstance(module, nn.Linear):
                module.weight.zero_()
                module.bias.zero_()
                module.weight[1, 2 * 5 + 2] = 1.0  # class 1 <- pooled cell (2, 2)
    return net.eval()


def _tent(positions: np.ndarray) -> np.ndarray:
    """1 between cell centres 11.5 and 13.5, falling linearly to 0 at 9.5 and 15.5."""
    return np.clip(np.minimum(positions - 9.5, 15.5 - positions) / 2, 0, 1)


def test_grad_cam_known_answer_one_bright_patch() -> None:
    """One bright patch the network sees, and a bright spot in conv2d_1's row and column
    10, which max_pooling2d_1 drops: the heat is exactly the bilinear tent over the patch's
    cells (4..5 of conv2d_1) and exactly 0 on the spot. Before the reach masks the spot's
    cell was weighed like any other and painted at full strength."""
    net = _patch_network()
    x = np.zeros((1, 28, 28), np.uint8)
    x[0, 11:15, 11:15] = 255  # what the network sees
    x[0, 23:25, 23:25] = 255  # conv2d_1 cell (10, 10): never reaches the output
    result = explain(net, x, target_class=1)
    assert result.cam_layer == "conv2d_1"
    assert "conv2d_1's 11x11 map" in result.cam_source()
    assert "row 10 and column 10 do not reach the output" in result.cam_source()
    f = _tent(np.arange(28, dtype=np.float64))
    np.testing.assert_allclose(result.cam, np.outer(f, f), atol=1e-6)
    assert result.cam[20:, 20:].max() == 0  # the dropped spot is not evidence
    assert result.cam[11:15, 11:15].min() >= 0.5


def test_input_pixels_that_reach_nothing_have_no_gradient_and_no_heat(cnn) -> None:
    """cnn: input rows and columns 26-27 feed only cells that pooling drops."""
    from convlens.introspect.reach import describe_unreached, reaching_cells

    reach = reaching_cells(cnn)
    assert describe_unreached(reach["input"]) == "rows 26-27 and columns 26-27"
    assert describe_unreached(reach["conv2d_1"]) == "row 10 and column 10"
    assert reach["max_pooling2d_1"].complete
    result = explain(cnn, image(seed=3))
    assert not result.gradients[26:].any() and not result.gradients[:, 26:].any()
    assert not result.cam[26:].any() and not result.cam[:, 26:].any()
