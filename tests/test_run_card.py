"""The headline the CLI prints after training, read back from a real one-epoch run."""

from __future__ import annotations

import re

import pytest

from convlens.run_card import headline
from convlens.runs import Run


@pytest.fixture(scope="module")
def run(tiny_runs, tiny_idx_dir, tmp_path_factory) -> Run:
    spec = "flatten, dense(3, softmax)"  # the tiny dataset has 3 classes
    runs_dir = tiny_runs(tmp_path_factory.mktemp("card"), tiny_idx_dir, {"small": spec})
    return Run.open(runs_dir / "small")


def test_headline_says_the_metrics_of_the_run(run: Run) -> None:
    metrics = run.metrics()
    line = headline(run)
    assert line.startswith(f"{run.path}: test accuracy {metrics['test_accuracy']:.2%}")
    assert f"train accuracy {metrics['train_accuracy']:.2%}" in line
    assert f"{metrics['seconds_per_epoch']:.1f} s/epoch" in line


def test_one_epoch_is_singular(run: Run) -> None:
    assert run.metrics()["epochs_done"] == 1
    assert re.search(r", 1 epoch, ", headline(run)), headline(run)
