"""New weights into an exported graph against exporting again: what each fp32 epoch pays.

For ``--model`` (channels_last, as training holds it), ``--repeats`` times: move the
weights (as an epoch's steps would), then time ``export_onnx`` (the TorchScript
exporter) and ``with_weights`` (the new weights swapped into the first export) each
followed by building the ONNX Runtime session, and check that both sessions answer
alike. Prints the medians::

    .venv/bin/python bench/onnx_reweight.py [--model cnn] [--threads 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from convlens.models.network import build_network
from convlens.models.onnx_runtime import _session, export_onnx, with_weights
from convlens.models.registry import resolve_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    network = build_network(resolve_model(args.model), (1, 28, 28), 10).eval()
    network = network.to(memory_format=torch.channels_last)
    first = export_onnx(network, (1, 28, 28))
    x = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
    exported, swapped = [], []
    for _ in range(args.repeats):
        with torch.no_grad():
            for parameter in network.parameters():
                parameter.add_(0.01 * torch.randn_like(parameter))
        start = time.perf_counter()
        fresh = _session(export_onnx(network, (1, 28, 28)), args.threads)
        exported.append(time.perf_counter() - start)
        start = time.perf_counter()
        model = with_weights(first, network)
        if model is None:
            raise SystemExit(f"{args.model}: its export folds tensors; it is exported each time")
        reused = _session(model, args.threads)
        swapped.append(time.perf_counter() - start)
        a, b = (s.run(["logits"], {"images": x})[0] for s in (fresh, reused))
        assert np.abs(a - b).max() <= 1e-5 * max(1.0, float(np.abs(a).max()))
    e, s = statistics.median(exported), statistics.median(swapped)
    print(
        f"{args.model}, {args.threads} threads: export + session {e * 1000:.1f} ms, "
        f"new weights + session {s * 1000:.1f} ms ({e / s:.1f}x less), median of {args.repeats}"
    )


if __name__ == "__main__":
    main()
