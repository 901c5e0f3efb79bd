"""What this CPU does fast, and how many threads the machine can spare right now.

Two choices of ``--precision auto`` / ``--channels-last`` (left out) and of ``--threads``
(left out) are made here, each from measurements recorded in BENCHMARKS.md:

**Precision and layout.** bf16 autocast pays only where the CPU multiplies bf16 natively
(AVX512-BF16 or AMX): there it trained the lesson's ``cnn`` 2.7x faster than fp32. Without
it, oneDNN emulates bf16 and the same step ran at 50 images/s instead of 750 (AVX2,
measured). So bf16 needs the CPU flag *and* an instruction set that the libraries are
allowed to use: ``ONEDNN_MAX_CPU_ISA`` and ``ATEN_CPU_CAPABILITY`` cap them, which is how
an AVX2 laptop is emulated on a bigger machine, and a capped run must choose as that
laptop would. The layout is channels_last on every CPU: oneDNN's convolutions are
written for NHWC, and fp32 NHWC trained 2.5-4.5x faster than NCHW under AVX2 (the issue's
AVX2 EPYC: 44.6 s against 61.9 s an epoch).

**Threads.** One OpenMP thread per core is fastest on a quiet machine, but each parallel
region waits for its slowest thread, and a thread that another process has pushed off
its core stalls every region for a scheduler time slice: with the 2 cores shared,
2 threads trained at 100 images/s where 1 thread managed 1,100. So a run that was not
given ``--threads`` uses as many threads as there are cores that other processes leave
idle, measured from ``/proc/stat`` (CPU time of the whole machine minus this process's
own) over the previous epoch (at least a tenth of a second), again at every epoch. The
choice changes speed, never the recipe; floating-point sums come out in a different order
with another thread count (about 1e-6 in the weights after 20 steps), so env.json and
metrics.csv record the threads used.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch

from convlens.errors import OptionError

# oneDNN's instruction sets, in order; bf16 is native from AVX512_CORE_BF16 on
# (AVX2_VNNI_2 converts bf16 but multiplies in fp32).
ONEDNN_ISAS = (
    "SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
    "AVX512_CORE_BF16", "AVX10_1_512", "AVX512_CORE_FP16", "AVX10_1_512_AMX",
    "AVX512_CORE_AMX", "AVX10_1_512_AMX_FP16", "AVX512_CORE_AMX_FP16", "AVX10_2_512",
    "AVX10_2_512_AMX_2",
)  # fmt: skip
FIRST_BF16_ISA = ONEDNN_ISAS.index("AVX512_CORE_BF16")


@dataclass(frozen=True)
class CpuFeatures:
    """What the CPU has (its flags) and what the libraries may use (their caps)."""

    avx512_bf16: bool
    amx: bool
    aten_capability: str  # torch.backends.cpu.get_cpu_capability(): "AVX512", "AVX2", ...
    onednn_cap: str | None  # ONEDNN_MAX_CPU_ISA, upper-cased, or None when unset

    @classmethod
    def detect(cls) -> CpuFeatures:
        def probe(name: str) -> bool:  # private, but what torch's own dispatch relies on
            return bool(getattr(torch.cpu, name, lambda: False)())

        cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
        return cls(
            avx512_bf16=probe("_is_avx512_bf16_supported"),
            amx=probe("_is_amx_tile_supported"),
            aten_capability=torch.backends.cpu.get_cpu_capability(),
            onednn_cap=cap.strip().upper() if cap else None,
        )

    @property
    def native_bf16(self) -> bool:
        """bf16 arithmetic at hardware speed, as the libraries are allowed to run it."""
        if not (self.avx512_bf16 or self.amx):
            return False
        if not self.aten_capability.upper().startswith("AVX512"):
            return False  # ATen capped below AVX-512 (ATEN_CPU_CAPABILITY=avx2)
        if self.onednn_cap in (None, "ALL", "DEFAULT"):
            return True
        if self.onednn_cap not in ONEDNN_ISAS:
            return False  # a cap we do not know: choose the safe, exact path
        return ONEDNN_ISAS.index(self.onednn_cap) >= FIRST_BF16_ISA


def cpu_precision_and_layout(features: CpuFeatures) -> tuple[str, bool]:
    """``auto``'s (precision, channels_last) on a CPU: bf16 where it is native, else fp32;
    channels_last on both (see the module's docstring for the measurements)."""
    return ("bf16" if features.native_bf16 else "fp32"), True


# --- threads ---------------------------------------------------------------------------

_MAX_THREADS: int | None = None


def max_threads() -> int:
    """torch's own thread count before convlens changed it: one per core it may use."""
    global _MAX_THREADS
    if _MAX_THREADS is None:
        _MAX_THREADS = torch.get_num_threads()
    return _MAX_THREADS


def threads_for(cores: int, busy_elsewhere: float) -> int:
    """Threads for ``cores`` cores when other processes keep ``busy_elsewhere`` of them
    busy (in cores): the idle ones, rounded to the nearest, at least 1."""
    return max(1, min(cores, int(cores - busy_elsewhere + 0.5)))


@dataclass(frozen=True)
class CpuSample:
    """A moment's CPU counters: wall clock, the machine's busy ticks, this process's."""

    at: float
    machine: int
    own: int

    @classmethod
    def now(cls) -> CpuSample | None:
        """None where /proc cannot tell (not Linux)."""
        try:
            return cls(time.monotonic(), _machine_busy_ticks(), _own_ticks())
        except (OSError, ValueError, IndexError):
            return None

    def busy_elsewhere_since(self, earlier: CpuSample) -> float:
        """Cores' worth of CPU time that other processes used between the two samples."""
        ticks = (self.machine - earlier.machine) - (self.own - earlier.own)
        return max(0.0, ticks / os.sysconf("SC_CLK_TCK") / max(1e-9, self.at - earlier.at))


class ThreadChooser:
    """torch's thread count for a run, chosen at every epoch (see the module docstring).

    Created when the run starts; each :meth:`choose` looks at what other processes did
    since the last one (the whole previous epoch, so a burst does not decide it), waiting
    for at least ``MIN_WINDOW`` seconds of evidence when there is less.
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


def threads_from_environment() -> int | None:
    """``CONVLENS_THREADS``: a fixed thread count for every run, like ``--threads`` (for
    reruns that must match to the last bit, and for test suites)."""
    text = os.environ.get("CONVLENS_THREADS", "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise OptionError(f"CONVLENS_THREADS must be a whole number >= 1, not {text!r}")
    return int(text)


def _machine_busy_ticks() -> int:
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle  # user..steal; guest time is already inside user


def _own_ticks() -> int:
    with open("/proc/self/stat", encoding="ascii") as handle:
        after_name = handle.read().rsplit(")", 1)[1].split()
    return int(after_name[11]) + int(after_name[12])  # utime + stime of every thread
