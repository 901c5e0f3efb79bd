"""ONNX models in (the ``onnx`` extra): graphs that are a chain of the lesson's operations.

What ``convlens export --onnx`` writes reads back: Conv (any kernel, strides, symmetric
or TensorFlow-'same' pads, an explicit zero Pad before it), MaxPool, AveragePool,
GlobalAveragePool or ReduceMean over H and W (``gap``), GlobalMaxPool or ReduceMax over H
and W (``gmp``: torch's exporter writes ReduceMax for it), Flatten/Reshape to a vector,
Gemm or MatMul + Add, BatchNormalization, Dropout, Identity, Relu, Sigmoid, Tanh, Gelu,
Elu, LeakyRelu (0.01), x * Sigmoid(x) (SiLU) and a final Softmax. ONNX is NCHW like
PyTorch, so weights are copied as they are. torch's exporter folds a batchnorm that
follows a conv into the conv's weights: the imported spec then has one layer fewer, and
computes the same.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from convlens.errors import ConvlensError, ModelImportError
from convlens.interop.imported import ImportedModel, read_model_file
from convlens.models.layers import (
    Activation,
    AvgPool,
    BatchNorm,
    Conv,
    Dense,
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
    "Conv, Pad (zeros), MaxPool, AveragePool, GlobalAveragePool, ReduceMean over H and W, "
    "GlobalMaxPool, ReduceMax over H and W, Flatten, Reshape to a vector, Gemm, MatMul + Add, "
    "BatchNormalization, Dropout, Identity, "
    "Relu, Sigmoid, Tanh, Gelu, Elu, LeakyRelu(0.01), x*Sigmoid(x), Softmax (last)"
)

_ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Gelu": "gelu", "Elu": "elu"}
_ACTIVATIONS |= {"LeakyRelu": "leaky_relu", "Softmax": "softmax"}

# Non-decreasing activations, which commute with max pooling (network._forward_plan).
_MONOTONIC = ("relu", "leaky_relu", "elu", "sigmoid", "tanh")


def read_onnx(path: str | Path) -> ImportedModel:
    """The convlens spec and weights of an ONNX file whose graph is a single chain."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise ConvlensError(
            "ONNX import needs the onnx extra; install it with: pip install 'convlens[onnx]'"
        ) from None
    path = Path(path)
    data = read_model_file(path)
    try:
        model = onnx.load_from_string(data)
    except Exception as err:  # protobuf's DecodeError and friends: not an ONNX file
        raise ModelImportError(
            f"{path} is not a readable ONNX file ({type(err).__name__})"
        ) from None
    graph = model.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    constants[node.output[0]] = numpy_helper.to_array(attribute.t)
    reader = _Reader(path, constants)
    inputs = [i for i in graph.input if i.name not in constants]
    if len(inputs) != 1:
        raise ModelImportError(f"{path}: the graph has {len(inputs)} inputs; convlens needs one")
    reader.start(inputs[0])
    nodes = [node for node in graph.node if node.op_type != "Constant"]
    index = 0
    while index < len(nodes):
        index = reader.read(nodes, index)
    if reader.current != graph.output[0].name:
        raise ModelImportError(
            f"{path}: the graph's output is not at the end of one chain of operations"
        )
    layers = tuple(reader.layers)
    try:
        ModelSpec(layers).layer_names()
    except ConvlensError:  # names recovered for some layers clash with others' defaults
        layers = tuple(dataclasses.replace(layer, name=None) for layer in layers)
    try:
        spec = ModelSpec(layers, name=graph.name or path.stem, input_shape=reader.input_shape)
    except ConvlensError as err:
        raise ModelImportError(f"{path}: {err}") from None
    origin = {
        "format": "onnx",
        "file": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                     default=None),
    }  # fmt: skip
    return ImportedModel(spec, tuple(reader.weights), origin)


