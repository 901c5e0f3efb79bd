"""The memory-bound kernels of a batchnorm net's step, one at a time, in each precision and layout.

    .venv/bin/python bench/step_kernels.py [--threads 1] [--shape 128x32x28x28]
        [--rounds 9] [--compile]

Times forward + backward of max pooling (2x2), batchnorm (training) and ReLU on one
activation map, in fp32 and bf16, NCHW and channels_last, interleaved round by round
(medians of the process's CPU time, so a shared machine's waiting is not counted), and
the first convolution's weight gradient (1 input channel, 3x3, 'same') as oneDNN
computes it against the same sums as one matmul of the gradient by the image's 3x3
patches. ``--compile`` adds ``torch.compile`` of pooling -> batchnorm -> ReLU in bf16
channels_last (and prints the seconds its first call took). The question it answers:
does one of these kernels fall to a slow path in the layout and precision training uses
(bf16 channels_last), and would a fused kernel pay for its compilation?
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

CL = torch.channels_last


def _map(shape: tuple[int, ...], dtype: torch.dtype, layout: str) -> torch.Tensor:
    x = torch.randn(shape).to(dtype)
    return x.contiguous(memory_format=CL) if layout == "channels_last" else x


def _region(x, weight, bias, mean, var):  # (N, C, H, W) -> (N, C, H/2, W/2)
    y = F.max_pool2d(x, 2)
    return torch.relu(F.batch_norm(y, mean, var, weight, bias, training=True))


def _patches(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) -> (N*H*W, 9): each pixel's zero-padded 3x3 neighbourhood."""
    n, _, h, w = x.shape
    padded = F.pad(x.reshape(n, h, w), (1, 1, 1, 1))
    return padded.unfold(1, 3, 1).unfold(2, 3, 1).reshape(n * h * w, 9)


def kernels(shape: tuple[int, ...], compile_region: bool) -> dict[str, Callable[[], None]]:
    channels = shape[1]
    weight = torch.ones(channels, requires_grad=True)
    bias = torch.zeros(channels, requires_grad=True)
    mean, var = torch.zeros(channels), torch.ones(channels)
    cases: dict[str, Callable[[], None]] = {}
    for dtype in (torch.float32, torch.bfloat16):
        for layout in ("NCHW", "channels_last"):
            x = _map(shape, dtype, layout).requires_grad_()
            pooled_grad = _map((*shape[:2], shape[2] // 2, shape[3] // 2), dtype, layout)
            grad = _map(shape, dtype, layout)
            tag = f"{str(dtype).removeprefix('torch.')} {layout}"

            def pool(x=x, g=pooled_grad) -> None:
                F.max_pool2d(x, 2).backward(g)

            def norm(x=x, g=grad) -> None:
                F.batch_norm(x, mean, var, weight, bias, training=True).backward(g)

            def relu(x=x, g=grad) -> None:
                torch.relu(x).backward(g)

            cases[f"max pooling, {tag}"] = pool
            cases[f"batchnorm, {tag}"] = norm
            cases[f"relu, {tag}"] = relu
        # the first convolution's weight and bias gradient, from a channels_last gradient
        n, _, h, w = shape
        image = _map((n, 1, h, w), dtype, "channels_last")
        kernel = _map((channels, 1, 3, 3), dtype, "channels_last")
        grad = _map((n, channels, h, w), dtype, "channels_last")
        tag = str(dtype).removeprefix("torch.")

        def onednn(image=image, kernel=kernel, grad=grad) -> None:
            torch.ops.aten.convolution_backward(
                grad, image, kernel, [channels], [1, 1], [1, 1], [1, 1], False, [0, 0], 1,
                [False, True, True],
            )  # fmt: skip

        def matmul(image=image, grad=grad) -> None:
            rows = grad.permute(0, 2, 3, 1).reshape(-1, channels)  # a view: NHWC already
            rows.t() @ _patches(image), rows.sum(0)

        cases[f"first conv weight grad, oneDNN, {tag}"] = onednn
        cases[f"first conv weight grad, matmul, {tag}"] = matmul
    if compile_region:
        x = _map(shape, torch.bfloat16, "channels_last").requires_grad_()
        g = _map((*shape[:2], shape[2] // 2, shape[3] // 2), torch.bfloat16, "channels_last")
        compiled = torch.compile(_region, dynamic=False)
        start = time.perf_counter()
        compiled(x, weight, bias, mean, var).backward(g)
        print(f"torch.compile: first call {time.perf_counter() - start:.1f} s")
        cases["pool -> batchnorm -> relu, eager, bf16 channels_last"] = lambda: _region(
            x, weight, bias, mean, var
        ).backward(g)
        cases["pool -> batchnorm -> relu, compiled, bf16 channels_last"] = lambda: compiled(
            x, weight, bias, mean, var
        ).backward(g)
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--shape", default="128x32x28x28", help="N x C x H x W")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shape = tuple(int(size) for size in args.shape.split("x"))
    cases = kernels(shape, args.compile)
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, run in cases.items():
            start = time.process_time()
            for _ in range(3):
                run()
            seconds[name].append((time.process_time() - start) / 3)
    print(
        f"{args.shape}, {args.threads} thread(s), {torch.backends.cpu.get_cpu_capability()}: "
        f"forward + backward, median CPU ms of rounds 2-{args.rounds}"
    )
    for name, times in seconds.items():
        print(f"{statistics.median(times[1:]) * 1000:9.3f} ms  {name}")


if __name__ == "__main__":
    main()
