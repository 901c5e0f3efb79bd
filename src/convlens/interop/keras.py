"""Read a Keras model without TensorFlow: json, zipfile and h5py only.

Two file formats:

* Keras 3 ``.keras``: a zip of ``config.json`` (the architecture), ``metadata.json`` and
  ``model.weights.h5``, where layer *i*'s tensors are ``layers/<path>/vars/0, 1, ...`` and
  ``<path>`` is the snake-cased class name with a counter (``conv2d``, ``conv2d_1``);
* legacy HDF5 ``.h5`` (``model.save("x.h5")`` in TF 2.x, tf-keras or Keras 3): the
  architecture in the ``model_config`` attribute and each layer's tensors under
  ``model_weights/<layer name>``, in the order its ``weight_names`` attribute lists.

Sequential models and functional models that are a single chain translate layer by layer
into the lesson's vocabulary. Where Keras and PyTorch compute differently, the weights
are converted so that the result is the same number, not nearly (tests/interop check each
against Keras' own outputs to 1e-5):

* kernels: Keras (kh, kw, in, out) -> torch (out, in, kh, kw); dense (in, out) -> (out, in);
* Flatten: Keras lays an (H, W, C) map out channel-last, convlens (C, H, W) channel-first,
  so the rows of the first dense layer after it (and of a batchnorm between) are permuted;
* 'same' padding: TensorFlow's rule, odd zeros at the bottom/right (``layers.same_padding``);
* BatchNormalization: Keras' epsilon (1e-3 by default) is kept; its momentum 0.99 is
  PyTorch's 0.01.

The model is assumed to take images scaled to 0..1, as the lesson feeds it (``x / 255``);
a leading ``Rescaling(1/255)`` (a model fed 0..255) is dropped, since convlens scales
first. Anything else raises :class:`ModelImportError` naming the layer, its position and
what is supported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convlens.errors import ModelImportError, SpecError
from convlens.interop.imported import ImportedModel, read_model_file
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
    same_padding,
)
from convlens.models.spec import ModelSpec

SUPPORTED = (
    "InputLayer, Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, "
    "GlobalMaxPooling2D, Flatten, Dense, Dropout, BatchNormalization, Activation, ReLU, "
    "Softmax (last), ZeroPadding2D before a Conv2D, "
    "Rescaling(1/255) and Reshape((H, W, 1)) at the input, Reshape to a vector"
)

# Keras activation names -> convlens'. Keras' leaky_relu has slope 0.2, ours 0.01: refused.
_ACTIVATIONS = {
    "linear": None,
    None: None,
    "relu": "relu",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "gelu": "gelu",
    "silu": "silu",
    "swish": "silu",
    "elu": "elu",
    "softmax": "softmax",
}

MAX_CONFIG_BYTES = 64 << 20


@dataclass(frozen=True)
class KerasLayer:
    """One layer of the Keras model, in order, with its tensors as the file stores them."""

    position: int  # 1-based, counting the layers model.summary() lists (not InputLayer)
    name: str
    class_name: str
    config: dict[str, Any]
    weights: tuple[np.ndarray, ...] = ()

    def where(self) -> str:
        return f"layer {self.position} '{self.name}' ({self.class_name})"


def read_keras(path: str | Path) -> ImportedModel:
    """The convlens spec and weights of a ``.keras`` or ``.h5`` file."""
    path = Path(path)
    data = read_model_file(path)
    if data[:4] == b"PK\x03\x04":
        config, weights_file, version = _open_keras_zip(path, data)
        file_format = "keras"
    elif data[:8] == b"\x89HDF\r\n\x1a\n":
        config, weights_file, version = _open_legacy_h5(path, data)
        file_format = "keras-h5"
    else:
        raise ModelImportError(
            f"{path} is neither a Keras 3 .keras file (a zip) nor a Keras HDF5 .h5 file"
        )
    try:
        raw_layers = _chain(config, path)
        layers = _with_weights(raw_layers, weights_file, file_format, path)
    finally:
        weights_file.close()
    spec, weights, notes = _translate(layers, config, path)
    origin = {
        "format": file_format,
        "file": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "keras_version": version,
        "model_class": config.get("class_name"),
        "notes": notes,
    }
    return ImportedModel(spec, tuple(weights), origin)


# --- the file formats -------------------------------------------------------------------


def _open_keras_zip(path: Path, data: bytes) -> tuple[dict[str, Any], Any, str | None]:
    import h5py

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = {info.filename: info for info in archive.infolist()}
        for needed in ("config.json", "model.weights.h5"):
            if needed not in members:
                raise ModelImportError(
                    f"{path} has no {needed}; it is not a Keras 3 model file "
                    "(save it with model.save('model.keras'))"
                )
        if members["config.json"].file_size > MAX_CONFIG_BYTES:
            raise ModelImportError(f"{path}: config.json is larger than 64 MB")
        config = json.loads(archive.read("config.json"))
        metadata = json.loads(archive.read("metadata.json")) if "metadata.json" in members else {}
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError, OSError) as err:
        raise ModelImportError(f"{path} is damaged: {_first_line(err)}") from None
    if not isinstance(config, dict):
        raise ModelImportError(f"{path}: config.json is not a Keras model config")
    return config, weights, (metadata or {}).get("keras_version")


def _open_legacy_h5(path: Path, data: bytes) -> tuple[dict[str, Any], Any, str | None]:
    import h5py

    try:
        file = h5py.File(io.BytesIO(data), "r")
    except OSError as err:
        raise ModelImportError(f"{path} is not a readable HDF5 file: {_first_line(err)}") from None
    raw = file.attrs.get("model_config")
    if raw is None or "model_weights" not in file:
        file.close()
        raise ModelImportError(
            f"{path} holds no model (no model_config or model_weights): a weights-only file? "
            "save the whole model with model.save('model.h5') or model.save('model.keras')"
        )
    try:
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        file.close()
        raise ModelImportError(f"{path}: model_config is damaged: {_first_line(err)}") from None
    version = file.attrs.get("keras_version")
    version = version.decode() if isinstance(version, bytes) else version
    return config, file, None if version is None else str(version)


def _chain(config: dict[str, Any], path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, class_name, config) of each layer from input to output, InputLayer included."""
    kind = config.get("class_name")
    body = config.get("config") or {}
    layers = body.get("layers") if isinstance(body, dict) else None
    if kind not in ("Sequential", "Functional", "Model") or not isinstance(layers, list):
        raise ModelImportError(
            f"{path}: a {kind or 'unknown'} model; convlens imports Sequential models and "
            "functional models that are a single chain of layers"
        )
    items = []
    for item in layers:
        cfg = item.get("config") or {}
        items.append((str(cfg.get("name") or item.get("name")), item["class_name"], cfg, item))
    if kind == "Sequential":
        return [(name, cls, cfg) for name, cls, cfg, _ in items]
    inputs = {name: _inbound_names(item) for name, _, _, item in items}
    by_name = {name: (name, cls, cfg) for name, cls, cfg, _ in items}
    for name, sources in inputs.items():
        if len(sources) > 1:
            raise ModelImportError(
                f"{path}: layer '{name}' takes {len(sources)} inputs; convlens imports "
                "models that are a single chain of layers (no branches or merges)"
            )
    consumers: dict[str, list[str]] = {}
    for name, sources in inputs.items():
        for source in sources:
            consumers.setdefault(source, []).append(name)
    starts = [name for name, sources in inputs.items() if not sources]
    if len(starts) != 1:
        raise ModelImportError(f"{path}: the model has {len(starts)} inputs; convlens needs one")
    order, current = [], starts[0]
    while True:
        order.append(by_name[current])
        following = consumers.get(current, [])
        if not following:
            break
        if len(following) > 1:
            raise ModelImportError(
                f"{path}: the output of layer '{current}' feeds {len(following)} layers; "
                "convlens imports models that are a single chain of layers"
            )
        current = following[0]
    if len(order) != len(items):
        raise ModelImportError(
            f"{path}: {len(items) - len(order)} layers are not on the path from the input "
            "to the output; convlens imports models that are a single chain of layers"
        )
    return order


