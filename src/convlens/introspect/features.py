"""Feature maps: what each conv and pool layer makes of an image, read from ``trace()``.

A conv layer with 64 filters turns one image into 64 maps, one per filter; a pool layer
keeps the 64 maps and shrinks them. The lesson follows one filter through the layers
(its *journey*) for three images of one class: the same places light up in all three,
and that pattern is what the dense layers learn from.

Everything here runs the network once, in fp32 on the CPU without autograd, and returns
NumPy arrays (for notebooks and the web page; the CLI turns them into figures).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from convlens.data.preparation import Preparation, as_images
from convlens.errors import ImageError, OptionError, SpecError
from convlens.models import inference
from convlens.models.inputs import to_float_images
from convlens.models.layers import AvgPool, Conv, GlobalMaxPool, MaxPool, Residual
from convlens.models.network import Network

__all__ = [
    "Journey",
    "Look",
    "feature_maps",
    "image_layer_names",
    "journey",
    "journey_layer_names",
    "look",
]

# Layers whose output is worth a column in the journey: the ones that compute new maps
# (conv, residual) or shrink them (pooling, gmp). Batchnorm and dropout keep the shape and
# would only repeat a column; they can still be asked for by name.
_JOURNEY_TYPES = (Conv, Residual, MaxPool, AvgPool, GlobalMaxPool)
_BATCH = 128  # images per forward pass: 128 x 64 x 26 x 26 floats is 22 MB


def map_shape(network: Network, name: str) -> tuple[int, int, int] | None:
    """Layer ``name``'s output as maps (C, H, W): an image-shaped output as it is; gmp's
    (C,) as C maps of 1x1, each map's largest value (what ``maxpool(3)`` of 3x3 maps,
    the same function there, shows); None for any other vector (flatten, gap, dense)."""
    shape = tuple(network.shapes[network.names.index(name)])
    if len(shape) == 3:
        return shape  # type: ignore[return-value]
    if isinstance(network.layer_specs()[name], GlobalMaxPool):
        return (shape[0], 1, 1)
    return None


def image_layer_names(network: Network) -> list[str]:
    """Names of the layers whose output is maps (:func:`map_shape`), in order."""
    return [name for name in network.names if map_shape(network, name) is not None]


def journey_layer_names(network: Network) -> list[str]:
    """The conv and pool layers (outputs that are maps), in order: the journey's columns.

    For the ``cnn`` preset: conv2d, max_pooling2d, conv2d_1, max_pooling2d_1; a gmp
    layer is the last column, its maps 1x1.
    """
    image_layers = set(image_layer_names(network))
    return [
        name
        for name, layer in network.layer_specs().items()
        if name in image_layers and isinstance(layer, _JOURNEY_TYPES)
    ]


def check_image_layers(network: Network, layers: Sequence[str]) -> list[str]:
    """``layers`` if each names an image-shaped layer, else a one-line SpecError."""
    if not layers:
        return []
    image_layers = image_layer_names(network)
    for name in layers:
        if name in image_layers:
            continue
        if name in network.names:
            shape = network.shapes[network.names.index(name)]
            raise SpecError(
                f"layer '{name}' of model '{network.spec.name}' gives a vector of "
                f"{shape[0]:,} numbers, not feature maps; the image layers are: "
                f"{', '.join(image_layers) or 'none'}"
            )
        raise SpecError(
            f"no layer named '{name}' in model '{network.spec.name}'; the image layers are: "
            f"{', '.join(image_layers) or 'none (it has no conv or pool layer)'}"
        )
    return list(layers)


def check_images(network: Network, images: Any) -> np.ndarray:
    """``images`` as uint8 (N, C, H, W) matching the network's input, or an ImageError.

    Anything :func:`convlens.data.preparation.as_images` reads is prepared first, the
    way the network's training data was (arrays and tensors of uint8 or floats in the
    usual layouts, PIL images, paths).
    """
    images = as_images(images, network.preparation or Preparation.default(network.input_shape))
    expected = tuple(network.input_shape)
    if images.dtype != np.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != expected:
        c, h, w = expected
        raise ImageError(
            f"model '{network.spec.name}' takes uint8 images shaped (N, {c}, {h}, {w}), got "
            f"{images.dtype} {tuple(images.shape)}; prepare photos with "
            "convlens.predict.prepare_for"
        )
    return images if images.flags.writeable else images.copy()  # torch wants writable memory


def feature_maps(
    network: Network, images: np.ndarray, layers: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Every image-shaped layer's output (or just ``layers``) for uint8 ``images``.

    ``images``: (N, C, H, W) uint8, or anything :func:`check_images` prepares.
    Returns ``{layer: (N, C_l, H_l, W_l) float32}`` in layer order; for ``cnn`` on
    28x28: conv2d (N, 64, 26, 26), max_pooling2d (N, 64, 13, 13), conv2d_1
    (N, 64, 11, 11), max_pooling2d_1 (N, 64, 5, 5).
    Puts the network in eval mode on the CPU. The pass stops at the last layer asked for.
    """
    images = check_images(network, images)
    names = check_image_layers(
        network, image_layer_names(network) if layers is None else list(layers)
    )
    return _traced(network, images, names)


