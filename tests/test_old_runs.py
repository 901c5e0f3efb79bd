"""Run folders written by earlier convlens versions still load, evaluate and resume.

``tests/fixtures/runs/tiny-VERSION`` is a real run folder written by that version
(``scripts/make_fixture_run.py``): a 6,810-parameter model trained two epochs on a subset
of the embedded Fashion-MNIST sample. Its files are never rewritten by hand; a test that
must change one writes to a copy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from convlens.cli.main import main
from convlens.runs import Run

FIXTURES = Path(__file__).parent / "fixtures" / "runs"
OLD_RUNS = sorted(p for p in FIXTURES.iterdir() if (p / "config.json").is_file())


def test_there_is_an_old_run_to_load() -> None:
    assert [p.name for p in OLD_RUNS][:1] == ["tiny-0.1.0"]


@pytest.fixture(params=OLD_RUNS, ids=[p.name for p in OLD_RUNS])
def old_run(request: pytest.FixtureRequest) -> Path:
    return request.param


def test_an_old_run_reads_back(old_run: Path) -> None:
    run = Run.open(old_run)
    saved = json.loads((old_run / "config.json").read_text())
    assert run.config == saved
    assert run.spec().to_dict() == saved["model"] == json.loads((old_run / "spec.json").read_text())
    assert run.class_names == saved["class_names"] and len(run.class_names) == 10
    assert run.input_shape == (1, 28, 28)
    assert run.state()["status"] == "complete" and run.state()["epochs_done"] == 2
    history = run.history()
    assert [row["epoch"] for row in history] == [1.0, 2.0]
    assert run.metrics()["test_count"] == saved["dataset"]["test_count"] == 32
    network = run.load_network()
    assert sum(p.numel() for p in network.parameters()) == 6810


def test_an_old_runs_typed_config_says_what_its_file_says(old_run: Path) -> None:
    """What the product reads (Run.run_config) agrees with the file read as a dict."""
    from convlens.provenance import DataNote

    run = Run.open(old_run)
    saved, typed = run.config, run.run_config
    assert run.data_note == DataNote.from_config(saved) == typed.data_note
    assert typed.model.name == saved["model"]["name"] and typed.recipe == saved.get("recipe")
    assert typed.train.epochs == saved["train"]["epochs"] == 2
    assert typed.train.tta_flip == saved["train"].get("tta_flip", False)
    assert typed.dataset.is_sample == saved["dataset"]["is_sample"]
    assert typed.imported is None and typed.created == saved["created"]


def test_an_old_run_evaluates_to_its_own_metrics(old_run: Path, capsys) -> None:
    """evaluate reloads the run's data and its test subset: the figure metrics.json holds."""
    assert main(["evaluate", str(old_run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    metrics = json.loads((old_run / "metrics.json").read_text())
    assert result["test_count"] == metrics["test_count"]
    assert result["test_accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-9)
    assert result["test_loss"] == pytest.approx(metrics["test_loss"], rel=1e-4)
    assert result["confusion"] == metrics["confusion"]


def test_an_old_run_resumes(old_run: Path, tmp_path: Path, capsys) -> None:
    copy = shutil.copytree(old_run, tmp_path / old_run.name)
    assert main(["train", "--resume", str(copy), "--epochs", "3", "--quiet"]) == 0
    state = json.loads((copy / "state.json").read_text())
    assert state["status"] == "complete" and state["epochs_done"] == 3
    assert [row["epoch"] for row in Run(copy).history()] == [1.0, 2.0, 3.0]
    before = json.loads((old_run / "config.json").read_text())
    after = json.loads((copy / "config.json").read_text())
    assert after == {**before, "train": {**before["train"], "epochs": 3}}
