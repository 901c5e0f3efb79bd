"""The optimizer and schedule fields do what they say: momentum, the batchnorm/bias
group's learning rate and decay, the one-cycle shape; a run with them resumes exactly."""

from __future__ import annotations

import math

import pytest
import torch

from convlens.recipe import TrainConfig
from convlens.train.engine import learning_rate, make_optimizer, train_epoch
from convlens.train.runtime import Runtime
from convlens.train.session import resume, train
from tests.train.test_session import interrupted_run

NET_TEXT = "conv(8, 3, relu), batchnorm, maxpool(2), flatten, dense(16, relu), dense(3, softmax)"


def small_network() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3),
        torch.nn.BatchNorm2d(4),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 6 * 6, 3),
    )


def test_sgd_has_the_configured_nesterov_momentum() -> None:
    optimizer = make_optimizer(small_network().parameters(), TrainConfig(optimizer="sgd"))
    assert optimizer.param_groups[0]["momentum"] == 0.9 and optimizer.param_groups[0]["nesterov"]
    config = TrainConfig(optimizer="sgd", momentum=0.85)
    assert make_optimizer(small_network().parameters(), config).param_groups[0]["momentum"] == 0.85
    plain = make_optimizer(small_network().parameters(), config.replace(momentum=0.0))
    assert plain.param_groups[0]["momentum"] == 0 and not plain.param_groups[0]["nesterov"]


def test_one_group_by_default_so_old_checkpoints_match() -> None:
    optimizer = make_optimizer(small_network().parameters(), TrainConfig(optimizer="adamw"))
    assert len(optimizer.param_groups) == 1 and "lr_scale" not in optimizer.param_groups[0]


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_the_norm_group_steps_at_its_own_lr_and_decay(optimizer: str) -> None:
    """After a step of the one-cycle schedule, group 0 (the conv and dense filters) has
    the schedule's lr and the recipe's decay, group 1 (batchnorm's weights and biases,
    the biases) X times that lr and the decay over X; every parameter is in one group."""
    network = small_network()
    config = TrainConfig(
        optimizer=optimizer, lr=0.05, weight_decay=0.01, norm_lr_scale=8.0,
        schedule="onecycle", epochs=2, batch_size=4, precision="fp32",
    )  # fmt: skip
    opt = make_optimizer(network.parameters(), config)
    images = torch.randint(0, 256, (8, 1, 8, 8), dtype=torch.uint8)
    labels = torch.randint(0, 3, (8,))
    runtime = Runtime(torch.device("cpu"), "fp32", channels_last=False)
    train_epoch(network, opt, images, labels, config, runtime, epoch=1)
    filters, norms = opt.param_groups
    shapes = {tuple(p.shape) for p in filters["params"]}
    assert shapes == {(4, 1, 3, 3), (3, 144)}
    assert {tuple(p.shape) for p in norms["params"]} == {(4,), (3,)}
    assert len(filters["params"]) + len(norms["params"]) == len(list(network.parameters()))
    last = learning_rate(config, 1, 4)  # the second of 2 x 2 steps
    assert filters["lr"] == pytest.approx(last) and norms["lr"] == pytest.approx(8 * last)
    assert filters["weight_decay"] == 0.01 and norms["weight_decay"] == pytest.approx(0.01 / 8)


def test_a_step_moves_the_bias_by_the_scaled_lr() -> None:
    """Plain SGD, no decay: a bias moves by X lr times its gradient, a filter by lr."""
    config = TrainConfig(optimizer="sgd", momentum=0.0, lr=0.1, norm_lr_scale=5.0)
    layer = torch.nn.Linear(2, 1)
    before = [p.detach().clone() for p in layer.parameters()]
    opt = make_optimizer(layer.parameters(), config)
    layer(torch.ones(1, 2)).sum().backward()
    grads = [p.grad.clone() for p in layer.parameters()]
    opt.step()
    weight, bias = (p.detach() for p in layer.parameters())
    torch.testing.assert_close(weight, before[0] - 0.1 * grads[0])
    torch.testing.assert_close(bias, before[1] - 0.5 * grads[1])


def test_the_one_cycle_shape_follows_warmup_anneal_and_final_lr() -> None:
    total = 100
    base = TrainConfig(lr=1.0, schedule="onecycle")
    assert learning_rate(base, 25, total) == pytest.approx(1.0)  # default: 25% warm-up
    short = base.replace(warmup=0.1)
    assert learning_rate(short, 0, total) == pytest.approx(0.1)
    assert learning_rate(short, 5, total) == pytest.approx(0.1 + 0.9 * 0.5)
    assert learning_rate(short, 10, total) == pytest.approx(1.0)
    none = base.replace(warmup=0.0)
    assert learning_rate(none, 0, total) == pytest.approx(1.0)
    # linear to 0: the step after the last would have lr 0; halfway down, half the lr
    linear = short.replace(anneal="linear", final_lr_scale=0.0)
    assert learning_rate(linear, 55, total) == pytest.approx(0.5)
    assert learning_rate(linear, 99, total) == pytest.approx(1 / 90)
    cosine = short.replace(final_lr_scale=0.0)
    assert learning_rate(cosine, 55, total) == pytest.approx(0.5)
    end = 0.5 * (1 + math.cos(math.pi * 89 / 90))
    assert learning_rate(cosine, 99, total) == pytest.approx(end)
    # the default end: lr/1000 plus the last cosine step
    assert learning_rate(base, 99, total) == pytest.approx(
        1e-3 + (1 - 1e-3) * 0.5 * (1 + math.cos(math.pi * 74 / 75))
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("momentum", 1.0), ("norm_lr_scale", 0.0), ("warmup", 1.0), ("final_lr_scale", 2.0),
     ("anneal", "step")],
)  # fmt: skip
def test_bad_values_are_refused_with_the_field_named(field: str, value) -> None:
    from convlens.errors import OptionError

    with pytest.raises(OptionError, match=field.replace("_", " ")):
        TrainConfig(**{field: value})


def test_a_run_with_two_groups_resumes_exactly(tiny_dataset, tmp_path, monkeypatch) -> None:
    config = TrainConfig(
        precision="fp32", batch_size=16, epochs=3, optimizer="sgd", lr=0.05,
        momentum=0.85, weight_decay=5e-4, norm_lr_scale=16.0, schedule="onecycle",
        warmup=0.1, anneal="linear", final_lr_scale=0.0,
    )  # fmt: skip
    straight = train(NET_TEXT, config=config, runs_dir=tmp_path, name="s", dataset=tiny_dataset)
    cut = interrupted_run(NET_TEXT, config, tiny_dataset, tmp_path, at_epoch=2)
    assert cut.run_config.train == config  # the config.json round trip
    monkeypatch.setattr("convlens.data.config.DataConfig.load", lambda self, **_: tiny_dataset)
    resumed = resume(tmp_path / "cut")
    for a, b in zip(resumed.history(), straight.history(), strict=True):
        assert a["train_loss"] == b["train_loss"]
        assert a["test_accuracy"] == b["test_accuracy"]
        assert a["lr"] == b["lr"]
