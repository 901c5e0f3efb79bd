"""How many threads a training run uses: chosen from its own step times, as it runs.

One OpenMP thread per core is fastest on a quiet machine, but each parallel region
waits for its slowest thread, and a thread that another process has pushed off its core
stalls every region for a scheduler time slice. How much a neighbour costs depends on
what it does (a browser's bursts, a compiler, another training run), so rather than
infer it from the machine's counters, the run measures: every so often it times a few
of its own training steps at each candidate thread count (all the cores, then halves
of them down to one) and keeps the fastest until the next trial. The steps of a trial
are real training steps, not extra work; what a trial can waste is bounded: a candidate
whose first step is already twice the best so far is dropped at once, trials grow rarer
while the same count keeps winning (the period doubles from ``PERIOD`` up to
``MAX_PERIOD`` seconds of training, and comes back when the winner changes), and the
next trial waits until the time the last one lost is at most 2% of the training since.
The run starts at the count that :class:`ThreadChooser` infers from the machine's
counters (the cores other processes left idle while the run set up), or at one thread,
so a short run pays for no trial; the first trial comes after ``PERIOD`` seconds of
training. The first step at a count the process has not run yet is its warm-up, not its
figure: OpenMP creates the count's threads and oneDNN generates its kernels for that
count (on a 2-core Zen 4, cnn at batch 32: the process's first steps took 261, 83 and
42 ms against 11-26 ms later, and the first two-thread step 894 ms, busy machine).
Timing such a step can drop a count that is faster once warm, and it counted the
warm-up as time the trial lost, which put the next trial off by ``lost / WASTE`` (47 s
in that run, longer than a benchmark's whole round; BENCHMARKS.md, "Session 8: the
`cnn` step and its threads on Zen 4").

``--threads`` and ``CONVLENS_THREADS`` fix the count instead: no timing, no switching,
and reruns match to the last bit. Without them the count follows the machine, and
floating-point sums come out in a different order at another thread count (about 1e-6
in the weights after 20 steps), so metrics.csv records, for every epoch, the count that
ran most of its steps. Measured on a shared 2-core Sapphire Rapids (BENCHMARKS.md): with
one CPU-bound neighbour, 2 threads trained at 37 images/s where 1 thread managed 585.

A pass with no training steps to time (``convlens evaluate``) takes the cores that other
processes left idle instead (:class:`ThreadChooser`, from ``/proc/stat``): switching
threads there would rebuild the inference engine, which is keyed by the thread count.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from collections.abc import Callable

import torch

from convlens.errors import OptionError
from convlens.idle_cores import CpuSample, threads_for

_MAX_THREADS: int | None = None


def max_threads() -> int:
    """torch's own thread count before convlens changed it: one per core it may use."""
    global _MAX_THREADS
    if _MAX_THREADS is None:
        _MAX_THREADS = torch.get_num_threads()
    return _MAX_THREADS


