"""Named presets: models as data, looked up by name (``resolve_model("cnn")``, ``get_preset``).

A preset is a spec plus, optionally, the training recipe that goes with it (the ``fast``
preset trains differently from the lesson). Presets register themselves with
``@register``; tests iterate over ``PRESETS`` so every preset is built, run forward and
backward, and summarised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convlens.errors import SpecError
from convlens.models.spec import SPEC_SUFFIXES, ModelSpec, load_spec_file, parse_spec


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    spec: ModelSpec
    recipe: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides


PRESETS: dict[str, Preset] = {}


def register(
    name: str, description: str, recipe: dict[str, Any] | None = None
) -> Callable[[Callable[[], str]], Callable[[], str]]:
    """Register a function returning the preset's layers in text form."""

    def decorate(layers_fn: Callable[[], str]) -> Callable[[], str]:
        spec = parse_spec(layers_fn(), name=name)
        PRESETS[name] = Preset(name, description, spec, dict(recipe or {}))
        return layers_fn

    return decorate


@register("dnn", "The lesson's baseline: Flatten, Dense 128 relu, Dense 10 (101,770 params).")
def _dnn() -> str:
    return "flatten, dense(128, relu), dense(10, softmax)"


@register(
    "cnn",
    "The lesson's CNN: two Conv2D 64 3x3 + MaxPool 2x2 blocks, Dense 128, Dense 10 "
    "(243,786 params).",
)
def _cnn() -> str:
    return (
        "conv(64, 3, relu), maxpool(2), conv(64, 3, relu), maxpool(2), "
        "flatten, dense(128, relu), dense(10, softmax)"
    )


@register(
    "cnn-small",
    "The lesson's MNIST-digits exercise: one Conv2D 32 3x3, MaxPool, Dense 128, Dense 10.",
)
def _cnn_small() -> str:
    return "conv(32, 3, relu), maxpool(2), flatten, dense(128, relu), dense(10, softmax)"


@register(
    "cnn-bn",
    "The lesson's CNN with 'same' padding, batchnorm and dropout: a stronger plain CNN.",
)
def _cnn_bn() -> str:
    return (
        "conv(32, 3, same, activation=none), batchnorm(relu), maxpool(2), "
        "conv(64, 3, same, activation=none), batchnorm(relu), maxpool(2), "
        "flatten, dropout(0.3), dense(128, relu), dense(10, softmax)"
    )


@register(
    "quick",
    "91% test in two short epochs: the cnn-bn layers with each max pooling *before* its "
    "batchnorm (a quarter of the normalisation work), 16 filters in the first conv and "
    "no dropout; 45,000 images an epoch at batch 128, one-cycle, batchnorm and biases at "
    "4x the learning rate.",
    recipe={
        "epochs": 2,
        "batch_size": 128,
        "lr": 6e-3,
        "norm_lr_scale": 4.0,
        "schedule": "onecycle",
        "epoch_images": 45_000,
    },
)
def _quick() -> str:
    # Pooling first changes the model (batchnorm can flip signs, so it does not commute
    # with max), but it trains as well, with each step 25-30% cheaper than cnn-bn's
    # (BENCHMARKS.md, section 2). The first conv has 16 filters, not 32: its 28x28 maps
    # are where a step's memory-bound work (pooling, its gradient, that conv's weight
    # gradient) lies, and halving them made each step 0.74-0.79x as long (interleaved, 1
    # thread, Sapphire Rapids). Two epochs are too short for dropout to pay: without it
    # each step is another 0.90x and the test accuracy higher (BENCHMARKS.md, "Session 5").
    # Each epoch draws 45,000 of the 60,000 training images afresh (``epoch_images``):
    # 0.75x the steps. Alone that fell to 91.08% (seed 0; 50,000: 91.43% mean of 3 seeds),
    # and lr 6e-3 with batchnorm weights and biases at 4x it (``norm_lr_scale``) won the
    # points back: 91.47, 91.59, 91.03% (mean 91.36%) against 91.57% with whole epochs.
    # Every cheaper net tried lost more (a stride-2 first conv instead of conv + pooling:
    # 0.78x the step, 91.02%). BENCHMARKS.md, "Session 6".
    return (
        "conv(16, 3, same, activation=none), maxpool(2), batchnorm(relu), "
        "conv(64, 3, same, activation=none), maxpool(2), batchnorm(relu), "
        "flatten, dense(128, relu), dense(10, softmax)"
    )