def _inbound_names(item: dict[str, Any]) -> list[str]:
    """The layers a functional layer reads, from Keras 3's or Keras 2's inbound_nodes."""
    nodes = item.get("inbound_nodes") or []
    names: list[str] = []

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            history = (value.get("config") or {}).get("keras_history")
            if value.get("class_name") == "__keras_tensor__" and history:
                names.append(str(history[0]))
                return
            for inner in value.values():
                visit(inner)
        elif isinstance(value, list):
            if len(value) >= 3 and isinstance(value[0], str) and isinstance(value[1], int):
                names.append(value[0])  # Keras 2: [layer_name, node_index, tensor_index, {}]
                return
            for inner in value:
                visit(inner)

    visit(nodes)
    return list(dict.fromkeys(names))


def _with_weights(
    layers: list[tuple[str, str, dict[str, Any]]], file: Any, file_format: str, path: Path
) -> list[KerasLayer]:
    out: list[KerasLayer] = []
    used: dict[str, int] = {}
    position = 0
    for name, cls, cfg in layers:
        if cls != "InputLayer":
            position += 1
        try:
            if file_format == "keras":
                snake = snake_case(cls)
                count = used.get(snake, 0)
                used[snake] = count + 1
                key = f"layers/{snake if count == 0 else f'{snake}_{count}'}/vars"
                group = file.get(key)
                if group is None:
                    group = file.get(f"layers/{name}/vars")
                tensors = (
                    tuple(np.asarray(group[k]) for k in sorted(group, key=int))
                    if group is not None
                    else ()
                )
            else:
                group = file["model_weights"].get(name)
                names = [] if group is None else list(group.attrs.get("weight_names", []))
                tensors = tuple(
                    np.asarray(group[n.decode() if isinstance(n, bytes) else n]) for n in names
                )
        except (KeyError, ValueError, OSError) as err:
            raise ModelImportError(
                f"{path}: cannot read the weights of layer '{name}': {_first_line(err)}"
            ) from None
        out.append(KerasLayer(position, name, cls, cfg, tensors))
    return out


