"""Training throughput at the lesson's recipe, measured side by side in one process.

For each model, each engine trains whole epochs in turn (interleaved, so a noisy neighbour
hurts all of them alike), and the script reports the median images/s and its ratio to
plain PyTorch fp32 eager, written the way a user would write it (nn.Sequential,
DataLoader over a TensorDataset, Adam)::

    .venv/bin/python bench/train_throughput.py --data-dir DIR [--models cnn dnn] \
        [--repeats 3] [--batch-size 32] [--device auto] [--json out.json]

Engines: ``plain-fp32`` (the reference loop below), ``convlens-fp32`` and
``convlens-auto`` (the default: ``auto``'s precision and layout for this CPU), and either
of them with ``-nchw`` or ``-nhwc`` to fix the layout (``convlens-fp32-nchw``: what
``--no-channels-last`` trains). Each epoch is the full 60,000 images unless ``--images``
says fewer. The convlens engines pick their threads as ``convlens train`` does (the fastest count by
measured step times, :mod:`convlens.train.threads`), and the JSON says, per epoch, the
count that ran most of its steps (``threads``); plain PyTorch keeps torch's default.
``--device`` is ``auto`` (CUDA when there is one) or any torch device; on CUDA the plain
loop moves each batch to the GPU, as a PyTorch user would.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

from convlens.data import load_dataset
from convlens.models import resolve_model
from convlens.models.inputs import to_float_images, to_tensor
from convlens.models.network import build_network
from convlens.recipe import TrainConfig
from convlens.train.engine import make_optimizer, train_epoch
from convlens.train.runtime import resolve_runtime
from convlens.train.threads import ThreadTuner, max_threads


def plain_model(name: str) -> nn.Module:
    """The lesson's models as a PyTorch user would type them."""
    if name == "dnn":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(
        nn.Conv2d(1, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip


def plain_epoch(
    model: nn.Module, optimizer, x: torch.Tensor, y: torch.Tensor, batch: int, device
) -> float:
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=batch, shuffle=True
    )
    start = time.perf_counter()
    model.train()
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--models", nargs="+", default=["cnn", "dnn"])
    parser.add_argument(
        "--engines", nargs="+", default=["plain-fp32", "convlens-fp32", "convlens-auto"]
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--images", type=int, default=None, help="images per epoch")
    parser.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu, cuda")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()

    dataset = load_dataset("fashion-mnist", data_dir=args.data_dir, download=False)
    # A PyTorch user scales the whole set to float once; convlens keeps uint8 on the
    # device and scales each batch (as `convlens train` does).
    x = to_float_images(dataset.train_images[: args.images])
    x_uint8 = to_tensor(dataset.train_images[: args.images])
    y = torch.from_numpy(dataset.train_labels[: args.images])
    device = resolve_runtime(TrainConfig(device=args.device)).device
    x_device, y_device = x_uint8.to(device), y.to(device)
    results = {}
    default_threads = max_threads()
    for model_name in args.models:
        seconds: dict[str, list[float]] = {engine: [] for engine in args.engines}
        threads: dict[str, list[int]] = {engine: [] for engine in args.engines}
        setups = {}
        for engine in args.engines:
            torch.manual_seed(0)
            if engine == "plain-fp32":
                model = plain_model(model_name).to(device)
                setups[engine] = (model, torch.optim.Adam(model.parameters(), lr=1e-3))
            else:
                precision, *layout = engine.split("-")[1:]
                config = TrainConfig(
                    precision=precision,
                    batch_size=args.batch_size,
                    device=args.device,
                    channels_last={"nchw": False, "nhwc": True}[layout[0]] if layout else None,
                )
                runtime = resolve_runtime(config)
                net = build_network(resolve_model(model_name), (1, 28, 28), 10).to(device)
                if runtime.channels_last:
                    net = net.to(memory_format=torch.channels_last)
                tuner = ThreadTuner() if device.type == "cpu" else None
                optimizer = make_optimizer(net.parameters(), config)
                setups[engine] = (net, optimizer, config, runtime, tuner)
        for repeat in range(args.repeats):
            for engine in args.engines:
                setup = setups[engine]
                if engine == "plain-fp32":
                    torch.set_num_threads(default_threads)  # what a PyTorch user gets
                    took = plain_epoch(setup[0], setup[1], x, y, args.batch_size, device)
                    threads[engine].append(torch.get_num_threads())
                else:
                    net, optimizer, config, runtime, tuner = setup
                    if tuner is not None:
                        tuner.apply()  # its own count again, after the other engines
                    took = train_epoch(
                        net, optimizer, x_device, y_device, config, runtime,
                        epoch=repeat + 1, threads=tuner,
                    ).seconds  # fmt: skip
                    used = tuner.epoch_threads() if tuner else torch.get_num_threads()
                    threads[engine].append(used)
                seconds[engine].append(took)
                print(
                    f"{model_name} {engine} repeat {repeat + 1}: {took:.2f} s "
                    f"({len(x) / took:,.0f} images/s)",
                    flush=True,
                )
        reference = statistics.median(seconds[args.engines[0]])
        results[model_name] = {
            engine: {
                "seconds": times,
                "threads": threads[engine],
                "median_seconds": statistics.median(times),
                "images_per_second": len(x) / statistics.median(times),
                "ratio_to_" + args.engines[0]: reference / statistics.median(times),
            }
            for engine, times in seconds.items()
        }
    results["device"] = str(device)
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
