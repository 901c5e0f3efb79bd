"""Where a training step's time goes: torch.profiler over convlens' own step.

Trains the lesson's ``cnn`` (batch 32, Adam 1e-3, uint8 data on the device) with
:func:`convlens.train.engine.train_epoch` in the given precision and layout, after a
warm-up, and prints the operators by self CPU time, so the convolutions can be told
apart from everything around them (pooling, relu, flatten, dense, loss, Adam, autograd,
the Python of the step)::

    .venv/bin/python bench/step_profile.py [--precision fp32|bf16|auto] [--nchw]
        [--steps 200] [--threads N] [--device auto] [--rows 30]
    .venv/bin/python bench/step_profile.py --model fast --preset fast --steps 40 --threads 1

``--preset NAME`` trains with that preset's recipe (its batch size, optimizer, label
smoothing and augmentation) instead of the lesson's; ``--batch-size`` still overrides.

Without ``--threads`` the warm-up chooses the count as ``convlens train`` does
(:mod:`convlens.train.threads`) and the profiled steps keep it.

Emulate an AVX2 laptop with ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` in the
environment. Random pixels stand in for the data (a step's cost does not depend on them).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from convlens.models.network import build_network
from convlens.models.registry import PRESETS, resolve_model
from convlens.recipe import TrainConfig
from convlens.train.engine import make_optimizer, train_epoch
from convlens.train.runtime import resolve_runtime
from convlens.train.threads import ThreadTuner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--nchw", action="store_true", help="NCHW instead of channels_last")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=None, help="32, or the preset's")
    parser.add_argument("--preset", default=None, help="train with this preset's recipe")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rows", type=int, default=30)
    args = parser.parse_args()

    recipe = dict(PRESETS[args.preset].recipe) if args.preset else {"batch_size": 32}
    if args.batch_size:
        recipe["batch_size"] = args.batch_size
    config = TrainConfig(
        **recipe, precision=args.precision, threads=args.threads,
        channels_last=False if args.nchw else None, device=args.device,
    )  # fmt: skip
    batch_size = config.batch_size
    runtime = resolve_runtime(config)
    torch.manual_seed(0)
    network = build_network(resolve_model(args.model), (1, 28, 28), 10).to(runtime.device)
    if runtime.channels_last:
        network = network.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(network.parameters(), config)
    n = args.steps * batch_size
    x = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, device=runtime.device)
    y = torch.randint(0, 10, (n,), device=runtime.device)
    # the warm-up picks the threads as convlens train would (unless --threads); the
    # profiled steps keep that count
    tuner = ThreadTuner(args.threads) if runtime.device.type == "cpu" else None
    warm = 40 * batch_size
    train_epoch(network, optimizer, x[:warm], y[:warm], config, runtime, epoch=1, threads=tuner)
    activities = [ProfilerActivity.CPU]
    if runtime.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        train_epoch(network, optimizer, x, y, config, runtime, epoch=2)
    took = time.perf_counter() - start
    print(f"{args.model} {runtime.precision} channels_last={runtime.channels_last} "
          f"threads={torch.get_num_threads()} cpu={torch.backends.cpu.get_cpu_capability()}: "
          f"{1e3 * took / args.steps:.2f} ms a step under the profiler")  # fmt: skip
    sort = "self_cuda_time_total" if runtime.device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=args.rows))


if __name__ == "__main__":
    main()
