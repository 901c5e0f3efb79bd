"""The thread policy on mocked step times: it keeps the faster count, reacts when the
machine changes, bounds what its trials waste, and obeys --threads / CONVLENS_THREADS."""

from __future__ import annotations

import math

import pytest
import torch

from convlens.idle_cores import CpuSample, threads_for
from convlens.train import threads as policy
from convlens.train.threads import ThreadChooser, ThreadTuner, candidate_threads


def run(tuner: ThreadTuner, seconds_at, steps: int) -> list[int]:
    """Feed ``steps`` steps whose time depends on the threads in use; the counts used."""
    used = []
    for _ in range(steps):
        used.append(tuner.threads)
        tuner.observe(seconds_at(tuner.threads))
    return used


def tuner(cores: int = 2) -> tuple[ThreadTuner, list[int]]:
    switches: list[int] = []
    return ThreadTuner(cores=cores, set_threads=switches.append), switches


@pytest.fixture(autouse=True)
def _no_fixed_threads(monkeypatch) -> None:
    monkeypatch.delenv("CONVLENS_THREADS", raising=False)


@pytest.mark.parametrize(
    ("cores", "counts"), [(1, [1]), (2, [2, 1]), (8, [8, 4, 2, 1]), (6, [6, 3, 1])]
)
def test_candidates_are_all_the_cores_then_halves(cores, counts) -> None:
    assert candidate_threads(cores) == counts


def test_a_quiet_machine_keeps_every_core_and_trials_grow_rare() -> None:
    threads, switches = tuner()
    quiet = {2: 0.010, 1: 0.018}  # two threads 1.8x one
    used = run(threads, quiet.__getitem__, 6000)  # a minute of training
    assert threads.best == 2 and threads.figures == pytest.approx(quiet)
    first_trial = used.index(2)  # one thread for the first PERIOD seconds (and a warm-up step)
    assert first_trial == 1 + math.ceil(ThreadTuner.PERIOD / quiet[1]) + ThreadTuner.TRIAL_STEPS
    since = used[first_trial:]
    assert since.count(1) < 0.02 * len(since)  # the later trials' one-thread steps
    assert threads.period == ThreadTuner.MAX_PERIOD  # the same winner each time: doubling
    assert switches[:2] == [1, 2]  # one thread first, then every core


def test_a_counts_first_step_is_its_warm_up_not_its_figure() -> None:
    """The first step at a count builds its threads and kernels (894 ms for two threads
    against 11-26 ms a step, Zen 4): timed, it dropped two threads and put the next trial
    off by its loss / WASTE (47 s)."""
    threads, _ = tuner()
    quiet, seen = {2: 0.010, 1: 0.018}, set()

    def first_step_slow(count: int) -> float:
        slow = count not in seen
        seen.add(count)
        return 0.9 if slow else quiet[count]

    run(threads, first_step_slow, 200)  # 3.5 s: one trial
    assert threads.trials == 1 and threads.best == 2
    assert threads.figures == pytest.approx(quiet)
    assert threads.period == ThreadTuner.PERIOD  # a new winner, and nothing lost to warm-ups


def test_a_busy_core_moves_it_to_one_thread_and_back_when_it_is_free() -> None:
    threads, _ = tuner()
    shared = {2: 0.200, 1: 0.012}  # a neighbour on one core: two threads collapse 16x
    used = run(threads, shared.__getitem__, 2000)
    assert threads.best == 1
    steps_at_two = used.count(2)
    # a collapsed candidate is dropped after its first timed step: few slow steps in all
    assert steps_at_two <= 2 * (threads.trials + 1) + ThreadTuner.TRIAL_STEPS
    slow_seconds = steps_at_two * shared[2]
    assert slow_seconds < 0.15 * sum(shared[t] for t in used)
    quiet = {2: 0.010, 1: 0.018}  # the neighbour stops
    used = run(threads, quiet.__getitem__, 4000)
    assert threads.best == 2 and used[-1000:].count(2) > 980


