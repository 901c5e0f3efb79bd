"""Train one recipe and judge its saved weights with each set of test-time views.

    .venv/bin/python bench/recipe_trial.py --data-dir DIR fast --set epochs=6 threads=1
    .venv/bin/python bench/recipe_trial.py --data-dir DIR "conv(24, ...), ..." --preset fast

The model is a preset name or layer text; the recipe is the preset's (``--preset``, or
the model's own) with ``--set`` fields on top (TrainConfig names, JSON values). Prints
one JSON line: the test accuracy after each epoch (as the run recorded it), the training
seconds, and the final weights judged alone, with the mirror, with the two shifted copies,
and with the mirror and the shifted copies (``convlens.models.tta``). With ``--set ema=D``
the saved weights are the average (``convlens.train.averaging``), and the last step's
weights (the checkpoint's) are judged the same way too, after the batchnorm refresh every
evaluation makes: one run measures the recipe with and without the average;
``--also-ema D ...`` keeps further averages alongside (other decays, same run) and judges
each the same way. ``--keep DIR`` trains into DIR/trial (a run folder every command
opens) instead of a temporary one, so its weights can be judged again later. The
accuracies are deterministic for a seed and thread count; the seconds depend on the
machine and its load.
"""

from __future__ import annotations

import argparse
import json
import tempfile

import numpy as np
import torch

from convlens import runs as run_files
from convlens.data.config import DataConfig
from convlens.models.inputs import to_tensor
from convlens.models.weights import read_tensors
from convlens.predict import predict_arrays
from convlens.recipe import plan_training
from convlens.runs import Run
from convlens.train import session
from convlens.train.averaging import WeightAverage
from convlens.train.engine import refresh_batchnorm_statistics
from convlens.train.evaluation import FINAL_RUNTIME
from convlens.train.session import train

VIEWS = {
    "alone": {},
    "mirror": {"tta_flip": True},
    "shifts": {"tta_shift": True},
    "mirror_and_shifts": {"tta_flip": True, "tta_shift": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--preset", default=None)
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=JSON")
    parser.add_argument("--also-ema", nargs="*", type=float, default=[], metavar="D")
    parser.add_argument(
        "--keep", default=None, metavar="DIR", help="train into DIR/trial and keep the run"
    )
    args = parser.parse_args()
    if args.also_ema:
        session.WeightAverage = _with_more_averages(args.also_ema)  # this process only
    overrides = {}
    for item in args.set:
        field, _, value = item.partition("=")
        overrides[field] = json.loads(value)
    data = DataConfig(data_dir=args.data_dir, download=False)
    dataset = data.load(progress=False)
    plan = plan_training(args.model, preset=args.preset, overrides=overrides)
    with tempfile.TemporaryDirectory() as scratch:
        runs = args.keep or scratch
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
        judged = judge(network, dataset)
        result = {
            "model": args.model,
            "recipe": plan.config.to_dict(),
            "test_accuracy_per_epoch": [round(r["test_accuracy"], 4) for r in history],
            "train_seconds": round(sum(r["seconds"] for r in history), 1),
            "final_test_accuracy": run.metrics()["test_accuracy"],
            "judged_with_views": {name: round(value, 4) for name, value in judged.items()},
        }
        if plan.config.ema:
            last_step = last_step_network(run, dataset, seed=plan.config.seed + len(history))
            result["last_step_judged_with_views"] = {
                name: round(value, 4) for name, value in judge(last_step, dataset).items()
            }
        for extra in _EXTRA:
            averaged = extra.network.to("cpu", memory_format=torch.contiguous_format).float()
            refresh_batchnorm_statistics(
                averaged,
                to_tensor(dataset.train_images),
                FINAL_RUNTIME,
                seed=plan.config.seed + len(history),
            )
            result[f"ema_{extra.decay:g}_judged_with_views"] = {
                name: round(value, 4) for name, value in judge(averaged.eval(), dataset).items()
            }
    print(json.dumps(result))


_EXTRA: list[WeightAverage] = []  # the --also-ema averages of the run


def _with_more_averages(decays: list[float]) -> type[WeightAverage]:
    """A WeightAverage that also updates averages with ``decays`` (kept in _EXTRA)."""

    class Several(WeightAverage):
        def __init__(self, network, decay: float) -> None:
            super().__init__(network, decay)
            self.others = [WeightAverage(network, d) for d in decays]
            _EXTRA[:] = self.others

        def update(self, steps_done: int) -> None:
            super().update(steps_done)
            for other in self.others:
                other.update(steps_done)

    return Several


def judge(network, dataset) -> dict[str, float]:
    """Test accuracy of ``network`` with each set of views in VIEWS."""
    labels = np.asarray(dataset.test_labels)
    return {
        name: float(
            (predict_arrays(network, dataset.test_images, **views).argmax(1) == labels).mean()
        )
        for name, views in VIEWS.items()
    }


def last_step_network(run: Run, dataset, *, seed: int):
    """The trained (not averaged) weights of a run with ema, from its checkpoint, with
    batchnorm's statistics recomputed as the run's last evaluation did (same seed)."""
    network = run.network()
    tensors, _ = read_tensors(run.file(run_files.CHECKPOINT))
    network.load_state_dict(
        {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    )
    images = to_tensor(dataset.train_images)
    refresh_batchnorm_statistics(network, images, FINAL_RUNTIME, seed=seed)
    return network.eval()


if __name__ == "__main__":
    main()
