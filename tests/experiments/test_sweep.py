"""Real tiny sweeps: the tables and figure, restarting, failed and killed trials, Ray."""

from __future__ import annotations

import contextlib
import csv
import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from convlens.cli.main import main
from convlens.data.config import DataConfig
from convlens.errors import OptionError
from convlens.experiments import executors, ray_executor, resources
from convlens.experiments.executors import Trial
from convlens.experiments.sweep import SilentSweepReporter, sweep
from convlens.models.registry import resolve_model
from convlens.recipe import TrainConfig
from convlens.runs import Run

SMALL = "conv(8, 3, relu), maxpool(2), flatten, dense(16, relu), dense(3, softmax)"
CONFIG = TrainConfig(epochs=1, precision="fp32", batch_size=16)


class Recorder(SilentSweepReporter):
    """Remembers what the sweep announced and every trial it finished."""

    def __init__(self) -> None:
        self.started: tuple[int, int] | None = None
        self.done: list = []

    def start(self, total: int, to_train: int, plan: str) -> None:
        self.started = (total, to_train)

    def trial_done(self, outcome) -> None:
        self.done.append(outcome)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.glob("*/metrics.json")}


@pytest.fixture(scope="module")
def process_sweep(tmp_path_factory, tiny_idx_dir):
    """filters=4,8 trained by two spawned worker processes (the default executor)."""
    runs_dir = tmp_path_factory.mktemp("runs")
    data = DataConfig(dataset=f"idx:{tiny_idx_dir}")
    recorder = Recorder()
    result = sweep(SMALL, {"filters": [4, 8]}, data=data, config=CONFIG, runs_dir=runs_dir,
                   name="tiny", workers=2, reporter=recorder)  # fmt: skip
    return result, recorder, data, runs_dir


def test_a_sweep_writes_its_tables_figure_and_names_a_sweet_spot(process_sweep) -> None:
    result, recorder, _, runs_dir = process_sweep
    assert result.path == runs_dir / "sweep-tiny"
    assert recorder.started == (2, 2) and all(o.ok for o in recorder.done)
    rows = read_csv(result.path / "results.csv")
    assert [r["config"] for r in rows] == ["filters=4", "filters=8"]
    for r in rows:
        assert r["status"] == "ok" and r["repeats_done"] == "1"
        assert int(r["params"]) > 0 and int(r["flops_per_image"]) > 0
        assert 0 <= float(r["test_accuracy_mean"]) <= 1 and float(r["train_seconds_mean"]) > 0
        gap = float(r["train_accuracy_mean"]) - float(r["test_accuracy_mean"])
        assert float(r["gap_mean"]) == pytest.approx(gap)
    assert int(rows[1]["params"]) > int(rows[0]["params"])  # more filters, more weights
    assert result.sweet_spot in ("filters=4", "filters=8")
    assert sum(r["sweet_spot"] == "True" for r in rows) == 1
    assert result.sweet_spot in result.pareto
    with Image.open(result.path / "pareto.png") as figure:
        assert figure.format == "PNG" and figure.size[0] > 400
    info = json.loads((result.path / "sweep.json").read_text())
    assert info["status"] == "complete" and info["sweet_spot"] == result.sweet_spot
    assert info["trained"] == 2 and info["reused"] == 0
    trials = read_csv(result.path / "trials.csv")
    assert [t["status"] for t in trials] == ["complete", "complete"]
    for t in trials:  # every trial is an ordinary, complete run folder
        run = Run(result.path / t["folder"])
        assert run.state()["status"] == "complete" and run.file("model.safetensors").is_file()
        assert run.config["train"]["seed"] == 0
    table = result.format()
    assert "Sweet spot: " in table and "2 trials: 2 trained now, 0 reused, 0 failed" in table


def test_trials_csv_keeps_its_columns_in_order(process_sweep) -> None:
    result = process_sweep[0]
    with (result.path / "trials.csv").open(newline="") as handle:
        header = next(csv.reader(handle))
    assert header == [
        "config", "repeat", "seed", "folder", "status", "reused", "error", "train_seconds",
        "train_accuracy", "test_accuracy", "best_epoch", "best_test_accuracy", "epochs_done",
    ]  # fmt: skip
    assert [list(trial) for trial in result.trials] == [header, header]


def test_running_the_same_sweep_again_trains_nothing(process_sweep, capsys) -> None:
    result, _, data, runs_dir = process_sweep
    before = mtimes(result.path)
    recorder = Recorder()
    again = sweep(SMALL, {"filters": [4, 8]}, data=data, config=CONFIG, runs_dir=runs_dir,
                  name="tiny", workers=2, reporter=recorder)  # fmt: skip
    assert recorder.started == (2, 0) and recorder.done == []
    assert mtimes(result.path) == before
    assert again.sweet_spot == result.sweet_spot
    assert all(t["reused"] for t in again.trials)
    # the command line finds the same trials (same data, same recipe, same name)
    code = main(["sweep", SMALL, "--vary", "filters=4,8", "--epochs", "1", "--batch-size", "16",
                 "--precision", "fp32", "--data", data.dataset, "--runs", str(runs_dir),
                 "--name", "tiny", "--quiet"])  # fmt: skip
    assert code == 0 and mtimes(result.path) == before
    out = capsys.readouterr().out
    assert "2 trials: 0 trained now, 2 reused" in out and "convlens report" in out