def snake_case(name: str) -> str:
    """Keras' own rule for weight paths: Conv2D -> conv2d, BatchNormalization ->
    batch_normalization, ReLU -> re_lu."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


# --- translation ------------------------------------------------------------------------


class _Translation:
    """The state carried from layer to layer: the shape so far (convlens order), the
    layers and weights made, and the Keras-to-torch order of a flattened vector."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.input_shape: Shape | None = None
        self.input_is_2d = False
        self.shape: Shape | None = None
        self.layers: list[LayerSpec] = []
        self.weights: list[dict[str, np.ndarray]] = []
        self.notes: list[str] = []
        # keras_index[t]: the Keras position of torch feature t, while a flattened map has
        # not yet reached a dense layer (None: the orders agree).
        self.keras_index: np.ndarray | None = None
        self.zero_padding: int | None = None  # from a ZeroPadding2D, for the next Conv2D
        self.shape_before_padding: Shape | None = None

    def emit(self, layer: LayerSpec, weights: dict[str, np.ndarray], source: KerasLayer) -> None:
        try:
            self.shape = layer.output_shape(self.shape)
        except SpecError as err:
            from convlens.models.summary import summary_until_failure

            failure = ModelImportError(f"{self.path}: {source.where()}: {err}")
            so_far = ModelSpec((*self.layers, layer), name=self.path.stem)
            failure.partial_summary = summary_until_failure(so_far, self.input_shape)
            raise failure from None
        self.layers.append(layer)
        self.weights.append(weights)

    def unsupported(self, source: KerasLayer, why: str) -> ModelImportError:
        return ModelImportError(
            f"{self.path}: {source.where()} is not supported ({why}); convlens imports {SUPPORTED}"
        )


def _translate(
    layers: list[KerasLayer], config: dict[str, Any], path: Path
) -> tuple[ModelSpec, list[dict[str, np.ndarray]], list[str]]:
    state = _Translation(path)
    for layer in layers:
        if state.shape is None and layer.class_name != "InputLayer":
            _set_input(state, _input_shape_of(layer, config), layer)
        handler = _HANDLERS.get(layer.class_name)
        if handler is None and layer.class_name in ("Sequential", "Functional", "Model"):
            raise state.unsupported(
                layer, "a model nested inside the model; put its layers in the outer one"
            )
        if handler is None:
            raise state.unsupported(layer, "convlens has no such layer")
        if state.zero_padding is not None and handler is not _conv:
            raise state.unsupported(layer, "after a ZeroPadding2D convlens needs a Conv2D")
        handler(state, layer)
    if not state.layers:
        raise ModelImportError(f"{path}: the model has no layers convlens can compute")
    for index, spec_layer in enumerate(state.layers[:-1]):
        if getattr(spec_layer, "activation", None) == "softmax":
            raise ModelImportError(
                f"{path}: a softmax before the last layer (convlens layer {index + 1}) is not "
                f"supported; convlens imports {SUPPORTED}"
            )
    name = str((config.get("config") or {}).get("name") or path.stem)
    try:
        spec = ModelSpec(tuple(state.layers), name=name, input_shape=state.input_shape)
    except SpecError as err:
        raise ModelImportError(f"{path}: {err}") from None
    return spec, state.weights, state.notes


