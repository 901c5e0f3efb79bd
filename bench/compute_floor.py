"""How fast could a training step of a model be on this machine? The floor, measured.

    .venv/bin/python bench/compute_floor.py [--model cnn] [--batch-size 32] [--device auto]
        [--precision auto|fp32|bf16] [--json out.json]

Three measurements, side by side in one process:

1. What the cores do at best: matrix multiplies of a large square shape in fp32 and in
   the step's precision, and of the shape the model's biggest layer really multiplies
   (for a conv: its im2col form, (N*H_out*W_out, C_in*k*k) x (C_in*k*k, F)).
2. Each conv and dense layer alone, forward and backward at the batch size, in the step's
   precision, with the FLOPs it does, so each layer's GFLOP/s can be put next to the
   matmul peak.
3. A whole training step of ``convlens``' engine, and the floor: the step's multiply-add
   FLOPs at the best matmul rate in its precision.

The step's precision is ``--precision`` (``auto``: what ``convlens train`` chooses, bf16
where the CPU multiplies it natively, else fp32). A CPU that emulates bf16 (AVX2) is not
asked for bf16 matmuls under ``auto``: they run at a tenth of fp32's pace there, and the
square one alone took minutes.

FLOPs count 2 per multiply-add; a training step is forward (1x) plus the backward for
the inputs (1x, except the first layer, whose input needs no gradient) and the weights
(1x). ``--device auto`` measures on CUDA when there is one (bf16 where the GPU has it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from convlens.models import resolve_model
from convlens.models.layers import Conv, Dense
from convlens.models.network import build_network
from convlens.recipe import TrainConfig
from convlens.train.engine import make_optimizer
from convlens.train.runtime import resolve_runtime

DEVICE = torch.device("cpu")  # set by --device


def synchronize() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def timed(step: Callable[[], object], repeats: int = 7, inner: int = 20) -> float:
    """Median seconds of one call, over ``repeats`` groups of ``inner`` calls (after warm-up)."""
    for _ in range(inner):
        step()
    groups = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        for _ in range(inner):
            step()
        synchronize()
        groups.append((time.perf_counter() - start) / inner)
    return statistics.median(groups)


def matmul_rate(m: int, k: int, n: int, dtype: torch.dtype) -> float:
    """GFLOP/s of (m, k) @ (k, n) in ``dtype``."""
    a = torch.randn(m, k, device=DEVICE).to(dtype)
    b = torch.randn(k, n, device=DEVICE).to(dtype)
    seconds = timed(lambda: a @ b, inner=max(1, int(2e9 / (2 * m * k * n))))
    return 2 * m * k * n / seconds / 1e9


def layer_costs(model: str, batch: int, dtype: torch.dtype) -> list[dict[str, object]]:
    """Per conv/dense layer: its FLOPs in a training step and its measured fwd+bwd time,
    autocast to ``dtype`` (fp32: no autocast)."""
    network = build_network(resolve_model(model), (1, 28, 28), 10)
    new = dict(device=DEVICE)
    rows = []
    first = True
    low_precision = dtype != torch.float32  # fp32: no autocast
    for name, spec, in_shape, out_shape in zip(
        network.names,
        network.spec.layers,
        [network.input_shape, *network.shapes[:-1]],
        network.shapes,
        strict=True,
    ):
        if isinstance(spec, Conv):
            c, _, _ = in_shape
            f, h, w = out_shape
            kh, kw = spec.kernel_size
            macs = h * w * f * c * kh * kw
            weight = torch.randn(f, c, kh, kw, **new).to(memory_format=torch.channels_last)
            x = torch.randn(batch, *in_shape, **new).to(memory_format=torch.channels_last)
            grad = torch.randn(batch, *out_shape, **new).to(dtype)
            grad = grad.contiguous(memory_format=torch.channels_last)

            top, bottom, left, right = spec.pads(in_shape)

            def op(x=x, weight=weight, spec=spec, pads=(left, right, top, bottom)):
                return F.conv2d(F.pad(x, pads), weight, stride=spec.stride)

            gemm = (batch * h * w, c * kh * kw, f)
        elif isinstance(spec, Dense):
            (c,) = in_shape
            (f,) = out_shape
            macs = c * f
            weight = torch.randn(f, c, **new)
            x = torch.randn(batch, c, **new)
            grad = torch.randn(batch, f, **new).to(dtype)

            def op(x=x, weight=weight):
                return F.linear(x, weight)

            gemm = (batch, c, f)
        else:
            continue
        weight.requires_grad_()
        x.requires_grad_(not first)

        def step(op=op, grad=grad):
            with torch.autocast(DEVICE.type, dtype=dtype, enabled=low_precision):
                out = op()
            out.backward(grad)

        passes = 2 if first else 3
        flops = 2 * macs * batch * passes
        seconds = timed(step)
        rows.append(
            {
                "layer": name,
                "gemm_shape": gemm,
                "train_flops": flops,
                "seconds": seconds,
                "gflops_per_second": flops / seconds / 1e9,
            }
        )
        first = False
    return rows


def engine_step_seconds(model: str, batch: int, precision: str) -> float:
    """Seconds per training step of convlens' engine on random data (no data loading)."""
    config = TrainConfig(batch_size=batch, device=str(DEVICE), precision=precision)
    runtime = resolve_runtime(config)
    torch.manual_seed(0)
    network = build_network(resolve_model(model), (1, 28, 28), 10).to(DEVICE)
    if runtime.channels_last:
        network = network.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(network.parameters(), config)
    x = runtime.prepare(torch.randint(0, 256, (batch, 1, 28, 28), dtype=torch.uint8))
    y = torch.randint(0, 10, (batch,), device=DEVICE)

    def step() -> None:
        with runtime.autocast():
            logits = network(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return timed(step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    global DEVICE
    runtime = resolve_runtime(TrainConfig(device=args.device, precision=args.precision))
    DEVICE = runtime.device
    dtype = torch.bfloat16 if runtime.precision == "bf16" else torch.float32
    name = runtime.precision

    layers = layer_costs(args.model, args.batch_size, dtype)
    biggest = max(layers, key=lambda row: row["train_flops"])
    peaks = {
        f"{name}_square_2048": matmul_rate(2048, 2048, 2048, dtype),
        f"{name}_{biggest['layer']}_shape": matmul_rate(*biggest["gemm_shape"], dtype),
    }
    if dtype != torch.float32:
        peaks["fp32_square_2048"] = matmul_rate(2048, 2048, 2048, torch.float32)
    step = engine_step_seconds(args.model, args.batch_size, runtime.precision)
    flops = sum(row["train_flops"] for row in layers)
    best = max(rate for key, rate in peaks.items() if key.startswith(name))
    floor = flops / (best * 1e9)
    result = {
        "model": args.model,
        "batch_size": args.batch_size,
        "device": str(DEVICE),
        "threads": torch.get_num_threads(),
        "precision": runtime.precision,
        "matmul_gflops_per_second": peaks,
        "layers": layers,
        "train_flops_per_step": flops,
        "engine_step_seconds": step,
        "engine_images_per_second": args.batch_size / step,
        "floor_step_seconds": floor,
        "floor_images_per_second": args.batch_size / floor,
        "share_of_step_in_conv_and_dense": sum(row["seconds"] for row in layers) / step,
    }
    for name, rate in peaks.items():
        print(f"matmul {name}: {rate:,.0f} GFLOP/s")
    for row in layers:
        print(
            f"{row['layer']}: {row['train_flops'] / 1e6:,.0f} MFLOP per step, "
            f"{row['seconds'] * 1e3:.2f} ms fwd+bwd, {row['gflops_per_second']:,.0f} GFLOP/s"
        )
    print(
        f"engine step: {step * 1e3:.2f} ms ({args.batch_size / step:,.0f} images/s); "
        f"floor at {best:,.0f} GFLOP/s: {floor * 1e3:.2f} ms "
        f"({args.batch_size / floor:,.0f} images/s)"
    )
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
