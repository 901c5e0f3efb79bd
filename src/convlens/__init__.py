"""convlens: build, train, compare and look inside convolutional image classifiers.

The library is the product; the ``convlens`` command and the web page call these same
functions. Names load lazily, so ``import convlens`` does not import torch::

    import convlens

    convlens.summary("cnn", explain=True)        # a table in a notebook; print() for text
    run = convlens.train("cnn", config=convlens.TrainConfig(epochs=5))
    convlens.journey(run)                         # the lesson's three shoes, filter 1
    table = convlens.compare(["dnn", "cnn"])

Warnings that matter to a result (the embedded sample used, smoke mode) are
:class:`ConvlensWarning` s, also logged on the ``convlens`` logger.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from convlens.version import __version__ as __version__

# public name -> "module:attribute"
_EXPORTS = {
    "ConvlensError": "convlens.errors:ConvlensError",
    "ConvlensWarning": "convlens.notices:ConvlensWarning",
    "SampleDataWarning": "convlens.notices:SampleDataWarning",
    "SmokeModeWarning": "convlens.notices:SmokeModeWarning",
    "Preparation": "convlens.data.preparation:Preparation",
    "as_images": "convlens.data.preparation:as_images",
    "Dataset": "convlens.data:Dataset",
    "load_dataset": "convlens.data:load_dataset",
    "prepare_image": "convlens.data:prepare_image",
    "ModelSpec": "convlens.models:ModelSpec",
    "PRESETS": "convlens.models:PRESETS",
    "resolve_model": "convlens.models:resolve_model",
    "parse_spec": "convlens.models:parse_spec",
    "build_network": "convlens.models.network:build_network",
    "Network": "convlens.models.network:Network",
    "summarize": "convlens.models.summary:summarize",
    "TrainConfig": "convlens.recipe:TrainConfig",
    "DataConfig": "convlens.data.config:DataConfig",
    "train": "convlens.train.session:train",
    "resume": "convlens.train.session:resume",
    "Run": "convlens.runs:Run",
    "list_runs": "convlens.runs:list_runs",
    "evaluate_network": "convlens.train.evaluation:evaluate_network",
    "predict_files": "convlens.predict:predict_files",
    "predict_arrays": "convlens.predict:predict_arrays",
    "compare": "convlens.compare:compare",
    "convolve": "convlens.convolution:convolve",
    "journey": "convlens.look:journey",
    "explain": "convlens.look:explain",
    "filters": "convlens.look:filters",
    "predict": "convlens.look:predict",
    "evaluate": "convlens.look:evaluate",
    "sweep": "convlens.experiments.sweep:sweep",
    "write_report": "convlens.reports:write_report",
    "export_onnx": "convlens.export:export_onnx",
    "import_model": "convlens.interop:import_model",
    "from_torch": "convlens.interop.torch:from_torch",
    "export_keras": "convlens.interop.keras_export:export_keras",
}

__all__ = [
    "PRESETS",
    "ConvlensError",
    "ConvlensWarning",
    "DataConfig",
    "Dataset",
    "ModelSpec",
    "Network",
    "Preparation",
    "Run",
    "SampleDataWarning",
    "SmokeModeWarning",
    "TrainConfig",
    "as_images",
    "build_network",
    "compare",
    "convolve",
    "evaluate",
    "evaluate_network",
    "explain",
    "export_keras",
    "export_onnx",
    "filters",
    "from_torch",
    "import_model",
    "journey",
    "list_runs",
    "load_dataset",
    "parse_spec",
    "predict",
    "predict_arrays",
    "predict_files",
    "prepare_image",
    "resolve_model",
    "resume",
    "summarize",
    "summary",
    "sweep",
    "train",
    "write_report",
]


def summary(
    model: str, input_shape: tuple[int, int, int] | None = None, explain: bool = False
) -> ModelSummary:
    """The Keras-style summary of a preset, spec file or layer list.

    ``input_shape`` is ``(H, W, C)`` as in the CLI, spec files and Keras, e.g.
    ``(32, 32, 3)``; default: the spec's own, else 28x28 grey. ``print()`` gives the
    text (with the why of every shape when ``explain``); a notebook shows a table.
    """
    import dataclasses

    from convlens.models import resolve_model
    from convlens.models.inputs import channels_first
    from convlens.models.network import build_network
    from convlens.models.summary import summarize

    spec = resolve_model(model)
    shape = channels_first(input_shape) if input_shape is not None else None
    network = build_network(spec, shape or spec.input_shape or (1, 28, 28))
    return dataclasses.replace(summarize(network), explained=explain)


class _Package(types.ModuleType):
    """The package module: a submodule never hides the function of the same name.

    ``convlens.compare`` (the function) and ``convlens.compare`` (its module) share a
    name; importing the module sets it as an attribute of the package, which made
    ``convlens.compare([...])`` fail with "'module' object is not callable" once anything
    had imported ``convlens.compare`` first. ``import convlens.compare`` and
    ``from convlens.compare import ...`` still find the module in ``sys.modules``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'convlens' has no attribute '{name}'")
    module_name, attribute = target.split(":")
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # for editors and type checkers
    from convlens.compare import compare
    from convlens.convolution import convolve
    from convlens.data import Dataset, load_dataset, prepare_image
    from convlens.data.config import DataConfig
    from convlens.data.preparation import Preparation, as_images
    from convlens.errors import ConvlensError
    from convlens.experiments.sweep import sweep
    from convlens.export import export_onnx
    from convlens.interop import import_model
    from convlens.interop.keras_export import export_keras
    from convlens.interop.torch import from_torch
    from convlens.look import evaluate, explain, filters, journey, predict
    from convlens.models import PRESETS, ModelSpec, parse_spec, resolve_model
    from convlens.models.network import Network, build_network
    from convlens.models.summary import ModelSummary, summarize
    from convlens.notices import ConvlensWarning, SampleDataWarning, SmokeModeWarning
    from convlens.predict import predict_arrays, predict_files
    from convlens.recipe import TrainConfig
    from convlens.reports import write_report
    from convlens.runs import Run, list_runs
    from convlens.train.evaluation import evaluate_network
    from convlens.train.session import resume, train
