"""Train one recipe and judge its saved weights with each set of test-time views.

    .venv/bin/python bench/recipe_trial.py --data-dir DIR fast --set epochs=6 threads=1
    .venv/bin/python bench/recipe_trial.py --data-dir DIR "conv(24, ...), ..." --preset fast

The model is a preset name or layer text; the recipe is the preset's (``--preset``, or
the model's own) with ``--set`` fields on top (TrainConfig names, JSON values). Prints
one JSON line: the test accuracy after each epoch (as the run recorded it), the training
seconds, and the final weights judged alone, with the mirror, and with the mirror and
the shifted copies (``convlens.models.tta``). The accuracies are deterministic for a seed
and thread count; the seconds depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import tempfile

import numpy as np

from convlens.data.config import DataConfig
from convlens.predict import predict_arrays
from convlens.recipe import plan_training
from convlens.train.session import train

VIEWS = {
    "alone": {},
    "mirror": {"tta_flip": True},
    "mirror_and_shifts": {"tta_flip": True, "tta_shift": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--preset", default=None)
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=JSON")
    args = parser.parse_args()
    overrides = {}
    for item in args.set:
        field, _, value = item.partition("=")
        overrides[field] = json.loads(value)
    data = DataConfig(data_dir=args.data_dir, download=False)
    dataset = data.load(progress=False)
    plan = plan_training(args.model, preset=args.preset, overrides=overrides)
    with tempfile.TemporaryDirectory() as runs:
        run = train(
            plan.spec,
            data=data,
            config=plan.config,
            runs_dir=runs,
            name="trial",
            dataset=dataset,
            recipe_preset=plan.recipe_preset,
        )
        history = run.history()
        network = run.network()
        labels = np.asarray(dataset.test_labels)
        judged = {
            name: float(
                (predict_arrays(network, dataset.test_images, **views).argmax(1) == labels).mean()
            )
            for name, views in VIEWS.items()
        }
        result = {
            "model": args.model,
            "recipe": plan.config.to_dict(),
            "test_accuracy_per_epoch": [round(r["test_accuracy"], 4) for r in history],
            "train_seconds": round(sum(r["seconds"] for r in history), 1),
            "final_test_accuracy": run.metrics()["test_accuracy"],
            "judged_with_views": {name: round(value, 4) for name, value in judged.items()},
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