def test_an_interrupted_trial_is_trained_again_and_the_rest_reused(tiny_idx_dir, tmp_path):
    data = DataConfig(dataset=f"idx:{tiny_idx_dir}")

    def run(recorder=None):
        return sweep(SMALL, {"filters": [4]}, repeats=2, data=data, config=CONFIG,
                     runs_dir=tmp_path, name="r", executor="inline", reporter=recorder)  # fmt: skip

    first = run()
    assert [t["seed"] for t in first.trials] == [0, 1]
    assert first.rows[0]["test_accuracy_std"] is not None
    kept, cut = (first.path / t["folder"] for t in first.trials)
    (cut / "metrics.json").unlink()  # as if killed during its last epoch
    state = json.loads((cut / "state.json").read_text())
    (cut / "state.json").write_text(json.dumps({**state, "status": "interrupted"}))
    before = (kept / "metrics.json").stat().st_mtime_ns
    recorder = Recorder()
    second = run(recorder)
    assert recorder.started == (2, 1) and [o.folder for o in recorder.done] == [cut.name]
    assert Run(cut).state()["status"] == "complete" and (cut / "metrics.json").is_file()
    assert (kept / "metrics.json").stat().st_mtime_ns == before
    assert [t["reused"] for t in second.trials] == [True, False]


