"""Faults tried on purpose: a training process killed at random moments, a full disk.

The promise: a run folder is always loadable at its last completed epoch, and
``convlens train --resume`` finishes it.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from convlens.errors import ConvlensError
from convlens.runs import Run

SPEC = "conv(8, 3, relu), maxpool(2), flatten, dense(32, relu), dense(3, softmax)"


def start_training(runs_dir, idx_dir, name: str, epochs: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "convlens", "train", SPEC, "--data", f"idx:{idx_dir}",
         "--epochs", str(epochs), "--batch-size", "8", "--runs", str(runs_dir),
         "--name", name, "--quiet", "--precision", "fp32", "--threads", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def wait_for_epochs(run_dir, at_least: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads((run_dir / "state.json").read_text())["epochs_done"] >= at_least:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    raise AssertionError(f"{run_dir} did not reach epoch {at_least}")


@pytest.mark.parametrize("delay", [0.0, 0.13, 0.31, 0.57])
def test_sigkill_at_a_random_moment_leaves_a_resumable_run(tmp_path, tiny_idx_dir, delay):
    """Kill -9 after the first epoch plus ``delay`` seconds: mid-epoch or mid-write."""
    epochs = 8
    process = start_training(tmp_path, tiny_idx_dir, "r", epochs)
    run_dir = tmp_path / "r"
    wait_for_epochs(run_dir, 1)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    run = Run.open(run_dir)  # loadable at its last completed epoch
    done = run.state()["epochs_done"]
    history = run.history()
    assert 1 <= done <= epochs
    # metrics.csv is written just before state.json: a kill between the two leaves one row more
    assert len(history) in (done, done + 1)

    if run.state()["status"] != "complete":  # killed while training or while finishing
        resumed = subprocess.run(
            [
                sys.executable,
                "-m",
                "convlens",
                "train",
                "--resume",
                str(run_dir),
                "--quiet",
                "--threads",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert resumed.returncode == 0, resumed.stderr
    assert run.state()["status"] == "complete"
    assert [int(row["epoch"]) for row in run.history()] == list(range(1, epochs + 1))
    assert run.load_network() is not None
    assert not list(run_dir.glob(".*.tmp"))  # resume sweeps up a write the kill cut short


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path, tiny_idx_dir) -> None:
    process = start_training(tmp_path, tiny_idx_dir, "r", 50)
    wait_for_epochs(tmp_path / "r", 1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert b"--resume" in stderr and b"Traceback" not in stderr
    assert Run.open(tmp_path / "r").state()["status"] == "interrupted"


def test_a_full_disk_is_a_clear_error_and_keeps_the_last_good_epoch(
    tmp_path, tiny_dataset, monkeypatch
) -> None:
    from convlens import fileio
    from convlens.recipe import TrainConfig
    from convlens.train.session import train

    real_replace = os.replace
    calls = {"n": 0}

    def replace_until_full(src, dst):
        calls["n"] += 1
        if "checkpoint" in str(dst) and calls.setdefault("ckpt", 0) >= 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        if "checkpoint" in str(dst):
            calls["ckpt"] += 1
        return real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", replace_until_full)
    with pytest.raises(ConvlensError, match="No space left on device") as err:
        train(
            SPEC,
            config=TrainConfig(precision="fp32", epochs=3, batch_size=16),
            runs_dir=tmp_path,
            name="r",
            dataset=tiny_dataset,
        )
    assert "\n" not in str(err.value)
    monkeypatch.setattr(fileio.os, "replace", real_replace)
    run = Run.open(tmp_path / "r")
    assert run.state()["epochs_done"] == 1  # epoch 1's checkpoint survives intact
    assert not list((tmp_path / "r").glob(".*.tmp"))  # the failed write left nothing behind


def test_an_unwritable_runs_folder_is_a_clear_error(tmp_path, tiny_dataset) -> None:
    from convlens.recipe import TrainConfig
    from convlens.train.session import train

    blocker = tmp_path / "runs"
    blocker.write_text("a file where the runs folder should be")
    with pytest.raises(ConvlensError, match="cannot write") as err:
        train(
            SPEC,
            config=TrainConfig(precision="fp32", epochs=1),
            runs_dir=blocker,
            name="r",
            dataset=tiny_dataset,
        )
    assert "\n" not in str(err.value)
