"""Median training-step time of several nets, interleaved in one process.

    .venv/bin/python bench/step_cost.py --threads 1 --batch 256 fast quick "conv(32, ...)"

Each net (a preset name or layer text) trains on random 28x28 pixels with AdamW, the
training runtime convlens would choose (bf16 autocast and channels_last where the CPU
has them; ``--precision fp32`` to compare) and the 2-pixel shift-and-flip augmentation.
Rounds of ``--steps`` steps go round-robin over the nets, so a busy machine's load falls
on all of them alike; the first round is warm-up, the median of the rest is reported,
with the ratio to the first net. What it measures is the machine's speed for a net, not
what the net learns: a recipe's accuracy comes from training it.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from convlens.models.network import build_network
from convlens.models.registry import resolve_model
from convlens.recipe import TrainConfig
from convlens.train.engine import augment_batch, make_optimizer
from convlens.train.runtime import resolve_runtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="preset names or layer text")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    config = TrainConfig(
        threads=args.threads, precision=args.precision, optimizer="adamw", augment=True
    )
    runtime = resolve_runtime(config)
    images = torch.randint(0, 256, (args.batch, 1, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (args.batch,))
    generator = torch.Generator().manual_seed(0)
    nets = []
    for model in args.models:
        network = build_network(resolve_model(model), (1, 28, 28), 10)
        if runtime.channels_last:
            network = network.to(memory_format=torch.channels_last)
        nets.append((model, network, make_optimizer(network.parameters(), config)))

    def step(network: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        x = runtime.prepare(augment_batch(images, generator))
        with runtime.autocast():
            logits = network(x)
        loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    seconds: dict[str, list[float]] = {model: [] for model, _, _ in nets}
    for _ in range(args.rounds):
        for model, network, optimizer in nets:
            start = time.perf_counter()
            for _ in range(args.steps):
                step(network, optimizer)
            seconds[model].append((time.perf_counter() - start) / args.steps)
    print(runtime.describe())
    first = statistics.median(seconds[args.models[0]][1:])
    for model, network, _ in nets:
        median = statistics.median(seconds[model][1:])
        params = sum(p.numel() for p in network.parameters())
        print(
            f"{median * 1000:7.1f} ms/step  {median / first:5.2f}x  "
            f"{args.batch / median:6.0f} images/s  {params:>9,} params  {model}"
        )


if __name__ == "__main__":
    main()
