"""The lesson's main experiment: several models, the same data and seed, side by side.

``compare(["dnn", "cnn"])`` trains each model as an ordinary run folder inside one
comparison folder and writes ``compare.csv``, ``compare.json`` and ``compare.png``::

    runs/compare-20261129-101500/
      dnn/ ...  cnn/ ...        two complete run folders
      compare.csv compare.json  one row per model
      compare.png               accuracy and time per epoch, side by side
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convlens import fileio, runs
from convlens.data.config import DataConfig
from convlens.errors import OptionError
from convlens.models.registry import resolve_model
from convlens.recipe import TrainConfig
from convlens.runs import Run
from convlens.train.progress import Reporter, SilentReporter

COLUMNS = (
    ("params", "Parameters", "{:,}"),
    ("seconds_per_epoch", "Seconds/epoch", "{:.1f}"),
    ("train_accuracy", "Train accuracy", "{:.2%}"),
    ("test_accuracy", "Test accuracy", "{:.2%}"),
    ("test_loss", "Test loss", "{:.4f}"),
)


@dataclass(frozen=True)
class Comparison:
    path: Path
    rows: tuple[dict[str, Any], ...]

    def format(self) -> str:
        """A side-by-side table, one column per model."""
        names = [row["model"] for row in self.rows]
        width = max(14, *(len(n) + 2 for n in names))
        label_width = max(len(label) for _, label, _ in COLUMNS) + 2
        lines = ["".ljust(label_width) + "".join(n.rjust(width) for n in names)]
        for key, label, fmt in COLUMNS:
            cells = "".join(fmt.format(row[key]).rjust(width) for row in self.rows)
            lines.append(label.ljust(label_width) + cells)
        best = max(self.rows, key=lambda r: r["test_accuracy"])
        others = [r for r in self.rows if r is not best]
        if others:
            runner = max(others, key=lambda r: r["test_accuracy"])
            gap = 100 * (best["test_accuracy"] - runner["test_accuracy"])
            lines.append(
                f"\n{best['model']} wins on test accuracy by {gap:.2f} points over "
                f"{runner['model']}."
            )
        if any(row.get("is_sample") for row in self.rows):
            lines.append("(trained on the embedded 10% sample: expect lower figures)")
        return "\n".join(lines)


def compare(
    models: Sequence[str],
    *,
    data: DataConfig | None = None,
    config: TrainConfig | None = None,
    runs_dir: str | Path | None = None,
    name: str | None = None,
    reporter_for: Callable[[str], Reporter] | None = None,
    on_note: Callable[[str], None] | None = None,
    recipe_preset: str | None = None,
) -> Comparison:
    """Train every model on the same data and seed; return (and write) the table.

    ``recipe_preset`` names the preset whose recipe ``config`` came from, for each run's
    config.json (see :func:`convlens.train.session.train`).
    """
    from convlens.plots.compare import compare_figure
    from convlens.train.session import train

    if len(models) < 1:
        raise OptionError("compare needs at least one model, e.g. convlens compare dnn cnn")
    labels = [runs.safe_name(m) for m in models]
    if len(set(labels)) != len(labels):
        raise OptionError(f"compare was given the same model twice: {', '.join(models)}")
    specs = [resolve_model(m) for m in models]  # fail fast on a bad name, before training
    data = data or DataConfig()
    config = config or TrainConfig()
    dataset = data.load(progress=on_note is not None)
    if dataset.notice and on_note:
        on_note(dataset.notice)
    folder = Path(runs_dir or runs.default_runs_dir()) / runs.check_name(
        name or runs.new_run_name("compare")
    )
    rows = []
    for label, spec in zip(labels, specs, strict=True):
        reporter = reporter_for(label) if reporter_for else SilentReporter()
        run = train(
            spec,
            data=data,
            config=config,
            runs_dir=folder,
            name=label,
            reporter=reporter,
            dataset=dataset,
            recipe_preset=recipe_preset,
        )
        rows.append(_row(label, run))
    comparison = Comparison(folder, tuple(rows))
    fileio.write_csv(folder / "compare.csv", list(rows))
    fileio.write_json(folder / "compare.json", {"models": list(models), "rows": list(rows)})
    histories = [Run(folder / label).history() for label in labels]
    fileio.write_figure(folder / "compare.png", compare_figure(rows, histories))
    return comparison


def _row(label: str, run: Run) -> dict[str, Any]:
    from convlens.models.network import build_network, count_params

    metrics = run.metrics()
    trainable, frozen = count_params(build_network(run.spec(), run.input_shape))
    return {
        "model": label,
        "run": str(run.path),
        "params": trainable + frozen,
        "seconds_per_epoch": metrics["seconds_per_epoch"],
        "train_accuracy": metrics["train_accuracy"],
        "test_accuracy": metrics["test_accuracy"],
        "test_loss": metrics["test_loss"],
        "epochs": metrics["epochs_done"],
        "is_sample": run.config["dataset"]["is_sample"],
    }
