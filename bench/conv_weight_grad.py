"""A 3x3 convolution's weight gradient: oneDNN's kernel against a forward convolution.

    .venv/bin/python bench/conv_weight_grad.py [--threads 1] [--precision bf16|fp32]
        [--batch 256] [--shapes 16-64@14 64-64@7 ...]

For each (in channels, out channels, map size) at batch 256, channels_last, times the
forward pass, aten's weight gradient (``convolution_backward``, oneDNN's
``brgconv_bwd_w`` on a CPU) and the same gradient as a forward convolution with the
batch as the channels (what :mod:`convlens.models.small_map_conv` does), interleaved in
one process, and prints the medians of the process's CPU time in ms. The shapes are
``fast``'s four trained convolutions and the map sizes around the threshold
(:mod:`convlens.models.small_map_conv`), or ``--shapes``, each ``IN-OUT@SIZE``
(``quick``'s second convolution: ``--batch 128 --shapes 16-64@14``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

SHAPES = [(8, 64, 14), (64, 64, 7), (64, 128, 7), (128, 128, 3), (128, 128, 4), (128, 128, 5)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--precision", default="bf16", choices=("bf16", "fp32"))
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=14)
    parser.add_argument(
        "--shapes", nargs="+", type=parse_shape, default=SHAPES, help="IN-OUT@SIZE each"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    print(f"{args.precision}, {args.threads} thread(s), batch {args.batch}, CPU ms (median)")
    print("  shape              forward  oneDNN dW  dW as a forward conv")
    for c_in, c_out, size in args.shapes:
        ms = time_passes(c_in, c_out, size, args.batch, dtype, args.rounds)
        print(
            f"  {c_in:>3}->{c_out:<3} at {size:>2}x{size:<2}  {ms['forward']:7.2f}  "
            f"{ms['onednn']:9.2f}  {ms['as_forward']:8.2f} ({ms['as_forward'] / ms['onednn']:.2f}x)"
        )


def parse_shape(text: str) -> tuple[int, int, int]:
    """``"64-128@7"`` -> (64, 128, 7): in channels, out channels, map size."""
    try:
        channels, size = text.split("@")
        c_in, c_out = channels.split("-")
        return int(c_in), int(c_out), int(size)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a shape is IN-OUT@SIZE, e.g. 64-128@7 (got {text!r})"
        ) from None


def time_passes(
    c_in: int, c_out: int, size: int, batch: int, dtype: torch.dtype, rounds: int
) -> dict[str, float]:
    """Median CPU ms of each pass, interleaved, the first two rounds left out."""

    def tensor(*shape: int) -> torch.Tensor:
        return torch.randn(*shape).to(dtype).contiguous(memory_format=torch.channels_last)

    x, w = tensor(batch, c_in, size, size), tensor(c_out, c_in, 3, 3)
    grad = tensor(batch, c_out, size, size)
    mask = [False, True, False]  # the weight's gradient only
    passes = {
        "forward": lambda: F.conv2d(x, w, padding=1),
        "onednn": lambda: torch.ops.aten.convolution_backward(
            grad, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask
        ),
        "as_forward": lambda: F.conv2d(x.transpose(0, 1), grad.transpose(0, 1), padding=1),
    }
    times: dict[str, list[float]] = {name: [] for name in passes}
    for _ in range(rounds):
        for name, run in passes.items():
            start = time.process_time()
            run()
            times[name].append(time.process_time() - start)
    return {name: 1e3 * statistics.median(t[2:]) for name, t in times.items()}


if __name__ == "__main__":
    main()
