"""PyTorch models in: an ``nn.Sequential`` of standard layers, or a ``.pt`` state dict.

``from_torch(module, input_shape)`` reads the module's layers one by one (Conv2d,
MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1) or AdaptiveMaxPool2d(1) + Flatten, Flatten,
Linear, BatchNorm1d/2d, Dropout, ReLU and the other activations) into the lesson's
vocabulary; PyTorch already computes in convlens' layout, so the weights are copied as
they are.

A ``.pt`` file is read with ``torch.load(weights_only=True)`` only: tensors and plain
containers, never arbitrary pickled objects (a pickled whole module is refused, with how
to save its ``state_dict`` instead). The file's tensors are matched, in order, to the
parametrised layers of a spec that the user names (``--spec``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from convlens.errors import ConvlensError, ModelImportError
from convlens.interop.imported import (
    PARAMETER_NAMES,
    ImportedModel,
    read_model_file,
    to_network,
)
from convlens.models.layers import (
    Activation,
    AvgPool,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    GlobalMaxPool,
    LayerSpec,
    MaxPool,
)
from convlens.models.network import Network
from convlens.models.spec import ModelSpec

SUPPORTED = (
    "Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1) + Flatten, AdaptiveMaxPool2d(1) + "
    "Flatten, Flatten, Linear, BatchNorm1d/2d, Dropout, Identity, ReLU, Sigmoid, Tanh, GELU, "
    "SiLU, ELU, LeakyReLU(0.01), Softmax (last)"
)

_ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.ReLU: "relu",
    nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh",
    nn.GELU: "gelu",
    nn.SiLU: "silu",
    nn.ELU: "elu",
    nn.LeakyReLU: "leaky_relu",
    nn.Softmax: "softmax",
}


def from_torch(module: nn.Module, input_shape: tuple[int, int, int]) -> Network:
    """A convlens :class:`Network` that computes what ``module`` computes (in eval mode)."""
    return to_network(read_torch_module(module, input_shape))


def read_torch_module(module: nn.Module, input_shape: tuple[int, int, int]) -> ImportedModel:
    """The spec and weights of an ``nn.Sequential`` for images of ``input_shape`` (C, H, W)."""
    if not isinstance(module, nn.Sequential):
        raise ModelImportError(
            f"convlens imports an nn.Sequential of standard layers, not {type(module).__name__}; "
            "write the model as nn.Sequential(...) or save its state_dict beside a convlens spec"
        )
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ModelImportError(f"input_shape must be (C, H, W), got {input_shape!r}")
    children = list(_leaves(module))
    layers: list[LayerSpec] = []
    weights: list[dict[str, np.ndarray]] = []
    skip_flatten = False
    for position, (name, child) in enumerate(children, start=1):
        where = f"layer {position} '{name}' ({type(child).__name__})"
        if skip_flatten and isinstance(child, nn.Flatten):
            skip_flatten = False
            continue
        if isinstance(child, nn.Identity):
            continue
        if isinstance(child, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
            kind = type(child).__name__
            following = children[position][1] if position < len(children) else None
            if _pair(child.output_size) != (1, 1) or not isinstance(following, nn.Flatten):
                raise _unsupported(where, f"only {kind}(1) followed by Flatten")
            if getattr(child, "return_indices", False):
                raise _unsupported(where, "return_indices=True")
            is_max = isinstance(child, nn.AdaptiveMaxPool2d)
            layers.append(GlobalMaxPool() if is_max else GlobalAvgPool())
            weights.append({})
            skip_flatten = True
            continue
        activation = _activation_of(child, where)
        if activation is not None:
            previous = layers[-1] if layers else None
            if isinstance(previous, Conv | Dense | BatchNorm) and previous.activation is None:
                layers[-1] = dataclasses.replace(previous, activation=activation)
            elif activation == "softmax":
                raise _unsupported(where, "softmax anywhere but right after the last Linear")
            else:
                layers.append(Activation(activation=activation))
                weights.append({})
            continue
        layer, tensors = _translate(child, where)
        layers.append(layer)
        weights.append(tensors)
    try:
        spec = ModelSpec(tuple(layers), name="torch-model", input_shape=shape)
        spec.shapes(shape)
    except ConvlensError as err:
        raise ModelImportError(str(err)) from None
    origin = {"format": "torch-module", "file": None, "torch_version": torch.__version__}
    return ImportedModel(spec, tuple(weights), origin)


def read_state_dict(
    path: str | Path, spec: str | None, input_shape: tuple[int, int, int] | None
) -> ImportedModel:
    """A ``.pt`` state dict matched to the parametrised layers of ``spec``, in order."""
    from convlens.models.registry import resolve_model

    path = Path(path)
    if not spec:
        raise ModelImportError(
            f"{path} holds weights only; name the model they belong to with --spec, e.g. "
            "--spec 'conv(32, 3, relu), maxpool(2), flatten, dense(10, softmax)'"
        )
    model_spec = resolve_model(spec)
    shape = input_shape or model_spec.input_shape or (1, 28, 28)
    model_spec = dataclasses.replace(model_spec, input_shape=tuple(shape))
    try:
        model_spec.shapes(model_spec.input_shape)
    except ConvlensError as err:  # before the tensors: the spec itself cannot work
        from convlens.models.summary import summary_until_failure

        failure = ModelImportError(f"{path}: {err}")
        failure.partial_summary = summary_until_failure(model_spec, model_spec.input_shape)
        raise failure from None
    data = read_model_file(path)
    state = _load_tensors(path, data)
    groups = _groups(state)
    wanted = [
        (i, layer) for i, layer in enumerate(model_spec.layers) if type(layer) in PARAMETER_NAMES
    ]
    if len(groups) != len(wanted):
        raise ModelImportError(
            f"{path} holds the tensors of {len(groups)} layers but the spec has {len(wanted)} "
            "layers with weights (conv, dense, batchnorm); the spec and the file do not match"
        )
    weights: list[dict[str, np.ndarray]] = [{} for _ in model_spec.layers]
    for (index, layer), (prefix, tensors) in zip(wanted, groups, strict=True):
        names = PARAMETER_NAMES[type(layer)]
        missing = [n for n in names if n not in tensors and not (n == "bias" and _no_bias(layer))]
        if missing:
            raise ModelImportError(
                f"{path}: the tensors '{prefix}.*' have no {missing[0]} for layer {index + 1} "
                f"({layer.kind}); the spec and the file do not match"
            )
        weights[index] = {n: tensors[n] for n in names if n in tensors}
        if isinstance(layer, Dense) and "bias" not in tensors:
            weights[index]["bias"] = np.zeros(tensors["weight"].shape[0], np.float32)
    origin = {
        "format": "torch-state-dict",
        "file": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "spec": spec,
    }
    return ImportedModel(model_spec, tuple(weights), origin)


def _load_tensors(path: Path, data: bytes) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # the unpickler's many errors all mean "not plain tensors"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelImportError(
            f"{path} is not a plain state dict ({first[:160]}); convlens loads tensors only, "
            "never pickled objects: save it with torch.save(model.state_dict(), 'model.pt')"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # a common checkpoint layout
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ModelImportError(
            f"{path} does not hold a state dict of tensors; save one with "
            "torch.save(model.state_dict(), 'model.pt')"
        )
    return state


def _groups(state: dict[str, torch.Tensor]) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Tensors grouped by module, in file order: ``0.weight, 0.bias, 3.weight`` ->
    [("0", {weight, bias}), ("3", {weight})]; batchnorm's step counter is dropped."""
    groups: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        prefix, _, leaf = key.rpartition(".")
        if leaf == "num_batches_tracked":
            continue
        groups.setdefault(prefix, {})[leaf] = value.detach().float().cpu().numpy()
    return list(groups.items())


