"""fast's max-pool head as `gmp` or `maxpool(3), flatten`: the same network; a step's cost.

Three measurements, each of the two spellings side by side in one process:

* ``same``: both networks built with one seed, their whitening fitted on the same images
  and trained ``--same-steps`` steps of the default runtime (bf16 and channels_last where
  the CPU runs bf16 natively) on the first Fashion-MNIST training images, each from the
  same random state: are their weights still equal, bit for bit?
* ``step``: the training step of each (``engine.train_epoch``, batch 256, AdamW, augment
  as fast's recipe), interleaved (ABBA) over ``--rounds`` rounds of ``--steps`` steps;
  the medians and the median of the per-round ratios;
* ``head``: the head alone (input (128, 3, 3), batch 256, forward and backward), three
  ways: ``batchnorm(relu), maxpool(3), flatten`` (forward runs batchnorm -> maxpool ->
  relu), ``batchnorm(relu), gmp`` (batchnorm -> gmp -> relu) and ``batchnorm,
  activation(relu), gmp`` (relu on all 9 cells, then gmp: what the plan saves).

::

    .venv/bin/python bench/gmp_head.py --data-dir DIR [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from time_to_accuracy import FAST_MAX_POOL_HEAD

TIED = FAST_MAX_POOL_HEAD.replace(", gmp, ", ", maxpool(3), flatten, ")
HEADS = {
    "maxpool(3), flatten": "batchnorm(relu), maxpool(3), flatten, dense(10, softmax)",
    "gmp": "batchnorm(relu), gmp, dense(10, softmax)",
    "gmp, relu before it": "batchnorm, activation(relu), gmp, dense(10, softmax)",
}


def fitted(text: str, images: torch.Tensor) -> torch.nn.Module:
    from convlens.models.network import build_network
    from convlens.models.spec import parse_spec
    from convlens.models.whitening import fit_whitening

    torch.manual_seed(0)
    network = build_network(parse_spec(text), (1, 28, 28), 10)
    fit_whitening(network, images)
    return network


def setup(data_dir: str, threads: int):
    from convlens.data import load_dataset
    from convlens.models.registry import PRESETS
    from convlens.recipe import TrainConfig
    from convlens.train.runtime import resolve_runtime

    data = load_dataset("fashion-mnist", data_dir=data_dir, download=False, progress=False)
    images = torch.from_numpy(data.train_images[:12_800])
    labels = torch.from_numpy(data.train_labels[:12_800])
    recipe = {**PRESETS["fast"].recipe, "lr": 6e-3, "threads": threads, "device": "cpu"}
    config = TrainConfig(**recipe)
    return images, labels, config, resolve_runtime(config)


def prepared(text, images, config, runtime):
    from convlens.train import engine

    network = fitted(text, images).to(runtime.device)
    if runtime.channels_last:
        network = network.to(memory_format=torch.channels_last)
    return network, engine.make_optimizer(network.parameters(), config)


def same(images, labels, config, runtime, steps: int) -> dict:
    from convlens.train import engine

    results = {}
    for label, text in (("maxpool(3), flatten", TIED), ("gmp", FAST_MAX_POOL_HEAD)):
        network, optimizer = prepared(text, images, config, runtime)
        torch.manual_seed(1)  # augmentation and batch order: the same draws for both
        n = steps * config.batch_size
        engine.train_epoch(network, optimizer, images[:n], labels[:n], config, runtime, epoch=1)
        results[label] = network.state_dict()
    a, b = results.values()
    return {
        "steps": steps,
        "precision": runtime.precision,
        "channels_last": runtime.channels_last,
        "same_names": list(a) == list(b),
        "bit_equal_after": all(torch.equal(a[k], b[k]) for k in a),
        "max_abs_difference": max(float((a[k].double() - b[k].double()).abs().max()) for k in a),
    }


def step_times(images, labels, config, runtime, rounds: int, steps: int) -> dict:
    from convlens.train import engine

    arms = {
        label: prepared(text, images, config, runtime)
        for label, text in (("maxpool(3), flatten", TIED), ("gmp", FAST_MAX_POOL_HEAD))
    }
    n = steps * config.batch_size
    times: dict[str, list[float]] = {label: [] for label in arms}
    for network, optimizer in arms.values():  # warm-up
        engine.train_epoch(network, optimizer, images[:n], labels[:n], config, runtime, epoch=1)
    for r in range(rounds):
        order = list(arms) if r % 2 == 0 else list(arms)[::-1]
        for label in order:
            network, optimizer = arms[label]
            at = (r * n) % (len(images) - n)
            result = engine.train_epoch(network, optimizer, images[at : at + n],
                                        labels[at : at + n], config, runtime, epoch=1)  # fmt: skip
            times[label].append(1e3 * result.seconds / steps)
    ratios = [g / m for m, g in zip(times["maxpool(3), flatten"], times["gmp"], strict=True)]
    return {
        "steps_per_round": steps,
        "ms_per_step": times,
        "median_ms": {label: statistics.median(v) for label, v in times.items()},
        "ratio_gmp_to_maxpool_median": statistics.median(ratios),
        "ratio_range": [min(ratios), max(ratios)],
    }


def head_times(runtime, rounds: int, repeats: int = 20) -> dict:
    from convlens.models.network import build_network
    from convlens.models.spec import parse_spec

    x0 = torch.randn(256, 128, 3, 3, generator=torch.Generator().manual_seed(0))
    if runtime.channels_last:
        x0 = x0.contiguous(memory_format=torch.channels_last)
    heads = {}
    for label, text in HEADS.items():
        torch.manual_seed(0)
        heads[label] = build_network(parse_spec(text), (128, 3, 3), 10).train()

    def once(network) -> None:
        x = x0.detach().requires_grad_()
        with runtime.autocast():
            loss = network(x).float().sum()
        loss.backward()

    times: dict[str, list[float]] = {label: [] for label in heads}
    for network in heads.values():
        for _ in range(repeats):
            once(network)
    for r in range(rounds):
        for label in list(heads) if r % 2 == 0 else list(heads)[::-1]:
            start = time.perf_counter()
            for _ in range(repeats):
                once(heads[label])
            times[label].append(1e6 * (time.perf_counter() - start) / repeats)
    base = times["maxpool(3), flatten"]
    return {
        "us_per_pass": times,
        "median_us": {label: statistics.median(v) for label, v in times.items()},
        "median_ratio_to_maxpool": {
            label: statistics.median(t / b for t, b in zip(v, base, strict=True))
            for label, v in times.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--same-steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--head-rounds", type=int, default=30)
    parser.add_argument("--json")
    args = parser.parse_args()
    images, labels, config, runtime = setup(args.data_dir, args.threads)
    load = os.getloadavg()
    result = {
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_before": load,
        "same": same(images, labels, config, runtime, args.same_steps),
    }
    print(json.dumps(result["same"]))
    result["head"] = head_times(runtime, args.head_rounds)
    print(
        json.dumps(result["head"]["median_us"]),
        json.dumps(result["head"]["median_ratio_to_maxpool"]),
    )
    result["step"] = step_times(images, labels, config, runtime, args.rounds, args.steps)
    print(json.dumps(result["step"]["median_ms"]), result["step"]["ratio_gmp_to_maxpool_median"],
          result["step"]["ratio_range"])  # fmt: skip
    result["load_after"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
