"""The lesson's layer vocabulary as data: conv, maxpool, flatten, dense, and a few modern extras.

A layer spec is a small frozen dataclass. It knows three things about itself:

* ``output_shape(in_shape)``: shape arithmetic, with a one-line error when the layer cannot
  apply (a 5x5 filter on a 3x3 map, a dense layer on an unflattened image);
* ``build(in_shape)``: the ``torch.nn`` module that computes it (torch is imported lazily);
* ``explain(in_shape)``: the sentence a teacher would say about its output shape.

Shapes are PyTorch-ordered: ``(C, H, W)`` for images and ``(F,)`` for vectors. People see
them Keras-ordered, ``(None, H, W, C)``, in the summary.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from convlens.errors import SpecError

if TYPE_CHECKING:
    from torch import nn

Shape = tuple[int, ...]

# Activations a layer may name. "softmax" is only meaningful on the last dense layer,
# where the network folds it into the loss (see network.py).
ACTIVATIONS: tuple[str, ...] = (
    "relu",
    "softmax",
    "sigmoid",
    "tanh",
    "gelu",
    "silu",
    "elu",
    "leaky_relu",
    "linear",
)

# A conv's ``init``: None is Keras' default start; "dirac" starts filters as identities.
CONV_INITS: tuple[str | None, ...] = (None, "dirac")


def _check_activation(name: str | None, where: str) -> str | None:
    if name is None or name in ("none", "linear"):
        return None
    if name not in ACTIVATIONS:
        raise SpecError(
            f"{where}: unknown activation '{name}'; use one of {', '.join(ACTIVATIONS)}"
        )
    return name


def _positive_int(value: Any, what: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"{where}: {what} must be a positive integer, got {value!r}")
    return value


def activation_module(name: str | None) -> nn.Module:
    from torch import nn

    modules: dict[str | None, type[nn.Module]] = {
        None: nn.Identity,
        "relu": nn.ReLU,
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "elu": nn.ELU,
        "leaky_relu": nn.LeakyReLU,
        "softmax": nn.Identity,  # folded into the loss; trace() applies it
    }
    return modules[name]()


def _require_image(in_shape: Shape, where: str) -> tuple[int, int, int]:
    if len(in_shape) != 3:
        raise SpecError(
            f"{where}: needs an image input (H, W, C) but gets a vector of {in_shape[0]}; "
            "put image layers before 'flatten'"
        )
    c, h, w = in_shape
    return c, h, w


@dataclass(frozen=True)
class LayerSpec:
    """Base of every layer spec. Subclasses set ``kind`` and the Keras names."""

    kind: ClassVar[str] = ""
    keras_type: ClassVar[str] = ""
    keras_name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()

    name: str | None = dataclasses.field(default=None, kw_only=True)

    def output_shape(self, in_shape: Shape) -> Shape:
        raise NotImplementedError

    def build(self, in_shape: Shape) -> nn.Module:
        raise NotImplementedError

    def explain(self, in_shape: Shape) -> str:
        raise NotImplementedError

    def flops(self, in_shape: Shape) -> int:
        """Floating-point operations per image for the forward pass (2 per multiply-add)."""
        return 0

    def params(self, in_shape: Shape) -> int:
        """Parameters the built module holds, counted as Keras counts them (batchnorm's
        running statistics included), from the shapes alone: nothing is allocated."""
        return 0

    def initialise(self, module: nn.Module) -> None:
        """Set the starting weights of ``module`` (what :meth:`build` made) where this
        layer asks for more than Keras' default, which the network has just applied. The
        default asks for nothing: the weights (and the random stream) stay as they are."""

    def stored_values(self, in_shape: Shape) -> int:
        """Values per image a training forward pass keeps for the backward pass: the
        layer's output, and the pre-activation too when it has an activation."""
        out = math.prod(self.output_shape(in_shape))
        return 2 * out if getattr(self, "activation", None) else out

    def to_dict(self) -> dict[str, Any]:
        """The file form: ``{"conv": {"filters": 64, ...}}`` with defaults left out."""
        args = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        }
        return {self.kind: args} if args else {self.kind: {}}

    def to_text(self) -> str:
        """The compact text form, e.g. ``conv(64, 3, relu)``."""
        args = [
            f"{f.name}={getattr(self, f.name)}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        ]
        return f"{self.kind}({', '.join(args)})" if args else self.kind


def _kernel_size(value: Any) -> int | tuple[int, int]:
    """3 -> 3; (3, 3), [3, 3] or "3x3" -> 3; (3, 2) or "3x2" -> (3, 2): square kernels stay
    one number, so specs and their files read as the lesson writes them."""
    if isinstance(value, str) and "x" in value:
        try:
            value = tuple(int(part) for part in value.split("x"))
        except ValueError:
            return value  # validate() names it
    if isinstance(value, list | tuple) and len(value) == 2:
        kh, kw = value
        return kh if kh == kw else (kh, kw)
    return value


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding of one axis: (before, after) zeros.

    The output has ceil(size / stride) positions; the zeros needed for that are split
    with the odd one *after* (bottom/right). With stride 1 and an odd kernel that is
    kernel // 2 on each side; with stride 2 it is often (0, 1): 28 pixels, a 3x3 kernel
    -> 14 outputs need 13 * 2 + 3 - 28 = 1 zero, at the bottom. PyTorch's symmetric
    padding=1 would shift every output by one pixel.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def window_positions(
    layer: str,
    window: tuple[int, int],
    step: int,
    size: tuple[int, int],
    pads: tuple[int, int, int, int] = (0, 0, 0, 0),
    *,
    word: str,
    fix: str,
) -> tuple[int, int]:
    """How many places a ``(kh, kw)`` window stepping ``step`` pixels takes on an
    ``(h, w)`` map with ``pads`` zeros (top, bottom, left, right) around it:
    floor((h + top + bottom - kh) / step) + 1 down, the same across. The one rule of
    the conv, pooling and whitening shapes. A window larger than the padded map is one
    line: "LAYER: a KHxKW WORD does not fit a HxW input; FIX"."""
    (kh, kw), (h, w) = window, size
    top, bottom, left, right = pads
    if h + top + bottom < kh or w + left + right < kw:
        raise SpecError(f"{layer}: a {kh}x{kw} {word} does not fit a {h}x{w} input; {fix}")
    return ((h + top + bottom - kh) // step + 1, (w + left + right - kw) // step + 1)


@dataclass(frozen=True)
class Conv(LayerSpec):
    """Conv2D: ``filters`` kernels of ``kernel x kernel`` (or ``(kh, kw)``) slide over the image.

    ``padding`` is Keras': ``valid`` (none), ``same`` (TensorFlow's rule, see
    :func:`same_padding`: the output is ceil(H / stride) high, any odd zero at the bottom
    and right), or a number of zeros on every side.
    """

    kind: ClassVar[str] = "conv"
    keras_type: ClassVar[str] = "Conv2D"
    keras_name: ClassVar[str] = "conv2d"
    aliases: ClassVar[tuple[str, ...]] = ("conv2d",)

    filters: int
    kernel: int | tuple[int, int] = 3
    stride: int = 1
    padding: str | int = "valid"
    activation: str | None = None  # Keras' default: linear; the lesson always says relu
    bias: bool = True
    init: str | None = None  # None: Keras' Glorot-uniform; "dirac": see the docstring

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernel", _kernel_size(self.kernel))

    @property
    def kernel_size(self) -> tuple[int, int]:
        """(kh, kw)."""
        k = self.kernel
        return (k, k) if isinstance(k, int) else k

    def pads(self, in_shape: Shape) -> tuple[int, int, int, int]:
        """Zeros added (top, bottom, left, right) for an input of ``in_shape`` (C, H, W)."""
        (kh, kw), (_, h, w) = self.kernel_size, in_shape
        if self.padding == "valid":
            return (0, 0, 0, 0)
        if self.padding == "same":
            return (*same_padding(h, kh, self.stride), *same_padding(w, kw, self.stride))
        p = int(self.padding)
        return (p, p, p, p)

    def validate(self, where: str) -> None:
        _positive_int(self.filters, "filters", where)
        if isinstance(self.kernel, tuple):
            for size in self.kernel:
                _positive_int(size, "kernel", where)
        else:
            _positive_int(self.kernel, "kernel", where)
        _positive_int(self.stride, "stride", where)
        if self.padding not in ("valid", "same") and not (
            isinstance(self.padding, int)
            and not isinstance(self.padding, bool)
            and self.padding >= 0
        ):
            raise SpecError(
                f"{where}: padding must be 'valid', 'same' or a non-negative integer, "
                f"got {self.padding!r}"
            )
        _check_activation(self.activation, where)
        if self.init not in CONV_INITS:
            raise SpecError(
                f"{where}: init must be 'dirac' (filters that start as identities), got "
                f"{self.init!r}; leave it out for Keras' usual random start"
            )

    def output_shape(self, in_shape: Shape) -> Shape:
        _, h, w = _require_image(in_shape, self.kind)
        out = window_positions(
            "conv",
            self.kernel_size,
            self.stride,
            (h, w),
            self.pads(in_shape),
            word="kernel",
            fix="use a smaller kernel, padding 'same', or fewer pooling layers before it",
        )
        return (self.filters, *out)

    def build(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        from convlens.models.blocks import AsymmetricPadConv2d
        from convlens.models.small_map_conv import SmallMapConv2d

        top, bottom, left, right = self.pads(in_shape)
        args = (in_shape[0], self.filters, self.kernel_size, self.stride)
        if top == bottom and left == right:  # nn.Conv2d, with a cheaper bf16 backward on small maps
            conv = SmallMapConv2d(*args, (top, left), bias=self.bias)
        else:  # TF's 'same' with an odd total: pad explicitly, then a valid conv
            conv = AsymmetricPadConv2d(*args, pads=(left, right, top, bottom), bias=self.bias)
        return nn.Sequential(conv, activation_module(self.activation))

    def initialise(self, module: nn.Module) -> None:
        if self.init == "dirac":
            import torch

            weight = module[0].weight  # (filters, C, kh, kw)
            with torch.no_grad():
                torch.nn.init.dirac_(weight[: min(weight.shape[0], weight.shape[1])])

    def flops(self, in_shape: Shape) -> int:
        f, h, w = self.output_shape(in_shape)
        kh, kw = self.kernel_size
        return 2 * f * h * w * in_shape[0] * kh * kw

    def params(self, in_shape: Shape) -> int:
        kh, kw = self.kernel_size
        return in_shape[0] * kh * kw * self.filters + (self.filters if self.bias else 0)

    def explain(self, in_shape: Shape) -> str:
        _, h, _ = in_shape
        f, out_h, _ = self.output_shape(in_shape)
        (kh, kw), s = self.kernel_size, self.stride
        top, bottom, _, _ = self.pads(in_shape)
        if top == bottom == 0 and s == 1:
            lost = (kh - 1) // 2
            why = (
                f"a {kh}x{kw} filter needs a full neighbourhood, so a {lost}-pixel margin is "
                f"lost on each side: {h} - {kh} + 1 = {out_h}"
            )
        elif top == bottom:
            why = f"floor(({h} + 2x{top} - {kh}) / {s}) + 1 = {out_h}"
        else:
            why = (
                f"'same' pads {top} above and {bottom} below (TensorFlow puts the odd zero at "
                f"the bottom/right): floor(({h} + {top} + {bottom} - {kh}) / {s}) + 1 = {out_h}"
            )
        c = in_shape[0]
        params = c * kh * kw * f + (f if self.bias else 0)
        start = (
            f"; the first {min(c, f)} filters start as identities (init=dirac)"
            if self.init == "dirac"
            else ""
        )
        return (
            f"{why}; {f} filters give {f} channels; params = {kh}x{kw}x{c}x{f} "
            f"weights + {f if self.bias else 0} biases = {params:,}{start}"
        )

    def to_text(self) -> str:
        text = super().to_text()
        if isinstance(self.kernel, tuple):  # the text form splits on commas: write 3x2
            kh, kw = self.kernel
            text = text.replace(f"kernel={self.kernel}", f"kernel={kh}x{kw}")
        return text


@dataclass(frozen=True)
class MaxPool(LayerSpec):
    """MaxPooling2D: keep the largest value of each ``size x size`` window."""

    kind: ClassVar[str] = "maxpool"
    keras_type: ClassVar[str] = "MaxPooling2D"
    keras_name: ClassVar[str] = "max_pooling2d"
    aliases: ClassVar[tuple[str, ...]] = ("pool", "maxpooling2d", "max_pooling2d")

    size: int = 2
    stride: int | None = None

    @property
    def step(self) -> int:
        """The stride, by default the window's size (the windows tile the map)."""
        return self.stride or self.size

    def validate(self, where: str) -> None:
        _positive_int(self.size, "size", where)
        if self.stride is not None:
            _positive_int(self.stride, "stride", where)

    def output_shape(self, in_shape: Shape) -> Shape:
        c, h, w = _require_image(in_shape, self.kind)
        out = window_positions(
            "maxpool",
            (self.size, self.size),
            self.step,
            (h, w),
            word="window",
            fix="remove a pooling layer or use a smaller size",
        )
        return (c, *out)

    def build(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.MaxPool2d(self.size, self.step)

    def stored_values(self, in_shape: Shape) -> int:
        return 3 * math.prod(self.output_shape(in_shape))  # the output and int64 indices

    def flops(self, in_shape: Shape) -> int:
        c, h, w = self.output_shape(in_shape)
        return c * h * w * (self.size * self.size - 1)  # comparisons

    def explain(self, in_shape: Shape) -> str:
        _, h, _ = in_shape
        _, out_h, _ = self.output_shape(in_shape)
        if self.step == self.size:
            rounding = " (rounding down)" if h % self.size else ""
            return (
                f"{self.size}x{self.size} pooling keeps the largest of each "
                f"{self.size * self.size} pixels: {h} / {self.size} = {out_h}{rounding}; "
                "no weights to learn"
            )
        return f"floor(({h} - {self.size}) / {self.step}) + 1 = {out_h}; no weights to learn"


@dataclass(frozen=True)
class AvgPool(MaxPool):
    """AveragePooling2D: the mean of each window."""

    kind: ClassVar[str] = "avgpool"
    keras_type: ClassVar[str] = "AveragePooling2D"
    keras_name: ClassVar[str] = "average_pooling2d"
    aliases: ClassVar[tuple[str, ...]] = ("averagepooling2d", "average_pooling2d")

    def build(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.AvgPool2d(self.size, self.step)

    def explain(self, in_shape: Shape) -> str:
        return super().explain(in_shape).replace("keeps the largest of", "averages")


@dataclass(frozen=True)
class _GlobalPool(LayerSpec):
    """What ``gap`` and ``gmp`` share: no options, and (C, H, W) -> (C,) at any H and W."""

    def validate(self, where: str) -> None:
        pass

    def output_shape(self, in_shape: Shape) -> Shape:
        c, _, _ = _require_image(in_shape, self.kind)
        return (c,)


@dataclass(frozen=True)
class GlobalAvgPool(_GlobalPool):
    """GlobalAveragePooling2D: one number per channel, the mean of its map."""

    kind: ClassVar[str] = "gap"
    keras_type: ClassVar[str] = "GlobalAveragePooling2D"
    keras_name: ClassVar[str] = "global_average_pooling2d"
    aliases: ClassVar[tuple[str, ...]] = ("globalavgpool", "globalaveragepooling2d")

    def build(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def explain(self, in_shape: Shape) -> str:
        c, h, w = in_shape
        return f"the mean of each {h}x{w} map: one number for each of the {c} channels"


@dataclass(frozen=True)
class GlobalMaxPool(_GlobalPool):
    """GlobalMaxPooling2D: one number per channel, the largest value of its map.

    (C, H, W) -> (C,) whatever H and W are, so like ``gap`` it keeps a network
    size-independent (progressive resizing, other image sizes); on a 3x3 map it is the
    same function as ``maxpool(3), flatten``, which is tied to 3x3 maps. Built as
    ``nn.AdaptiveMaxPool2d(1)``: one index per channel kept for the backward pass, as
    ``nn.MaxPool2d`` keeps, so the gradient reaches one pixel of each map.
    """

    kind: ClassVar[str] = "gmp"
    keras_type: ClassVar[str] = "GlobalMaxPooling2D"
    keras_name: ClassVar[str] = "global_max_pooling2d"
    aliases: ClassVar[tuple[str, ...]] = ("globalmaxpool", "globalmaxpooling2d")

    def build(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())

    def stored_values(self, in_shape: Shape) -> int:
        return 3 * math.prod(self.output_shape(in_shape))  # the output and int64 indices

    def flops(self, in_shape: Shape) -> int:
        c, h, w = _require_image(in_shape, self.kind)
        return c * (h * w - 1)  # comparisons

    def explain(self, in_shape: Shape) -> str:
        c, h, w = in_shape
        return (
            f"the largest value of each {h}x{w} map: one number for each of the {c} "
            "channels; no weights to learn"
        )


@dataclass(frozen=True)
class Flatten(LayerSpec):
    """Flatten: lay the feature maps out as one long vector (its size is computed)."""

    kind: ClassVar[str] = "flatten"
    keras_type: ClassVar[str] = "Flatten"
    keras_name: ClassVar[str] = "flatten"

    def validate(self, where: str) -> None:
        pass

    def output_shape(self, in_shape: Shape) -> Shape:
        return (math.prod(in_shape),)

    def build(self, in_shape: Shape) -> nn.Module:
        from convlens.models.blocks import Flatten

        return Flatten()

    def explain(self, in_shape: Shape) -> str:
        if len(in_shape) == 1:
            return "already a vector"
        c, h, w = in_shape
        return f"{h} x {w} x {c} = {h * w * c:,} numbers in one vector; no weights to learn"


@dataclass(frozen=True)
class Dense(LayerSpec):
    """Dense: every output unit sees every input number."""

    kind: ClassVar[str] = "dense"
    keras_type: ClassVar[str] = "Dense"
    keras_name: ClassVar[str] = "dense"
    aliases: ClassVar[tuple[str, ...]] = ("linear", "fc")

    units: int
    activation: str | None = None

    def validate(self, where: str) -> None:
        _positive_int(self.units, "units", where)
        _check_activation(self.activation, where)

    def output_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) != 1:
            c, h, w = in_shape
            raise SpecError(
                f"dense: gets a {h}x{w}x{c} image but needs a vector; "
                "put 'flatten' (or 'gap' or 'gmp') before the first dense layer"
            )
        return (self.units,)

    def build(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        return nn.Sequential(nn.Linear(in_shape[0], self.units), activation_module(self.activation))

    def flops(self, in_shape: Shape) -> int:
        return 2 * in_shape[0] * self.units

    def params(self, in_shape: Shape) -> int:
        return in_shape[0] * self.units + self.units

    def explain(self, in_shape: Shape) -> str:
        n = in_shape[0]
        return (
            f"{self.units} units, each sees all {n:,} inputs: params = {n:,}x{self.units} "
            f"weights + {self.units} biases = {n * self.units + self.units:,}"
        )


@dataclass(frozen=True)
class Dropout(LayerSpec):
    """Dropout: during training, zero a random fraction ``rate`` of the values."""

    kind: ClassVar[str] = "dropout"
    keras_type: ClassVar[str] = "Dropout"
    keras_name: ClassVar[str] = "dropout"

    rate: float = 0.5

    def validate(self, where: str) -> None:
        if not isinstance(self.rate, int | float) or not 0.0 <= float(self.rate) < 1.0:
            raise SpecError(f"{where}: rate must be in [0, 1), got {self.rate!r}")

    def output_shape(self, in_shape: Shape) -> Shape:
        return in_shape

    def build(self, in_shape: Shape) -> nn.Module:
        from convlens.models.blocks import Dropout

        return Dropout(float(self.rate))

    def explain(self, in_shape: Shape) -> str:
        return f"same shape; zeroes {float(self.rate):.0%} of values while training only"


@dataclass(frozen=True)
class BatchNorm(LayerSpec):
    """BatchNormalization: normalise each channel over the batch, then scale and shift.

    ``epsilon`` is added to the variance before the square root: PyTorch's 1e-5 by
    default; a model imported from Keras keeps Keras' 1e-3 (on a channel whose running
    variance is ~1e-3 the two differ by 40%). ``momentum`` is PyTorch's convention, the
    weight of the *new* batch in the running averages (0.1); Keras' ``momentum=0.99`` is
    the weight of the *old* average, i.e. 0.01 here.
    """

    kind: ClassVar[str] = "batchnorm"
    keras_type: ClassVar[str] = "BatchNormalization"
    keras_name: ClassVar[str] = "batch_normalization"
    aliases: ClassVar[tuple[str, ...]] = ("bn", "batchnormalization", "batch_normalization")

    activation: str | None = None
    epsilon: float = 1e-5
    momentum: float = 0.1

    def validate(self, where: str) -> None:
        _check_activation(self.activation, where)
        for what, value in (("epsilon", self.epsilon), ("momentum", self.momentum)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
                raise SpecError(f"{where}: {what} must be a number in (0, 1), got {value!r}")

    def output_shape(self, in_shape: Shape) -> Shape:
        return in_shape

    def build(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        # PyTorch's running-average momentum (0.1), not Keras' 0.99 (PyTorch's 0.01): the
        # statistics then follow the weights within tens of steps, which short runs need.
        norm_type = nn.BatchNorm2d if len(in_shape) == 3 else nn.BatchNorm1d
        norm = norm_type(in_shape[0], eps=float(self.epsilon), momentum=float(self.momentum))
        return nn.Sequential(norm, activation_module(self.activation))

    def params(self, in_shape: Shape) -> int:
        return 4 * in_shape[0]  # scale, shift, running mean, running variance

    def explain(self, in_shape: Shape) -> str:
        c = in_shape[0]
        return (
            f"same shape; per channel a learned scale and shift ({2 * c} trainable) and a "
            f"running mean and variance ({2 * c} non-trainable)"
        )


@dataclass(frozen=True)
class Activation(LayerSpec):
    """Activation: apply a function to every value (Keras' ``Activation`` / ``ReLU`` layer).

    Usually written into the layer before it (``conv(64, 3, relu)``); a layer of its own
    where there is none to carry it, e.g. after pooling in an imported model.
    """

    kind: ClassVar[str] = "activation"
    keras_type: ClassVar[str] = "Activation"
    keras_name: ClassVar[str] = "activation"
    aliases: ClassVar[tuple[str, ...]] = ("act",)

    activation: str = "relu"

    def validate(self, where: str) -> None:
        if _check_activation(self.activation, where) is None or self.activation == "softmax":
            raise SpecError(
                f"{where}: an activation layer needs a function other than linear or softmax "
                f"(softmax belongs to the last dense layer), got {self.activation!r}"
            )

    def output_shape(self, in_shape: Shape) -> Shape:
        return in_shape

    def build(self, in_shape: Shape) -> nn.Module:
        return activation_module(self.activation)

    def explain(self, in_shape: Shape) -> str:
        return f"same shape; {self.activation} of every value; no weights to learn"


@dataclass(frozen=True)
class Residual(LayerSpec):
    """A residual block: two 3x3 'same' convs with batchnorm, added to a shortcut.

    Not in the lesson; the ``fast`` preset uses it. With ``filters`` different from the
    input channels, or ``stride`` > 1, the shortcut is a 1x1 conv with batchnorm.
    """

    kind: ClassVar[str] = "residual"
    keras_type: ClassVar[str] = "Residual"
    keras_name: ClassVar[str] = "residual"

    filters: int = 64
    stride: int = 1

    def validate(self, where: str) -> None:
        _positive_int(self.filters, "filters", where)
        _positive_int(self.stride, "stride", where)

    def output_shape(self, in_shape: Shape) -> Shape:
        _, h, w = _require_image(in_shape, self.kind)
        return (self.filters, (h - 1) // self.stride + 1, (w - 1) // self.stride + 1)

    def build(self, in_shape: Shape) -> nn.Module:
        from convlens.models.blocks import ResidualBlock

        return ResidualBlock(in_shape[0], self.filters, self.stride)

    def flops(self, in_shape: Shape) -> int:
        f, h, w = self.output_shape(in_shape)
        convs = 2 * f * h * w * 9 * (in_shape[0] + f)
        shortcut = 2 * f * h * w * in_shape[0] if (f != in_shape[0] or self.stride > 1) else 0
        return convs + shortcut

    def params(self, in_shape: Shape) -> int:
        c, f = in_shape[0], self.filters
        convs = 9 * c * f + 9 * f * f + 2 * 4 * f  # two bias-free 3x3 convs, two batchnorms
        return convs + (c * f + 4 * f if (f != c or self.stride > 1) else 0)

    def stored_values(self, in_shape: Shape) -> int:
        # conv1, bn1, relu, conv2, bn2, the sum and its relu (+ the shortcut's conv and bn)
        out = math.prod(self.output_shape(in_shape))
        return 9 * out

    def explain(self, in_shape: Shape) -> str:
        f, h, w = self.output_shape(in_shape)
        how = "halves the size (stride 2)" if self.stride > 1 else "keeps the size ('same' padding)"
        return f"two 3x3 convs plus a shortcut; {how}: {h}x{w}x{f}"


@dataclass(frozen=True)
class Whiten(LayerSpec):
    """Patch whitening: a frozen ``patch x patch`` convolution whose filters come from the
    training images (:mod:`convlens.models.whitening`): each patch's coordinates in the
    eigenvectors of the patch covariance, scaled to unit variance, and their negatives.

    Not in the lesson. With ``stride`` = ``patch`` (the default) the windows do not
    overlap, so a 2x2 one turns a 28x28 image into 14x14 maps without a layer ever
    computing at 28x28. ``epsilon`` is added to each eigenvalue before the square
    root (it damps the smallest directions: noise more than signal).
    """

    kind: ClassVar[str] = "whiten"
    keras_type: ClassVar[str] = "PatchWhitening"
    keras_name: ClassVar[str] = "patch_whitening"
    aliases: ClassVar[tuple[str, ...]] = ("whitening", "patchwhitening", "patch_whitening")

    patch: int = 2
    stride: int | None = None
    activation: str | None = None
    epsilon: float = 5e-4

    def validate(self, where: str) -> None:
        _positive_int(self.patch, "patch", where)
        if self.stride is not None:
            _positive_int(self.stride, "stride", where)
        _check_activation(self.activation, where)
        if (
            isinstance(self.epsilon, bool)
            or not isinstance(self.epsilon, int | float)
            or not (self.epsilon > 0)
        ):
            raise SpecError(f"{where}: epsilon must be a positive number, got {self.epsilon!r}")

    @property
    def kernel_size(self) -> tuple[int, int]:
        """(kh, kw), as a conv's: what the receptive-field arithmetic reads."""
        return (self.patch, self.patch)

    @property
    def step(self) -> int:
        return self.stride or self.patch

    def pads(self, in_shape: Shape) -> tuple[int, int, int, int]:
        return (0, 0, 0, 0)

    def out_channels(self, in_shape: Shape) -> int:
        """Output channels: each of the C p^2 directions with its negative."""
        return 2 * in_shape[0] * self.patch * self.patch

    def output_shape(self, in_shape: Shape) -> Shape:
        _, h, w = _require_image(in_shape, self.kind)
        out = window_positions(
            "whiten",
            self.kernel_size,
            self.step,
            (h, w),
            word="patch",
            fix="use a smaller patch or put it first",
        )
        return (self.out_channels(in_shape), *out)

    def build(self, in_shape: Shape) -> nn.Module:
        from torch import nn

        from convlens.models.whitening import PatchWhitening

        whitening = PatchWhitening(in_shape[0], self.patch, self.step, float(self.epsilon))
        return nn.Sequential(whitening, activation_module(self.activation))

    def flops(self, in_shape: Shape) -> int:
        f, h, w = self.output_shape(in_shape)
        return 2 * f * h * w * in_shape[0] * self.patch * self.patch

    def params(self, in_shape: Shape) -> int:
        f = self.out_channels(in_shape)
        return in_shape[0] * self.patch * self.patch * f + f  # all frozen

    def explain(self, in_shape: Shape) -> str:
        c, h, _ = in_shape
        f, out_h, _ = self.output_shape(in_shape)
        d, p = c * self.patch * self.patch, self.patch
        return (
            f"each {p}x{p} patch ({d} numbers) in the {d} directions of the training patches' "
            f"covariance, scaled to unit variance, and their negatives: {f} channels; "
            f"floor(({h} - {p}) / {self.step}) + 1 = {out_h}; {self.params(in_shape):,} "
            "params, computed from the data, never trained"
        )


LAYER_TYPES: tuple[type[LayerSpec], ...] = (
    Conv,
    MaxPool,
    AvgPool,
    GlobalAvgPool,
    GlobalMaxPool,
    Flatten,
    Dense,
    Dropout,
    BatchNorm,
    Activation,
    Residual,
    Whiten,
)


def output_shapes(
    layers: Sequence[LayerSpec], input_shape: Shape, model: str = "the model"
) -> list[Shape]:
    """The output shape of every layer, in order, for an input of ``input_shape``; a shape
    a layer cannot take is one line naming the layer's place in ``model``."""
    shapes = []
    shape = tuple(input_shape)
    for index, layer in enumerate(layers):
        try:
            shape = layer.output_shape(shape)
        except SpecError as err:
            raise SpecError(f"layer {index + 1} of '{model}': {err}") from None
        shapes.append(shape)
    return shapes


def layer_type(word: str) -> type[LayerSpec]:
    """The layer class a word names: its kind, its Keras type, or an alias (any case)."""
    key = word.strip().lower()
    for cls in LAYER_TYPES:
        if key in (cls.kind, cls.keras_type.lower(), *cls.aliases):
            return cls
    kinds = ", ".join(cls.kind for cls in LAYER_TYPES)
    raise SpecError(f"unknown layer '{word}'; the layers are: {kinds}")
