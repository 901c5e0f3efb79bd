"""oneDNN's own time per primitive, from ``ONEDNN_VERBOSE=1`` lines on stdin.

    ONEDNN_VERBOSE=1 .venv/bin/python bench/step_profile.py --threads 1 --steps 40 \
        | .venv/bin/python bench/onednn_times.py

Groups the ``exec`` lines by (primitive, implementation, propagation, shape) and prints
each group's median milliseconds, its calls, and its share of all oneDNN time, largest
first: which convolution pass (forward, backward_data, backward_weights) and which kernel
(``brg_conv_fwd:avx512_core_bf16``, ``jit_bf16``, AMX's ``brgconv``...) a step runs on
this CPU. Unlike a micro-benchmark of one kernel, these are the step's own calls, with
the step's layouts and caches (on Zen 4 the first conv's weight gradient took 0.33 ms in
the step against 1.7-2.5 ms alone).
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict


def main() -> None:
    times: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for line in sys.stdin:
        fields = line.strip().split(",")
        if len(fields) < 8 or not fields[0].endswith("verbose") or fields[3] != "exec":
            continue
        try:
            ms = float(fields[-1])
        except ValueError:
            continue
        times[(fields[5], fields[6], fields[7], fields[-2])].append(ms)
    total = sum(sum(t) for t in times.values()) or 1.0
    print(f"{'median ms':>9} {'calls':>6} {'share':>6}  primitive, implementation, pass, shape")
    for (kind, impl, prop, shape), t in sorted(times.items(), key=lambda kv: -sum(kv[1])):
        share = sum(t) / total
        print(
            f"{statistics.median(t):9.3f} {len(t):6d} {share:6.1%}  {kind}, {impl}, {prop}, {shape}"
        )


if __name__ == "__main__":
    main()