def _input_shape_of(layer: KerasLayer, config: dict[str, Any]) -> Any:
    cfg = layer.config
    shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
    if shape is None:
        body = config.get("config") or {}
        shape = body.get("build_input_shape") or (config.get("build_config") or {}).get(
            "input_shape"
        )
    return shape


def _set_input(state: _Translation, batch_shape: Any, layer: KerasLayer) -> None:
    if not isinstance(batch_shape, list | tuple) or len(batch_shape) not in (3, 4):
        raise ModelImportError(
            f"{state.path}: the model's input shape is {batch_shape!r}; convlens imports "
            "image classifiers with an input of (H, W, C) or (H, W), e.g. Input((28, 28, 1))"
        )
    dims = list(batch_shape[1:])
    if not all(isinstance(v, int) and v > 0 for v in dims):
        raise ModelImportError(
            f"{state.path}: the input shape {tuple(batch_shape)} has free dimensions; "
            "convlens needs a fixed image size, e.g. Input((28, 28, 1))"
        )
    if len(dims) == 2:
        h, w, c = (*dims, 1)
        state.input_is_2d = True
    else:
        h, w, c = dims
    state.input_shape = state.shape = (c, h, w)


def _input_layer(state: _Translation, layer: KerasLayer) -> None:
    _set_input(state, _input_shape_of(layer, {}), layer)


def _activation_name(state: _Translation, layer: KerasLayer, value: Any) -> str | None:
    if isinstance(value, dict):  # some versions serialise {"class_name": ..., "config": ...}
        value = (
            value.get("config") if isinstance(value.get("config"), str) else value.get("class_name")
        )
    if value not in _ACTIVATIONS:
        raise state.unsupported(
            layer,
            f"activation '{value}'; convlens computes "
            + ", ".join(str(k) for k in _ACTIVATIONS if k),
        )
    return _ACTIVATIONS[value]


def _square(state: _Translation, layer: KerasLayer, value: Any, what: str) -> int:
    values = list(value) if isinstance(value, list | tuple) else [value]
    if len(set(values)) != 1:
        raise state.unsupported(layer, f"non-square {what} {tuple(values)}")
    return int(values[0])


def _channels_last(state: _Translation, layer: KerasLayer) -> None:
    if layer.config.get("data_format", "channels_last") not in ("channels_last", None):
        raise state.unsupported(layer, "data_format channels_first")


def _conv(state: _Translation, layer: KerasLayer) -> None:
    cfg = layer.config
    _channels_last(state, layer)
    if _square(state, layer, cfg.get("dilation_rate", 1), "dilation") != 1:
        raise state.unsupported(layer, f"dilation {cfg.get('dilation_rate')}")
    if int(cfg.get("groups", 1) or 1) != 1:
        raise state.unsupported(layer, f"groups={cfg.get('groups')}")
    padding: str | int = str(cfg.get("padding", "valid")).lower()
    if padding not in ("valid", "same"):
        raise state.unsupported(layer, f"padding '{padding}'")
    if state.zero_padding is not None:
        if padding != "valid":
            raise state.unsupported(layer, "padding 'same' after a ZeroPadding2D")
        padding, state.zero_padding = state.zero_padding, None
        state.shape = state.shape_before_padding
    kernel = tuple(int(v) for v in cfg["kernel_size"])
    spec = Conv(
        filters=int(cfg["filters"]),
        kernel=kernel,
        stride=_square(state, layer, cfg.get("strides", 1), "strides"),
        padding=padding,
        activation=_activation_name(state, layer, cfg.get("activation")),
        bias=bool(cfg.get("use_bias", True)),
        name=_safe(layer.name),
    )
    kernel_hwio = _tensor(state, layer, 0)
    weights = {"weight": kernel_hwio.transpose(3, 2, 0, 1)}  # (kh, kw, in, out) -> (o, i, kh, kw)
    if spec.bias:
        weights["bias"] = _tensor(state, layer, 1)
    state.emit(spec, weights, layer)


def _zero_padding(state: _Translation, layer: KerasLayer) -> None:
    """ZeroPadding2D(p) then a valid Conv2D is convlens' conv(padding=p)."""
    raw = layer.config.get("padding", 1)
    flat = (
        [raw]
        if isinstance(raw, int)
        else [v for pair in raw for v in (pair if isinstance(pair, list | tuple) else [pair])]
    )
    if len(set(flat)) != 1 or state.shape is None or len(state.shape) != 3:
        raise state.unsupported(layer, f"padding {raw} (only the same on every side)")
    state.zero_padding = int(flat[0])
    state.shape_before_padding = state.shape


