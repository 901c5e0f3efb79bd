"""Options that make no sense are refused up front, with the valid range."""

from __future__ import annotations

import math

import pytest

from convlens.errors import OptionError
from convlens.recipe import TrainConfig


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, "epochs 0 is not valid; it must be >= 1"),
        ({"epochs": -3}, "epochs -3"),
        ({"batch_size": 0}, "batch size 0"),
        ({"lr": math.nan}, "learning rate nan"),
        ({"lr": -0.1}, "learning rate -0.1"),
        ({"lr": math.inf}, "learning rate inf"),
        ({"stop_at_accuracy": 150}, "stop-at-accuracy 150"),
        ({"stop_at_accuracy": 0}, "stop-at-accuracy 0"),
        ({"precision": "fp8"}, "precision 'fp8' is not valid; choose one of auto, fp32, bf16"),
        ({"optimizer": "lbfgs"}, "optimizer 'lbfgs'"),
        ({"train_subset": 0}, "train subset 0"),
        ({"epoch_images": 0}, "epoch images 0 is not valid; it must be >= 1"),
        ({"device": "tpu"}, "device 'tpu'"),
        ({"label_smoothing": 1.0}, "label smoothing 1.0"),
        ({"tta_flip": True}, "add --augment or drop --tta-flip"),
        ({"ema": 1.0}, "ema decay 1.0 is not valid; it must be [0, 1) (0 is off)"),
        ({"ema": -0.5}, "ema decay -0.5"),
        ({"ema": math.nan}, "ema decay nan"),
    ],
)
def test_impossible_options_are_refused(changes, message) -> None:
    with pytest.raises(OptionError) as err:
        TrainConfig(**changes)
    assert message in str(err.value)
    assert err.value.field == next(iter(changes))  # what a form marks: the field at fault


#: A value out of range for each field TrainConfig judges alone (tta_flip and tta_shift
#: are judged with augment, above).
OUT_OF_RANGE = {
    "epochs": 0, "batch_size": 0, "lr": 0.0, "optimizer": "lbfgs", "weight_decay": 1.0,
    "momentum": 1.0, "norm_lr_scale": 0.0, "schedule": "step", "warmup": 1.0,
    "anneal": "step", "final_lr_scale": 2.0, "label_smoothing": -0.1, "flip": "up",
    "tta_shift": True, "ema": 1.0, "lookahead": -1, "lookahead_alpha": 0.0,
    "epoch_images": 0, "resize": "20:1", "precision": "fp8", "keep": "first",
    "device": "tpu", "threads": 0, "stop_at_accuracy": 0, "train_subset": 0, "test_subset": 0,
}  # fmt: skip


@pytest.mark.parametrize(("name", "value"), OUT_OF_RANGE.items())
def test_every_refusal_names_its_field(name, value) -> None:
    with pytest.raises(OptionError) as err:
        TrainConfig(**{name: value})
    assert err.value.field == name


def test_percent_accuracy_targets_are_read_as_percent() -> None:
    assert TrainConfig(stop_at_accuracy=91).stop_at_accuracy == pytest.approx(0.91)
    assert TrainConfig(stop_at_accuracy=0.95).stop_at_accuracy == pytest.approx(0.95)


def test_defaults_are_the_lessons_recipe() -> None:
    config = TrainConfig()
    assert (config.epochs, config.batch_size, config.lr, config.optimizer) == (5, 32, 1e-3, "adam")


def test_round_trip_and_unknown_keys() -> None:
    config = TrainConfig(epochs=3, keep="best")
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(OptionError, match="unknown training option"):
        TrainConfig.from_dict({"epochz": 3})


def test_every_training_option_comes_from_a_field_and_quotes_its_default() -> None:
    """The CLI restates nothing: one option per TrainConfig field, its default from it."""
    import argparse
    import dataclasses

    from convlens.cli.options import add_train_options

    parser = argparse.ArgumentParser()
    add_train_options(parser)
    flags = {a.dest: a for a in parser._actions if a.option_strings}
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert fields <= set(flags) and set(flags) - fields == {"help", "preset"}
    assert all(flags[name].default is None for name in fields)  # the config's own applies
    assert "(default 5)" in flags["epochs"].help and "(default 32)" in flags["batch_size"].help
    assert flags["optimizer"].choices == ("adam", "adamw", "sgd")