def _no_bias(layer: LayerSpec) -> bool:
    return isinstance(layer, Dense) or (isinstance(layer, Conv) and not layer.bias)


def _leaves(module: nn.Sequential, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    for name, child in module.named_children():
        if isinstance(child, nn.Sequential):
            yield from _leaves(child, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", child


def _activation_of(child: nn.Module, where: str) -> str | None:
    name = _ACTIVATIONS.get(type(child))
    if name is None:
        return None
    if isinstance(child, nn.GELU) and child.approximate != "none":
        raise _unsupported(where, "GELU(approximate='tanh'); convlens' gelu is the exact one")
    if isinstance(child, nn.ELU) and child.alpha != 1.0:
        raise _unsupported(where, f"ELU(alpha={child.alpha}); convlens' elu has alpha 1")
    if isinstance(child, nn.LeakyReLU) and child.negative_slope != 0.01:
        raise _unsupported(where, f"LeakyReLU({child.negative_slope}); convlens' has 0.01")
    if isinstance(child, nn.Softmax) and child.dim not in (1, -1, None):
        raise _unsupported(where, f"Softmax(dim={child.dim})")
    return name


def _translate(child: nn.Module, where: str) -> tuple[LayerSpec, dict[str, np.ndarray]]:
    if isinstance(child, nn.Conv2d):
        return _conv(child, where)
    if isinstance(child, nn.MaxPool2d | nn.AvgPool2d):
        return _pool(child, where), {}
    if isinstance(child, nn.Flatten):
        if child.start_dim != 1 or child.end_dim != -1:
            raise _unsupported(where, "Flatten other than Flatten(1, -1)")
        return Flatten(), {}
    if isinstance(child, nn.Linear):
        weight = _numpy(child.weight)
        bias = _numpy(child.bias) if child.bias is not None else np.zeros(len(weight), np.float32)
        return Dense(units=child.out_features), {"weight": weight, "bias": bias}
    if isinstance(child, nn.BatchNorm1d | nn.BatchNorm2d):
        return _batchnorm(child, where)
    if isinstance(child, nn.Dropout):
        return Dropout(rate=float(child.p)), {}
    raise _unsupported(where, "convlens has no such layer")


def _conv(child: nn.Conv2d, where: str) -> tuple[LayerSpec, dict[str, np.ndarray]]:
    if child.groups != 1 or _pair(child.dilation) != (1, 1):
        raise _unsupported(where, "groups or dilation")
    if child.padding_mode != "zeros":
        raise _unsupported(where, f"padding_mode '{child.padding_mode}'")
    stride = _pair(child.stride)
    if stride[0] != stride[1]:
        raise _unsupported(where, f"non-square stride {stride}")
    if isinstance(child.padding, str):
        padding: str | int = child.padding
    else:
        ph, pw = _pair(child.padding)
        if ph != pw:
            raise _unsupported(where, f"padding {child.padding} (convlens pads all sides alike)")
        padding = "valid" if ph == 0 else ph
    spec = Conv(
        filters=child.out_channels,
        kernel=_pair(child.kernel_size),
        stride=stride[0],
        padding=padding,
        bias=child.bias is not None,
    )
    tensors = {"weight": _numpy(child.weight)}
    if child.bias is not None:
        tensors["bias"] = _numpy(child.bias)
    return spec, tensors


def _pool(child: nn.MaxPool2d | nn.AvgPool2d, where: str) -> LayerSpec:
    size, stride = _pair(child.kernel_size), _pair(child.stride or child.kernel_size)
    if size[0] != size[1] or stride[0] != stride[1]:
        raise _unsupported(where, "a non-square window or stride")
    if _pair(child.padding) != (0, 0) or child.ceil_mode:
        raise _unsupported(where, "padding or ceil_mode")
    if isinstance(child, nn.MaxPool2d) and _pair(child.dilation) != (1, 1):
        raise _unsupported(where, "dilation")
    if isinstance(child, nn.AvgPool2d) and child.divisor_override is not None:
        raise _unsupported(where, "divisor_override")
    cls = MaxPool if isinstance(child, nn.MaxPool2d) else AvgPool
    return cls(size=size[0], stride=None if stride[0] == size[0] else stride[0])


def _batchnorm(child: nn.Module, where: str) -> tuple[LayerSpec, dict[str, np.ndarray]]:
    if not child.track_running_stats or child.running_mean is None:
        raise _unsupported(where, "track_running_stats=False")
    n = child.num_features
    tensors = {
        "weight": _numpy(child.weight) if child.affine else np.ones(n, np.float32),
        "bias": _numpy(child.bias) if child.affine else np.zeros(n, np.float32),
        "running_mean": _numpy(child.running_mean),
        "running_var": _numpy(child.running_var),
    }
    momentum = 0.1 if child.momentum is None else float(child.momentum)
    return BatchNorm(epsilon=float(child.eps), momentum=momentum), tensors


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy().copy()


def _unsupported(where: str, why: str) -> ModelImportError:
    return ModelImportError(f"{where} is not supported ({why}); convlens imports {SUPPORTED}")
