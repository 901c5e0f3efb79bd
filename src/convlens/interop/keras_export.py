"""A run back out as a Keras 3 ``.keras`` file, written with json, zipfile and h5py only.

The file is what ``model.save("model.keras")`` writes for a Sequential model: a zip of
``metadata.json``, ``config.json`` (the layers as Keras serialises them) and
``model.weights.h5`` (layer *i*'s tensors at ``layers/<snake-cased class>[_n]/vars/k``).
``tf.keras.models.load_model`` opens it and predicts what convlens predicts; the
conversions are the importer's (interop/keras.py) run backwards: kernels to (kh, kw, in,
out), the first dense layer after Flatten permuted from NCHW to NHWC rows, batchnorm's
epsilon kept and its momentum turned back into Keras' convention. The last layer always
says softmax, so Keras returns the probabilities convlens reports.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from convlens import fileio
from convlens.errors import ConvlensError
from convlens.interop.keras import snake_case
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
    Shape,
)
from convlens.models.network import Network
from convlens.runs import Run

#: The Keras version whose file layout this writes (Keras 3's saving format).
KERAS_VERSION = "3.15.1"

_KERAS_ACTIVATIONS = {
    None: "linear",
    **{name: name for name in ("relu", "sigmoid", "tanh", "gelu", "silu", "elu", "softmax")},
}


@dataclass(frozen=True)
class KerasExport:
    path: Path
    max_abs_difference: float  # the file read back by convlens' importer vs the run


def export_keras(run: Run, path: str | Path) -> KerasExport:
    """Write ``run`` as a Keras 3 ``.keras`` file at ``path``, then read it back with
    convlens' Keras importer and compare the two on random images."""
    path = Path(path)
    if path.suffix.lower() != ".keras":
        raise ConvlensError(f"{path}: the Keras export writes Keras 3 '.keras' files")
    network = run.load_network().float().eval()
    config, tensors = keras_model(network)
    fileio.write_bytes(path, _zip(config, tensors))
    return KerasExport(path, _check(path, network))


def keras_model(network: Network) -> tuple[dict[str, Any], list[tuple[str, list[np.ndarray]]]]:
    """(config.json of a Keras Sequential, [(weights path, tensors)] of its layers)."""
    c, h, w = network.input_shape
    layers: list[dict[str, Any]] = [_input_layer((None, h, w, c))]
    tensors: list[tuple[str, list[np.ndarray]]] = []
    used: dict[str, int] = {}
    shape: Shape = network.input_shape
    keras_index: np.ndarray | None = None  # torch feature t is Keras feature keras_index[t]
    specs = list(network.layer_specs().items())
    for position, ((name, layer), out_shape) in enumerate(
        zip(specs, network.shapes, strict=True), start=1
    ):
        last = position == len(specs)
        module = network.blocks[name]
        entries, keras_index = _layer(name, layer, module, shape, keras_index, last)
        for class_name, config, values in entries:
            layers.append(_serialised(class_name, config, shape))
            snake = snake_case(class_name)
            count = used.get(snake, 0)
            used[snake] = count + 1
            tensors.append((snake if count == 0 else f"{snake}_{count}", values))
        shape = out_shape
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": network.spec.name, "trainable": True, "dtype": _dtype(),
                   "layers": layers},
        "registered_name": None,
        "build_config": {"input_shape": [None, h, w, c]},
    }  # fmt: skip
    return config, tensors


