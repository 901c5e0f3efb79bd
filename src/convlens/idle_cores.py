"""How many cores the other processes leave idle, read from the machine's counters.

``/proc/stat`` counts the CPU time of the whole machine and ``/proc/self/stat`` this
process's; their difference over a window is what the other processes used
(:meth:`CpuSample.busy_elsewhere_since`, in cores), and :func:`threads_for` turns it
into a thread count. Training's first guess and ``evaluate``
(:class:`convlens.train.threads.ThreadChooser`) read it once per pass, before their
own work starts. The one-image inference session (:mod:`convlens.models.onnx_runtime`)
asks while it works, through :class:`IdleCores`: a reading cached for ``REFRESH``
seconds, since one costs 35-50 us (three small files opened and parsed), a third of
answering one image, against about 1 us for the cached answer; and it also counts the
threads waiting for a core at that instant (``/proc/loadavg``), because CPU time says
what the others got, not what they wanted. The counters tick 100 times a second, so a
window much shorter than 0.1 s says little anyway.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass


def threads_for(cores: int, busy_elsewhere: float) -> int:
    """Threads for ``cores`` cores when other processes keep ``busy_elsewhere`` of them
    busy (in cores): the idle ones, rounded to the nearest, at least 1."""
    return max(1, min(cores, int(cores - busy_elsewhere + 0.5)))


@dataclass(frozen=True)
class CpuSample:
    """A moment's CPU counters: wall clock, the machine's busy ticks, this process's,
    and the threads runnable on the machine at that instant (``procs_running``: running
    or waiting for a core, the reading thread itself included)."""

    at: float
    machine: int
    own: int
    runnable: int = 1

    @classmethod
    def now(cls) -> CpuSample | None:
        """None where /proc cannot tell (not Linux)."""
        try:
            return cls(time.monotonic(), _machine_busy_ticks(), _own_ticks(), _runnable())
        except (OSError, ValueError, IndexError):
            return None

    def busy_elsewhere_since(self, earlier: CpuSample) -> float:
        """Cores' worth of CPU time that other processes used between the two samples."""
        ticks = (self.machine - earlier.machine) - (self.own - earlier.own)
        return max(0.0, ticks / os.sysconf("SC_CLK_TCK") / max(1e-9, self.at - earlier.at))


class IdleCores:
    """The cores (of ``cores``) that other processes left idle lately, for a caller that
    asks far more often than the counters change: :meth:`count` reads them again only
    when ``REFRESH`` seconds have passed since the last reading, over the window since.

    Until the first window has passed it answers ``cores`` (the caller's own choice,
    made from the same counters); where /proc cannot tell, always ``cores``. Threads
    may call it at once: the worst a race does is one extra reading.
    """

    REFRESH = 0.1

    def __init__(self, cores: int) -> None:
        self.cores = cores
        self.idle = cores
        self.busy: float | None = None  # the last reading, for tests and benchmarks
        self._mark = CpuSample.now()

    def count(self) -> int:
        """The idle cores as of the last reading (at most ``REFRESH`` s old while asked)."""
        mark = self._mark
        if mark is None or time.monotonic() - mark.at < self.REFRESH:
            return self.idle
        now = CpuSample.now()
        if now is None:
            return self.idle
        self._mark = now
        # What the others used is not all they wanted: while this process's two threads
        # hold both cores, a neighbour gets less and its ticks say a core is free. The
        # threads waiting now say it is not (they count this process's other threads
        # too, such as the web page's training: a core they want is not idle either).
        self.busy = max(now.busy_elsewhere_since(mark), float(now.runnable - 1))
        self.idle = threads_for(self.cores, self.busy)
        return self.idle


def _machine_busy_ticks() -> int:
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle  # user..steal; guest time is already inside user


def _runnable() -> int:
    """Threads running or waiting for a core now: /proc/loadavg's "4/187" (/proc/stat's
    procs_running says the same, but reading that file whole costs three times more)."""
    with open("/proc/loadavg", encoding="ascii") as handle:
        return int(handle.read().split()[3].split("/")[0])


def _own_ticks() -> int:
    with open("/proc/self/stat", encoding="ascii") as handle:
        after_name = handle.read().rsplit(")", 1)[1].split()
    return int(after_name[11]) + int(after_name[12])  # utime + stime of every thread
