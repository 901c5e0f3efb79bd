"""``import_model``: a model from another framework as an ordinary convlens run folder.

::

    runs/NAME/
      config.json        spec, data, class names, input shape, and "imported": its origin
      spec.json          the translated spec, in the lesson's vocabulary
      model.safetensors  the weights, converted to convlens' (PyTorch's) layout
      summary.txt        the Keras-style summary with the why of every shape
      state.json         status "imported", with where it came from

Nothing half-written: the folder is filled under a temporary name beside it and renamed
into place only once every file is there, so a failure (an unsupported layer, a class
count that does not match, a full disk) leaves no run folder behind.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convlens import fileio, runs
from convlens.errors import ConvlensError, ModelImportError, SpecError
from convlens.interop.imported import ImportedModel, to_network
from convlens.runs import Run

if TYPE_CHECKING:
    from torch import nn

    from convlens.data.config import DataConfig
    from convlens.run_config import RunConfig

#: File suffixes import_model reads, and what reads them.
FORMATS = {
    ".keras": "Keras 3 (.keras)",
    ".h5": "Keras HDF5 (.h5)",
    ".hdf5": "Keras HDF5 (.h5)",
    ".onnx": "ONNX (.onnx)",
    ".pt": "PyTorch state_dict (.pt, with --spec)",
    ".pth": "PyTorch state_dict (.pth, with --spec)",
}

#: Datasets whose images and class names are known without loading them.
_KNOWN_DATA = {"fashion-mnist": (1, 28, 28), "mnist": (1, 28, 28)}


def read_model(
    source: str | Path | nn.Module,
    *,
    input_shape: tuple[int, int, int] | None = None,
    spec: str | None = None,
) -> ImportedModel:
    """Read a model file (by its suffix) or a torch module into an :class:`ImportedModel`.

    ``input_shape`` (C, H, W) is needed for a torch module or a ``.pt`` state dict
    (unless ``spec`` gives one); ``spec`` names the convlens spec (preset, spec file or
    layer text) that a ``.pt`` state dict belongs to.
    """
    if not isinstance(source, str | os.PathLike):
        from convlens.interop.torch import read_torch_module

        if input_shape is None:
            raise ModelImportError("a torch module needs input_shape=(C, H, W), e.g. (1, 28, 28)")
        return read_torch_module(source, input_shape)
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in (".keras", ".h5", ".hdf5"):
        from convlens.interop.keras import read_keras

        return read_keras(path)
    if suffix == ".onnx":
        from convlens.interop.onnx import read_onnx

        return read_onnx(path)
    if suffix in (".pt", ".pth"):
        from convlens.interop.torch import read_state_dict

        return read_state_dict(path, spec, input_shape)
    raise ModelImportError(
        f"{path}: cannot tell the format from '{suffix or 'no suffix'}'; convlens imports "
        + ", ".join(dict.fromkeys(FORMATS.values()))
    )


def import_model(
    source: str | Path | nn.Module,
    name: str | None = None,
    *,
    data: str | None = None,
    classes: str | Sequence[str] | None = None,
    runs_dir: str | Path | None = None,
    input_shape: tuple[int, int, int] | None = None,
    spec: str | None = None,
) -> Run:
    """Import ``source`` (a ``.keras``, ``.h5``, ``.onnx`` or ``.pt`` file, or a torch
    ``nn.Sequential``) into ``runs_dir/name`` and return the run.

    ``data`` is the dataset it is judged on (default ``fashion-mnist``; ``folder:DIR``
    with images of the model's size); ``classes`` the class names, as a list, a
    comma-separated text or a file with one name a line (default: the dataset's).
    """
    model = read_model(source, input_shape=input_shape, spec=spec)
    try:
        network = to_network(model)
    except SpecError as err:
        from convlens.models.summary import summary_until_failure

        failure = ModelImportError(f"{_label(source)}: {err}")
        failure.partial_summary = summary_until_failure(model.spec, model.spec.input_shape)
        raise failure from None
    data_config = _data_config(data or "fashion-mnist", model.spec.input_shape)
    class_names = _class_names(classes, model, data_config, network.num_classes)
    stem = name or runs.safe_name(Path(str(source)).stem if _is_path(source) else model.spec.name)
    run_name = runs.check_name(stem)
    root = Path(runs_dir or runs.default_runs_dir())
    final = root / run_name
    if final.exists():
        raise ModelImportError(
            f"{final} already exists; choose another name with --name (or remove that run)"
        )
    origin = {**model.origin, "imported": dt.datetime.now().isoformat(timespec="seconds")}
    config = _run_config(run_name, model, data_config, class_names, origin)
    return _write_atomically(root, final, config, model, network, origin)


def _write_atomically(
    root: Path,
    final: Path,
    config: RunConfig,
    model: ImportedModel,
    network: Any,
    origin: dict[str, Any],
) -> Run:
    from convlens.models.summary import summarize
    from convlens.models.weights import save_weights

    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".import", dir=root))
    except OSError as err:
        raise ConvlensError(f"cannot write into {root}: {err.strerror or err}") from None
    try:
        draft = Run(staging)
        fileio.write_json(draft.file(runs.CONFIG), config.to_dict())
        fileio.write_json(draft.file(runs.SPEC), model.spec.to_dict())
        save_weights(network, draft.file(runs.WEIGHTS), model.spec.to_dict())
        summary = summarize(network).format(explain=True)
        fileio.write_text(draft.file(runs.SUMMARY), summary + "\n")
        message = f"imported from {origin.get('file')} ({origin.get('format')})"
        draft.write_state("imported", 0, message)
        os.chmod(staging, 0o777 & ~_umask())
        os.rename(staging, final)  # atomic; refuses (on POSIX, if non-empty) to replace
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Run(final)


def _run_config(
    run_name: str,
    model: ImportedModel,
    data: DataConfig,
    class_names: list[str],
    origin: dict[str, Any],
) -> RunConfig:
    """The run's config.json: the typed RunConfig every run has, with ``imported`` (where
    the model came from) beside it. Its recipe is the lesson's defaults, what ``train``
    would use here: the model itself was trained elsewhere."""
    from convlens.data.preparation import Preparation
    from convlens.recipe import TrainConfig
    from convlens.run_config import DatasetFacts, RunConfig
    from convlens.version import __version__

    shape = model.spec.input_shape
    if data.dataset in _KNOWN_DATA:
        preparation = Preparation.default(shape)
    else:  # the user's own images: measure their look, as training does
        preparation = Preparation.measure(data.load(progress=False).train_images)
    facts = DatasetFacts(name=data.dataset, is_sample=False, preparation=preparation.to_dict())
    return RunConfig(
        model=model.spec,
        train=TrainConfig(),
        data=data,
        class_names=tuple(class_names),
        input_shape=shape,
        dataset=facts,
        name=run_name,
        created=dt.datetime.now().isoformat(timespec="seconds"),
        convlens_version=__version__,
        extra={"imported": origin},
    )


def _data_config(dataset: str, input_shape: tuple[int, ...]) -> DataConfig:
    """The data the run is judged on; a folder is read at the model's own image size."""
    from convlens.data.config import DataConfig

    c, h, w = input_shape
    known = _KNOWN_DATA.get(dataset)
    if known is not None and known != tuple(input_shape):
        kc, kh, kw = known
        raise ModelImportError(
            f"the model takes {h}x{w}x{c} images but {dataset} has {kh}x{kw}x{kc}; judge it "
            "on images of its size with --data folder:DIR (one sub-folder per class)"
        )
    if dataset.startswith("folder:"):
        return DataConfig(dataset=dataset, image_size=(h, w), channels=c)
    return DataConfig(dataset=dataset)


def _class_names(
    classes: str | Sequence[str] | None, model: ImportedModel, data: Any, outputs: int
) -> list[str]:
    """The names of the model's outputs: given, in the file, or the dataset's."""
    if isinstance(classes, str):
        path = Path(classes)
        if path.is_file():
            text = fileio.read_text(path)  # a regular file, at most 64 MB
            try:
                parsed = json.loads(text)
                names = [str(n) for n in parsed] if isinstance(parsed, list) else None
            except json.JSONDecodeError:
                names = None
            if names is None:
                names = [line.strip() for line in text.splitlines() if line.strip()]
        else:
            names = [part.strip() for part in classes.split(",") if part.strip()]
    elif classes is not None:
        names = [str(n) for n in classes]
    elif model.class_names:
        names = list(model.class_names)
    else:
        names = _dataset_class_names(data)
    if len(names) != outputs:
        raise ModelImportError(
            f"the model has {outputs} outputs but {len(names)} class names were found "
            f"({', '.join(names[:4])}{', ...' if len(names) > 4 else ''}); give one name per "
            "output with --classes 'a,b,c' or --classes FILE (one name a line)"
        )
    if len(set(names)) != len(names):
        raise ModelImportError("two classes have the same name; class names must be unique")
    return names


def _dataset_class_names(data: Any) -> list[str]:
    from convlens.data.catalog import FASHION_MNIST_CLASSES, MNIST_CLASSES

    if data.dataset == "fashion-mnist":
        return list(FASHION_MNIST_CLASSES)
    if data.dataset == "mnist":
        return list(MNIST_CLASSES)
    return list(data.load(progress=False).class_names)


def _is_path(source: Any) -> bool:
    return isinstance(source, str | os.PathLike)


def _label(source: Any) -> str:
    return str(source) if _is_path(source) else type(source).__name__


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
