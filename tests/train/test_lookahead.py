"""Lookahead's slow weights (``--lookahead K --lookahead-alpha A``): the rule against a
hand computation, and that a run trains, saves and resumes them exactly."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from convlens import runs
from convlens.errors import OptionError
from convlens.models.weights import read_tensors
from convlens.recipe import TrainConfig
from convlens.runs import Run
from convlens.train.lookahead import Lookahead
from convlens.train.session import train
from tests.train.test_session import straight_and_resumed

SMALL = "conv(8, 3, same, activation=none), batchnorm(relu), maxpool(2), flatten, dense(3, softmax)"


def test_the_slow_weights_follow_the_rule_by_hand() -> None:
    """SGD on a quadratic, k=3, alpha=0.5: every third step the weights land halfway
    between where the last sync left them and where the three steps took them."""
    w = torch.nn.Parameter(torch.tensor([4.0, -2.0]))
    frozen = torch.nn.Parameter(torch.tensor([7.0]), requires_grad=False)
    holder = torch.nn.Module()
    holder.w, holder.frozen = w, frozen
    lookahead = Lookahead(holder, k=3, alpha=0.5)
    optimizer = torch.optim.SGD([w], lr=0.1)
    slow = torch.tensor([4.0, -2.0])
    fast = slow.clone()
    for step in range(1, 10):
        optimizer.zero_grad()
        (w**2).sum().backward()  # gradient 2w: one step multiplies w by 0.8
        optimizer.step()
        lookahead.update(step)
        fast = fast * 0.8
        if step % 3 == 0:
            slow = slow + 0.5 * (fast - slow)
            fast = slow.clone()
        torch.testing.assert_close(w.detach(), fast)
    # after 9 steps: three syncs, each keeping (1 + 0.8**3) / 2 = 0.756 of the weights
    torch.testing.assert_close(lookahead.slow[0], torch.tensor([4.0, -2.0]) * 0.756**3)
    assert len(lookahead.slow) == 1 and frozen.item() == 7.0  # frozen parameters stay out
    with pytest.raises(ValueError, match="alpha"):
        Lookahead(holder, k=3, alpha=0.0)


def config(**changes) -> TrainConfig:
    return TrainConfig(precision="fp32", batch_size=16, **changes)


def test_a_run_with_lookahead_saves_its_slow_weights(tiny_dataset, tmp_path) -> None:
    plain = train(SMALL, config=config(epochs=1), runs_dir=tmp_path, name="plain",
                  dataset=tiny_dataset)  # fmt: skip
    ahead = train(SMALL, config=config(epochs=1, lookahead=5, lookahead_alpha=0.5),
                  runs_dir=tmp_path, name="ahead", dataset=tiny_dataset)  # fmt: skip
    assert Run.open(ahead.path).run_config.train.lookahead == 5  # config.json round trip
    assert ahead.config["train"]["lookahead_alpha"] == 0.5
    checkpoint, _ = read_tensors(ahead.file(runs.CHECKPOINT))
    trained = [k for k in checkpoint if k.startswith("model/") and "running" not in k]
    slow = sorted((k for k in checkpoint if k.startswith("slow/")), key=lambda k: int(k[5:]))
    assert len(slow) == len([k for k in trained if "num_batches" not in k]) > 0
    # the training differs from the plain run's (the weights were pulled back)
    assert plain.history()[0]["running_loss"] != ahead.history()[0]["running_loss"]
    assert "slow/0" not in read_tensors(plain.file(runs.CHECKPOINT))[0]


def test_resume_restores_the_slow_weights_exactly(tiny_dataset, tmp_path, monkeypatch) -> None:
    # 10 steps an epoch (150 images, batch 16) and k=3: the syncs straddle the epochs
    recipe = config(epochs=3, lookahead=3, lookahead_alpha=0.6)
    straight, resumed = straight_and_resumed(
        SMALL, recipe, tiny_dataset, tmp_path, monkeypatch, at_epoch=2
    )
    want = load_file(straight.file(runs.CHECKPOINT))
    got = load_file(resumed.file(runs.CHECKPOINT))
    assert want.keys() == got.keys()
    for key in want:
        if key.startswith(("model/", "slow/")):
            assert torch.equal(want[key], got[key]), key


@pytest.mark.parametrize(
    ("field", "value"),
    [("lookahead", -1), ("lookahead", 2.5), ("lookahead", True), ("lookahead_alpha", 0.0),
     ("lookahead_alpha", 1.5)],
)  # fmt: skip
def test_bad_lookahead_values_are_one_clear_line(field, value) -> None:
    with pytest.raises(OptionError, match=field.replace("_", " ")):
        TrainConfig(**{field: value})
