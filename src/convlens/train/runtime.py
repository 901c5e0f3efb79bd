"""Where and how tensors are computed: device, precision, memory format, threads.

Resolved once per run from the :class:`TrainConfig` and recorded in ``env.json``, so a
figure can always be traced to the arithmetic that produced it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from convlens.errors import OptionError
from convlens.recipe import TrainConfig


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    precision: str  # "fp32" or "bf16" (resolved, never "auto")
    channels_last: bool

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """bf16 autocast for the forward pass; a no-op in fp32."""
        if self.precision == "bf16":
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                yield
        else:
            yield

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """A batch (N, C, H, W) on the device, as float 0..1, in the model's memory format.

        uint8 pixels are scaled here, one batch at a time (the lesson's /255): datasets
        stay uint8 on the device, a quarter of the memory of a float copy.
        """
        x = x.to(self.device, non_blocking=True)
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def describe(self) -> dict[str, object]:
        info: dict[str, object] = {
            "device": str(self.device),
            "precision": self.precision,
            "channels_last": self.channels_last,
            "threads": torch.get_num_threads(),
        }
        if self.device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(self.device)
        else:
            info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        return info


def resolve_runtime(config: TrainConfig) -> Runtime:
    if config.threads:
        torch.set_num_threads(config.threads)
    device = _device(config.device)
    precision = config.precision
    if precision == "auto":
        precision = "bf16" if fast_bf16(device) else "fp32"
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise OptionError(f"{torch.cuda.get_device_name(device)} has no bf16; use --precision fp32")
    channels_last = config.channels_last
    if channels_last is None:
        channels_last = precision == "bf16"
    return Runtime(device, precision, channels_last)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OptionError(
            "device 'cuda' was asked for but no CUDA GPU is visible; use --device cpu"
        )
    return device


def fast_bf16(device: torch.device) -> bool:
    """True where bf16 matrix arithmetic runs natively (CUDA bf16, AVX512-BF16 or AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    # Private probes, but the ones torch's own oneDNN dispatch relies on; guard anyway.
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, probe, lambda: False)()) for probe in probes)
