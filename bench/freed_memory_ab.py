"""What keeping freed memory saves a training step: CPU time and page faults, A/B.

Each arm trains the lesson's ``cnn`` (batch 32, the default precision, 1 thread) for
``--steps`` steps in its own process, ``before`` with glibc's default behaviour (the
:func:`convlens.train.cpu.keep_freed_memory` call skipped) and ``after`` with it,
alternating for ``--rounds`` rounds, natively and with the AVX2 cap. CPU time (user +
system) per step is reported next to the wall time, since on a shared machine the wall
time mostly measures the neighbours::

    .venv/bin/python bench/freed_memory_ab.py [--rounds 3] [--steps 150] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys

AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def one_arm(arm: str, steps: int) -> dict:
    """Train ``steps`` steps in this process; per-step wall, CPU, system time and faults."""
    import torch

    from convlens.models.network import build_network
    from convlens.models.registry import resolve_model
    from convlens.recipe import TrainConfig
    from convlens.train import engine
    from convlens.train.runtime import resolve_runtime

    if arm == "before":
        engine.keep_freed_memory = lambda: False  # glibc as it comes
    config = TrainConfig(batch_size=32, threads=1, device="cpu")
    runtime = resolve_runtime(config)
    torch.manual_seed(0)
    network = build_network(resolve_model("cnn"), (1, 28, 28), 10)
    network = network.to(memory_format=torch.channels_last)
    optimizer = engine.make_optimizer(network.parameters(), config)
    n = steps * 32
    x = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8)
    y = torch.randint(0, 10, (n,))
    engine.train_epoch(network, optimizer, x[:640], y[:640], config, runtime, epoch=1)
    before = resource.getrusage(resource.RUSAGE_SELF)
    result = engine.train_epoch(network, optimizer, x, y, config, runtime, epoch=2)
    after = resource.getrusage(resource.RUSAGE_SELF)
    system = after.ru_stime - before.ru_stime
    return {
        "precision": runtime.precision,
        "wall_ms": 1e3 * result.seconds / steps,
        "cpu_ms": 1e3 * (after.ru_utime - before.ru_utime + system) / steps,
        "system_ms": 1e3 * system / steps,
        "faults": (after.ru_minflt - before.ru_minflt) / steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--arm", choices=("before", "after"), help=argparse.SUPPRESS)
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.arm:  # a child: one arm, its figures as one JSON line
        print(json.dumps(one_arm(args.arm, args.steps)))
        return
    rows: dict[str, dict[str, list[dict]]] = {"native": {}, "avx2": {}}
    for number in range(1, args.rounds + 1):
        for arm in ("before", "after"):
            for isa, extra in (("native", {}), ("avx2", AVX2_ONLY)):
                command = [sys.executable, __file__, "--arm", arm, "--steps", str(args.steps)]
                out = subprocess.run(command, env={**os.environ, **extra}, check=True,
                                     capture_output=True, text=True).stdout  # fmt: skip
                row = json.loads(out.strip().splitlines()[-1])
                rows[isa].setdefault(arm, []).append(row)
                print(
                    f"round {number} {isa} {arm} ({row['precision']}): wall "
                    f"{row['wall_ms']:.2f} ms/step, CPU {row['cpu_ms']:.2f}, system "
                    f"{row['system_ms']:.2f}, {row['faults']:.0f} faults/step",
                    flush=True,
                )
    summary = {}
    for isa, arms in rows.items():
        medians = {arm: statistics.median(r["cpu_ms"] for r in got) for arm, got in arms.items()}
        ratio = medians["after"] / medians["before"]
        summary[isa] = {"rows": arms, "median_cpu_ms": medians, "cpu_ratio": ratio}
        print(f"{isa}: median CPU {medians['before']:.2f} -> {medians['after']:.2f} ms/step "
              f"({ratio:.2f}x)")  # fmt: skip
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(summary, handle, indent=2)


if __name__ == "__main__":
    main()
