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


def test_a_gmp_head_answers_as_the_eager_network(engine):
    """fast with gmp in place of gap (torch's TorchScript exporter writes it as a MaxPool
    over the whole 3x3 map: the engine's graph is for the network's one input size)."""
    from convlens.models.spec import parse_spec

    text = PRESETS["fast"].spec.to_text().replace(", gap, ", ", gmp, ")
    torch.manual_seed(0)
    network = with_statistics(build_network(parse_spec(text), (1, 28, 28), 10))
    for batch in (1, 17):
        assert_answers_as_eager(network, torch.rand(batch, 1, 28, 28), engine)
    network = network.to(memory_format=torch.channels_last)
    x = torch.rand(5, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    assert_answers_as_eager(network, x, engine)


def test_trained_weights_of_a_run_answer_as_eager(tiny_runs, tiny_idx_dir, tmp_path, engine):
    from convlens.runs import Run

    runs = tiny_runs(tmp_path / "runs", tiny_idx_dir, {"bn": BN_SPEC})
    network = Run.open(runs / "bn").network()
    assert_answers_as_eager(network, torch.rand(33, *network.input_shape), engine)


@pytest.mark.parametrize("name", ["lesson-trained", "functional", "strided", "logits", "globalmax"])
def test_imported_keras_models_answer_as_eager(name, engine):
    from convlens.interop import read_model, to_network

    network = to_network(read_model(FIXTURES / f"{name}.keras"))
    with np.load(FIXTURES / "outputs.npz", allow_pickle=False) as data:
        images = torch.from_numpy(data["images"][:, None].astype(np.float32) / 255)
    x = torch.cat([images, torch.rand(3, *network.input_shape)])  # 11 images, an odd batch
    assert_answers_as_eager(network, x, engine)


def _stepped(optimizer_kind):
    def step(network, x):
        parameters = network.parameters()
        if optimizer_kind == "sgd":
            optimizer = torch.optim.SGD(parameters, lr=0.05)
        elif optimizer_kind == "adam-fused":  # what training uses: no version bump of its own
            optimizer = torch.optim.Adam(parameters, lr=1e-2, fused=True)
        elif optimizer_kind == "adam-foreach":
            optimizer = torch.optim.Adam(parameters, lr=1e-2, foreach=True)
        else:  # torch's own choice: were it ever fused, the step hook must still see it
            optimizer = torch.optim.Adam(parameters, lr=1e-2)
        network.zero_grad()
        network(x).square().mean().backward()
        optimizer.step()

    return step


def _load_state_dict(network, x):
    other = build_network(network.spec, network.input_shape, network.num_classes)
    network.load_state_dict(other.state_dict())


def _load_state_dict_assign(network, x):
    other = build_network(network.spec, network.input_shape, network.num_classes)
    network.load_state_dict(other.state_dict(), assign=True)


def _in_place_under_no_grad(network, x):  # a notebook's edit of one kernel
    with torch.no_grad():
        network.blocks["conv2d"][0].weight.mul_(-1.5)


def _in_place_copy(network, x):
    with torch.no_grad():
        bias = network.blocks["dense_1"][0].bias
        bias.copy_(torch.linspace(-1, 1, bias.numel()))


def _new_parameter(network, x):  # a parameter replaced by assignment
    conv = network.blocks["conv2d"][0]
    conv.weight = torch.nn.Parameter(torch.randn_like(conv.weight) * 0.2)


def _assigned_data(network, x):  # new storage behind an old parameter
    dense = network.blocks["dense_1"][0]
    dense.weight.data = torch.randn_like(dense.weight) * 0.2


def _through_bfloat16(network, x):  # .to(bf16) and back: the weights are rounded
    network.to(torch.bfloat16)
    assert inference.engine_for(network, x) is network  # bf16 runs the network itself
    network.float()


WEIGHT_CHANGES = {
    "sgd-step": _stepped("sgd"),
    "fused-adam-step": _stepped("adam-fused"),
    "foreach-adam-step": _stepped("adam-foreach"),
    "default-adam-step": _stepped("adam-default"),
    "load_state_dict": _load_state_dict,
    "load_state_dict-assign": _load_state_dict_assign,
    "in-place-under-no-grad": _in_place_under_no_grad,
    "in-place-copy": _in_place_copy,
    "new-parameter": _new_parameter,
    "assigned-data": _assigned_data,
    "through-bfloat16": _through_bfloat16,
}


@pytest.mark.parametrize("change", sorted(WEIGHT_CHANGES))
def test_every_weight_change_is_seen(change, engine):
    """After each way a user or training changes the weights, the next answer (for one
    image, which has its own ONNX session, and for a batch) is the new weights'."""
    torch.manual_seed(1)
    network = build_network(PRESETS["cnn-small"].spec, (1, 28, 28), 10).eval()
    one, batch = torch.rand(1, 1, 28, 28), torch.rand(4, 1, 28, 28)
    for _ in range(2):  # the engine is built and ready
        before = [inference.logits(network, one), inference.probabilities(network, batch)]
    assert inference.engine_name(network) == engine
    WEIGHT_CHANGES[change](network, batch)
    network.eval()
    after = [inference.logits(network, one), inference.probabilities(network, batch)]
    expected = [eager_logits(network, one), eager_logits(network, batch).softmax(-1)]
    assert (after[0] - before[0]).abs().max() > 1e-4  # the change mattered
    for got, wanted in zip(after, expected, strict=True):
        torch.testing.assert_close(got, wanted, atol=1e-5, rtol=0)
    for _ in range(2):  # and once rebuilt, the engine answers for the new weights
        torch.testing.assert_close(inference.logits(network, one), expected[0], atol=1e-5, rtol=0)
    assert inference.engine_name(network) == engine


def test_a_write_through_data_needs_forget(engine):
    """``parameter.data.mul_()`` changes no signal torch keeps: forget() says so."""
    torch.manual_seed(1)
    network = build_network(PRESETS["cnn"].spec, (1, 28, 28), 10).eval()
    x = torch.rand(4, 1, 28, 28)
    for _ in range(2):
        inference.logits(network, x)
    with torch.no_grad():
        next(network.parameters()).data.mul_(3)  # behind torch's back
    inference.forget(network)
    torch.testing.assert_close(
        inference.logits(network, x), eager_logits(network, x), atol=1e-5, rtol=0
    )


def test_another_network_being_built_keeps_the_engine(engine):
    """Registering modules anywhere (the web loading another run, a training building
    its network) makes the watch list the tensors again, not rebuild the engine."""
    network = build_network(PRESETS["cnn"].spec, (1, 28, 28), 10).eval()
    x = torch.rand(2, 1, 28, 28)
    for _ in range(2):
        inference.logits(network, x)
    built = inference.engine_for(network, x)
    build_network(PRESETS["cnn-bn"].spec, (1, 28, 28), 10)
    assert inference.engine_for(network, x) is built
    torch.testing.assert_close(
        inference.logits(network, x), eager_logits(network, x), atol=1e-5, rtol=0
    )


def test_a_submodule_in_training_mode_runs_the_network_itself(engine):
    """A dropout or batchnorm switched to training (the root still in eval) changes what
    the network computes: the engine steps aside until it is back in eval mode."""
    torch.manual_seed(3)
    network = with_statistics(build_network(PRESETS["cnn-bn"].spec, (1, 28, 28), 10))
    x = torch.rand(5, 1, 28, 28)
    for _ in range(2):
        inference.logits(network, x)
    built = inference.engine_for(network, x)
    network.blocks["dropout"].train()
    assert inference.engine_for(network, x) is network
    network.blocks["dropout"].eval()
    assert inference.engine_for(network, x) is built  # nothing else changed
    norm = next(m for m in network.modules() if isinstance(m, torch.nn.BatchNorm2d))
    norm.train()
    assert inference.engine_for(network, x) is network
    inference.logits(network, x)  # batch statistics: the running ones move
    norm.eval()
    torch.testing.assert_close(
        inference.logits(network, x), eager_logits(network, x), atol=1e-5, rtol=0
    )


def test_one_image_from_two_threads_at_once(engine):
    """The one-image session's bound buffers serve one caller at a time; a second
    thread meanwhile takes the plain path. Every answer is its own image's."""
    import threading

    torch.manual_seed(4)
    network = build_network(PRESETS["cnn"].spec, (1, 28, 28), 10).eval()
    images = torch.rand(8, 1, 1, 28, 28)
    expected = [eager_logits(network, image) for image in images]
    for _ in range(2):
        inference.logits(network, images[0])
    wrong = []

    def ask(offset: int) -> None:
        for turn in range(60):
            k = (turn + offset) % len(images)
            got = inference.logits(network, images[k])
            if (got - expected[k]).abs().max() > 1e-5:
                wrong.append(k)

    threads = [threading.Thread(target=ask, args=(offset,)) for offset in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not wrong


@pytest.mark.parametrize("idle", [1, 2])
def test_one_image_runs_on_the_idle_cores_and_answers_as_eager(idle, monkeypatch):
    """One image on one thread while another process keeps a core busy, on two while
    both are idle (never more than the batch session's threads): the same answer."""
    pytest.importorskip("onnxruntime")
    from convlens.idle_cores import IdleCores

    monkeypatch.setattr(inference, "EXPORT_AFTER_IMAGES", 1)
    monkeypatch.setattr(IdleCores, "count", lambda self: idle)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(7)
        network = with_statistics(build_network(PRESETS["cnn-bn"].spec, (1, 28, 28), 10))
        x = torch.rand(1, 1, 28, 28)
        assert_answers_as_eager(network, x, "onnxruntime")
        forward = inference.engine_for(network, x)
        assert forward.one_image_threads() == idle
        session = forward.one_image().session
        assert session.get_session_options().intra_op_num_threads == idle
        assert (session is forward.session) == (idle == 2)  # two: the batch session itself
        torch.set_num_threads(1)  # --threads 1: one image never takes a second thread
        assert inference.engine_for(network, x).one_image_threads() == 1
    finally:
        torch.set_num_threads(threads)


def test_pixels_are_answered_as_their_float_images(engine):
    """uint8 pixels scaled into the bound input: the same answer as the float path."""
    torch.manual_seed(6)
    network = build_network(PRESETS["cnn"].spec, (1, 28, 28), 10).eval()
    pixels = np.random.default_rng(0).integers(0, 256, (5, 1, 28, 28), dtype=np.uint8)
    x = torch.from_numpy(pixels).float() / 255
    for _ in range(2):
        inference.logits(network, x[:1])
    expected = eager_logits(network, x).softmax(-1).numpy()
    for start, stop in ((0, 1), (3, 4), (0, 5)):  # one image, another, a batch
        got = inference.pixel_probabilities(network, pixels[start:stop])
        assert got.dtype == np.float32 and got.shape == (stop - start, 10)
        np.testing.assert_allclose(got, expected[start:stop], atol=1e-5, rtol=0)
    assert inference.engine_name(network) == engine


def test_an_input_that_requires_grad_is_answered(engine):
    network = build_network(PRESETS["cnn-small"].spec, (1, 28, 28), 10).eval()
    x = torch.rand(1, 1, 28, 28, requires_grad=True)
    for _ in range(2):
        got = inference.probabilities(network, x)
    assert not got.requires_grad
    torch.testing.assert_close(got, eager_logits(network, x).softmax(-1), atol=1e-5, rtol=0)


def test_on_cpu_in_eval_converts_only_when_needed(engine, monkeypatch):
    torch.manual_seed(5)
    network = build_network(PRESETS["cnn-bn"].spec, (1, 28, 28), 10)  # training mode
    assert inference.on_cpu_in_eval(network) is network and not network.training
    x = torch.rand(1, 1, 28, 28)
    for _ in range(2):
        inference.probabilities(network, x)
    calls = []
    real_to = torch.nn.Module.to
    monkeypatch.setattr(
        torch.nn.Module, "to", lambda m, *a, **k: calls.append(a) or real_to(m, *a, **k)
    )
    assert inference.on_cpu_in_eval(network, fp32=True) is network
    assert calls == []  # the engine is ready for it as it is: no walk over the modules
    network.blocks["dense"].train()  # a Sequential: its flag changes nothing computed
    assert inference.on_cpu_in_eval(network) is network and calls == []
    network.blocks["dropout"].train()
    inference.on_cpu_in_eval(network)
    assert calls and not any(m.training for m in network.modules())
    network.to(torch.bfloat16)
    assert (
        inference.on_cpu_in_eval(network, fp32=True).blocks["dense"][0].weight.dtype
        == torch.float32
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


@pytest.mark.parametrize(
    ("shape", "installed", "expected"),
    [
        ((1, 28, 28), True, 512),  # ONNX Runtime's batch of Fashion-MNIST images
        ((3, 32, 32), True, 130),  # as many numbers an image as 130 of them hold
        ((3, 224, 224), True, 128),  # a photo's size: never fewer than the caller's batch
        ((1, 28, 28), False, 128),  # no onnx extra: the channels_last copy's batch
    ],
)
def test_a_pass_takes_onnx_runtimes_batch_where_it_answers(shape, installed, expected, monkeypatch):
    monkeypatch.setattr(inference, "onnx_installed", lambda: installed)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    network = build_network(PRESETS["cnn"].spec, shape, 10)
    assert inference.pass_batch(network, shape, 128) == expected


def test_on_one_thread_a_pass_keeps_the_callers_batch(monkeypatch):
    monkeypatch.setattr(inference, "onnx_installed", lambda: True)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    network = build_network(PRESETS["cnn"].spec, (1, 28, 28), 10)
    assert inference.pass_batch(network, (1, 28, 28), 128) == 128


def test_a_module_that_does_not_export_keeps_the_callers_batch(monkeypatch):
    monkeypatch.setattr(inference, "onnx_installed", lambda: True)
    assert inference.pass_batch(torch.nn.Flatten(), (1, 28, 28), 128) == 128


def test_onnx_installed_matches_whether_onnxruntime_imports():
    from convlens.models import onnx_runtime

    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401

        importable = True
    except ImportError:
        importable = False
    assert onnx_runtime.onnx_installed() is importable


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


@pytest.mark.parametrize(("name", "exports"), [("cnn", 1), ("cnn-bn", 3)])
def test_new_weights_reuse_the_exported_graph_unless_it_folded_them(name, exports, monkeypatch):
    """After a training step the graph is the same: the new weights are swapped into it
    (one export for cnn over three sets of weights) and answer as the eager network;
    cnn-bn's export folds batchnorm into its convolutions, so it is exported each time."""
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(inference, "EXPORT_AFTER_IMAGES", 1)
    made = []
    export = inference._export_onnx
    monkeypatch.setattr(inference, "_export_onnx", lambda n, x: made.append(1) or export(n, x))
    torch.manual_seed(3)
    network = with_statistics(build_network(PRESETS[name].spec, (1, 28, 28), 10))
    optimizer = torch.optim.SGD(network.parameters(), lr=1e-3)
    x = torch.rand(16, 1, 28, 28)
    answers = []
    for _ in range(3):
        assert_answers_as_eager(network, x, "onnxruntime")
        answers.append(inference.logits(network, x))
        network.train()
        optimizer.zero_grad()
        network(x).logsumexp(-1).mean().backward()
        optimizer.step()
        network.eval()
    assert len(made) == exports
    assert (answers[1] - answers[0]).abs().max() > 1e-4  # the steps mattered