@register(
    "fast",
    "Our own: a frozen patch-whitening stem and two conv-pool-batchnorm stages at 14x14 "
    "and 7x7, trained with shifts and flips, label smoothing, a one-cycle schedule, and "
    "judged with flips and shifts at test time (see BENCHMARKS.md).",
    recipe={
        "epochs": 20,
        "batch_size": 256,
        "optimizer": "adamw",
        "lr": 4e-3,
        "weight_decay": 0.05,
        "schedule": "onecycle",
        "label_smoothing": 0.1,
        "augment": True,
        "tta_flip": True,
        "tta_shift": True,
    },
)
def _fast() -> str:
    # Nothing computes at 28x28: a frozen 2x2 stride-2 patch whitening (8 channels at
    # 14x14, its filters from the run's training images) replaces session 5's conv(24) +
    # pooling at 28x28, and two airbench-style stages (conv, pool, batchnorm, conv,
    # batchnorm at 64 then 128 filters) replace its two residual blocks: 265,906 params
    # and 15.3 MFLOPs an image against 164,314 and 25.7, yet each step 0.52-0.55x as long
    # (interleaved, 1 thread, Sapphire Rapids: the old step was bound by memory traffic,
    # not FLOPs). Same recipe, seed 0, the mirror and shifted copies: 93.11% after 10
    # epochs (the old net: 93.13%), 93.90% after 18, which cost about what the old net's
    # 10 did (BENCHMARKS.md, "Session 6"). 20 epochs since session 7, whose cheaper step
    # (the small-map weight gradient) made room: on a quiet 2-core Sapphire Rapids, seeds
    # 0-2, 18 epochs gave 93.98/93.64/93.67% (mean 93.76%) in 198-218 s, 20 epochs
    # 94.15/93.83/93.77% (93.92%, better on every seed) in 180-238 s, 22 epochs 93.87%
    # mean in 262-267 s (no better, and less margin under 5 minutes).
    return (
        "whiten(2, relu), "
        "conv(64, 3, same, activation=none), maxpool(2), batchnorm(relu), "
        "conv(64, 3, same, activation=none), batchnorm(relu), "
        "conv(128, 3, same, activation=none), maxpool(2), batchnorm(relu), "
        "conv(128, 3, same, activation=none), batchnorm(relu), gap, dense(10, softmax)"
    )


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise SpecError(f"unknown preset '{name}'; the presets are: {', '.join(PRESETS)}") from None


def recipe_preset(model: str | None, preset: str | None = None) -> str | None:
    """The preset whose training recipe a run of ``model`` starts from, or None for the
    lesson's defaults.

    ``preset`` names one (an unknown name is the one-line error listing them); ``""``
    means none; ``None`` means the model's own when the model is a preset (so ``fast``
    trains with fast's recipe), else none. The CLI (``--preset``) and the web page agree
    through this one rule.
    """
    if preset is None:
        return model.strip() if model and model.strip() in PRESETS else None
    if not preset.strip():
        return None
    return get_preset(preset.strip()).name


def resolve_model(model: str, *, files: bool = True) -> ModelSpec:
    """A preset name, a spec file path, or a text form, to a :class:`ModelSpec`.

    ``files=False`` never reads a file: the web page must not make the server open
    paths it names.
    """
    model = model.strip()
    if model in PRESETS:
        return PRESETS[model].spec
    path = Path(model)
    if files and path.suffix.lower() in SPEC_SUFFIXES:
        return load_spec_file(path)
    if "(" in model or "," in model:
        return parse_spec(model)
    if not files:
        raise SpecError(
            f"unknown model '{model}'; choose a preset ({', '.join(PRESETS)}) or type layers "
            "like 'conv(32, 3, relu), maxpool(2), flatten, dense(10, softmax)'"
        )
    raise SpecError(
        f"unknown model '{model}': not a preset ({', '.join(PRESETS)}), a spec file "
        f"({'/'.join(SPEC_SUFFIXES)}) or a layer list like 'conv(32, 3, relu), maxpool(2), "
        "flatten, dense(10, softmax)'"
    )
