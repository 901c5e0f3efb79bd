"""Models as data: layer specs, model specs, presets, the builder, trace and summary."""

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
    Residual,
)
from convlens.models.registry import PRESETS, Preset, get_preset, resolve_model
from convlens.models.spec import ModelSpec, load_spec_file, parse_spec

__all__ = [
    "PRESETS",
    "Activation",
    "AvgPool",
    "BatchNorm",
    "Conv",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAvgPool",
    "GlobalMaxPool",
    "LayerSpec",
    "MaxPool",
    "ModelSpec",
    "Preset",
    "Residual",
    "get_preset",
    "load_spec_file",
    "parse_spec",
    "resolve_model",
]
