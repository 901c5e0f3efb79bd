"""The fast inference path answers as the eager network does, to 1e-5, wherever it runs.

The reference answer is the eager fp32 ``Network`` (what training computes), in eval mode.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from convlens.models import inference
from convlens.models.network import build_network
from convlens.models.registry import PRESETS

FIXTURES = Path(__file__).parents[1] / "interop" / "fixtures" / "keras"
# cnn-bn's kinds of layer, sized for the tiny three-class data set
BN_SPEC = (
    "conv(8, 3, same, activation=none), batchnorm(relu), maxpool(2), "
    "flatten, dropout(0.3), dense(16, relu), dense(3, softmax)"
)


def eager_logits(network: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return network(x).float()


def with_statistics(network: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Batchnorm statistics and affine weights far from their initial 0/1, so that
    folding them into the convolution is tested with values that matter."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.3)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.2)
    return network.eval()


ENGINES = ["onnxruntime", "channels_last"]


@pytest.fixture(params=ENGINES)
def engine(request, monkeypatch):
    """Which engine the test wants: ONNX Runtime from the first call (skipped without the
    onnx extra), or the channels_last copy (as if the extra were not installed)."""
    if request.param == "onnxruntime":
        pytest.importorskip("onnxruntime")
        monkeypatch.setattr(inference, "EXPORT_AFTER_IMAGES", 1)
    else:
        monkeypatch.setattr(inference, "_export_onnx", lambda network, x: None)
    return request.param


def assert_answers_as_eager(network, x, engine):
    expected = eager_logits(network, x)
    got = inference.logits(network, x)
    assert inference.engine_name(network) == engine
    assert got.shape == expected.shape and got.dtype == torch.float32
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        inference.probabilities(network, x), expected.softmax(-1), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_answers_as_the_eager_network(name, engine):
    """Batches of 1, 3 and 17, NCHW and channels_last networks and inputs."""
    torch.manual_seed(0)
    network = with_statistics(build_network(PRESETS[name].spec, (1, 28, 28), 10))
    for batch in (1, 3, 17):
        assert_answers_as_eager(network, torch.rand(batch, 1, 28, 28), engine)
    network = network.to(memory_format=torch.channels_last)
    for batch in (1, 17):
        x = torch.rand(batch, 1, 28, 28).contiguous(memory_format=torch.channels_last)
        assert_answers_as_eager(network, x, engine)


def test_trained_weights_of_a_run_answer_as_eager(tiny_runs, tiny_idx_dir, tmp_path, engine):
    from convlens.runs import Run

    runs = tiny_runs(tmp_path / "runs", tiny_idx_dir, {"bn": BN_SPEC})
    network = Run.open(runs / "bn").network()
    assert_answers_as_eager(network, torch.rand(33, *network.input_shape), engine)


@pytest.mark.parametrize("name", ["lesson-trained", "functional", "strided", "logits"])
def test_imported_keras_models_answer_as_eager(name, engine):
    from convlens.interop import read_model, to_network

    network = to_network(read_model(FIXTURES / f"{name}.keras"))
    with np.load(FIXTURES / "outputs.npz", allow_pickle=False) as data:
        images = torch.from_numpy(data["images"][:, None].astype(np.float32) / 255)
    x = torch.cat([images, torch.rand(3, *network.input_shape)])  # 11 images, an odd batch
    assert_answers_as_eager(network, x, engine)


def test_changed_weights_build_the_engine_again(engine):
    """An optimizer step and load_state_dict both change what the engine answers."""
    torch.manual_seed(1)
    network = build_network(PRESETS["cnn"].spec, (1, 28, 28), 10).eval()
    x = torch.rand(4, 1, 28, 28)
    before = inference.logits(network, x)
    assert inference.engine_name(network) == engine

    # fused Adam (what training uses) updates without raising the version counters
    for optimizer in (
        torch.optim.SGD(network.parameters(), lr=0.05),
        torch.optim.Adam(network.parameters(), lr=1e-3, fused=True),
    ):
        network.zero_grad()
        network(x).sum().backward()
        optimizer.step()
        stepped = inference.logits(network, x)
        assert inference.engine_name(network) == engine
        assert (stepped - before).abs().max() > 1e-3
        torch.testing.assert_close(stepped, eager_logits(network, x), atol=1e-5, rtol=0)
        before = stepped

    other = build_network(PRESETS["cnn"].spec, (1, 28, 28), 10)
    network.load_state_dict(other.state_dict())
    torch.testing.assert_close(
        inference.logits(network, x), eager_logits(other.eval(), x), atol=1e-5, rtol=0
    )
    with torch.no_grad():
        next(network.parameters()).data.mul_(3)  # behind torch's back: forget says so
    inference.forget(network)
    torch.testing.assert_close(
        inference.logits(network, x), eager_logits(network, x), atol=1e-5, rtol=0
    )


def test_training_mode_and_other_precisions_run_the_network_itself():
    torch.manual_seed(2)
    network = build_network(PRESETS["cnn-bn"].spec, (1, 28, 28), 10)
    x = torch.rand(5, 1, 28, 28)
    network.train()
    assert inference.engine_for(network, x) is network  # dropout and batch statistics
    network.eval()
    assert inference.engine_for(network, x.double()) is network
    assert inference.engine_for(network.to(torch.bfloat16), x) is network
    bf16 = inference.logits(network, x.to(torch.bfloat16))
    assert bf16.dtype == torch.float32  # the answer is float32 whatever ran


def test_a_module_that_is_not_a_network_runs_itself():
    class Branchy(torch.nn.Module):
        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow: an export would keep one branch
                return x.flatten(1)[:, :3]
            return -x.flatten(1)[:, :3]

    module = Branchy().eval()
    x = torch.rand(2, 1, 4, 4)
    assert inference.engine_for(module, x) is module
    torch.testing.assert_close(inference.logits(module, -x), x.flatten(1)[:, :3])


def test_without_onnxruntime_the_channels_last_copy_answers(monkeypatch):
    """The onnx extra missing: the import fails, and the fallback answers, equal to eager."""
    import builtins

    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name.split(".")[0] in ("onnx", "onnxruntime"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    monkeypatch.setattr(inference, "EXPORT_AFTER_IMAGES", 1)
    network = build_network(PRESETS["cnn"].spec, (1, 28, 28), 10).eval()
    for _ in range(3):  # the second call would export if it could
        assert_answers_as_eager(network, torch.rand(4, 1, 28, 28), "channels_last")


def test_an_onnx_engine_that_answers_otherwise_is_not_used(monkeypatch):
    pytest.importorskip("onnxruntime")
    real_session = inference._onnx_session

    def off_by_one(model, threads):  # a broken export or runtime, simulated
        forward = real_session(model, threads)
        return lambda x: forward(x) + 1

    monkeypatch.setattr(inference, "_onnx_session", off_by_one)
    monkeypatch.setattr(inference, "EXPORT_AFTER_IMAGES", 1)
    network = build_network(PRESETS["cnn-small"].spec, (1, 28, 28), 10).eval()
    assert_answers_as_eager(network, torch.rand(3, 1, 28, 28), "channels_last")


def test_a_new_thread_count_gets_its_own_session(monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(inference, "EXPORT_AFTER_IMAGES", 1)
    network = build_network(PRESETS["cnn-small"].spec, (1, 28, 28), 10).eval()
    x = torch.rand(3, 1, 28, 28)
    inference.logits(network, x)
    first = inference.engine_for(network, x)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1 if threads > 1 else 2)
        assert inference.engine_for(network, x) is not first
        assert_answers_as_eager(network, x, "onnxruntime")
    finally:
        torch.set_num_threads(threads)


def test_a_copied_network_computes_with_its_own_weights():
    """``copy.deepcopy`` (a channels_last copy, a frozen one) must not call the original's
    layers: the pooled steps of the forward plan are copied with the network."""
    import copy

    network = build_network(PRESETS["cnn"].spec, (1, 28, 28), 10).eval()
    twin = copy.deepcopy(network)
    with torch.no_grad():
        for parameter in twin.parameters():
            parameter.mul_(2)
    x = torch.rand(2, 1, 28, 28)
    assert (eager_logits(twin, x) - eager_logits(network, x)).abs().max() > 1e-3
    own = {id(module) for module in twin.modules()}
    assert all(id(step.layer) in own for step in twin._plan if hasattr(step, "layer"))
