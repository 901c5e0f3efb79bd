"""The training recipe as one typed config; its defaults are the lesson's (Keras') defaults.

:func:`plan_training` is the one rule that turns what a user asked for (a model, a
preset, options, model edits) into the spec and recipe that train: the CLI, the web
page, compare and sweeps all go through it, so they cannot disagree.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from convlens.errors import OptionError
from convlens.option_fields import option

if TYPE_CHECKING:
    from convlens.data.dataset import Dataset
    from convlens.models.layers import Shape
    from convlens.models.spec import ModelSpec

PRECISIONS = ("auto", "fp32", "bf16")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "onecycle")
ANNEALS = ("cosine", "linear")
FLIPS = ("random", "alternate")
KEEP = ("last", "best")

#: The fields that say how a model learns, as opposed to where and how long it runs or
#: what is kept: what a preset's recipe sets and what the CLI and the web page let a
#: user edit.
RECIPE_FIELDS = (
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "weight_decay",
    "momentum",
    "norm_lr_scale",
    "schedule",
    "warmup",
    "anneal",
    "final_lr_scale",
    "label_smoothing",
    "augment",
    "flip",
    "tta_flip",
    "tta_shift",
    "ema",
    "lookahead",
    "lookahead_alpha",
    "epoch_images",
    "resize",
)


@dataclass
class TrainConfig:
    """How to train. Every field is saved into the run's ``config.json``."""

    epochs: int = option(5, "epochs to train (default {default})")
    batch_size: int = option(32, "images per step (default {default})")  # Keras' model.fit
    lr: float = option(1e-3, "learning rate (default {default})")  # Adam's default in Keras
    optimizer: str = option("adam", "default {default}", choices=OPTIMIZERS)
    weight_decay: float = option(
        0.0,
        "weight decay: decoupled for adamw, L2 for adam and sgd (default {default:g})",
        metavar="W",
    )
    momentum: float = option(
        0.9, "momentum of sgd (Nesterov's); adam's beta1 stays 0.9 (default {default:g})",
        metavar="M",
    )  # fmt: skip
    norm_lr_scale: float = option(
        1.0,
        "learning rate multiplier for batchnorm's weights and biases and every layer's "
        "bias, whose weight decay is divided by it (the same decay per step); "
        "1 (default) trains all parameters alike",
        metavar="X",
    )
    schedule: str = option(
        "constant",
        "learning rate schedule: constant (default), or onecycle (warm up from lr/10 over "
        "the first --warmup of the steps, then anneal to lr x --final-lr-scale)",
        choices=SCHEDULES,
    )
    warmup: float = option(
        0.25, "onecycle: the fraction of the steps that warm up (default {default:g})",
        metavar="F",
    )  # fmt: skip
    anneal: str = option(
        "cosine", "onecycle: the shape of the decay after the warm-up (default cosine)",
        choices=ANNEALS,
    )  # fmt: skip
    final_lr_scale: float = option(
        1e-3, "onecycle: where the decay ends, as a multiple of lr (default {default:g})",
        metavar="X",
    )  # fmt: skip
    label_smoothing: float = option(0.0, "label smoothing (default {default:g})", metavar="S")
    augment: bool = option(
        False, "random 2-pixel shifts and horizontal flips of training images (default off)"
    )
    flip: str = option(
        "random",
        "how --augment mirrors training images: random (default: a coin toss per image "
        "and epoch) or alternate (a coin toss per image in the first epoch, then every "
        "other epoch the other way)",
        choices=FLIPS,
    )
    tta_flip: bool = option(
        False, "at test time, average predictions over each image and its mirror (default off)"
    )
    tta_shift: bool = option(
        False,
        "at test time, also average over each image moved one pixel diagonally each way "
        "(and their mirrors with --tta-flip), at half weight (default off)",
    )
    ema: float = option(
        0.0,
        "judge and save an exponential moving average of the weights over the training "
        "steps, with decay D (e.g. 0.99: about the last 100 steps); 0 (default) is off",
        metavar="D",
    )
    lookahead: int = option(
        0,
        "every K optimizer steps, keep only --lookahead-alpha of where the weights went "
        "and restart from there (Lookahead's slow weights); 0 (default) is off",
        metavar="K",
    )
    lookahead_alpha: float = option(
        0.5, "lookahead: the share of the K steps' move kept (default {default:g})",
        metavar="A",
    )  # fmt: skip
    epoch_images: int | None = option(
        None,
        "train each epoch on N training images, a fresh random draw each epoch (default: "
        "all of them); the schedule counts those steps",
        metavar="N",
    )
    resize: str | None = option(
        None,
        "progressive resizing: train the first epochs on smaller images, SIZE:FRACTION "
        "stages in order (20:0.5: the first half of the epochs at 20x20, the rest at the "
        "data's size; 16:0.25,22:0.25); each batch is scaled down (antialiased bilinear) "
        "after augmentation; needs a model whose head does not depend on the image size "
        "(gap or gmp before dense, not flatten); default off",
        metavar="STAGES",
    )
    seed: int = option(0, "random seed (default {default})")
    precision: str = option(
        "auto", "auto (default): bf16 where the hardware is fast at it", choices=PRECISIONS
    )
    channels_last: bool | None = option(
        None, "channels-last (NHWC) memory layout (default: on for CPUs; on GPUs with bf16)"
    )
    device: str = option("auto", "auto (default), cpu, cuda, cuda:N")
    threads: int | None = option(None, "CPU threads for torch")  # None keeps torch's choice
    stop_at_accuracy: float | None = option(
        None,
        "stop after the first epoch whose train accuracy reaches A (0.91 or 91)",
        metavar="A",
    )  # the lesson's callback, on train accuracy (0..1)
    keep: str = option(
        "last",
        "save the last epoch's weights (default) or the best test epoch's",
        choices=KEEP,
    )  # which epoch's weights model.safetensors holds
    train_subset: int | None = option(
        None, "train on N images only (seeded, per class); for quick looks", metavar="N"
    )
    test_subset: int | None = option(None, "evaluate on N images only", metavar="N")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse the first field out of range in one line (an :class:`OptionError`
        whose ``field`` names it, so the web page can put the line beside its control)."""
        _require(isinstance(self.epochs, int) and self.epochs >= 1, "epochs", self.epochs, ">= 1")
        _require(
            isinstance(self.batch_size, int) and 1 <= self.batch_size <= 65536,
            "batch_size",
            self.batch_size,
            "1..65536",
        )
        _require(_finite(self.lr) and 0 < self.lr <= 10, "lr", self.lr, "(0, 10]", "learning rate")
        _require(
            _finite(self.weight_decay) and 0 <= self.weight_decay < 1,
            "weight_decay",
            self.weight_decay,
            "[0, 1)",
        )
        _require(
            _finite(self.label_smoothing) and 0 <= self.label_smoothing < 1,
            "label_smoothing",
            self.label_smoothing,
            "[0, 1)",
        )
        _require(
            _finite(self.ema) and 0 <= self.ema < 1,
            "ema",
            self.ema,
            "[0, 1) (0 is off)",
            "ema decay",
        )
        _require(
            _finite(self.momentum) and 0 <= self.momentum < 1, "momentum", self.momentum, "[0, 1)"
        )
        _require(
            type(self.lookahead) is int and 0 <= self.lookahead <= 100_000,
            "lookahead",
            self.lookahead,
            "a whole number of steps in 0..100000 (0 is off)",
        )
        _require(
            _finite(self.lookahead_alpha) and 0 < self.lookahead_alpha <= 1,
            "lookahead_alpha",
            self.lookahead_alpha,
            "(0, 1]",
        )
        _require(
            _finite(self.norm_lr_scale) and 0 < self.norm_lr_scale <= 1000,
            "norm_lr_scale",
            self.norm_lr_scale,
            "(0, 1000]",
        )
        _require(_finite(self.warmup) and 0 <= self.warmup < 1, "warmup", self.warmup, "[0, 1)")
        _require(
            _finite(self.final_lr_scale) and 0 <= self.final_lr_scale <= 1,
            "final_lr_scale",
            self.final_lr_scale,
            "[0, 1]",
        )
        _choice(self.optimizer, OPTIMIZERS, "optimizer")
        _choice(self.schedule, SCHEDULES, "schedule")
        _choice(self.anneal, ANNEALS, "anneal")
        _choice(self.flip, FLIPS, "flip")
        _choice(self.precision, PRECISIONS, "precision")
        _choice(self.keep, KEEP, "keep")
        if self.tta_flip and not self.augment:
            # Fashion-MNIST's shoes all face left: a model that never saw a mirror image
            # misreads them, and averaging with the mirror cost 13 points in a test run.
            raise OptionError(
                "tta_flip averages each test image with its mirror image, which only a "
                "model trained on mirror images knows; add --augment or drop --tta-flip",
                field="tta_flip",
            )
        if self.tta_shift and not self.augment:
            raise OptionError(
                "tta_shift averages each test image with shifted copies, which only a "
                "model trained on shifted images knows; add --augment or drop --tta-shift",
                field="tta_shift",
            )
        if self.stop_at_accuracy is not None:
            value = self.stop_at_accuracy
            if _finite(value) and 1 < value <= 100:
                self.stop_at_accuracy = value / 100  # "91" means 91%
            _require(
                _finite(self.stop_at_accuracy) and 0 < self.stop_at_accuracy <= 1,
                "stop_at_accuracy",
                value,
                "(0, 1] or a percentage (0, 100]",
                "stop-at-accuracy",
            )
        for what in ("train_subset", "test_subset", "epoch_images"):
            value = getattr(self, what)
            if value is not None:
                _require(isinstance(value, int) and value >= 1, what, value, ">= 1")
        if self.resize is not None:
            self.resize = format_resize(parse_resize(self.resize))
        if self.threads is not None:
            _require(
                isinstance(self.threads, int) and self.threads >= 1, "threads", self.threads, ">= 1"
            )
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise OptionError(
                f"device '{self.device}' is not valid; use auto, cpu, cuda or cuda:N",
                field="device",
            )

    def steps_per_epoch(self, train_images: int) -> int:
        """Steps of one epoch over a training set of ``train_images``: all of them, or
        ``epoch_images`` of them where that is fewer; the last batch may be short."""
        count = min(train_images, self.epoch_images or train_images)
        return -(-count // self.batch_size)

    def input_size(self, epoch: int) -> int | None:
        """The image size (the longer side, in pixels) that epoch ``epoch`` (from 1)
        trains at under ``resize``, or None for the data's own size.

        Stage i covers the epochs up to floor(its cumulative fraction x epochs), so the
        size follows from the epoch alone (a resumed run trains at the same sizes) and
        the last epoch is always at full size (the fractions sum to less than 1).
        """
        if self.resize is None:
            return None
        reached = 0.0
        for size, fraction in parse_resize(self.resize):
            reached += fraction
            if epoch <= math.floor(reached * self.epochs + 1e-9):
                return size
        return None

    def resize_sizes(self) -> tuple[int, ...]:
        """The smaller image sizes ``resize`` trains at (none without it)."""
        return tuple(size for size, _ in parse_resize(self.resize)) if self.resize else ()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def tta_options(self) -> dict[str, bool]:
        """The test-time views this recipe is judged with, as the keyword arguments of
        ``predict_arrays``, ``evaluate_network`` and the engine's evaluation."""
        return {"tta_flip": self.tta_flip, "tta_shift": self.tta_shift}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise OptionError(
                f"unknown training option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return cls(**data)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def parse_resize(text: str) -> tuple[tuple[int, float], ...]:
    """``"16:0.25,22:0.25"`` -> ((16, 0.25), (22, 0.25)): the stages of ``resize``, each
    an image size in pixels (>= 4) and the fraction of the epochs it trains, in order;
    the fractions sum to less than 1, so the run ends at the data's own size."""
    example = "use SIZE:FRACTION stages, e.g. 20:0.5 or 16:0.25,22:0.25"
    if not isinstance(text, str) or not text.strip():
        raise OptionError(f"resize {text!r} is not valid; {example}", field="resize")
    stages = []
    for part in text.split(","):
        size_text, colon, fraction_text = part.strip().partition(":")
        try:
            size, fraction = int(size_text), float(fraction_text)
        except ValueError:
            size, fraction = 0, math.nan
        if not colon or size < 4 or not (math.isfinite(fraction) and 0 < fraction < 1):
            raise OptionError(
                f"resize stage {part.strip()!r} is not valid; {example} (SIZE a whole "
                "number of pixels >= 4, FRACTION of the epochs in (0, 1))",
                field="resize",
            )
        stages.append((size, fraction))
    if sum(fraction for _, fraction in stages) >= 1 - 1e-9:
        raise OptionError(
            f"resize {text!r} is not valid: its fractions sum to 1 or more, leaving no "
            "epoch at the data's own size, the size the model is judged at; make them "
            "sum to less than 1",
            field="resize",
        )
    return tuple(stages)


def format_resize(stages: tuple[tuple[int, float], ...]) -> str:
    """The one spelling of ``resize`` stages that config.json keeps: ``"20:0.5"``."""
    return ",".join(f"{size}:{fraction:g}" for size, fraction in stages)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _require(ok: bool, field: str, value: Any, valid: str, what: str | None = None) -> None:
    """Refuse ``field`` (named ``what`` in the line, else its name with spaces)."""
    if not ok:
        words = what or field.replace("_", " ")
        raise OptionError(f"{words} {value!r} is not valid; it must be {valid}", field=field)


def _choice(value: str, choices: tuple[str, ...], field: str) -> None:
    if value not in choices:
        raise OptionError(
            f"{field} '{value}' is not valid; choose one of {', '.join(choices)}", field=field
        )


def apply_subsets(dataset: Dataset, config: TrainConfig) -> Dataset:
    """The images a run with ``config`` trains and is judged on: its seeded
    ``train_subset`` and ``test_subset`` of ``dataset`` (both drawn in one go: the test
    pick depends on the train pick), or the whole dataset."""
    if config.train_subset is None and config.test_subset is None:
        return dataset
    return dataset.subset(train=config.train_subset, test=config.test_subset, seed=config.seed)


class TrainingPlan(NamedTuple):
    """What trains: the spec, the recipe, and the preset whose recipe it started from
    (recorded as config.json's "recipe"; None for the lesson's defaults)."""

    spec: ModelSpec
    config: TrainConfig
    recipe_preset: str | None


def recipe_config(preset: str | None, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """``preset``'s recipe (none: the lesson's defaults) with ``overrides`` (TrainConfig
    fields) on top; :class:`TrainConfig` judges the result."""
    from convlens.models.registry import get_preset

    values = {**(get_preset(preset).recipe if preset else {}), **(overrides or {})}
    return TrainConfig.from_dict(values)


def plan_training(
    model: str | ModelSpec,
    *,
    preset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    edits: Mapping[str, int] | None = None,
    input_shape: Shape | None = None,
    spec_files: bool = True,
) -> TrainingPlan:
    """(spec, recipe, recipe preset) for a model (a preset name, spec file, layer text or
    ModelSpec), as ``convlens train`` and the web page choose them.

    The recipe starts from ``preset``'s (``None``: the model's own when the model is a
    preset, so ``fast`` trains with fast's recipe; ``""``: none), then ``overrides``
    (TrainConfig fields). ``edits`` change the spec (:meth:`ModelSpec.edit`:
    ``{"filters": 32}``), with ``input_shape`` when the data's is known. ``spec_files``
    False never opens a file (the web page).
    """
    from convlens.models.registry import recipe_preset, resolve_model

    starting = recipe_preset(model if isinstance(model, str) else None, preset)
    config = recipe_config(starting, overrides)
    spec = resolve_model(model, files=spec_files) if isinstance(model, str) else model
    if edits:
        spec = spec.edit(**edits, input_shape=input_shape)
    return TrainingPlan(spec, config, starting)
