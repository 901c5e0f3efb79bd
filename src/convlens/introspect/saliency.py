"""Saliency: which pixels made the network say what it said.

Two views, both from one ``trace()`` with autograd on:

* **Grad-CAM** (Selvaraju et al., 2017) weights the maps of a conv layer by how much the
  class score rises when each map rises (the spatial mean of d score / d map), keeps the
  positive evidence (relu) and lays that coarse map (11x11 for ``cnn``) back over the
  input, each cell over the centre of the window it sees (valid convolutions crop the
  border, so a plain resize would shift it), interpolating bilinearly between cells.
  Only cells that reach the output count (:mod:`convlens.introspect.reach`): ``cnn``'s
  2x2 pooling drops row 10 and column 10 of conv2d_1's 11x11 map, so they are left out
  rather than smeared outward, and input pixels that reach nothing (rows and columns
  26-27) stay uncoloured. It needs an image-shaped layer, so a plain dense network has
  none.
* **Input gradients** (Simonyan et al., 2014): |d score / d pixel|, the largest over the
  colour channels. Noisier, but they exist for every model, ``dnn`` included.

The score is the class's raw logit, not its probability: a softmax near 1 is flat, and
its gradient says more about the runner-up than about the class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from convlens.errors import ImageError, OptionError, SpecError
from convlens.introspect.features import check_image_layers, check_images
from convlens.introspect.reach import INPUT, AxisReach, describe_unreached, reaching_cells
from convlens.models.inputs import to_float_images
from convlens.models.layers import Conv, MaxPool, Residual, Whiten
from convlens.models.network import Network

__all__ = ["Explanation", "cam_layer_name", "explain", "grad_cam", "input_gradients"]


def cam_layer_name(network: Network) -> str:
    """The last conv layer with an image-shaped output: Grad-CAM's default layer.

    The last one sees the most (largest receptive field) while still keeping a map of
    where; ``conv2d_1`` for the ``cnn`` preset.
    """
    candidates = [
        name
        for (name, layer), shape in zip(network.layer_specs().items(), network.shapes, strict=True)
        if isinstance(layer, Conv | Residual) and len(shape) == 3
    ]
    if not candidates:
        raise OptionError(
            f"model '{network.spec.name}' has no conv layer, so Grad-CAM has no map to "
            "weigh; use input gradients instead (convlens explain shows them for any model)"
        )
    return candidates[-1]


@dataclass(frozen=True)
class Explanation:
    """Why one image got its score: probabilities, Grad-CAM (if possible), gradients."""

    image: np.ndarray  # (C, H, W) uint8, what the network saw
    probabilities: np.ndarray  # (K,) float32
    target: int  # the class explained (the predicted one unless asked otherwise)
    gradients: np.ndarray  # (H, W) float32 in 0..1: |d score / d pixel|, max over channels
    cam: np.ndarray | None  # (H, W) float32 in 0..1, or None for a model without conv
    cam_layer: str | None  # the layer Grad-CAM weighed
    cam_reach: AxisReach | None = None  # which of its (h, w) cells reach the output

    @property
    def predicted(self) -> int:
        return int(self.probabilities.argmax())

    def cam_source(self) -> str:
        """Where Grad-CAM was computed, for people: 'conv2d_1's 11x11 map (row 10 and
        column 10 do not reach the output and are left out)'; '' without Grad-CAM."""
        if self.cam_layer is None or self.cam_reach is None:
            return ""
        h, w = len(self.cam_reach.rows), len(self.cam_reach.cols)
        text = f"{self.cam_layer}'s {h}x{w} map"
        unreached = describe_unreached(self.cam_reach)
        if unreached:
            text += f" ({unreached} do not reach the output and are left out)"
        return text


