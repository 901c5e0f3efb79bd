"""What the CPU has and what the libraries may use: its flags and their caps.

The facts that ``auto``'s choices are made from (:mod:`convlens.train.cpu` makes the
training ones, :mod:`convlens.models.small_map_conv` its threshold), on the lowest floor
so that any layer may read them. Tests build :class:`CpuFeatures` by hand to mock a CPU.
"""

from __future__ import annotations

import os
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
        return self.onednn_allows(ONEDNN_ISAS[FIRST_BF16_ISA])

    @property
    def avx512_kernels(self) -> bool:
        """Whether ATen and oneDNN may both run their AVX-512 kernels (the CPU has them and
        neither is capped below them)."""
        return self.aten_capability.upper().startswith("AVX512") and self.onednn_allows(
            "AVX512_CORE"
        )

    def onednn_allows(self, isa: str) -> bool:
        """Whether ``ONEDNN_MAX_CPU_ISA`` lets oneDNN use ``isa`` (one of
        :data:`ONEDNN_ISAS`): yes when uncapped, no under a cap we do not know (the
        safe, exact path)."""
        if self.onednn_cap in (None, "ALL", "DEFAULT"):
            return True
        if self.onednn_cap not in ONEDNN_ISAS:
            return False
        return ONEDNN_ISAS.index(self.onednn_cap) >= ONEDNN_ISAS.index(isa)
