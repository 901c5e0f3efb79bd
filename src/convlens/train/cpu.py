"""What this CPU does fast: ``auto``'s precision and layout, and how memory is reused.

The choices of ``--precision auto`` and ``--channels-last`` (left out) are made here,
each from measurements recorded in BENCHMARKS.md:

**Precision and layout.** bf16 autocast pays only where the CPU multiplies bf16 natively
(AVX512-BF16 or AMX): there it trained the lesson's ``cnn`` 2.7x faster than fp32. Without
it, oneDNN emulates bf16 and the same step ran at 50 images/s instead of 750 (AVX2,
measured). So bf16 needs the CPU flag *and* an instruction set that the libraries are
allowed to use: ``ONEDNN_MAX_CPU_ISA`` and ``ATEN_CPU_CAPABILITY`` cap them, which is how
an AVX2 laptop is emulated on a bigger machine, and a capped run must choose as that
laptop would. The layout is channels_last on every CPU: oneDNN's convolutions are
written for NHWC, and fp32 NHWC trained 1.33x as fast as NCHW on an AVX2-only Zen 1
(BENCHMARKS.md, "Session 12") and 1.39x on the issue's AVX2 EPYC (44.6 s against 61.9 s
an epoch).

**Memory.** glibc hands a freed block of a few MB back to the kernel, so every step
page-faulted its activations in again; :func:`keep_freed_memory` keeps them for reuse
(measured: 660-2,700 faults a step, 3-6 ms of system time in a 30-40 ms fp32 step;
CPU time per step 0.89x in fp32 under the AVX2 cap, 0.82x in bf16).

**Threads** are not a property of the CPU but of what else runs on it, so they are
chosen from the run's own step times as it goes (:mod:`convlens.train.threads`: on 2
shared cores 1 thread, on quiet ones 2; ``--threads`` and ``CONVLENS_THREADS`` fix it).
"""

from __future__ import annotations

import ctypes
import platform
import sys

from convlens.cpu_features import CpuFeatures


def cpu_precision_and_layout(features: CpuFeatures) -> tuple[str, bool]:
    """``auto``'s (precision, channels_last) on a CPU: bf16 where it is native, else fp32;
    channels_last on both (see the module's docstring for the measurements)."""
    return ("bf16" if features.native_bf16 else "fp32"), True


# --- memory ----------------------------------------------------------------------------

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
KEEP_FREED_BYTES = 256 << 20  # freed memory kept for reuse before any is handed back
LARGEST_REUSED_BYTES = 32 << 20  # blocks up to this come from the reused heap (glibc's max)
_MEMORY_KEPT: bool | None = None


def keep_freed_memory() -> bool:
    """Let glibc reuse the memory of freed activations instead of handing it back to the
    kernel at every step; True where it applied (glibc), once per process.

    A training step of the lesson's CNN allocates and frees a few MB-sized buffers
    (a 32 x 64 x 26 x 26 fp32 map is 5.5 MB). glibc serves blocks that large with fresh
    ``mmap`` pages, or trims them off the heap when freed, so each step touched about
    2,500 new pages: 3-6 ms of page faults in a 30-40 ms fp32 step (measured, AVX2 cap,
    1 thread; the kernels' own time was the same). With blocks up to 32 MB served from
    the heap and up to 256 MB of freed memory kept, the faults drop to none. The cost is
    that the process keeps its peak memory (at most 256 MB more) until it exits.
    """
    global _MEMORY_KEPT
    if _MEMORY_KEPT is None:
        _MEMORY_KEPT = _mallopt(_M_MMAP_THRESHOLD, LARGEST_REUSED_BYTES) and _mallopt(
            _M_TRIM_THRESHOLD, KEEP_FREED_BYTES
        )
    return _MEMORY_KEPT


def _mallopt(parameter: int, value: int) -> bool:
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(parameter, value))  # 1 on success; musl has none: AttributeError
    except (OSError, AttributeError):
        return False