def explain(
    network: Network,
    image: np.ndarray,
    target_class: int | None = None,
    layer: str | None = None,
) -> Explanation:
    """Grad-CAM and input gradients for one uint8 ``image`` (C, H, W) in one backward pass.

    ``target_class`` defaults to the predicted class. Grad-CAM uses ``layer`` (default
    :func:`cam_layer_name`); on a model without conv layers it is left out (``cam`` is
    None) unless a layer was asked for, which is then an error.
    """
    image = _one_image(network, image)  # (C, H, W) uint8
    x = _prepare(network, image)  # (1, C, H, W), requires grad
    if layer is not None:
        check_image_layers(network, [layer])
        if len(network.shapes[network.names.index(layer)]) != 3:  # gmp: 1x1 maps, no where
            raise SpecError(
                f"layer '{layer}' of model '{network.spec.name}' keeps one number of each "
                "map, so Grad-CAM has no places to weigh there; choose a layer with maps "
                f"of more than one cell, such as {cam_layer_name(network)}"
            )
        cam_layer: str | None = layer
    else:
        try:
            cam_layer = cam_layer_name(network)
        except OptionError:
            cam_layer = None
    last = network.names[-1]
    with torch.enable_grad():
        outputs = network.trace(x, logits=True)  # every layer, autograd on
        logits = outputs[last][0]  # (K,)
        target = _check_target(
            network, logits.argmax().item() if target_class is None else target_class
        )
        inputs = [x] if cam_layer is None else [x, outputs[cam_layer]]
        grads = torch.autograd.grad(logits[target], inputs)
    probabilities = logits.detach().float().softmax(dim=-1).numpy()
    cam, cam_reach = None, None
    if cam_layer is not None:
        reach = reaching_cells(network)
        cam_reach = reach[cam_layer]
        cam = _grad_cam_map(
            outputs[cam_layer].detach(),
            grads[1],
            _centres(network, cam_layer),
            cam_reach,
            reach[INPUT],
        )
    return Explanation(
        image=np.asarray(image),
        probabilities=probabilities,
        target=target,
        gradients=_normalise(grads[0][0].abs().amax(dim=0)),  # (C, H, W) -> (H, W)
        cam=cam,
        cam_layer=cam_layer,
        cam_reach=cam_reach,
    )


def grad_cam(
    network: Network,
    image: np.ndarray,
    target_class: int | None = None,
    layer: str | None = None,
) -> np.ndarray:
    """Grad-CAM heat map (H, W) in 0..1 for uint8 ``image`` (C, H, W).

    On ``layer`` (default: the last image-shaped conv layer) for ``target_class``
    (default: the predicted class). A model without conv layers raises an OptionError
    that points to :func:`input_gradients`.
    """
    layer = cam_layer_name(network) if layer is None else layer
    result = explain(network, image, target_class, layer)
    assert result.cam is not None
    return result.cam


def input_gradients(
    network: Network, image: np.ndarray, target_class: int | None = None
) -> np.ndarray:
    """|d score / d pixel| (H, W) in 0..1 for uint8 ``image`` (C, H, W): the largest
    over the colour channels, divided by its maximum."""
    x = _prepare(network, image)
    with torch.enable_grad():
        logits = network.trace(x, logits=True)[network.names[-1]][0]  # (K,)
        target = _check_target(
            network, logits.argmax().item() if target_class is None else target_class
        )
        (grad,) = torch.autograd.grad(logits[target], [x])  # (1, C, H, W)
    return _normalise(grad[0].abs().amax(dim=0))


# --- the arithmetic -----------------------------------------------------------------


def _grad_cam_map(
    activation: torch.Tensor,
    gradient: torch.Tensor,
    centres: tuple[float, float],
    cells: AxisReach,
    pixels: AxisReach,
) -> np.ndarray:
    """relu(sum_k alpha_k A_k), alpha_k = mean over (i, j) of d score / d A_k[i, j];
    resampled onto the input grid and divided by its maximum.

    activation, gradient: (1, C, h, w). Map cell i sits over input pixel
    ``scale * i + offset`` (``centres``, see :func:`_centres`). Only the cells in
    ``cells`` (those that reach the output) are resampled: each input pixel is the
    bilinear mean of the reaching cells around it (a normalised interpolation: a dropped
    cell adds nothing), a pixel beyond the outermost reaching cell takes that cell's
    value, and input pixels outside ``pixels`` (they reach nothing) are 0.
    """
    weights = gradient.mean(dim=(2, 3), keepdim=True)  # (1, C, 1, 1)
    cam = F.relu((weights * activation).sum(dim=1, keepdim=True))  # (1, 1, h, w)
    reach = torch.from_numpy(cells.mask()).float()[None, None]  # (1, 1, h, w)
    (h, w), (scale, offset) = cam.shape[-2:], centres
    height, width = len(pixels.rows), len(pixels.cols)
    rows = _grid_axis(height, h, scale, offset, cells.rows)  # (H,) in -1..1 across the rows
    cols = _grid_axis(width, w, scale, offset, cells.cols)  # (W,)
    grid = torch.stack(torch.meshgrid(cols, rows, indexing="xy"), dim=-1)[None]  # (1, H, W, 2)
    both = torch.cat([cam * reach, reach], dim=1)  # (1, 2, h, w): evidence, and where it counts
    sampled = F.grid_sample(both, grid, mode="bilinear", padding_mode="border", align_corners=True)
    evidence, support = sampled[0, 0], sampled[0, 1]  # (H, W) each
    resampled = torch.where(support > 1e-6, evidence / support.clamp_min(1e-6), 0.0)
    resampled = resampled * torch.from_numpy(pixels.mask()).float()  # (H, W)
    return _normalise(resampled)


