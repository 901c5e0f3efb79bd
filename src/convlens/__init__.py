"""convlens: build, train, compare and look inside convolutional image classifiers.

The library is the product; the ``convlens`` command and the web page call these same
functions. Names load lazily, so ``import convlens`` does not import torch::

    import convlens

    run = convlens.train("cnn", config=convlens.TrainConfig(epochs=5))
    print(convlens.summary("cnn"))
    table = convlens.compare(["dnn", "cnn"])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from convlens.version import __version__ as __version__

# public name -> "module:attribute"
_EXPORTS = {
    "ConvlensError": "convlens.errors:ConvlensError",
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
    "sweep": "convlens.experiments.sweep:sweep",
    "write_report": "convlens.reports:write_report",
    "export_onnx": "convlens.export:export_onnx",
    "import_model": "convlens.interop:import_model",
    "from_torch": "convlens.interop.torch:from_torch",
}

__all__ = [
    "PRESETS",
    "ConvlensError",
    "DataConfig",
    "Dataset",
    "ModelSpec",
    "Network",
    "Run",
    "TrainConfig",
    "build_network",
    "compare",
    "evaluate_network",
    "export_onnx",
    "from_torch",
    "import_model",
    "list_runs",
    "load_dataset",
    "parse_spec",
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
    model: str, input_shape: tuple[int, int, int] = (1, 28, 28), explain: bool = False
) -> str:
    """The Keras-style summary text of a preset, spec file or layer list."""
    from convlens.models import resolve_model
    from convlens.models.network import build_network
    from convlens.models.summary import summarize

    spec = resolve_model(model)
    return summarize(build_network(spec, spec.input_shape or input_shape)).format(explain)


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
    from convlens.data import Dataset, load_dataset, prepare_image
    from convlens.data.config import DataConfig
    from convlens.errors import ConvlensError
    from convlens.experiments.sweep import sweep
    from convlens.export import export_onnx
    from convlens.interop import import_model
    from convlens.interop.torch import from_torch
    from convlens.models import PRESETS, ModelSpec, parse_spec, resolve_model
    from convlens.models.network import Network, build_network
    from convlens.models.summary import summarize
    from convlens.predict import predict_arrays, predict_files
    from convlens.recipe import TrainConfig
    from convlens.reports import write_report
    from convlens.runs import Run, list_runs
    from convlens.train.evaluation import evaluate_network
    from convlens.train.session import resume, train