def test_a_guess_starts_the_run_and_the_first_trial_waits() -> None:
    switches: list[int] = []
    threads = ThreadTuner(cores=2, guess=1, set_threads=switches.append)
    quiet = {2: 0.010, 1: 0.018}  # the guess was wrong: two threads are faster
    used = run(threads, quiet.__getitem__, 50)  # 0.9 s: no trial yet, no slow step timed
    assert used == [1] * 50 and switches == [1] and threads.trials == 0
    used = run(threads, quiet.__getitem__, 500)
    assert threads.best == 2 and used[-100:] == [2] * 100
    assert ThreadTuner(cores=2, guess=7, set_threads=[].append).trials == 0  # not a candidate


def test_epoch_threads_is_the_count_of_most_steps() -> None:
    threads, _ = tuner()
    run(threads, {2: 0.2, 1: 0.01}.__getitem__, 500)
    assert threads.epoch_threads() == 1
    assert threads.epoch_threads() == threads.threads  # nothing since: the current count


def test_fixed_threads_never_switch_or_time(monkeypatch) -> None:
    fixed, switches = ThreadTuner(fixed=1, cores=2, set_threads=[].append), None
    assert not fixed.measuring and fixed.threads == 1
    run(fixed, {2: 0.001, 1: 1.0}.__getitem__, 50)
    assert fixed.threads == 1 and fixed.epoch_threads() == 1
    monkeypatch.setenv("CONVLENS_THREADS", "2")
    switches = []
    from_environment = ThreadTuner(cores=8, set_threads=switches.append)
    run(from_environment, {2: 1.0, 1: 0.001}.__getitem__, 50)
    assert from_environment.threads == 2 and switches == [2]


def test_a_bad_convlens_threads_is_one_line(monkeypatch) -> None:
    from convlens.errors import OptionError

    monkeypatch.setenv("CONVLENS_THREADS", "two")
    with pytest.raises(OptionError, match="CONVLENS_THREADS must be a whole number"):
        ThreadTuner(cores=2, set_threads=[].append)


def test_a_run_without_threads_records_the_measured_counts(tiny_dataset, tmp_path) -> None:
    import json

    from convlens.recipe import TrainConfig
    from convlens.train.session import train
    from convlens.train.threads import max_threads

    before = torch.get_num_threads()
    spec = "conv(8, 3, relu), maxpool(2), flatten, dense(16, relu), dense(3, softmax)"
    try:
        config = TrainConfig(epochs=2, batch_size=8, precision="fp32", device="cpu")
        run = train(spec, config=config, runs_dir=tmp_path, name="r", dataset=tiny_dataset)
    finally:
        torch.set_num_threads(before)
    assert json.loads(run.file("env.json").read_text())["threads_policy"] == "fastest measured"
    used = [row["threads"] for row in run.history()]
    assert len(used) == 2 and all(count in candidate_threads(max_threads()) for count in used)


# evaluate's chooser (no steps to time): the idle cores, on mocked counters


@pytest.mark.parametrize(
    ("cores", "busy", "threads"),
    [(2, 0.0, 2), (2, 0.3, 2), (2, 0.6, 1), (2, 1.0, 1), (2, 7.0, 1), (8, 2.2, 6), (1, 0.0, 1)],
)
def test_threads_are_the_cores_left_idle(cores, busy, threads) -> None:
    assert threads_for(cores, busy) == threads


def test_the_chooser_measures_others_and_obeys_threads(monkeypatch) -> None:
    monkeypatch.delenv("CONVLENS_THREADS", raising=False)
    ticks = 100
    monkeypatch.setattr(policy.os, "sysconf", lambda name: ticks)
    samples = iter(
        [
            CpuSample(at=0.0, machine=0, own=0),
            # 1 s later: the machine was busy 1.8 cores, this process 0.8 of them
            CpuSample(at=1.0, machine=180, own=80),
            # then only this process worked
            CpuSample(at=2.0, machine=380, own=280),
        ]
    )
    monkeypatch.setattr(policy.CpuSample, "now", classmethod(lambda cls: next(samples)))
    monkeypatch.setattr(policy, "max_threads", lambda: 2)
    before = torch.get_num_threads()
    try:
        chooser = ThreadChooser()
        assert chooser.choose() == 1 and chooser.busy == pytest.approx(1.0)
        assert torch.get_num_threads() == 1
        assert chooser.choose() == 2 and chooser.busy == pytest.approx(0.0)
        assert ThreadChooser(fixed=1).choose() == 1  # --threads: no measuring at all
    finally:
        torch.set_num_threads(before)
