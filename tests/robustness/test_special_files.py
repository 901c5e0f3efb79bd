"""Special files in a run folder: a FIFO, a link to /dev/zero, a folder, a sparse giant.

Every reader of a run folder opens only regular files, with size limits, so each ends
in one line (or a "damaged" row in the listings) at once: never a hang, never an
unbounded read. Each case runs in a child process with a deadline and a memory limit.
"""

from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convlens.runs import CHECKPOINT, METRICS_CSV, METRICS_JSON, STATE, SUMMARY, WEIGHTS

# 40 in CI (CONVLENS_FUZZ_EXAMPLES=150), growing with the long run's budget
EXAMPLES = max(1, int(os.environ.get("CONVLENS_FUZZ_EXAMPLES", "150")) * 40 // 150)
SPEC = "conv(4, 3, relu), maxpool(2), flatten, dense(3, softmax)"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_idx_dir, tiny_runs):
    return tiny_runs(tmp_path_factory.mktemp("special-runs"), tiny_idx_dir, {"r": SPEC})


def make_special(path, kind: str) -> None:
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    elif kind == "loop":
        path.symlink_to(path.name)  # a link to itself
    elif kind == "sparse":
        with path.open("wb") as handle:
            handle.truncate(100 * 2**30)  # 100 GB that takes no disk
    elif kind == "dangling":
        path.symlink_to("nowhere")


KINDS = ["fifo", "dev-zero", "folder", "loop", "sparse", "dangling"]
FILES = [STATE, METRICS_CSV, METRICS_JSON, WEIGHTS, CHECKPOINT, SUMMARY, "spec.json"]


def copy_run(trained, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(trained, runs)
    return runs


@pytest.mark.parametrize("kind", KINDS)
def test_convlens_runs_lists_a_special_state_file_as_damaged(trained, tmp_path, kind, limited_cli):
    runs = copy_run(trained, tmp_path)
    shutil.copytree(runs / "r", runs / "ok")
    make_special(runs / "r" / STATE, kind)
    result = limited_cli("runs", "--runs", str(runs), timeout=30)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0].rsplit("/", 1)[-1]: line for line in result.stdout.splitlines()[1:]}
    assert "complete" in rows["ok"]  # the others are still listed
    assert "damaged" in rows["r"]


@pytest.mark.parametrize("kind", KINDS)
def test_evaluate_with_special_weights_is_one_line(trained, tmp_path, kind, limited_cli):
    runs = copy_run(trained, tmp_path)
    make_special(runs / "r" / WEIGHTS, kind)
    result = limited_cli("evaluate", str(runs / "r"), timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "sparse"])
def test_report_with_a_special_summary_is_one_line(trained, tmp_path, kind, limited_cli):
    runs = copy_run(trained, tmp_path)
    make_special(runs / "r" / SUMMARY, kind)
    result = limited_cli("report", str(runs / "r"), timeout=90)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert SUMMARY in result.stderr


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "sparse"])
def test_resume_with_a_special_checkpoint_is_one_line(trained, tmp_path, kind, limited_cli):
    runs = copy_run(trained, tmp_path)
    (runs / "r" / STATE).write_text('{"status": "interrupted", "epochs_done": 1}')
    make_special(runs / "r" / CHECKPOINT, kind)
    result = limited_cli("train", "--resume", str(runs / "r"), "--epochs", "2", "--quiet",
                     timeout=90)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(target=st.sampled_from(FILES), kind=st.sampled_from(KINDS))
def test_fuzzed_special_files_end_cleanly_in_process(trained, tmp_path_factory, target, kind):
    """The same readers in this process: every load ends in a ConvlensError or works."""
    from convlens.errors import ConvlensError
    from convlens.runs import Run

    runs = tmp_path_factory.mktemp("special")
    shutil.copytree(trained / "r", runs / "r")
    make_special(runs / "r" / target, kind)
    run = Run(runs / "r")
    readers = (run.state, run.history, run.metrics, run.summary_text, run.load_network)
    for read in (*readers, lambda: run.config):
        try:
            read()
        except ConvlensError as err:
            assert "\n" not in str(err)


def test_a_special_config_hides_nothing_in_the_web_table(trained, tmp_path, tiny_idx_dir):
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from convlens.data.config import DataConfig
    from convlens.web import create_app

    runs = copy_run(trained, tmp_path)
    for name, kind in (("a", "fifo"), ("b", "dev-zero"), ("c", "sparse")):
        shutil.copytree(runs / "r", runs / name)
        make_special(runs / name / STATE, kind)
    outside = tmp_path / "outside"
    shutil.copytree(runs / "r", outside)
    (runs / "linked").symlink_to(outside, target_is_directory=True)
    make_special(runs / "r" / METRICS_JSON, "fifo")
    app = create_app(runs, data=DataConfig(dataset=f"idx:{tiny_idx_dir}"))
    with TestClient(app) as client:
        answer = client.get("/api/runs")
        assert answer.status_code == 200
        rows = {row["name"]: row for row in answer.json()["runs"]}
        assert set(rows) == {"a", "b", "c", "r", "linked"}
        for name in ("a", "b", "c", "r", "linked"):
            assert rows[name]["status"] == "damaged", rows[name]
            assert rows[name]["message"]
        assert "outside" in rows["linked"]["message"]
        detail = client.get("/api/runs/a")
        assert detail.status_code == 200 and detail.json()["status"] == "damaged"
