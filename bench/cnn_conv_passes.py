"""Each of the lesson ``cnn``'s convolutions, pass by pass, in every precision and layout.

    .venv/bin/python bench/cnn_conv_passes.py [--threads 1] [--batch 32] [--rounds 15]

For ``cnn``'s two convolutions at batch 32 (conv2d: 1 -> 64 channels on 28x28, whose
input needs no gradient; conv2d_1: 64 -> 64 on 13x13), times the forward pass, the
input's gradient and the weight's gradient (with the bias'), in fp32 and bf16, NCHW and
channels_last, and the weight's gradient as a forward convolution with the batch as the
channels (:mod:`convlens.models.small_map_conv`'s form), interleaved round by round in
one process. Prints the medians of the process's CPU time (a shared machine's waiting
is not counted) and of the wall time, in ms. The question: which precision and layout
is fastest for each pass on this CPU (oneDNN picks a different kernel per ISA: AMX on
Sapphire Rapids, avx512_core_bf16 on Zen 4, avx2 under ``ONEDNN_MAX_CPU_ISA=AVX2``)?
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

# (name, in channels, out channels, input size, the input needs a gradient)
CONVS = [("conv2d", 1, 64, 28, False), ("conv2d_1", 64, 64, 13, True)]
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
LAYOUTS = ("NCHW", "channels_last")


def passes(batch: int) -> dict[str, Callable[[], object]]:
    """Name -> a closure running one pass, on fixed random tensors."""
    cases: dict[str, Callable[[], object]] = {}
    for name, c_in, c_out, size, input_grad in CONVS:
        for precision, dtype in PRECISIONS.items():
            for layout in LAYOUTS:
                fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format

                def tensor(*shape: int, fmt=fmt, dtype=dtype) -> torch.Tensor:
                    return torch.randn(shape).to(dtype).contiguous(memory_format=fmt)

                x = tensor(batch, c_in, size, size)
                w, b = tensor(c_out, c_in, 3, 3), torch.randn(c_out).to(dtype)
                dy = tensor(batch, c_out, size - 2, size - 2)
                tag = f"{name} {precision} {layout}"

                def backward(mask, x=x, w=w, dy=dy):
                    return torch.ops.aten.convolution_backward(
                        dy, x, w, [w.shape[0]], [1, 1], [0, 0], [1, 1], False, [0, 0], 1, mask
                    )

                cases[f"{tag} | forward"] = lambda x=x, w=w, b=b: F.conv2d(x, w, b)
                if input_grad:
                    cases[f"{tag} | input grad"] = lambda bw=backward: bw([True, False, False])
                cases[f"{tag} | weight grad"] = lambda bw=backward: bw([False, True, True])
                cases[f"{tag} | weight grad as forward"] = lambda x=x, dy=dy: (
                    F.conv2d(x.transpose(0, 1), dy.transpose(0, 1)),
                    dy.sum(dim=(0, 2, 3)),
                )
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=20, help="calls per timing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cases = passes(args.batch)
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    wall: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(args.rounds):
        for name, run in cases.items():
            c, w = time.process_time(), time.perf_counter()
            for _ in range(args.repeat):
                run()
            if round_ >= 2:  # warm-up: oneDNN builds its primitives
                cpu[name].append((time.process_time() - c) / args.repeat * 1e3)
                wall[name].append((time.perf_counter() - w) / args.repeat * 1e3)
    isa = torch.backends.cpu.get_cpu_capability()
    print(f"batch {args.batch}, {args.threads} thread(s), {isa}")
    print(f"{'pass':<58} {'CPU ms':>7} {'wall ms':>8}")
    for name in cases:
        cpu_ms, wall_ms = statistics.median(cpu[name]), statistics.median(wall[name])
        print(f"{name:<58} {cpu_ms:7.3f} {wall_ms:8.3f}")


if __name__ == "__main__":
    main()