def threads_from_environment() -> int | None:
    """``CONVLENS_THREADS``: a fixed thread count for every run, like ``--threads`` (for
    reruns that must match to the last bit, and for test suites)."""
    text = os.environ.get("CONVLENS_THREADS", "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise OptionError(f"CONVLENS_THREADS must be a whole number >= 1, not {text!r}")
    return int(text)


def candidate_threads(cores: int) -> list[int]:
    """The counts a trial times: ``cores``, then halves of it down to 1 (8 -> 8, 4, 2, 1)."""
    counts = []
    count = max(1, cores)
    while count > 1:
        counts.append(count)
        count //= 2
    return [*counts, 1]


class ThreadTuner:
    """torch's thread count for one run: fixed, or the fastest by measured step times.

    The training loop calls :meth:`observe` with each step's seconds; the tuner switches
    torch's threads between steps. ``set_threads`` is ``torch.set_num_threads`` unless a
    test gives another.
    """

    TRIAL_STEPS = 3  # timed steps per candidate; their median is its figure
    GIVE_UP = 2.0  # a candidate slower than this times the best so far is dropped
    PERIOD = 2.0  # seconds of training between trials, at first and after a change
    MAX_PERIOD = 32.0  # ... doubling while the same count keeps winning
    WASTE = 0.02  # ... and never so often that trials lose more than this share of time

    def __init__(
        self,
        fixed: int | None = None,
        cores: int | None = None,
        *,
        guess: int | None = None,
        set_threads: Callable[[int], None] | None = None,
    ) -> None:
        self.fixed = fixed or threads_from_environment()
        self.cores = cores or max_threads()
        self._set_threads = set_threads or _set_torch_threads
        self.candidates = [self.fixed] if self.fixed else candidate_threads(self.cores)
        # The run starts at the guess (the idle cores, ThreadChooser), else at one thread
        # (on a quiet machine at most ``cores`` times slower, while all the cores of a
        # shared one can be 16x slower), and the first trial waits ``PERIOD`` seconds:
        # a short run under load pays no trial step at a collapsed count, and no trial
        # times the process's own first steps (oneDNN building its kernels).
        self.best = guess if guess in self.candidates else self.candidates[-1]
        self.period = self.PERIOD
        self.trials = 0  # trials finished, for tests and env.json
        self.figures: dict[int, float] = {}  # the last trial's median step seconds per count
        self._used: Counter[int] = Counter()
        self._queue: list[int] = []
        self._timed: dict[int, list[float]] = {}
        self._since_trial = 0.0
        self._warmed: set[int] = set()  # the counts whose warm-up step has run
        self.threads = self.best
        self._set_threads(self.threads)

    @property
    def measuring(self) -> bool:
        return len(self.candidates) > 1

    def observe(self, seconds: float) -> None:
        """One training step at :attr:`threads` took ``seconds``."""
        self._used[self.threads] += 1
        if not self.measuring:
            return
        if self.threads not in self._warmed:  # its warm-up: neither a figure nor a loss
            self._warmed.add(self.threads)
            return
        if self._queue:
            self._trial_step(seconds)
        else:
            self._since_trial += seconds
            if self._since_trial >= self.period:
                self._start_trial()

    def apply(self) -> None:
        """Set torch's threads to :attr:`threads` again (after someone else changed them)."""
        self._set_threads(self.threads)

    def epoch_threads(self) -> int:
        """The count that ran most steps since the last call (what metrics.csv records)."""
        used = self._used.most_common(1)
        self._used.clear()
        return used[0][0] if used else self.threads

    def _start_trial(self) -> None:
        # the current winner first: its figure is the bar that drops a slow candidate early
        self._queue = [self.best, *(c for c in self.candidates if c != self.best)]
        self.figures, self._timed = {}, {}
        self._switch(self._queue[0])

    def _trial_step(self, seconds: float) -> None:
        timed = self._timed.setdefault(self.threads, [])
        timed.append(seconds)
        best_so_far = min(self.figures.values(), default=float("inf"))
        if len(timed) < self.TRIAL_STEPS and seconds < self.GIVE_UP * best_so_far:
            return
        self.figures[self._queue.pop(0)] = statistics.median(timed)
        if self._queue:
            self._switch(self._queue[0])
            return
        winner = min(self.figures, key=self.figures.__getitem__)
        lost = sum(  # seconds the trial spent beyond what the winner would have taken
            sum(times) - len(times) * self.figures[winner] for times in self._timed.values()
        )
        period = min(2 * self.period, self.MAX_PERIOD) if winner == self.best else self.PERIOD
        self.period = max(period, lost / self.WASTE)
        self.best = winner
        self.trials += 1
        self._since_trial = 0.0
        self._switch(winner)

    def _switch(self, threads: int) -> None:
        if threads != self.threads:
            self.threads = threads
            self._set_threads(threads)


# --- without steps to time: the idle cores -----------------------------------------


class ThreadChooser:
    """torch's thread count for a pass with no training steps to time (``evaluate``):
    the cores that other processes left idle, from ``/proc/stat`` (CPU time of the whole
    machine minus this process's own: :mod:`convlens.idle_cores`, which the one-image
    inference session reads too).

    Created when the work starts; each :meth:`choose` looks at what other processes did
    since the last one, waiting for at least ``MIN_WINDOW`` seconds of evidence when
    there is less. (Training chose this way in session 3, once per epoch; it now times
    its steps: :class:`ThreadTuner`.)
    """

    MIN_WINDOW = 0.1

    def __init__(self, fixed: int | None = None) -> None:
        self.fixed = fixed or threads_from_environment()
        self.cores = max_threads()
        self.busy: float | None = None  # the last measurement, for env.json and tests
        self._mark = None if self.fixed else CpuSample.now()

    def choose(self) -> int:
        """Set torch's threads and return them: ``fixed`` if given, else the idle cores."""
        threads = self.fixed or self._idle_cores()
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        return threads

    def _idle_cores(self) -> int:
        if self._mark is None:
            return self.cores
        wait = self.MIN_WINDOW - (time.monotonic() - self._mark.at)  # read the clock once
        if wait > 0:
            time.sleep(wait)
        now = CpuSample.now()
        if now is None:
            return self.cores
        self.busy = now.busy_elsewhere_since(self._mark)
        self._mark = now
        return threads_for(self.cores, self.busy)


def _set_torch_threads(threads: int) -> None:
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
