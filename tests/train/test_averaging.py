"""The averaged weights (``--ema``): the average itself, and that a run judges, saves
and resumes it while training the same way."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from convlens import runs
from convlens.models.weights import read_tensors
from convlens.recipe import TrainConfig
from convlens.runs import Run
from convlens.train.averaging import WeightAverage
from convlens.train.session import train
from tests.train.test_session import straight_and_resumed

SMALL = "conv(8, 3, same, activation=none), batchnorm(relu), maxpool(2), flatten, dense(3, softmax)"


def test_the_average_follows_the_formula_step_by_step() -> None:
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    average = WeightAverage(network, decay=0.9)
    expected = [p.detach().clone() for p in network.parameters()]
    for step in range(1, 40):
        with torch.no_grad():
            for p in network.parameters():
                p.add_(torch.randn_like(p))
        network.train()(torch.randn(8, 4))  # moves batchnorm's running statistics
        average.update(step)
        d = min(0.9, (1 + step) / (10 + step))
        trained = [p.detach() for p in network.parameters()]
        expected = [d * e + (1 - d) * p for e, p in zip(expected, trained, strict=True)]
    for mine, want in zip(average.network.parameters(), expected, strict=True):
        torch.testing.assert_close(mine, want)
    # batchnorm's buffers are the trained network's own
    for mine, theirs in zip(average.network.buffers(), network.buffers(), strict=True):
        assert torch.equal(mine, theirs)
    assert not any(p.requires_grad for p in average.network.parameters())
    assert average.decay_at(1) == pytest.approx(2 / 11) and average.decay_at(10**6) == 0.9


def config(**changes) -> TrainConfig:
    return TrainConfig(precision="fp32", batch_size=16, **changes)


def test_a_run_judges_and_saves_the_average_and_trains_as_without_it(
    tiny_dataset, tmp_path
) -> None:
    plain = train(SMALL, config=config(epochs=2), runs_dir=tmp_path, name="plain",
                  dataset=tiny_dataset)  # fmt: skip
    averaged = train(SMALL, config=config(epochs=2, ema=0.9), runs_dir=tmp_path, name="ema",
                     dataset=tiny_dataset)  # fmt: skip
    assert averaged.config["train"]["ema"] == 0.9  # config.json round trip
    assert Run.open(averaged.path).run_config.train.ema == 0.9
    # the trained network steps the same way: its running figures are identical
    for a, b in zip(plain.history(), averaged.history(), strict=True):
        assert a["running_loss"] == b["running_loss"]
    # what is saved is the average, not the trained weights
    saved = load_file(averaged.file(runs.WEIGHTS))
    checkpoint, _ = read_tensors(averaged.file(runs.CHECKPOINT))
    weight = next(k for k in saved if k.endswith("weight"))
    assert torch.equal(saved[weight], checkpoint[f"average/{weight}"])
    assert not torch.equal(saved[weight], checkpoint[f"model/{weight}"])
    # and what is judged: the final figures are the saved weights'
    from convlens.predict import predict_arrays

    probabilities = predict_arrays(averaged.load_network(), tiny_dataset.test_images)
    accuracy = (probabilities.argmax(1) == tiny_dataset.test_labels).mean()
    assert accuracy == pytest.approx(averaged.metrics()["test_accuracy"])
    assert averaged.history()[-1]["test_accuracy"] == pytest.approx(accuracy)


def test_resume_restores_the_average_exactly(tiny_dataset, tmp_path, monkeypatch) -> None:
    recipe = config(epochs=3, ema=0.95)
    straight, resumed = straight_and_resumed(
        SMALL, recipe, tiny_dataset, tmp_path, monkeypatch, at_epoch=3
    )
    want = load_file(straight.file(runs.WEIGHTS))
    got = load_file(resumed.file(runs.WEIGHTS))
    assert want.keys() == got.keys()
    for key in want:
        assert torch.equal(want[key], got[key]), key
    assert resumed.history()[-1]["test_loss"] == straight.history()[-1]["test_loss"]