def _pool(cls: type[MaxPool]) -> Any:
    def handle(state: _Translation, layer: KerasLayer) -> None:
        cfg = layer.config
        _channels_last(state, layer)
        size = _square(state, layer, cfg.get("pool_size", 2), "pool size")
        strides = cfg.get("strides")
        stride = size if strides is None else _square(state, layer, strides, "strides")
        padding = str(cfg.get("padding", "valid")).lower()
        if padding == "same" and state.shape is not None and len(state.shape) == 3:
            _, h, w = state.shape
            if any(same_padding(n, size, stride) != (0, 0) for n in (h, w)):
                raise state.unsupported(layer, "padding 'same' that adds padding")
        elif padding != "valid":
            raise state.unsupported(layer, f"padding '{padding}'")
        spec = cls(size=size, stride=None if stride == size else stride, name=_safe(layer.name))
        state.emit(spec, {}, layer)

    return handle


def _global(cls: type[GlobalAvgPool | GlobalMaxPool]) -> Any:
    """GlobalAveragePooling2D -> gap, GlobalMaxPooling2D -> gmp: (H, W, C) -> (C,)."""

    def handle(state: _Translation, layer: KerasLayer) -> None:
        _channels_last(state, layer)
        if layer.config.get("keepdims"):
            raise state.unsupported(layer, "keepdims=True")
        state.emit(cls(name=_safe(layer.name)), {}, layer)

    return handle


def _flatten(state: _Translation, layer: KerasLayer) -> None:
    _channels_last(state, layer)
    shape = state.shape
    if shape is not None and len(shape) == 3:
        c, h, w = shape
        # torch feature (c, h, w) is Keras feature (h, w, c)
        state.keras_index = np.arange(c * h * w).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)
    state.emit(Flatten(name=_safe(layer.name)), {}, layer)


def _dense(state: _Translation, layer: KerasLayer) -> None:
    cfg = layer.config
    kernel = _tensor(state, layer, 0)  # (in, out)
    if state.keras_index is not None and kernel.shape[0] == len(state.keras_index):
        kernel = kernel[state.keras_index]  # rows into torch's (C, H, W) order
    state.keras_index = None
    units = int(cfg["units"])
    bias = _tensor(state, layer, 1) if cfg.get("use_bias", True) else np.zeros(units, np.float32)
    spec = Dense(
        units=units,
        activation=_activation_name(state, layer, cfg.get("activation")),
        name=_safe(layer.name),
    )
    state.emit(spec, {"weight": kernel.T, "bias": bias}, layer)


def _dropout(state: _Translation, layer: KerasLayer) -> None:
    state.emit(
        Dropout(rate=float(layer.config.get("rate", 0.5)), name=_safe(layer.name)), {}, layer
    )


def _batchnorm(state: _Translation, layer: KerasLayer) -> None:
    cfg = layer.config
    axis = cfg.get("axis", -1)
    axis = axis[0] if isinstance(axis, list | tuple) and len(axis) == 1 else axis
    rank = len(state.shape or ()) + 1  # with the batch axis
    if axis not in (-1, rank - 1):
        raise state.unsupported(layer, f"axis {cfg.get('axis')} (convlens normalises channels)")
    tensors = list(layer.weights)
    channels = (state.shape or (0,))[0]
    gamma = tensors.pop(0) if cfg.get("scale", True) else np.ones(channels, np.float32)
    beta = tensors.pop(0) if cfg.get("center", True) else np.zeros(channels, np.float32)
    if len(tensors) != 2:
        raise ModelImportError(
            f"{state.path}: {layer.where()} holds {len(layer.weights)} tensors, not the "
            "gamma, beta, moving mean and moving variance it should"
        )
    mean, variance = tensors
    weights = {"weight": gamma, "bias": beta, "running_mean": mean, "running_var": variance}
    if state.keras_index is not None and len(gamma) == len(state.keras_index):
        weights = {k: v[state.keras_index] for k, v in weights.items()}
    epsilon = float(cfg.get("epsilon", 1e-3))
    momentum = 1.0 - float(cfg.get("momentum", 0.99))  # Keras keeps the old, torch takes new
    spec = BatchNorm(epsilon=epsilon, momentum=round(momentum, 10), name=_safe(layer.name))
    state.emit(spec, weights, layer)


