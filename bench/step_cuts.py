"""A preset's training step with and without this session's cuts, interleaved A/B.

    .venv/bin/python bench/step_cuts.py --threads 1 --rounds 9 --steps 8 [--preset fast]

Builds the preset's net once per variant (the same seed, so the same weights) and
trains each with :func:`convlens.train.engine.train_epoch` and the preset's recipe on
random pixels (a step's cost does not depend on them), rounds of ``--steps`` steps
going round-robin over the variants so a busy machine's load falls on all alike. The
first round is warm-up; the medians of the rest are printed, in wall-clock and in the
process's CPU time (which waiting for a shared core does not inflate), with each
variant's ratio to the first. Variants:

- ``before``: every cut undone (each convolution a plain ``nn.Conv2d``, the
  augmentation as the flip, pad and four-index gather it was).
- ``now``: the step as convlens runs it.
- ``no-small-map-conv``: ``now`` with only the small-map weight gradient undone
  (:mod:`convlens.models.small_map_conv`).
- ``no-one-gather``: ``now`` with only the old augmentation.
- ``small-maps-4x4``: ``now`` with the small-map weight gradient on maps up to 4x4 only
  (:data:`~convlens.models.small_map_conv.AMX_SMALL_MAP`, Sapphire Rapids' limit; a CPU
  with AVX512-BF16 and no AMX takes it up to 7x7).
- ``fp32-small-maps-off``: ``now`` with fp32 maps always on oneDNN's own weight gradient
  (where oneDNN runs AVX2 kernels ``now`` takes fp32 maps up to 11x11 the forward way:
  :data:`~convlens.models.small_map_conv.AVX2_FP32_SMALL_MAP`).
- ``fp32-small-maps-26x26``: ``now`` with fp32 maps up to 26x26 the forward way (``cnn``'s
  first layer too).

``--preset cnn`` is the lesson's recipe (batch 32, Adam).

Emulate an AVX2 laptop with ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from convlens.models import small_map_conv
from convlens.models.network import build_network
from convlens.models.registry import PRESETS, resolve_model
from convlens.models.small_map_conv import SmallMapConv2d
from convlens.recipe import TrainConfig
from convlens.train import engine
from convlens.train.engine import make_optimizer, train_epoch
from convlens.train.runtime import resolve_runtime


def plain_convolutions(network: nn.Module) -> None:
    """Every :class:`SmallMapConv2d` back to ``nn.Conv2d`` (the same parameters)."""
    for module in network.modules():
        if type(module) is SmallMapConv2d:
            module.__class__ = nn.Conv2d


def flip_pad_index(x, generator, shift=2, *, flip=None):
    """The augmentation before the one gather (the same batches, to the bit)."""
    n, _, h, w = x.shape
    if flip is None:
        flip = torch.rand(n, generator=generator, device="cpu") < 0.5
    flip = flip.to(x.device)
    x = torch.where(flip.view(n, 1, 1, 1), x.flip(-1), x)
    padded = F.pad(x, (shift, shift, shift, shift))
    dy = torch.randint(0, 2 * shift + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * shift + 1, (n,), generator=generator).to(x.device)
    rows = (dy.view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (dx.view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channel = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[batch, channel, rows, cols]


# variant: (what is undone on the network, the augmentation it trains with, the small-map
# limits in pixels, low precision and fp32: None for this CPU's own)
UNDO = {
    "before": ((plain_convolutions,), flip_pad_index, None, None),
    "now": ((), engine.augment_batch, None, None),
    "no-small-map-conv": ((plain_convolutions,), engine.augment_batch, None, None),
    "no-one-gather": ((), flip_pad_index, None, None),
    "small-maps-4x4": ((), engine.augment_batch, small_map_conv.AMX_SMALL_MAP, None),
    "fp32-small-maps-off": ((), engine.augment_batch, None, 0),
    "fp32-small-maps-26x26": ((), engine.augment_batch, None, 26 * 26),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--variants", nargs="+", default=["before", "now"], choices=UNDO)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    this_cpu_limit = small_map_conv.this_cpu_small_map_limit()
    this_cpu_fp32_limit = small_map_conv.this_cpu_fp32_small_map_limit()
    config = TrainConfig(**preset.recipe, threads=args.threads, precision=args.precision)
    runtime = resolve_runtime(config)
    runs = []
    for name in args.variants:
        torch.manual_seed(0)
        network = build_network(resolve_model(args.preset), (1, 28, 28), 10).to(runtime.device)
        undos, augment, limit, fp32_limit = UNDO[name]
        for undo in undos:
            undo(network)
        if runtime.channels_last:
            network = network.to(memory_format=torch.channels_last)
        optimizer = make_optimizer(network.parameters(), config)
        limits = (
            this_cpu_limit if limit is None else limit,
            this_cpu_fp32_limit if fp32_limit is None else fp32_limit,
        )
        runs.append((name, network, optimizer, augment, limits))
    n = config.batch_size * args.steps
    images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,))

    wall: list[list[float]] = [[] for _ in runs]  # seconds per step
    cpu: list[list[float]] = [[] for _ in runs]
    for round_ in range(args.rounds):
        for walls, cpus, (_, network, optimizer, augment, limits) in zip(
            wall, cpu, runs, strict=True
        ):
            engine.augment_batch = augment  # what train_epoch calls
            small_map_conv.this_cpu_small_map_limit = lambda limit=limits[0]: limit
            small_map_conv.this_cpu_fp32_small_map_limit = lambda limit=limits[1]: limit
            cpu_start = time.process_time()
            result = train_epoch(
                network, optimizer, images, labels, config, runtime, epoch=round_ + 1
            )
            cpus.append((time.process_time() - cpu_start) / args.steps)
            walls.append(result.seconds / args.steps)
    print(
        runtime.describe(),
        f"preset {args.preset}, batch {config.batch_size},",
        f"small maps up to {this_cpu_limit} pixels on this CPU (fp32: {this_cpu_fp32_limit})",
    )
    first_wall, first_cpu = statistics.median(wall[0][1:]), statistics.median(cpu[0][1:])
    print("wall ms/step  ratio | CPU ms/step  ratio | variant")
    for walls, cpus, (name, *_) in zip(wall, cpu, runs, strict=True):
        w, c = statistics.median(walls[1:]), statistics.median(cpus[1:])
        print(
            f"{w * 1e3:12.1f} {w / first_wall:6.3f}x | "
            f"{c * 1e3:11.1f} {c / first_cpu:6.3f}x | {name}"
        )


if __name__ == "__main__":
    main()
