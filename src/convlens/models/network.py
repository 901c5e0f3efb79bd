"""Build a torch network from a spec, and ``trace()``: the one way to look inside it.

``Network`` is a sequence of named blocks, one per layer spec, each computing the layer
*and its activation*, so the output of a block is what Keras would call the layer's
output. ``trace(x)`` returns every block's output by name; the summary, the journey of
an image, saliency and the web page all read from it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from convlens.errors import SpecError
from convlens.models.footprint import Footprint, check_memory
from convlens.models.layers import BatchNorm, Conv, GlobalMaxPool, LayerSpec, MaxPool, Shape
from convlens.models.spec import ModelSpec

if TYPE_CHECKING:
    from convlens.data.preparation import Preparation


class Network(nn.Module):
    """A Sequential model built from a :class:`ModelSpec`.

    Input: float images in 0..1, shaped (N, C, H, W). ``forward`` returns logits (N, K):
    a final ``dense(K, softmax)`` leaves its softmax to the loss, which is the same
    model in exact arithmetic and more stable in floating point. ``trace`` and
    ``predict_proba`` apply it.
    """

    # Its forward has no data-dependent control flow, so an ONNX export reproduces it
    # (convlens.models.inference relies on this to run it fast).
    exports_faithfully = True

    def __init__(
        self,
        spec: ModelSpec,
        input_shape: Shape,
        num_classes: int | None = None,
        *,
        footprint: Footprint | None = None,
    ):
        """``footprint``: the spec's :class:`Footprint` on ``input_shape`` when the caller
        has it, so the shapes are not worked out again (the classifier checks still run)."""
        super().__init__()
        self.spec = spec
        self.input_shape: Shape = tuple(input_shape)
        self.names = spec.layer_names()
        if footprint is not None and footprint.describes(spec, self.input_shape):
            self.shapes = spec.check_classifier(footprint.shapes, num_classes)
        else:
            self.shapes = spec.check_fits(self.input_shape, num_classes)
        self.num_classes = self.shapes[-1][0]
        check_memory(spec, self.input_shape, found=footprint)  # before any weight is allocated
        # How the training images looked (set by Run.load_network from the run); None:
        # Fashion-MNIST's look. ``as_input`` prepares a user's images to match it.
        self.preparation: Preparation | None = None
        blocks = OrderedDict()
        shape = self.input_shape
        for name, layer, out_shape in zip(self.names, spec.layers, self.shapes, strict=True):
            blocks[name] = layer.build(shape)
            shape = out_shape
        self.blocks = nn.ModuleDict(blocks)
        self._plan = _forward_plan(spec.layers, list(self.blocks.values()))
        keras_init_(self)
        for layer, block in zip(spec.layers, self.blocks.values(), strict=True):
            layer.initialise(block)  # e.g. conv(..., init=dirac); a no-op by default

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for step in self._plan:
            x = step(x)
        return x  # (N, K) logits

    def as_input(self, images: Any) -> torch.Tensor:
        """Whatever images a user holds as this network's input: float (N, C, H, W) in 0..1.

        A float tensor already shaped (N, C, H, W) for this network is taken as the
        input it is (0..1, as the network was trained). Anything else (uint8 or float
        NumPy arrays and tensors in any of the usual layouts, PIL images, paths, lists)
        goes through :func:`convlens.data.preparation.as_images` with the training
        data's preparation, then is scaled by 1/255 as training did.
        """
        if (
            isinstance(images, torch.Tensor)
            and images.is_floating_point()
            and images.ndim == 4
            and tuple(images.shape[1:]) == tuple(self.input_shape)
        ):
            return images
        from convlens.data.preparation import Preparation, as_images
        from convlens.models.inputs import to_float_images

        preparation = self.preparation or Preparation.default(self.input_shape)
        return to_float_images(as_images(images, preparation))  # from (N, C, H, W) uint8

    def trace(
        self, x: Any, layers: Iterable[str] | None = None, *, logits: bool = False
    ) -> OrderedDict[str, torch.Tensor]:
        """Every layer's output for a batch ``x`` (N, C, H, W), by layer name, in order.

        ``x`` is the network's input (a float tensor in 0..1), or any images
        :meth:`as_input` accepts: ``network.trace(test_images[:3])`` with uint8 arrays.

        The last layer's entry holds probabilities (softmax applied), or the raw class
        scores with ``logits=True`` (Grad-CAM differentiates those: a saturated softmax
        has almost no gradient). With ``layers``,
        only those are kept (the forward pass still runs to the last one needed). Runs
        with autograd as the caller set it: wrap in ``torch.no_grad()`` to look, leave
        it on for saliency.
        """
        x = self.as_input(x)
        wanted = None if layers is None else list(layers)
        if wanted is not None:
            unknown = [name for name in wanted if name not in self.blocks]
            if unknown:
                raise SpecError(
                    f"no layer named '{unknown[0]}' in model '{self.spec.name}'; "
                    f"its layers are: {', '.join(self.names)}"
                )
        last_needed = (
            len(self.names)
            if wanted is None
            else max(self.names.index(name) for name in wanted) + 1
        )
        outputs: OrderedDict[str, torch.Tensor] = OrderedDict()
        for index, (name, block) in enumerate(self.blocks.items()):
            if index >= last_needed:
                break
            x = block(x)
            last = index == len(self.names) - 1
            value = x.softmax(dim=-1) if last and not logits else x
            if wanted is None or name in wanted:
                outputs[name] = value
        return outputs

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (N, K) for images (N, C, H, W) in 0..1, without autograd.

        In eval mode on a CPU in fp32, a frozen, fused copy computes them
        (:mod:`convlens.models.inference`, equal to this network's forward to 1e-5).
        """
        from convlens.models.inference import probabilities  # it imports this module

        return probabilities(self, x)

    def layer_specs(self) -> OrderedDict[str, LayerSpec]:
        return OrderedDict(zip(self.names, self.spec.layers, strict=True))

    def conv_layer_names(self) -> list[str]:
        return [n for n, layer in self.layer_specs().items() if isinstance(layer, Conv)]


