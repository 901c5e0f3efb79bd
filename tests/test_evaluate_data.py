"""convlens evaluate judges a run on its own test images and says when the data differs."""

from __future__ import annotations

import json

import pytest

from convlens.cli.main import main


@pytest.fixture
def sample_run(tmp_path, capsys):
    """A dnn trained offline, so on the embedded sample (100 of its 1,000 test images)."""
    args = ["train", "dnn", "--epochs", "1", "--train-subset", "300", "--test-subset", "100"]
    args += ["--runs", str(tmp_path), "--name", "s", "--quiet", "--precision", "fp32"]
    assert main(args) == 0
    capsys.readouterr()
    metrics = json.loads((tmp_path / "s" / "metrics.json").read_text())
    return tmp_path, metrics


def evaluate(capsys, runs, *extra: str) -> tuple[int, str]:
    code = main(["evaluate", "s", "--runs", str(runs), *extra])
    return code, capsys.readouterr().out


def test_a_sample_run_is_judged_on_the_sample_when_the_full_data_is_found(
    sample_run, real_data_dir, capsys, monkeypatch
) -> None:
    runs, metrics = sample_run
    monkeypatch.setenv("CONVLENS_DATA", str(real_data_dir))  # the full copy is found now
    code, out = evaluate(capsys, runs, "--json")
    assert code == 0
    result = json.loads(out)
    assert result["test_count"] == 100 and result["data_difference"] == ""
    assert result["test_accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)

    # Other images are refused (the run recorded its data's fingerprint), in one line
    code = main(["evaluate", "s", "--runs", str(runs), "--data-dir", str(real_data_dir)])
    err = capsys.readouterr().err
    assert code == 2 and "differs from the data" in err and len(err.strip().splitlines()) == 1
    assert "or add --whole-test-set" in err  # and how to judge the other images anyway

    code, out = evaluate(capsys, runs, "--whole-test-set")  # asked for: said plainly
    assert code == 0
    assert (
        "NOTE: the data differs from what this run was trained on: it was judged on the "
        "embedded 10% sample (100 test images), and this uses the embedded 10% sample "
        "(1,000 test images)"
    ) in out


def test_evaluate_prints_the_confusion_matrix_as_text(sample_run, capsys) -> None:
    runs, _ = sample_run
    code, out = evaluate(capsys, runs)
    assert code == 0 and "NOTE" not in out
    assert "confusion matrix (rows: true class, columns: predicted class" in out
    rows = [line for line in out.splitlines() if line[:2] in {f"{i} " for i in range(10)}]
    assert len(rows) == 10 and rows[9].startswith("9 Ankle boot")
    assert sum(int(v) for line in rows for v in line.split()[-10:]) == 100