@dataclass(frozen=True)
class Look:
    """What one forward pass shows of some images: the answer and the maps on the way.

    ``probabilities`` (N, K) float32, softmax of the last layer; ``maps`` holds the
    image-shaped layers asked for, ``{layer: (N, C_l, H_l, W_l) float32}`` in layer order.
    """

    images: np.ndarray  # (N, C, H, W) uint8, what the network saw
    probabilities: np.ndarray  # (N, K)
    maps: dict[str, np.ndarray]

    @property
    def predicted(self) -> np.ndarray:
        """(N,) int: the most probable class of each image."""
        return self.probabilities.argmax(axis=1)


def look(network: Network, images: Any, layers: Sequence[str] = ()) -> Look:
    """Class probabilities for ``images`` and the feature maps of ``layers``, from one
    ``trace()`` pass: the answer and the journey agree because they are one computation.

    ``images``: (N, C, H, W) uint8, or anything :func:`check_images` prepares.
    The web page's predict, features and second-run views all ask here (with
    ``layers=()`` for the answer alone), so a faster forward pass lands in one place.
    Puts the network in eval mode on the CPU. With no ``layers`` (the answer alone, as
    ``/api/predict`` asks), the fast inference engine answers
    (:mod:`convlens.models.inference`: equal to the trace's probabilities to 1e-5).
    """
    images = check_images(network, images)
    names = check_image_layers(network, list(layers))
    if not names:
        network = inference.on_cpu_in_eval(network, fp32=True)
        probabilities = [
            inference.pixel_probabilities(network, images[at : at + _BATCH])
            for at in range(0, len(images), _BATCH)
        ]
        # check_images refuses none; one batch (one image from the web page): no copy
        together = probabilities[0] if len(probabilities) == 1 else np.concatenate(probabilities)
        return Look(images, together, {})
    last = network.names[-1]
    outputs = _traced(network, images, [*names, last])
    return Look(images, outputs.pop(last), outputs)


def _traced(network: Network, images: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """``trace()`` over ``images`` in batches: ``{name: (N, ...) float32}`` in layer order
    (the last layer's entry is probabilities)."""
    wanted = list(dict.fromkeys(names))
    network = network.to("cpu").float().eval()
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in wanted}
    with torch.no_grad():
        for start in range(0, len(images), _BATCH):
            x = to_float_images(images[start : start + _BATCH])  # (B, C, H, W)
            outputs = network.trace(x, wanted) if wanted else {}
            for name in wanted:
                chunks[name].append(outputs[name].numpy())
    ordered = [name for name in network.names if name in chunks]
    out = {}
    for name in ordered:
        shape = map_shape(network, name) or tuple(network.shapes[network.names.index(name)])
        together = np.concatenate(chunks[name]) if chunks[name] else np.zeros((0, *shape))
        out[name] = together.astype(np.float32, copy=False).reshape(-1, *shape)  # gmp: 1x1
    return out