class _Reader:
    """Walks the chain node by node, keeping the shape so far and the layers made."""

    def __init__(self, path: Path, constants: dict[str, np.ndarray]) -> None:
        self.path = path
        self.constants = constants
        self.layers: list[LayerSpec] = []
        self.weights: list[dict[str, np.ndarray]] = []
        self.current = ""
        self.shape: Shape = ()
        self.input_shape: Shape | None = None
        self.pending_pads: tuple[int, int, int, int] | None = None  # from a Pad before a Conv

    def start(self, value: Any) -> None:
        dims = [d.dim_value if d.HasField("dim_value") else None
                for d in value.type.tensor_type.shape.dim]  # fmt: skip
        if len(dims) != 4 or not all(dims[1:]):
            raise ModelImportError(
                f"{self.path}: the input is {dims}; convlens imports image classifiers "
                "with an input of (N, C, H, W) and a fixed C, H, W"
            )
        self.input_shape = self.shape = tuple(int(v) for v in dims[1:])
        self.current = value.name

    # --- helpers -----------------------------------------------------------------------

    def unsupported(self, node: Any, position: int, why: str) -> ModelImportError:
        return ModelImportError(
            f"{self.path}: node {position + 1} '{node.name or node.output[0]}' ({node.op_type}) "
            f"is not supported ({why}); convlens imports {SUPPORTED}"
        )

    def emit(self, layer: LayerSpec, weights: dict[str, np.ndarray], node: Any, position: int):
        try:
            self.shape = layer.output_shape(self.shape)
        except ConvlensError as err:
            raise self.unsupported(node, position, str(err)) from None
        self.layers.append(layer)
        self.weights.append(weights)
        self.current = node.output[0]

    def constant(self, name: str, node: Any, position: int) -> np.ndarray:
        if name not in self.constants:
            raise self.unsupported(node, position, f"input '{name}' is computed, not stored")
        return np.asarray(self.constants[name])

    def data_input(self, node: Any, position: int) -> None:
        """The node must read the chain's current tensor (and constants otherwise)."""
        computed = [name for name in node.input if name and name not in self.constants]
        if computed != [self.current]:
            raise ModelImportError(
                f"{self.path}: node {position + 1} '{node.name}' ({node.op_type}) does not read "
                "the output of the node before it; convlens imports a single chain of operations"
            )

    def activation(self, name: str, node: Any, position: int) -> None:
        previous = self.layers[-1] if self.layers else None
        if (
            isinstance(previous, Conv | Dense | BatchNorm)
            and previous.activation is None
            and self.current == node.input[0]
        ):
            self.layers[-1] = dataclasses.replace(previous, activation=name)
            self.current = node.output[0]
            return
        before = self.layers[-2] if len(self.layers) > 1 else None
        if (
            type(previous) in (MaxPool, GlobalMaxPool)
            and isinstance(before, Conv | BatchNorm)
            and before.activation is None
            and name in _MONOTONIC
        ):
            # conv -> maxpool -> relu is how convlens' own forward pass runs (and exports)
            # conv(relu) -> maxpool: the same numbers, since max and relu commute (gmp alike).
            self.layers[-2] = dataclasses.replace(before, activation=name)
            self.current = node.output[0]
            return
        if name == "softmax":
            raise self.unsupported(node, position, "a softmax that does not end the model")
        self.emit(Activation(activation=name), {}, node, position)

    # --- one node (or a pattern of a few) ------------------------------------------------

    def read(self, nodes: list[Any], position: int) -> int:
        node = nodes[position]
        op = node.op_type
        attrs = _attributes(node)
        following = nodes[position + 1] if position + 1 < len(nodes) else None
        if (
            op == "Sigmoid"
            and following is not None
            and following.op_type == "Mul"
            and sorted(following.input) == sorted([node.input[0], node.output[0]])
        ):  # x * sigmoid(x): SiLU as torch exports it
            self.data_input(node, position)
            self.activation("silu", following, position)
            return position + 2
        self.data_input(node, position)
        if op in ("Identity", "Dropout"):
            self.current = node.output[0]
            return position + 1
        if op in _ACTIVATIONS:
            if op == "LeakyRelu" and abs(attrs.get("alpha", 0.01) - 0.01) > 1e-9:
                raise self.unsupported(node, position, "alpha other than 0.01")
            if op == "Elu" and attrs.get("alpha", 1.0) != 1.0:
                raise self.unsupported(node, position, "alpha other than 1")
            if op == "Gelu" and attrs.get("approximate", b"none") not in (b"none", "none"):
                raise self.unsupported(node, position, "the tanh approximation")
            if op == "Softmax" and attrs.get("axis", -1) not in (-1, 1):
                raise self.unsupported(node, position, f"axis {attrs.get('axis')}")
            self.activation(_ACTIVATIONS[op], node, position)
            return position + 1
        handler = getattr(self, f"_{op.lower()}", None)
        if handler is None:
            raise self.unsupported(node, position, "convlens has no such operation")
        return handler(node, attrs, position, nodes)

    def _pad(self, node, attrs, position, nodes) -> int:
        mode = attrs.get("mode", b"constant")
        pads = attrs.get("pads")
        if pads is None and len(node.input) > 1:
            pads = self.constant(node.input[1], node, position).tolist()
        value = (
            float(self.constant(node.input[2], node, position))
            if len(node.input) > 2 and node.input[2]
            else 0.0
        )
        following = nodes[position + 1] if position + 1 < len(nodes) else None
        if mode not in (b"constant", "constant") or value != 0 or pads is None or len(pads) != 8:
            raise self.unsupported(node, position, "only zero padding of H and W")
        if any(pads[i] for i in (0, 1, 4, 5)) or following is None or following.op_type != "Conv":
            raise self.unsupported(node, position, "only zero padding of H and W before a Conv")
        self.pending_pads = (int(pads[2]), int(pads[6]), int(pads[3]), int(pads[7]))
        self.current = node.output[0]
        return position + 1

    def _conv(self, node, attrs, position, nodes) -> int:
        weight = self.constant(node.input[1], node, position).astype(np.float32)
        bias = (
            self.constant(node.input[2], node, position).astype(np.float32)
            if len(node.input) > 2 and node.input[2]
            else None
        )
        if attrs.get("group", 1) != 1 or set(attrs.get("dilations", [1, 1])) != {1}:
            raise self.unsupported(node, position, "groups or dilations")
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise self.unsupported(node, position, "auto_pad")
        strides = attrs.get("strides", [1, 1])
        if strides[0] != strides[1]:
            raise self.unsupported(node, position, f"non-square strides {strides}")
        top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
        if self.pending_pads is not None:
            t, b, l_, r = self.pending_pads
            top, bottom, left, right = top + t, bottom + b, left + l_, right + r
            self.pending_pads = None
        kh, kw = weight.shape[2:]
        _, h, w = self.shape
        stride = int(strides[0])
        if (top, bottom, left, right) == (0, 0, 0, 0):
            padding: str | int = "valid"
        elif (top, bottom) == same_padding(h, kh, stride) and (left, right) == same_padding(
            w, kw, stride
        ):
            padding = "same"
        elif top == bottom == left == right:
            padding = int(top)
        else:
            raise self.unsupported(node, position, f"pads {[top, left, bottom, right]}")
        layer = Conv(filters=int(weight.shape[0]), kernel=(int(kh), int(kw)), stride=stride,
                     padding=padding, bias=bias is not None, name=self.name_of(node))  # fmt: skip
        tensors = {"weight": weight} | ({"bias": bias} if bias is not None else {})
        self.emit(layer, tensors, node, position)
        return position + 1

    def _maxpool(self, node, attrs, position, nodes) -> int:
        return self._window(MaxPool, node, attrs, position)

    def _averagepool(self, node, attrs, position, nodes) -> int:
        return self._window(AvgPool, node, attrs, position)

    def _window(self, cls: type[MaxPool], node, attrs, position) -> int:
        kernel = attrs.get("kernel_shape", [])
        strides = attrs.get("strides", kernel)
        if len(set(kernel)) != 1 or len(set(strides)) != 1:
            raise self.unsupported(node, position, "a non-square window or stride")
        if any(attrs.get("pads", [0])) or attrs.get("ceil_mode", 0) or len(node.output) > 1:
            raise self.unsupported(node, position, "pads, ceil_mode or indices")
        if set(attrs.get("dilations", [1])) != {1}:
            raise self.unsupported(node, position, "dilations")
        size, stride = int(kernel[0]), int(strides[0])
        layer = cls(size=size, stride=None if stride == size else stride)
        self.emit(layer, {}, node, position)
        return position + 1

    def _globalaveragepool(self, node, attrs, position, nodes) -> int:
        self.emit(GlobalAvgPool(), {}, node, position)
        return self._skip_to_vector(nodes, position + 1)

    def _globalmaxpool(self, node, attrs, position, nodes) -> int:
        self.emit(GlobalMaxPool(), {}, node, position)
        return self._skip_to_vector(nodes, position + 1)

    def _reducemean(self, node, attrs, position, nodes) -> int:
        return self._reduce_over_the_map(GlobalAvgPool(), "a mean", node, attrs, position, nodes)

    def _reducemax(self, node, attrs, position, nodes) -> int:
        return self._reduce_over_the_map(GlobalMaxPool(), "a max", node, attrs, position, nodes)

    def _reduce_over_the_map(self, layer, what, node, attrs, position, nodes) -> int:
        """ReduceMean/ReduceMax over H and W: gap/gmp, the axes an attribute (opset < 18)
        or a stored input; keepdims=1 (torch's) is (N, C, 1, 1) until the Flatten after."""
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1:
            axes = self.constant(node.input[1], node, position).tolist()
        if sorted(int(a) % 4 for a in (axes or [])) != [2, 3] or len(self.shape) != 3:
            raise self.unsupported(node, position, f"{what} over other axes than H and W")
        self.emit(layer, {}, node, position)
        return (
            self._skip_to_vector(nodes, position + 1) if attrs.get("keepdims", 1) else position + 1
        )

    def _skip_to_vector(self, nodes: list[Any], position: int) -> int:
        """After a global pool (N, C, 1, 1) a Flatten or Reshape makes (N, C): already ours."""
        if position < len(nodes) and nodes[position].op_type in ("Flatten", "Reshape", "Squeeze"):
            self.current = nodes[position].output[0]
            return position + 1
        return position

    def _flatten(self, node, attrs, position, nodes) -> int:
        if attrs.get("axis", 1) != 1:
            raise self.unsupported(node, position, f"axis {attrs.get('axis')}")
        return self._to_vector(node, position)

    def _reshape(self, node, attrs, position, nodes) -> int:
        target = self.constant(node.input[1], node, position).tolist()
        size = int(np.prod(self.shape))
        if len(target) != 2 or target[1] not in (-1, size):
            raise self.unsupported(node, position, f"a reshape to {target}")
        return self._to_vector(node, position)

    def _to_vector(self, node, position) -> int:
        if len(self.shape) == 1:
            self.current = node.output[0]
        else:
            self.emit(Flatten(), {}, node, position)
        return position + 1

    def _gemm(self, node, attrs, position, nodes) -> int:
        if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA"):
            raise self.unsupported(node, position, "alpha, beta or transA")
        weight = self.constant(node.input[1], node, position).astype(np.float32)
        weight = weight if attrs.get("transB", 0) else weight.T  # -> (out, in)
        bias = (
            self.constant(node.input[2], node, position).astype(np.float32).reshape(-1)
            if len(node.input) > 2 and node.input[2]
            else np.zeros(weight.shape[0], np.float32)
        )
        return self._dense(weight, bias, node, position, position + 1)

    def _matmul(self, node, attrs, position, nodes) -> int:
        weight = self.constant(node.input[1], node, position).astype(np.float32).T
        following = nodes[position + 1] if position + 1 < len(nodes) else None
        if (
            following is not None
            and following.op_type == "Add"
            and node.output[0] in following.input
        ):
            other = next(name for name in following.input if name != node.output[0])
            bias = self.constant(other, following, position + 1).astype(np.float32).reshape(-1)
            return self._dense(weight, bias, following, position, position + 2, node)
        return self._dense(weight, np.zeros(weight.shape[0], np.float32), node, position,
                           position + 1)  # fmt: skip

    def _dense(self, weight, bias, last_node, position, next_position, first_node=None) -> int:
        if len(self.shape) != 1:
            raise self.unsupported(last_node, position, "a matrix product of an image")
        layer = Dense(units=int(weight.shape[0]), name=self.name_of(first_node or last_node))
        self.emit(layer, {"weight": weight, "bias": bias}, last_node, position)
        return next_position

    def _batchnormalization(self, node, attrs, position, nodes) -> int:
        scale, shift, mean, var = (
            self.constant(name, node, position).astype(np.float32) for name in node.input[1:5]
        )
        # ONNX keeps both as float32 (1e-3 reads back as 0.0010000000474974513): the
        # shortest decimal that is the same float32 is what the model was written with.
        epsilon = float(str(np.float32(attrs.get("epsilon", 1e-5))))
        momentum = round(1.0 - float(str(np.float32(attrs.get("momentum", 0.9)))), 10)
        layer = BatchNorm(epsilon=epsilon, momentum=momentum, name=self.name_of(node))
        tensors = {"weight": scale, "bias": shift, "running_mean": mean, "running_var": var}
        self.emit(layer, tensors, node, position)
        return position + 1

    def name_of(self, node: Any) -> str | None:
        """The convlens layer name an export wrote into the weights' names, if any."""
        for name in node.input[1:]:
            match = re.search(r"blocks\.([A-Za-z0-9_-]+)\.0\.(weight|bias)$", name)
            if match and match.group(1) not in {getattr(x, "name", None) for x in self.layers}:
                return match.group(1)
        return None


def _attributes(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}
