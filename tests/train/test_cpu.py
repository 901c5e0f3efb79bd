"""auto's per-CPU choices on mocked CPU flags, and the memory setting."""

from __future__ import annotations

import pytest
import torch

from convlens.recipe import TrainConfig
from convlens.train import cpu
from convlens.train.cpu import CpuFeatures, keep_freed_memory
from convlens.train.runtime import resolve_runtime

ZEN3_LAPTOP = CpuFeatures(avx512_bf16=False, amx=False, aten_capability="AVX2", onednn_cap=None)
ZEN4 = CpuFeatures(avx512_bf16=True, amx=False, aten_capability="AVX512", onednn_cap=None)
SAPPHIRE_RAPIDS = CpuFeatures(avx512_bf16=True, amx=True, aten_capability="AVX512", onednn_cap=None)
ICE_LAKE = CpuFeatures(avx512_bf16=False, amx=False, aten_capability="AVX512", onednn_cap=None)


def capped(features: CpuFeatures, aten: str | None = None, onednn: str | None = None):
    return CpuFeatures(features.avx512_bf16, features.amx, aten or features.aten_capability, onednn)


@pytest.mark.parametrize(
    ("features", "precision"),
    [
        (ZEN3_LAPTOP, "fp32"),
        (ICE_LAKE, "fp32"),  # AVX-512 without its bf16 instructions
        (ZEN4, "bf16"),
        (SAPPHIRE_RAPIDS, "bf16"),
        # an AVX2 laptop emulated on a big CPU chooses as the laptop would
        (capped(SAPPHIRE_RAPIDS, aten="AVX2", onednn="AVX2"), "fp32"),
        (capped(SAPPHIRE_RAPIDS, onednn="AVX2"), "fp32"),
        (capped(SAPPHIRE_RAPIDS, aten="AVX2"), "fp32"),
        (capped(SAPPHIRE_RAPIDS, onednn="AVX512_CORE"), "fp32"),
        (capped(SAPPHIRE_RAPIDS, onednn="AVX512_CORE_BF16"), "bf16"),
        (capped(SAPPHIRE_RAPIDS, onednn="AVX512_CORE_AMX"), "bf16"),
        (capped(SAPPHIRE_RAPIDS, onednn="ALL"), "bf16"),
        (capped(SAPPHIRE_RAPIDS, onednn="SOMETHING_NEW"), "fp32"),  # unknown: the exact path
    ],
)
def test_auto_picks_bf16_only_where_it_is_native_and_nhwc_everywhere(features, precision) -> None:
    assert cpu.cpu_precision_and_layout(features) == (precision, True)
    runtime = resolve_runtime(TrainConfig(device="cpu"), cpu=features)
    assert (runtime.precision, runtime.channels_last) == (precision, True)


def test_what_the_user_asks_for_wins_over_auto() -> None:
    asked = TrainConfig(device="cpu", precision="bf16", channels_last=False)
    runtime = resolve_runtime(asked, cpu=ZEN3_LAPTOP)
    assert (runtime.precision, runtime.channels_last) == ("bf16", False)
    runtime = resolve_runtime(TrainConfig(device="cpu", precision="fp32"), cpu=SAPPHIRE_RAPIDS)
    assert (runtime.precision, runtime.channels_last) == ("fp32", True)


def test_detect_reads_the_flags_and_the_caps(monkeypatch) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    features = CpuFeatures.detect()
    assert features == CpuFeatures(True, False, "AVX512", "AVX2") and not features.native_bf16
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert CpuFeatures.detect().native_bf16


def test_freed_memory_is_kept_for_reuse_once_per_process() -> None:
    kept = keep_freed_memory()
    assert kept is keep_freed_memory()  # set once, the same answer after
    if cpu.sys.platform.startswith("linux") and cpu.platform.libc_ver()[0] == "glibc":
        assert kept
