"""Median training-step time of several nets, interleaved in one process.

    .venv/bin/python bench/step_cost.py --threads 1 --batch 256 fast quick "conv(32, ...)"
    .venv/bin/python bench/step_cost.py --preset quick quick "conv(16, ...)" quick@64
    .venv/bin/python bench/step_cost.py --preset fast fast --sizes 28 24 20 16

Each net (a preset name or layer text, optionally ``@BATCH`` for its own batch size)
trains on random 28x28 pixels through :func:`convlens.train.engine.train_epoch`, with
the training runtime convlens would choose (bf16 autocast and channels_last where the
CPU has them; ``--precision fp32`` to compare) and a recipe: by default AdamW with the
2-pixel shift-and-flip augmentation, or ``--preset NAME``'s own recipe (quick: Adam,
one-cycle, no augmentation). Rounds of ``--steps`` steps go round-robin over the nets,
so a busy machine's load falls on all of them alike; the first round is warm-up, the
median of the rest is reported, in wall-clock and in the process's CPU time (which
waiting for a shared core does not inflate), with the ratio to the first net per 60,000
images (an epoch), so nets at different batch sizes compare. ``--sizes`` measures each
net at each image size (progressive resizing: the batch is scaled down in the step by
``TrainConfig.resize``, as training does), interleaved too. What it measures is the
machine's speed for a net, not what the net learns: a recipe's accuracy comes from
training it.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from convlens.models.network import build_network
from convlens.models.registry import PRESETS, resolve_model
from convlens.recipe import TrainConfig
from convlens.train.engine import make_optimizer, train_epoch
from convlens.train.runtime import resolve_runtime

EPOCH_IMAGES = 60_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="preset names or layer text, each [@BATCH]")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=256, help="for a net without @BATCH")
    parser.add_argument("--preset", default=None, help="train with this preset's recipe")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[28], help="image sizes (28: the data's own)"
    )
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    default_recipe = {"optimizer": "adamw", "augment": True}
    recipe = dict(PRESETS[args.preset].recipe) if args.preset else default_recipe
    nets = []
    for text, size in ((text, size) for text in args.models for size in args.sizes):
        model, _, batch = text.rpartition("@") if "@" in text else (text, "", "")
        # Every round is an epoch at ``size``: the first half of 2 x rounds epochs.
        resize = {"resize": f"{size}:0.5", "epochs": 2 * args.rounds} if size < 28 else {}
        config = TrainConfig(
            **{**recipe, "batch_size": int(batch or args.batch), **resize},
            threads=args.threads, precision=args.precision,
        )  # fmt: skip
        text = f"{text} at {size}x{size}" if len(args.sizes) > 1 else text
        runtime = resolve_runtime(config)
        torch.manual_seed(0)
        network = build_network(resolve_model(model), (1, 28, 28), 10).to(runtime.device)
        if runtime.channels_last:
            network = network.to(memory_format=torch.channels_last)
        nets.append((text, network, config, make_optimizer(network.parameters(), config)))
    largest = max(config.batch_size for _, _, config, _ in nets) * args.steps
    images = torch.randint(0, 256, (largest, 1, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (largest,))

    wall: list[list[float]] = [[] for _ in nets]  # seconds per step
    cpu: list[list[float]] = [[] for _ in nets]
    for round_ in range(args.rounds):
        for walls, cpus, (_, network, config, optimizer) in zip(wall, cpu, nets, strict=True):
            n = config.batch_size * args.steps
            cpu_start = time.process_time()
            result = train_epoch(
                network, optimizer, images[:n], labels[:n], config, runtime, epoch=round_ + 1
            )
            cpus.append((time.process_time() - cpu_start) / args.steps)
            walls.append(result.seconds / args.steps)
    print(runtime.describe(), f"recipe: {args.preset or 'AdamW, shifts and flips'}")

    def per_epoch(times: list[float], config: TrainConfig) -> float:
        return statistics.median(times[1:]) * EPOCH_IMAGES / config.batch_size

    first_wall, first_cpu = per_epoch(wall[0], nets[0][2]), per_epoch(cpu[0], nets[0][2])
    print("ms/step  s/epoch  ratio | CPU ms/step  s/epoch  ratio |    params  net")
    for walls, cpus, (text, network, config, _) in zip(wall, cpu, nets, strict=True):
        epoch_wall, epoch_cpu = per_epoch(walls, config), per_epoch(cpus, config)
        params = sum(p.numel() for p in network.parameters())
        print(
            f"{statistics.median(walls[1:]) * 1000:7.1f} {epoch_wall:8.1f} "
            f"{epoch_wall / first_wall:5.2f}x | {statistics.median(cpus[1:]) * 1000:11.1f} "
            f"{epoch_cpu:8.1f} {epoch_cpu / first_cpu:5.2f}x | {params:>9,}  {text}"
        )


if __name__ == "__main__":
    main()