@dataclass(frozen=True)
class Journey:
    """One filter's feature map through the conv and pool layers, for a few images.

    ``maps[layer]`` is (N, H_l, W_l): filter ``filter_index`` of that layer for each
    image. ``shapes[i]`` is layer i's whole output (C_l, H_l, W_l). Filter k of conv2d
    and filter k of conv2d_1 are different filters (conv2d_1's reads every map of the
    layer before); a pooling layer's map k is the shrunk map k of the conv before it.

    ``dead`` names the layers where this filter is silent on every one of
    ``reference_count`` test images (see :mod:`convlens.introspect.liveness`);
    ``reason`` says why this filter was chosen, when it was chosen for the user.
    """

    images: np.ndarray  # (N, C, H, W) uint8, what the network saw
    filter_index: int
    layers: tuple[str, ...]
    shapes: tuple[tuple[int, int, int], ...]
    maps: dict[str, np.ndarray]  # layer -> (N, H_l, W_l) float32
    predicted: np.ndarray  # (N,) int: the predicted class of each image
    probability: np.ndarray  # (N,) float: its probability
    class_names: tuple[str, ...] = ()
    conv_layers: tuple[str, ...] = ()  # those of ``layers`` that compute new maps
    dead: tuple[str, ...] = ()
    reference_count: int = 0
    reason: str = ""

    def predicted_name(self, row: int) -> str:
        k = int(self.predicted[row])
        return self.class_names[k] if k < len(self.class_names) else str(k)

    def shape_line(self) -> str:
        """'28x28x1 -> conv2d 26x26x64 -> max_pooling2d 13x13x64 -> ...' (Keras order)."""
        c, h, w = self.images.shape[1:]
        steps = [f"input {h}x{w}x{c}"]
        steps += [
            f"{name} {s[1]}x{s[2]}x{s[0]}" for name, s in zip(self.layers, self.shapes, strict=True)
        ]
        return " -> ".join(steps)


def journey(
    network: Network,
    images: np.ndarray,
    filter_index: int,
    layers: Sequence[str] | None = None,
    class_names: Sequence[str] = (),
) -> Journey:
    """Follow filter ``filter_index`` through ``layers`` (default: every conv and pool).

    ``images``: (N, C, H, W) uint8, or anything :func:`check_images` prepares.
    The filter index applies to every layer, so it must be below the smallest channel
    count among them (an OptionError names the layer and the valid range otherwise).
    One forward pass gives the maps and the predictions.
    """
    images = check_images(network, images)
    names = journey_layer_names(network) if layers is None else list(layers)
    if not names:
        raise OptionError(
            f"model '{network.spec.name}' has no conv or pool layer, so there is no journey "
            "to draw; look at what it attends to with: convlens explain RUN --index 0"
        )
    check_image_layers(network, names)
    shapes = tuple(map_shape(network, n) for n in names)
    for name, (channels, _, _) in zip(names, shapes, strict=True):
        if not 0 <= filter_index < channels:
            raise OptionError(
                f"filter {filter_index} does not exist in layer '{name}', which has "
                f"{channels} filters; choose --filter from 0 to {channels - 1}"
            )
    network = network.to("cpu").float().eval()
    with torch.no_grad():
        outputs = network.trace(to_float_images(images))
    probabilities = outputs[network.names[-1]].numpy()  # (N, K)
    predicted = probabilities.argmax(axis=1)
    return Journey(
        images=images,
        filter_index=filter_index,
        layers=tuple(names),
        shapes=shapes,  # type: ignore[arg-type]
        maps={
            n: outputs[n].reshape(-1, *s)[:, filter_index].numpy().copy()
            for n, s in zip(names, shapes, strict=True)
        },
        predicted=predicted,
        probability=probabilities[np.arange(len(images)), predicted],
        class_names=tuple(class_names),
        conv_layers=tuple(
            n for n in names if isinstance(network.layer_specs()[n], Conv | Residual)
        ),
    )