def test_a_failing_trial_is_reported_and_the_others_finish(tiny_idx_dir, tmp_path, monkeypatch):
    from convlens.train import session

    real_train = session.train

    def train(spec, **kwargs):
        if kwargs["name"].startswith("filters-4_"):
            raise RuntimeError("boom\nsecond line")
        return real_train(spec, **kwargs)

    monkeypatch.setattr(session, "train", train)
    result = sweep(SMALL, {"filters": [4, 8], "convs": [1, 4]}, data=DataConfig(
        dataset=f"idx:{tiny_idx_dir}"), config=CONFIG, runs_dir=tmp_path, name="f",
        executor="inline")  # fmt: skip
    status = {r["config"]: r["status"] for r in result.rows}
    assert status == {"filters=4,convs=1": "failed", "filters=4,convs=4": "invalid",
                      "filters=8,convs=1": "ok", "filters=8,convs=4": "invalid"}  # fmt: skip
    assert result.sweet_spot == "filters=8,convs=1"
    trials = read_csv(result.path / "trials.csv")
    failed = [t for t in trials if t["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["error"] == "RuntimeError: boom second line"
    invalid = [t for t in trials if t["status"] == "invalid"]
    assert len(invalid) == 2 and "conv block 4 does not fit" in invalid[0]["error"]
    table = result.format()
    assert "1 failed, 2 invalid (skipped)" in table and "trials.csv" in table
    assert json.loads((result.path / "sweep.json").read_text())["status"].endswith("failures")


def test_a_trial_works_its_shapes_out_once(tiny_idx_dir, tmp_path, monkeypatch) -> None:
    """Planned once (expand), handed on to the costs and the training: one shape walk
    and one network (the one that trains) per trial."""
    from convlens.models import network as network_module
    from convlens.models.spec import ModelSpec

    calls = {"shapes": 0, "networks": 0}
    walk, build = ModelSpec.shapes, network_module.Network.__init__

    def shapes(self, *args, **kwargs):
        calls["shapes"] += 1
        return walk(self, *args, **kwargs)

    def init(self, *args, **kwargs):
        calls["networks"] += 1
        return build(self, *args, **kwargs)

    monkeypatch.setattr(ModelSpec, "shapes", shapes)
    monkeypatch.setattr(network_module.Network, "__init__", init)
    result = sweep(SMALL, {"filters": [4, 8]}, data=DataConfig(dataset=f"idx:{tiny_idx_dir}"),
                   config=CONFIG, runs_dir=tmp_path, name="once", executor="inline")  # fmt: skip
    assert [t["status"] for t in result.trials] == ["complete", "complete"]
    assert calls == {"shapes": 2, "networks": 2}


def test_a_killed_worker_fails_its_trial_only(tiny_dataset, tmp_path) -> None:
    """Kill every pool worker whenever the doomed trial is running, as the kernel's
    out-of-memory killer would: the doomed trial fails, the others (killed too, as
    bystanders) are trained again and finish."""
    import multiprocessing
    import os
    import signal
    import threading

    data = DataConfig(dataset="patterns")
    spec = resolve_model(SMALL)
    doomed = Trial("doomed", "doomed-r0", str(tmp_path), spec, CONFIG.replace(epochs=200), data, 0)
    others = [Trial(f"ok{i}", f"ok{i}-r0", str(tmp_path), spec, CONFIG, data, 0) for i in (1, 2)]
    stop = threading.Event()

    def killer() -> None:
        while not stop.wait(0.005):
            if (tmp_path / "doomed-r0" / "config.json").exists():
                for child in multiprocessing.active_children():
                    with contextlib.suppress(ProcessLookupError):  # it may have just exited
                        os.kill(child.pid, signal.SIGKILL)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        outcomes = executors.run_local([doomed, *others], dataset=tiny_dataset, workers=2,
                                       threads=1, on_done=lambda o: None)  # fmt: skip
    finally:
        stop.set()
        thread.join()
    by_folder = {o.folder: o for o in outcomes}
    assert by_folder["doomed-r0"].status == "failed"
    assert "worker process died" in by_folder["doomed-r0"].error
    assert by_folder["ok1-r0"].ok and by_folder["ok2-r0"].ok
    assert Run(tmp_path / "ok1-r0").state()["status"] == "complete"
    assert not (tmp_path / "doomed-r0").exists()


def test_ray_trials_fill_the_same_folders(tiny_idx_dir, tmp_path) -> None:
    pytest.importorskip("ray")
    data = DataConfig(dataset=f"idx:{tiny_idx_dir}")
    result = sweep(SMALL, {"filters": [4, 8]}, data=data, config=CONFIG, runs_dir=tmp_path,
                   name="ray", executor="ray", workers=2)  # fmt: skip
    assert [r["status"] for r in result.rows] == ["ok", "ok"]
    assert result.sweet_spot is not None and (result.path / "pareto.png").is_file()
    for trial in result.trials:
        run = Run(result.path / trial["folder"])
        assert run.state()["status"] == "complete"
        assert run.file("curves.png").is_file() and run.load_network() is not None


def test_without_ray_the_error_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # "import ray" raises ImportError
    with pytest.raises(OptionError, match=r"pip install 'convlens\[ray\]'"):
        ray_executor.import_ray()


def test_an_unreachable_ray_address_fails_in_seconds() -> None:
    with pytest.raises(OptionError, match=r"cannot reach the Ray cluster at 127\.0\.0\.1:1 "):
        ray_executor.check_reachable("127.0.0.1:1")  # nothing listens on port 1
    with pytest.raises(OptionError, match="expected HOST:PORT"):
        ray_executor.check_reachable("head-node")
    ray_executor.check_reachable(None)  # a local runtime: nothing to check
    ray_executor.check_reachable("auto")


def test_every_trial_records_the_preset_its_recipe_came_from(tiny_dataset, tmp_path) -> None:
    result = sweep(SMALL, {"lr": [0.001, 0.002]}, config=CONFIG, dataset=tiny_dataset,
                   runs_dir=tmp_path, executor="inline", recipe_preset="cnn")  # fmt: skip
    assert json.loads((result.path / "sweep.json").read_text())["recipe"] == "cnn"
    configs = [Run(result.path / trial["folder"]).config for trial in result.trials]
    assert len(configs) == 2 and all(c["recipe"] == "cnn" for c in configs)


def test_bad_sweep_options_fail_before_training(tiny_dataset, tmp_path) -> None:
    with pytest.raises(OptionError, match="repeats"):
        sweep(SMALL, {"filters": [4]}, repeats=0, dataset=tiny_dataset, runs_dir=tmp_path)
    with pytest.raises(OptionError, match="executor 'threads' is unknown"):
        sweep(SMALL, {"filters": [4]}, executor="threads", dataset=tiny_dataset)
    with pytest.raises(OptionError, match="the sweep axes are"):
        sweep(SMALL, {"kernel": [3]}, dataset=tiny_dataset, runs_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_workers_fit_the_cores_and_the_memory(monkeypatch) -> None:
    gb = 2**30
    monkeypatch.setattr(resources, "cpu_count", lambda: 8)
    monkeypatch.setattr(resources, "available_memory", lambda: 3 * gb + 1)
    plan = resources.plan_workers(10, 1 * gb)  # memory allows 3 of 8
    assert (plan.workers, plan.threads) == (3, 2)
    assert (resources.plan_workers(2, gb).workers, resources.plan_workers(2, gb).threads) == (2, 4)
    assert resources.plan_workers(10, gb, threads=4).workers == 2  # 8 cores / 4 threads
    assert resources.plan_workers(10, gb, workers=8).threads == 1
    assert "3 workers x 2 threads (8 cores" in plan.describe()
    with pytest.raises(OptionError, match="--workers 0"):
        resources.plan_workers(10, gb, workers=0)
