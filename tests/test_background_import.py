"""BackgroundImport: modules imported on another thread, joined before they are needed."""

from __future__ import annotations

import importlib
import sys
import threading

import pytest

from convlens.background_import import BackgroundImport
from convlens.models.onnx_runtime import EXPORTER_MODULES, onnx_installed
from convlens.train.engine import OPTIMIZER_MODULES
from convlens.train.session import FIGURE_MODULES


@pytest.fixture
def module_folder(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    made: list[str] = []
    yield tmp_path, made
    for name in made:
        sys.modules.pop(name, None)


def test_the_modules_are_imported_on_another_thread(module_folder) -> None:
    folder, made = module_folder
    made.append("convlens_probe_ahead")
    (folder / "convlens_probe_ahead.py").write_text(
        "import threading\nIMPORTED_ON = threading.current_thread().name\n"
    )
    ahead = BackgroundImport(["convlens_probe_ahead"])
    ahead.wait()
    module = sys.modules["convlens_probe_ahead"]
    assert module.IMPORTED_ON == "convlens-background-import"
    assert threading.current_thread().name != module.IMPORTED_ON


def test_a_module_that_fails_raises_where_it_is_needed_not_in_the_background(
    module_folder,
) -> None:
    folder, made = module_folder
    made += ["convlens_probe_broken", "convlens_probe_after"]
    (folder / "convlens_probe_broken.py").write_text("raise RuntimeError('broken on purpose')\n")
    (folder / "convlens_probe_after.py").write_text("VALUE = 7\n")
    ahead = BackgroundImport(
        ["convlens_probe_missing", "convlens_probe_broken", "convlens_probe_after"]
    )
    ahead.wait()  # no error here
    assert sys.modules["convlens_probe_after"].VALUE == 7  # the ones after still came
    with pytest.raises(RuntimeError, match="broken on purpose"):
        importlib.import_module("convlens_probe_broken")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("convlens_probe_missing")


def test_nothing_left_to_import_starts_no_thread() -> None:
    ahead = BackgroundImport(["json", "convlens"])
    assert ahead.modules == ()
    ahead.wait()  # returns at once


def test_the_names_a_run_imports_ahead_are_real_modules() -> None:
    # A misspelt name would be skipped without a word, and the run would pay the import
    # later again: every one must import.
    names = (*OPTIMIZER_MODULES, *FIGURE_MODULES, *(EXPORTER_MODULES if onnx_installed() else ()))
    for name in names:
        importlib.import_module(name)


def test_torch_optim_does_import_dynamo_in_a_fresh_process() -> None:
    # The premise of OPTIMIZER_MODULES: should a torch release stop importing it, the
    # name is only a wasted import, and this says so.
    import subprocess

    code = (
        "import sys, torch; assert 'torch._dynamo' not in sys.modules; "
        "torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))]); "
        "print(all(name in sys.modules for name in sys.argv[1:]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *OPTIMIZER_MODULES], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "True"
