"""A model read from another framework: a convlens spec plus its weights in torch layout.

Every importer (Keras, PyTorch, ONNX) ends here: it translates the foreign model layer by
layer into :class:`ImportedModel`, whose ``weights[i]`` holds the tensors of
``spec.layers[i]`` already converted to PyTorch's layout (``weight`` (out, in, kh, kw)
for a conv, (out, in) for a dense layer, ``running_mean``/``running_var`` for batchnorm).
:func:`to_network` then builds the ordinary :class:`Network` and copies them in, checking
every shape, so the imported model is a convlens model like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convlens import fileio
from convlens.errors import ConvlensError, ModelImportError, SpecError
from convlens.models.layers import BatchNorm, Conv, Dense, LayerSpec
from convlens.models.network import Network, build_network
from convlens.models.spec import ModelSpec

# The torch parameter and buffer names each layer kind carries, in its block's first module.
PARAMETER_NAMES: dict[type[LayerSpec], tuple[str, ...]] = {
    Conv: ("weight", "bias"),
    Dense: ("weight", "bias"),
    BatchNorm: ("weight", "bias", "running_mean", "running_var"),
}


#: The largest model file read: far beyond any small image classifier (the lesson's CNN
#: is 1 MB), small enough that reading one cannot exhaust a laptop's memory.
MAX_MODEL_BYTES = 2 << 30


def read_model_file(path: Path) -> bytes:
    """The bytes of a model file: a regular file (never a FIFO or device) under 2 GiB."""
    try:
        return fileio.read_regular(path, MAX_MODEL_BYTES)
    except FileNotFoundError:
        raise ModelImportError(f"{path} does not exist") from None
    except ConvlensError as err:
        raise ModelImportError(str(err)) from None


@dataclass(frozen=True)
class ImportedModel:
    """What an importer read: ``spec`` (with ``input_shape`` (C, H, W)), the weights of
    each layer in torch layout, and where it came from (recorded in the run's config)."""

    spec: ModelSpec
    weights: tuple[dict[str, np.ndarray], ...]
    origin: dict[str, Any] = field(default_factory=dict)  # format, file, version, notes
    class_names: tuple[str, ...] | None = None  # when the file names them

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.spec.layers):
            raise ValueError("one weights mapping per layer")
        if self.spec.input_shape is None:
            raise SpecError(f"model '{self.spec.name}' has no input shape")


def to_network(model: ImportedModel) -> Network:
    """The convlens network of ``model`` with its weights copied in, in eval mode."""
    import torch

    network = build_network(model.spec, model.spec.input_shape)
    names = network.names
    with torch.no_grad():
        for name, layer, tensors in zip(names, model.spec.layers, model.weights, strict=True):
            expected = PARAMETER_NAMES.get(type(layer), ())
            if not expected:
                continue
            module = network.blocks[name][0]  # Sequential(layer, activation)
            for key in expected:
                target = getattr(module, key)
                if target is None:  # conv(..., bias=false)
                    continue
                value = tensors.get(key)
                if value is None:
                    raise SpecError(f"layer '{name}': the file holds no {key}")
                if tuple(value.shape) != tuple(target.shape):
                    raise SpecError(
                        f"layer '{name}': {key} has shape {tuple(value.shape)} in the file but "
                        f"the layer needs {tuple(target.shape)}; the file is inconsistent"
                    )
                target.copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))
    return network.eval()
