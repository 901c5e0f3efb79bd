"""The idle-core reading on mocked counters: other processes' CPU time, read at most
every REFRESH seconds, the caller's own choice until the first window has passed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from convlens import idle_cores
from convlens.idle_cores import CpuSample, IdleCores


@pytest.fixture
def counters(monkeypatch):
    """Mocked clock and counters: ``state`` is what the next reading sees (100 ticks a
    second); ``readings`` counts how often /proc was read."""
    state = {"at": 0.0, "machine": 0, "own": 0, "runnable": 1, "readings": 0}

    def now(cls):
        state["readings"] += 1
        return CpuSample(state["at"], state["machine"], state["own"], state["runnable"])

    monkeypatch.setattr(idle_cores.os, "sysconf", lambda name: 100)
    monkeypatch.setattr(idle_cores, "time", SimpleNamespace(monotonic=lambda: state["at"]))
    monkeypatch.setattr(CpuSample, "now", classmethod(now))
    return state


def test_the_count_follows_other_processes_and_is_read_at_most_every_refresh(counters):
    idle = IdleCores(2)
    assert counters["readings"] == 1  # the mark the first window starts from
    assert idle.count() == 2  # no window yet: the caller's own choice
    counters.update(at=0.05, machine=10)
    assert idle.count() == 2 and counters["readings"] == 1  # too soon to read again
    # 0.5 s in: the machine was busy 1.2 cores, this process 0.2 of them
    counters.update(at=0.5, machine=60, own=10)
    assert idle.count() == 1 and idle.busy == pytest.approx(1.0)
    assert counters["readings"] == 2
    counters.update(at=0.55, machine=70, own=20)
    assert idle.count() == 1 and counters["readings"] == 2  # cached
    # then only this process worked: its own threads never count against it
    counters.update(at=1.5, machine=270, own=220)
    assert idle.count() == 2 and idle.busy == pytest.approx(0.0)


def test_threads_waiting_for_a_core_mean_it_is_not_idle(counters):
    """This process's two threads held both cores, so the neighbour got little CPU time
    (0.2 cores' worth); that it is waiting now (2 runnable with the reader) is what
    says the second core is wanted."""
    idle = IdleCores(2)
    counters.update(at=0.5, machine=60, own=50, runnable=2)
    assert idle.count() == 1 and idle.busy == pytest.approx(1.0)
    counters.update(at=1.0, machine=160, own=150, runnable=1)  # the neighbour is gone
    assert idle.count() == 2


def test_without_proc_it_answers_the_callers_cores(monkeypatch):
    monkeypatch.setattr(CpuSample, "now", classmethod(lambda cls: None))
    idle = IdleCores(2)
    assert idle.count() == 2 and idle.busy is None
