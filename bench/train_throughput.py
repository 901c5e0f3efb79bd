"""Training throughput at the lesson's recipe, measured side by side in one process.

For each model, each engine trains whole epochs in turn (interleaved, so a noisy neighbour
hurts all of them alike), and the script reports the median images/s and its ratio to
plain PyTorch fp32 eager, written the way a user would write it (nn.Sequential,
DataLoader over a TensorDataset, Adam)::

    .venv/bin/python bench/train_throughput.py --data-dir DIR [--models cnn dnn] \
        [--repeats 3] [--batch-size 32] [--json out.json]

Engines: ``plain-fp32`` (the reference loop below), ``convlens-fp32`` and
``convlens-auto`` (the default: bf16 autocast + channels_last where the CPU runs bf16
natively). Each epoch is the full 60,000 images unless ``--images`` says fewer. The
convlens engines pick their threads before each epoch as ``convlens train`` does (the
idle cores, :mod:`convlens.train.cpu`); plain PyTorch keeps torch's default.
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
from convlens.train.cpu import ThreadChooser, max_threads
from convlens.train.engine import make_optimizer, train_epoch
from convlens.train.runtime import resolve_runtime


def plain_model(name: str) -> nn.Module:
    """The lesson's models as a PyTorch user would type them."""
    if name == "dnn":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(
        nn.Conv2d(1, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip


def plain_epoch(model: nn.Module, optimizer, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=batch, shuffle=True
    )
    start = time.perf_counter()
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        optimizer.step()
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
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()

    dataset = load_dataset("fashion-mnist", data_dir=args.data_dir, download=False)
    # A PyTorch user scales the whole set to float once; convlens keeps uint8 on the
    # device and scales each batch (as `convlens train` does).
    x = to_float_images(dataset.train_images[: args.images])
    x_uint8 = to_tensor(dataset.train_images[: args.images])
    y = torch.from_numpy(dataset.train_labels[: args.images])
    results = {}
    default_threads = max_threads()
    chooser = ThreadChooser()
    for model_name in args.models:
        seconds: dict[str, list[float]] = {engine: [] for engine in args.engines}
        setups = {}
        for engine in args.engines:
            torch.manual_seed(0)
            if engine == "plain-fp32":
                model = plain_model(model_name)
                setups[engine] = (model, torch.optim.Adam(model.parameters(), lr=1e-3))
            else:
                precision = engine.split("-")[1]
                config = TrainConfig(precision=precision, batch_size=args.batch_size)
                runtime = resolve_runtime(config)
                net = build_network(resolve_model(model_name), (1, 28, 28), 10)
                if runtime.channels_last:
                    net = net.to(memory_format=torch.channels_last)
                setups[engine] = (net, make_optimizer(net.parameters(), config), config, runtime)
        for repeat in range(args.repeats):
            for engine in args.engines:
                setup = setups[engine]
                if engine == "plain-fp32":
                    torch.set_num_threads(default_threads)  # what a PyTorch user gets
                    took = plain_epoch(setup[0], setup[1], x, y, args.batch_size)
                else:
                    net, optimizer, config, runtime = setup
                    chooser.choose()  # the threads convlens train would use now
                    took = train_epoch(
                        net, optimizer, x_uint8, y, config, runtime, epoch=repeat + 1
                    ).seconds
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
                "median_seconds": statistics.median(times),
                "images_per_second": len(x) / statistics.median(times),
                "ratio_to_" + args.engines[0]: reference / statistics.median(times),
            }
            for engine, times in seconds.items()
        }
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