def _grid_axis(
    pixels: int, cells: int, scale: float, offset: float, reaching: np.ndarray
) -> torch.Tensor:
    """Where each input pixel falls on one axis of the map, in grid_sample's -1..1,
    kept between the first and the last reaching cell."""
    index = (torch.arange(pixels, dtype=torch.float32) - offset) / scale  # fractional cell
    used = np.flatnonzero(reaching)
    if len(used):
        index = index.clamp(float(used[0]), float(used[-1]))
    return 2 * index / (cells - 1) - 1 if cells > 1 else torch.zeros(pixels)


def _centres(network: Network, layer: str) -> tuple[float, float]:
    """(scale, offset): cell i of ``layer``'s map is centred on input pixel scale*i+offset.

    Composed layer by layer from kernel, stride and padding. For ``cnn``'s conv2d_1:
    (2, 3.5); its 11 cells cover input pixels 3.5 to 23.5, not the whole 0 to 27 a plain
    resize would stretch them over.
    """
    scale, offset = 1.0, 0.0
    in_shapes = [network.input_shape, *network.shapes[:-1]]
    for (name, spec), in_shape in zip(network.layer_specs().items(), in_shapes, strict=True):
        step, shift = 1, 0.0  # batchnorm, dropout: pixel i stays pixel i
        if isinstance(spec, Conv):  # rows; a non-square kernel is placed by its height
            step, shift = spec.stride, (spec.kernel_size[0] - 1) / 2 - spec.pads(in_shape)[0]
        elif isinstance(spec, Whiten):  # a p x p convolution without padding
            step, shift = spec.step, (spec.patch - 1) / 2
        elif isinstance(spec, MaxPool):  # AvgPool too
            step, shift = spec.stride or spec.size, (spec.size - 1) / 2
        elif isinstance(spec, Residual):  # 3x3 'same' convs: only the stride moves cells
            step = spec.stride
        scale, offset = scale * step, scale * shift + offset
        if name == layer:
            break
    return scale, offset


def _normalise(values: torch.Tensor) -> np.ndarray:
    """Divide by the maximum so 1 is the strongest evidence; all zeros stays all zeros."""
    values = values.detach().float().clamp_min(0)
    top = values.max()
    return (values / top if top > 0 else torch.zeros_like(values)).numpy()


def _prepare(network: Network, image: Any) -> torch.Tensor:
    """One image -> float (1, C, H, W) in 0..1 that autograd follows back to.

    uint8 (C, H, W) as it is; anything else :func:`check_images` reads (a photo's path,
    a PIL image, an (H, W) array...) is prepared like the training data first."""
    image = _one_image(network, image)
    expected = tuple(network.input_shape)
    if image.dtype != np.uint8 or tuple(image.shape) != expected:
        c, h, w = expected
        raise ImageError(
            f"model '{network.spec.name}' takes one uint8 image shaped ({c}, {h}, {w}), got "
            f"{image.dtype} {tuple(image.shape)}; prepare photos with "
            "convlens.predict.prepare_for"
        )
    network.to("cpu").float().eval()
    return to_float_images(image[None].copy()).requires_grad_(True)  # copy: may be read-only


def _one_image(network: Network, image: Any) -> np.ndarray:
    """(C, H, W) uint8: ``image`` itself when it already is one, else prepared."""
    if (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and tuple(image.shape) == tuple(network.input_shape)
    ):
        return image
    images = check_images(network, image)  # (N, C, H, W)
    if len(images) != 1:
        raise ImageError(f"explain looks at one image at a time, got {len(images)}; pass images[k]")
    return images[0]


def _check_target(network: Network, target: int) -> int:
    target = int(target)
    if not 0 <= target < network.num_classes:
        raise OptionError(
            f"class {target} does not exist; model '{network.spec.name}' has "
            f"{network.num_classes} classes (0 to {network.num_classes - 1})"
        )
    return target
