"""Write the committed fixture run folder that proves old run folders still load.

    python scripts/make_fixture_run.py              # writes tests/fixtures/runs/tiny-0.1.0

A tiny model (conv 4 filters, pool, dense 10: 6,810 parameters) trained for two epochs
of two steps each, fp32 on the CPU, on a seeded 64-image train / 32-image test subset of
the embedded Fashion-MNIST sample, so every file a finished run writes exists (weights,
checkpoint, metrics, state, figures) and the folder stays a few hundred KB. The sample
ships inside the package, so a test can reload the run's data anywhere without a
download. The folder name carries the convlens version that wrote it: when the run
folder format changes, keep this folder and add one from the new version beside it.

The only edit after training: the absolute path of the package in the recorded data
source is made relative to the repository, so no machine's path is committed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from convlens import __version__
from convlens.data.config import DataConfig
from convlens.data.sources import load_sample
from convlens.recipe import TrainConfig
from convlens.train.session import train

REPO = Path(__file__).resolve().parent.parent
SPEC = "conv(4, 3, relu), maxpool(2), flatten, dense(10, softmax)"
RECIPE = TrainConfig(
    epochs=2,
    batch_size=32,
    precision="fp32",
    device="cpu",
    threads=1,
    seed=0,
    train_subset=64,
    test_subset=32,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures" / "runs")
    args = parser.parse_args(argv)
    name = f"tiny-{__version__}"
    target = args.out / name
    if target.exists():
        shutil.rmtree(target)
    run = train(
        SPEC,
        data=DataConfig(dataset="fashion-mnist", download=False),
        config=RECIPE,
        runs_dir=args.out,
        name=name,
        dataset=load_sample(),
    )
    for file in (run.file("config.json"), run.file("env.json")):
        text = file.read_text(encoding="utf-8").replace(str(REPO) + "/", "")
        json.loads(text)  # still JSON
        file.write_text(text, encoding="utf-8")
    size = sum(p.stat().st_size for p in run.path.iterdir())
    print(f"wrote {run.path} ({size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
