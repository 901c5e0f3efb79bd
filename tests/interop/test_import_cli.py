"""`convlens import` writes an ordinary run folder, and every command works on it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from convlens.cli.main import main
from convlens.runs import Run


def _import(path: Path, runs: Path, *extra: str) -> int:
    return main(["import", str(path), "--runs", str(runs), *extra])


def test_import_writes_an_ordinary_run(tmp_path, keras_fixtures, capsys) -> None:
    assert _import(keras_fixtures.path("lesson"), tmp_path, "--name", "mine") == 0
    out = capsys.readouterr().out
    assert 'Model: "lesson"' in out and "imported" in out
    run = Run.open("mine", tmp_path)
    files = {p.name for p in run.path.iterdir()}
    assert {"config.json", "spec.json", "model.safetensors", "summary.txt", "state.json"} <= files
    state = run.state()
    assert state["status"] == "imported" and "lesson.keras" in state["message"]
    config = run.config
    assert config["imported"]["format"] == "keras" and len(config["imported"]["sha256"]) == 64
    assert config["class_names"][0] == "T-shirt/top" and config["input_shape"] == [1, 28, 28]
    network = run.load_network()
    images = torch.from_numpy(keras_fixtures.images()).float() / 255
    got = network.predict_proba(images).double().numpy()
    assert np.abs(got - keras_fixtures.probabilities("lesson")).max() < 1e-5
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # no staging folder left


def test_runs_lists_an_imported_run_without_epochs(tmp_path, keras_fixtures, capsys) -> None:
    assert _import(keras_fixtures.path("lesson"), tmp_path) == 0
    capsys.readouterr()
    assert main(["runs", "--runs", str(tmp_path)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "lesson" in line)
    assert row.split()[2:4] == ["imported", "-"]


def test_unsupported_layer_one_line_exit_2_no_folder(tmp_path, keras_fixtures, capsys) -> None:
    assert _import(keras_fixtures.path("unsupported", ".h5"), tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "layer 2 'depthwise_conv2d' (DepthwiseConv2D) is not supported" in err
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_class_names_from_a_list_or_a_file(tmp_path, keras_fixtures) -> None:
    names = [f"class {i}" for i in range(10)]
    listed = tmp_path / "classes.txt"
    listed.write_text("\n".join(names) + "\n")
    assert _import(keras_fixtures.path("lesson"), tmp_path, "--classes", str(listed)) == 0
    assert Run.open("lesson", tmp_path).class_names == names
    text = ",".join("abcdefghij")
    assert _import(keras_fixtures.path("logits"), tmp_path, "--classes", text) == 0
    assert Run.open("logits", tmp_path).class_names == list("abcdefghij")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--classes", "a,b,c"], "10 outputs but 3 class names"),
        (["--data", "folder:/nowhere", "--classes", "a,b"], "10 outputs but 2"),
        (["--name", "../up"], "not valid"),
    ],
)
def test_bad_options_leave_no_run(tmp_path, keras_fixtures, capsys, extra, message) -> None:
    runs = tmp_path / "runs"
    assert _import(keras_fixtures.path("lesson"), runs, *extra) == 2
    assert message in capsys.readouterr().err
    assert not runs.exists() or list(runs.iterdir()) == []


def test_a_used_name_is_refused(tmp_path, keras_fixtures, capsys) -> None:
    assert _import(keras_fixtures.path("lesson"), tmp_path) == 0
    before = (tmp_path / "lesson" / "model.safetensors").read_bytes()
    assert _import(keras_fixtures.path("strided"), tmp_path, "--name", "lesson") == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "lesson" / "model.safetensors").read_bytes() == before


def test_a_failure_while_writing_leaves_nothing(tmp_path, keras_fixtures, monkeypatch) -> None:
    from convlens.errors import ConvlensError
    from convlens.models import weights

    def full_disk(*args, **kwargs):
        raise ConvlensError("cannot write model.safetensors: No space left on device")

    monkeypatch.setattr(weights, "save_weights", full_disk)
    assert _import(keras_fixtures.path("lesson"), tmp_path) == 2
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def imported(tmp_path_factory, keras_fixtures) -> Path:
    """The lesson-shaped Keras model, imported once; judged on the embedded sample."""
    runs = tmp_path_factory.mktemp("imported-runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVLENS_CACHE", str(runs / "cache"))
        assert _import(keras_fixtures.path("lesson"), runs, "--name", "keras-cnn") == 0
    return runs


def _photo(tmp_path: Path, keras_fixtures) -> Path:
    from PIL import Image

    path = tmp_path / "boot.png"
    Image.fromarray(255 - keras_fixtures.images()[0, 0]).save(path)  # a dark-on-light photo
    return path


def test_evaluate_an_imported_run(imported, capsys) -> None:
    assert (
        main(["evaluate", "keras-cnn", "--runs", str(imported), "--whole-test-set", "--json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["test_count"] == 1000 and 0 <= report["test_accuracy"] <= 1  # the sample


def test_predict_journey_explain_filters_on_an_imported_run(
    imported, tmp_path, keras_fixtures, capsys
) -> None:
    runs = ["--runs", str(imported)]
    photo = _photo(tmp_path, keras_fixtures)
    assert main(["predict", "keras-cnn", str(photo), "--json", *runs]) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert predicted
    journey = tmp_path / "journey.png"
    assert main(["journey", "keras-cnn", "--images", "0,1,2", "--out", str(journey), *runs]) == 0
    explain = tmp_path / "explain.png"
    assert main(["explain", "keras-cnn", "--index", "3", "--out", str(explain), *runs]) == 0
    filters = tmp_path / "filters.png"
    assert main(["filters", "keras-cnn", "--out", str(filters), *runs]) == 0
    for figure in (journey, explain, filters):
        assert figure.stat().st_size > 1000


def test_report_and_onnx_export_of_an_imported_run(imported, tmp_path, capsys) -> None:
    runs = ["--runs", str(imported)]
    report = tmp_path / "report.html"
    assert main(["report", "keras-cnn", "--out", str(report), *runs]) == 0
    html = report.read_text()
    assert "Imported from lesson.keras" in html and "test accuracy" in html
    assert "Per-class accuracy" in html and "Misclassified" in html
    onnx_path = tmp_path / "model.onnx"
    assert main(["export", "keras-cnn", "--onnx", str(onnx_path), *runs]) == 0
    assert "ONNX Runtime matches PyTorch" in capsys.readouterr().out


def test_compare_takes_an_imported_run_beside_a_preset(imported, tmp_path, capsys) -> None:
    """The imported Keras model is judged on the same images as the preset trained now."""
    runs = ["--runs", str(imported)]
    args = ["compare", "dnn", "keras-cnn", "--epochs", "1", "--train-subset", "600",
            "--test-subset", "300", "--precision", "fp32", "--name", "mine", *runs]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "keras-cnn" in out and "dnn" in out
    table = json.loads((imported / "mine" / "compare.json").read_text())
    rows = {row["model"]: row for row in table["rows"]}
    assert rows["keras-cnn"]["test_count"] == rows["dnn"]["test_count"] == 300
    assert rows["keras-cnn"]["seconds_per_epoch"] is None  # trained elsewhere
    assert rows["dnn"]["seconds_per_epoch"] > 0
    assert not (imported / "mine" / "keras-cnn").exists()  # judged, not trained again
    assert (imported / "mine" / "compare.png").stat().st_size > 1000
