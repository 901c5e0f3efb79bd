"""trace(): every layer's output by name, the single path every view reads from."""

from __future__ import annotations

import pytest
import torch

from convlens.errors import SpecError
from convlens.models import resolve_model
from convlens.models.network import build_network


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return build_network(resolve_model("cnn"), (1, 28, 28), 10).eval()


def test_trace_names_and_shapes(cnn) -> None:
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        outputs = cnn.trace(x)
    assert list(outputs) == cnn.names
    assert [tuple(t.shape[1:]) for t in outputs.values()] == [tuple(s) for s in cnn.shapes]
    assert outputs["conv2d"].shape == (2, 64, 26, 26)
    assert outputs["max_pooling2d_1"].shape == (2, 64, 5, 5)


def test_last_entry_is_probabilities_and_matches_forward(cnn) -> None:
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        probabilities = cnn.trace(x)["dense_1"]
        logits = cnn(x)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(3))
    torch.testing.assert_close(probabilities, logits.softmax(dim=1))


def test_conv_outputs_are_after_relu(cnn) -> None:
    with torch.no_grad():
        outputs = cnn.trace(torch.rand(1, 1, 28, 28), layers=["conv2d"])
    assert list(outputs) == ["conv2d"]
    assert outputs["conv2d"].min() >= 0


def test_pooling_output_is_the_max_of_the_conv_output(cnn) -> None:
    with torch.no_grad():
        outputs = cnn.trace(torch.rand(1, 1, 28, 28), layers=["conv2d", "max_pooling2d"])
    expected = torch.nn.functional.max_pool2d(outputs["conv2d"], 2)
    torch.testing.assert_close(outputs["max_pooling2d"], expected)


def test_unknown_layer_lists_the_layers(cnn) -> None:
    with pytest.raises(SpecError, match=r"no layer named 'conv9'.*conv2d, max_pooling2d"):
        cnn.trace(torch.rand(1, 1, 28, 28), layers=["conv9"])


def test_trace_keeps_gradients_when_asked(cnn) -> None:
    x = torch.rand(1, 1, 28, 28, requires_grad=True)
    outputs = cnn.trace(x)
    outputs["dense_1"][0, 3].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_forward_pools_before_relu_with_the_same_result(cnn) -> None:
    """forward() runs conv -> maxpool -> relu (cheaper); trace() keeps the lesson's order."""
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(cnn(x).softmax(dim=1), cnn.trace(x)["dense_1"])
    assert len(cnn._plan) == len(cnn.names) - 2  # two conv+pool pairs, each one step


def test_forward_pools_before_batchnorm_activation_with_the_same_result() -> None:
    """batchnorm(relu) -> maxpool runs as batchnorm -> maxpool -> relu in forward()."""
    torch.manual_seed(0)
    spec = resolve_model(
        "conv(8, 3, activation=none), batchnorm(relu), maxpool(2), flatten, dense(10, softmax)"
    )
    network = build_network(spec, (1, 12, 12), 10).eval()
    with torch.no_grad():
        network.blocks["batch_normalization"][0].weight.uniform_(-1, 1)  # some negative scales
        x = torch.rand(4, 1, 12, 12)
        assert torch.equal(network(x).softmax(dim=1), network.trace(x)["dense"])
    assert len(network._plan) == len(network.names) - 1