def _layer(
    name: str,
    layer: LayerSpec,
    module: torch.nn.Module,
    shape: Shape,
    keras_index: np.ndarray | None,
    last: bool,
) -> tuple[list[tuple[str, dict[str, Any], list[np.ndarray]]], np.ndarray | None]:
    """The Keras layer(s) computing ``layer``: (class name, config, tensors) each."""
    if isinstance(layer, Conv):
        conv = module[0]
        padding = layer.padding
        entries = []
        if isinstance(padding, int) and padding > 0:  # Keras' Conv2D has no numeric padding
            entries.append(("ZeroPadding2D", {"name": f"{name}_pad", "padding": [[padding] * 2] * 2,
                                              "data_format": "channels_last"}, []))  # fmt: skip
            padding = "valid"
        kh, kw = layer.kernel_size
        values = [_np(conv.weight).transpose(2, 3, 1, 0)]  # (o, i, kh, kw) -> (kh, kw, i, o)
        if conv.bias is not None:
            values.append(_np(conv.bias))
        config = {
            "name": name, "filters": layer.filters, "kernel_size": [kh, kw],
            "strides": [layer.stride] * 2, "padding": padding or "valid",
            "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1,
            "activation": _activation(layer.activation, name), "use_bias": conv.bias is not None,
        }  # fmt: skip
        entries.append(("Conv2D", config, values))
        return entries, None
    if isinstance(layer, MaxPool):  # AvgPool too
        class_name = "AveragePooling2D" if isinstance(layer, AvgPool) else "MaxPooling2D"
        stride = layer.stride or layer.size
        config = {"name": name, "pool_size": [layer.size] * 2, "strides": [stride] * 2,
                  "padding": "valid", "data_format": "channels_last"}  # fmt: skip
        return [(class_name, config, [])], None
    if isinstance(layer, GlobalAvgPool | GlobalMaxPool):
        class_name = layer.keras_type  # GlobalAveragePooling2D or GlobalMaxPooling2D
        config = {"name": name, "data_format": "channels_last", "keepdims": False}
        return [(class_name, config, [])], None
    if isinstance(layer, Flatten):
        index = None
        if len(shape) == 3:
            c, h, w = shape
            index = np.arange(c * h * w).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)
        return [("Flatten", {"name": name, "data_format": "channels_last"}, [])], index
    if isinstance(layer, Dense):
        linear = module[0]
        kernel = _np(linear.weight).T  # (in, out), rows in torch's (C, H, W) order
        if keras_index is not None:
            reordered = np.empty_like(kernel)
            reordered[keras_index] = kernel  # back to Keras' (H, W, C) order
            kernel = reordered
        activation = "softmax" if last else _activation(layer.activation, name)
        config = {"name": name, "units": layer.units, "activation": activation, "use_bias": True}
        return [("Dense", config, [kernel, _np(linear.bias)])], None
    if isinstance(layer, Dropout):
        return [("Dropout", {"name": name, "rate": float(layer.rate)}, [])], keras_index
    if isinstance(layer, BatchNorm):
        norm = module[0]
        values = [_np(norm.weight), _np(norm.bias), _np(norm.running_mean), _np(norm.running_var)]
        if keras_index is not None:
            for i, value in enumerate(values):
                reordered = np.empty_like(value)
                reordered[keras_index] = value
                values[i] = reordered
        config = {"name": name, "axis": -1, "momentum": round(1 - float(layer.momentum), 10),
                  "epsilon": float(layer.epsilon), "center": True, "scale": True}  # fmt: skip
        entries = [("BatchNormalization", config, values)]
        if layer.activation is not None:
            act = {"name": f"{name}_act", "activation": _activation(layer.activation, name)}
            entries.append(("Activation", act, []))
        return entries, keras_index
    if isinstance(layer, Activation):
        config = {"name": name, "activation": _activation(layer.activation, name)}
        return [("Activation", config, [])], keras_index
    raise ConvlensError(
        f"layer '{name}' ({layer.kind}) has no Keras equivalent; the Keras export takes conv, "
        "maxpool, avgpool, gap, gmp, flatten, dense, dropout, batchnorm and activation layers"
    )


def _activation(name: str | None, where: str) -> str:
    if name not in _KERAS_ACTIVATIONS:
        raise ConvlensError(
            f"layer '{where}': Keras has no activation computing convlens' {name} (Keras' "
            "leaky_relu has slope 0.2, ours 0.01)"
        )
    return _KERAS_ACTIVATIONS[name]


def _serialised(class_name: str, config: dict[str, Any], in_shape: Shape) -> dict[str, Any]:
    dims = (*in_shape[1:], in_shape[0]) if len(in_shape) == 3 else tuple(in_shape)
    return {
        "module": "keras.layers",
        "class_name": class_name,
        "config": {"trainable": True, "dtype": _dtype(), **config},
        "registered_name": None,
        "build_config": {"input_shape": [None, *dims]},
    }


def _input_layer(batch_shape: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {"batch_shape": list(batch_shape), "dtype": "float32", "sparse": False,
                   "ragged": False, "name": "input_layer", "optional": False},
        "registered_name": None,
    }  # fmt: skip


def _dtype() -> dict[str, Any]:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
            "registered_name": None}  # fmt: skip


def _zip(config: dict[str, Any], tensors: list[tuple[str, list[np.ndarray]]]) -> bytes:
    import h5py

    weights = io.BytesIO()
    with h5py.File(weights, "w") as file:
        layers = file.create_group("layers")
        for path, values in tensors:
            group = layers.create_group(path).create_group("vars")
            group.attrs["name"] = path
            for index, value in enumerate(values):
                group.create_dataset(str(index), data=np.ascontiguousarray(value, np.float32))
        file.create_group("vars").attrs["name"] = config["config"]["name"]
    archive = io.BytesIO()
    metadata = {"keras_version": KERAS_VERSION, "date_saved": "written by convlens"}
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as out:
        out.writestr("metadata.json", json.dumps(metadata))
        out.writestr("config.json", json.dumps(config))
        out.writestr("model.weights.h5", weights.getvalue())
    return archive.getvalue()


def _check(path: Path, network: Network) -> float:
    """Read the file back with the Keras importer: it must compute what the run computes."""
    from convlens.interop.imported import to_network
    from convlens.interop.keras import read_keras

    again = to_network(read_keras(path))
    images = torch.rand(17, *network.input_shape, generator=torch.Generator().manual_seed(0))
    difference = float((again.predict_proba(images) - network.predict_proba(images)).abs().max())
    if difference > 1e-5:
        raise ConvlensError(
            f"{path}: the Keras file read back differs from the run by {difference:.1e}; "
            "please report this with the run's spec.json"
        )
    return difference


def _np(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy()