def _apply_activation(state: _Translation, layer: KerasLayer, name: str | None) -> None:
    """Write the activation into the layer before (conv, dense, batchnorm without one),
    which is the same computation; else a layer of its own."""
    if name is None:
        return
    previous = state.layers[-1] if state.layers else None
    if isinstance(previous, Conv | Dense | BatchNorm) and previous.activation is None:
        state.layers[-1] = dataclasses.replace(previous, activation=name)
        return
    if name == "softmax":
        raise state.unsupported(layer, "softmax anywhere but right after the last dense layer")
    state.emit(Activation(activation=name, name=_safe(layer.name)), {}, layer)


def _activation_layer(state: _Translation, layer: KerasLayer) -> None:
    _apply_activation(state, layer, _activation_name(state, layer, layer.config.get("activation")))


def _relu_layer(state: _Translation, layer: KerasLayer) -> None:
    cfg = layer.config
    if cfg.get("max_value") is not None or float(cfg.get("threshold", 0) or 0) != 0:
        raise state.unsupported(layer, "max_value or threshold (a clipped ReLU)")
    if float(cfg.get("negative_slope", 0) or 0) != 0:
        raise state.unsupported(layer, "negative_slope (convlens' leaky_relu has slope 0.01)")
    _apply_activation(state, layer, "relu")


def _softmax_layer(state: _Translation, layer: KerasLayer) -> None:
    if layer.config.get("axis", -1) not in (-1, [-1]):
        raise state.unsupported(layer, f"axis {layer.config.get('axis')}")
    _apply_activation(state, layer, "softmax")


def _rescaling(state: _Translation, layer: KerasLayer) -> None:
    scale, offset = layer.config.get("scale", 1.0), layer.config.get("offset", 0.0)
    if state.layers or not isinstance(scale, int | float) or offset not in (0, 0.0):
        raise state.unsupported(
            layer, "Rescaling is imported only as the input's 1/255 (convlens feeds 0..1)"
        )
    if abs(scale * 255 - 1) < 1e-6:
        state.notes.append(
            f"{layer.name}: Rescaling(1/255) dropped; convlens feeds images scaled to 0..1"
        )
    elif scale != 1:
        raise state.unsupported(
            layer, f"Rescaling(scale={scale}); only 1/255 at the input (convlens feeds 0..1)"
        )


def _reshape(state: _Translation, layer: KerasLayer) -> None:
    target = list(layer.config.get("target_shape") or [])
    shape = state.shape
    if state.input_is_2d and not state.layers and shape is not None and len(target) == 3:
        _, h, w = shape
        if target == [h, w, 1]:
            return  # (H, W) -> (H, W, 1): convlens already sees one channel
    if len(target) == 1 and shape is not None and target[0] in (-1, int(np.prod(shape))):
        _flatten(state, layer)
        return
    raise state.unsupported(
        layer, f"Reshape to {tuple(target)}; only (H, W) -> (H, W, 1) at the input, or a vector"
    )


_HANDLERS = {
    "InputLayer": _input_layer,
    "Conv2D": _conv,
    "Convolution2D": _conv,
    "MaxPooling2D": _pool(MaxPool),
    "MaxPool2D": _pool(MaxPool),
    "AveragePooling2D": _pool(AvgPool),
    "AvgPool2D": _pool(AvgPool),
    "GlobalAveragePooling2D": _global(GlobalAvgPool),
    "GlobalAvgPool2D": _global(GlobalAvgPool),
    "GlobalMaxPooling2D": _global(GlobalMaxPool),
    "GlobalMaxPool2D": _global(GlobalMaxPool),
    "Flatten": _flatten,
    "Dense": _dense,
    "Dropout": _dropout,
    "BatchNormalization": _batchnorm,
    "Activation": _activation_layer,
    "ReLU": _relu_layer,
    "Softmax": _softmax_layer,
    "Rescaling": _rescaling,
    "ZeroPadding2D": _zero_padding,
    "Reshape": _reshape,
}


def _tensor(state: _Translation, layer: KerasLayer, index: int) -> np.ndarray:
    if index >= len(layer.weights):
        raise ModelImportError(
            f"{state.path}: {layer.where()} has {len(layer.weights)} weight tensors in the "
            f"file, fewer than it needs; the file is damaged or was saved without weights"
        )
    return np.asarray(layer.weights[index], dtype=np.float32)


def _safe(name: str) -> str:
    """A Keras layer name as a convlens layer name (torch module names cannot hold '.')."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name)[:64] or "layer"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
