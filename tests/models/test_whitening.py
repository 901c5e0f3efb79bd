"""Patch whitening (`whiten`): filters against NumPy's eigendecomposition, the shape and
count arithmetic against hand counts, frozen through training, saved and exported."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convlens.errors import SpecError
from convlens.models.layers import Whiten
from convlens.models.network import build_network, count_params
from convlens.models.spec import parse_spec
from convlens.models.summary import summarize
from convlens.models.whitening import fit_whitening, patches_of, whitening_filters
from convlens.recipe import TrainConfig
from convlens.train.session import train

# Three 1x3x4 images small enough to write down: 2x2 patches, stride 2 -> 1x2 windows each.
IMAGES = (
    np.array(
        [
            [[0, 1, 2, 3], [4, 5, 6, 7], [9, 9, 9, 9]],
            [[3, 0, 0, 3], [0, 3, 3, 0], [1, 2, 3, 4]],
            [[1, 1, 8, 2], [2, 7, 1, 1], [0, 0, 0, 0]],
        ],
        dtype=np.float64,
    )[:, None]
    / 10
)


def numpy_reference(images: np.ndarray, patch: int, stride: int, epsilon: float):
    """The whitening filters written out with loops and np.linalg.eigh."""
    rows = []
    for image in images:
        _, h, w = image.shape
        for top in range(0, h - patch + 1, stride):
            for left in range(0, w - patch + 1, stride):
                rows.append(image[:, top : top + patch, left : left + patch].reshape(-1))
    patches = np.array(rows)
    mean = patches.mean(0)
    covariance = np.cov(patches, rowvar=False, bias=True)
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order].T
    signs = np.sign(vectors[np.arange(len(vectors)), np.abs(vectors).argmax(1)])
    weight = vectors * signs[:, None] / np.sqrt(np.clip(values, 0, None) + epsilon)[:, None]
    return patches, weight, -weight @ mean


def test_patches_are_the_windows_in_weight_order() -> None:
    patches = patches_of(torch.from_numpy(IMAGES), 2, 2)
    want, _, _ = numpy_reference(IMAGES, 2, 2, 1e-3)
    np.testing.assert_array_equal(patches.numpy(), want)
    assert patches.shape == (6, 4)


# 3x3 patches need more than IMAGES' few windows for a covariance of full rank (with a
# zero eigenvalue twice over, the eigenvectors are any basis of that space)
RANDOM_IMAGES = np.random.default_rng(1).random((6, 1, 5, 5))


@pytest.mark.parametrize(
    ("images", "patch", "stride"),
    [(IMAGES, 2, 2), (IMAGES, 2, 1), (RANDOM_IMAGES, 3, 1)],
    ids=["2x2-stride-2", "2x2-stride-1", "3x3-stride-1"],
)
def test_filters_match_numpy_eigendecomposition(images, patch: int, stride: int) -> None:
    epsilon = 1e-3
    patches, want_weight, want_bias = numpy_reference(images, patch, stride, epsilon)
    weight, bias = whitening_filters(torch.from_numpy(patches), epsilon)
    np.testing.assert_allclose(weight.numpy(), want_weight, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bias.numpy(), want_bias, rtol=1e-5, atol=1e-5)


def test_the_fitted_layer_whitens_its_training_patches() -> None:
    rng = np.random.default_rng(0)
    # correlated pixels (a smooth image plus noise), so whitening has work to do
    base = rng.random((64, 1, 4, 4)).repeat(2, axis=2).repeat(2, axis=3)
    images = torch.from_numpy(base + 0.05 * rng.standard_normal(base.shape)).float()
    network = build_network(parse_spec("whiten(2), gap, dense(3)"), (1, 8, 8), 3)
    assert fit_whitening(network, images) == 1
    layer = network.blocks["patch_whitening"][0]
    with torch.no_grad():
        out = layer(images)  # (64, 8, 4, 4): 4 directions, then their negatives
    positive = out[:, :4].permute(0, 2, 3, 1).reshape(-1, 4).double().numpy()
    np.testing.assert_allclose(positive.mean(0), 0, atol=1e-5)
    covariance = np.cov(positive, rowvar=False, bias=True)
    patches = patches_of(images, 2, 2).double().numpy()
    values = np.linalg.eigvalsh(np.cov(patches, rowvar=False, bias=True))[::-1]
    np.testing.assert_allclose(covariance, np.diag(values / (values + 5e-4)), atol=1e-4)
    torch.testing.assert_close(out[:, 4:], -out[:, :4])


def test_shapes_params_and_flops_by_hand() -> None:
    layer = Whiten(2)
    assert layer.output_shape((1, 28, 28)) == (8, 14, 14)  # 2 x 1 x 2 x 2 channels
    assert layer.params((1, 28, 28)) == 4 * 8 + 8
    assert layer.flops((1, 28, 28)) == 2 * 8 * 14 * 14 * 4
    overlapping = Whiten(3, stride=1)
    assert overlapping.output_shape((3, 10, 10)) == (54, 8, 8)  # 2 x 3 x 3 x 3
    assert overlapping.params((3, 10, 10)) == 27 * 54 + 54
    assert overlapping.flops((3, 10, 10)) == 2 * 54 * 8 * 8 * 27
    network = build_network(parse_spec("whiten(3, stride=1), gap, dense(10)"), (3, 10, 10), 10)
    assert count_params(network.blocks["patch_whitening"]) == (0, 27 * 54 + 54)


def test_summary_line_counts_it_as_non_trainable() -> None:
    spec = parse_spec("whiten(2, relu), conv(16, 3, same), gap, dense(10, softmax)")
    summary = summarize(build_network(spec, (1, 28, 28), 10))
    row = summary.rows[0]
    assert (row.name, row.keras_type, row.output_shape, row.params) == (
        "patch_whitening", "PatchWhitening", (8, 14, 14), 40,
    )  # fmt: skip
    assert summary.non_trainable == 40
    text = summary.format(explain=True)
    assert "patch_whitening (PatchWhitening)" in text and "(None, 14, 14, 8)" in text
    assert "never trained" in text


def test_text_form_round_trips() -> None:
    spec = parse_spec("whitening(2, relu, epsilon=0.01), gap, dense(10)")
    assert spec.layers[0] == Whiten(2, activation="relu", epsilon=0.01)
    assert parse_spec(spec.to_text()).layers == spec.layers


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("whiten(5), gap, dense(10)", "does not fit a 4x4 input"),
        ("whiten(2, epsilon=0), gap, dense(10)", "epsilon must be a positive number"),
        ("whiten(0), gap, dense(10)", "patch must be a positive integer"),
    ],
)
def test_bad_layers_are_one_line(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec(text).check_fits((1, 4, 4))


def test_a_run_fits_the_filters_keeps_them_frozen_and_saves_them(tiny_dataset, tmp_path) -> None:
    spec = "whiten(2, relu), conv(8, 3, same, activation=none), batchnorm(relu), gap, dense(3)"
    run = train(
        spec, config=TrainConfig(precision="fp32", epochs=2, batch_size=32, lr=1e-2),
        runs_dir=tmp_path, name="w", dataset=tiny_dataset,
    )  # fmt: skip
    fresh = build_network(parse_spec(spec), tiny_dataset.input_shape, 3)
    fit_whitening(fresh, tiny_dataset.train_images)
    saved = run.load_network().blocks["patch_whitening"][0]
    want = fresh.blocks["patch_whitening"][0]
    torch.testing.assert_close(saved.weight, want.weight)  # fitted once, never trained
    torch.testing.assert_close(saved.bias, want.bias)


def test_onnx_export_equals_pytorch(tiny_dataset, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from convlens.export import export_onnx

    run = train(
        "whiten(2, relu), conv(4, 3, same, relu), maxpool(2), flatten, dense(3, softmax)",
        config=TrainConfig(precision="fp32", epochs=1), runs_dir=tmp_path, name="w",
        dataset=tiny_dataset,
    )  # fmt: skip
    export_onnx(run, tmp_path / "m.onnx")
    images = tiny_dataset.test_images[:8].astype(np.float32) / 255
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    probabilities = session.run(None, {"images": images})[0]
    with torch.no_grad():
        want = run.load_network()(torch.from_numpy(images)).softmax(-1).numpy()
    np.testing.assert_allclose(probabilities, want, atol=1e-5)
