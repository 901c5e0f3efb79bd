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
written for NHWC, and fp32 NHWC trained 2.5-4.5x faster than NCHW under AVX2 (the issue's
AVX2 EPYC: 44.6 s against 61.9 s an epoch).

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
import os
import platform
import sys
from dataclasses import dataclass

import torch

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