# Activations that commute with max pooling: max(f(a), f(b)) == f(max(a, b)) for any
# non-decreasing f. Pooling first applies them to a quarter of the values.
_MONOTONIC = ("relu", "leaky_relu", "elu", "sigmoid", "tanh")


def _forward_plan(
    layers: tuple[LayerSpec, ...], blocks: list[nn.Module]
) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """The steps of ``forward``: the blocks in order, except that a conv or batchnorm
    with a monotonic activation followed by max pooling (``maxpool`` or ``gmp``) runs as
    layer -> pool -> activation.

    The result is identical (the activation and max commute), but the activation and
    its backward touch 4x fewer values (HxW times fewer after ``gmp``); on a CPU that is
    most of a pooling layer's cost. ``trace`` keeps the plain order, so every layer's
    output stays what the summary says.
    """
    plan: list[Callable[[torch.Tensor], torch.Tensor]] = []
    index = 0
    while index < len(blocks):
        layer, block = layers[index], blocks[index]
        following = layers[index + 1] if index + 1 < len(layers) else None
        if (
            isinstance(layer, Conv | BatchNorm)
            and layer.activation in _MONOTONIC
            and type(following) in (MaxPool, GlobalMaxPool)
        ):
            inner, activation = block[0], block[1]  # both build Sequential(layer, activation)
            plan.append(_PoolBeforeActivation(inner, blocks[index + 1], activation))
            index += 2
        else:
            plan.append(block)
            index += 1
    return plan


class _PoolBeforeActivation:
    """One step of the plan: ``activation(pool(layer(x)))``.

    A plain object rather than a closure, so that ``copy.deepcopy(network)`` copies the
    modules it calls along with the network (a copied lambda would keep calling the
    original network's layers).
    """

    def __init__(self, layer: nn.Module, pool: nn.Module, activation: nn.Module) -> None:
        self.layer, self.pool, self.activation = layer, pool, activation

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.pool(self.layer(x)))


def build_network(
    spec: ModelSpec,
    input_shape: Shape | None = None,
    num_classes: int | None = None,
    *,
    footprint: Footprint | None = None,
) -> Network:
    """Build a network for images of ``input_shape`` (C, H, W); the spec's own if not given.
    ``footprint``: see :class:`Network`."""
    shape = input_shape or spec.input_shape
    if shape is None:
        raise SpecError(
            f"model '{spec.name}' has no input shape; give one with 'input: [28, 28, 1]' "
            "or train it on data"
        )
    return Network(spec, shape, num_classes, footprint=footprint)


def keras_init_(module: nn.Module) -> None:
    """Keras' default initialisation: Glorot-uniform kernels, zero biases.

    PyTorch's default (Kaiming-uniform with a=sqrt(5), uniform biases) trains a little
    differently; the lesson's figures come from Keras, so we start where it starts.
    """
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(sub.weight)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)


def count_params(module: nn.Module) -> tuple[int, int]:
    """(trainable, non-trainable) as Keras counts them: batchnorm's running statistics
    are non-trainable parameters there, buffers here."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    frozen += sum(
        b.numel()
        for name, b in module.named_buffers()
        if name.endswith(("running_mean", "running_var"))
    )
    return trainable, frozen
