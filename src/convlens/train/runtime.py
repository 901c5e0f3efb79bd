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
from convlens.train.cpu import CpuFeatures, cpu_precision_and_layout
from convlens.train.threads import max_threads


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
            features = CpuFeatures.detect()
            info["cpu_capability"] = features.aten_capability
            info["avx512_bf16"] = features.avx512_bf16
            info["amx"] = features.amx
            info["onednn_max_cpu_isa"] = features.onednn_cap
        return info


def resolve_runtime(config: TrainConfig, cpu: CpuFeatures | None = None) -> Runtime:
    """The runtime for ``config``; ``auto`` precision and an unset layout are chosen per
    device: on a CPU by :func:`convlens.train.cpu.cpu_precision_and_layout` (``cpu``, else
    detected), on CUDA bf16 where supported, channels_last with it."""
    if config.threads:
        max_threads()  # remember torch's own count before changing it
        torch.set_num_threads(config.threads)
    device = _device(config.device)
    if device.type == "cuda":
        auto_precision = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        auto_layout = auto_precision == "bf16"
    else:
        auto_precision, auto_layout = cpu_precision_and_layout(cpu or CpuFeatures.detect())
    precision = auto_precision if config.precision == "auto" else config.precision
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise OptionError(f"{torch.cuda.get_device_name(device)} has no bf16; use --precision fp32")
    channels_last = config.channels_last
    if channels_last is None:
        channels_last = auto_layout
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
