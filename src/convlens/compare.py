"""The lesson's main experiment: several models, the same data and seed, side by side.

``compare(["dnn", "cnn"])`` trains each model as an ordinary run folder inside one
comparison folder and writes ``compare.csv``, ``compare.json`` and ``compare.png``. A
model may also be an existing run (a name in the runs folder or a run folder's path, e.g.
one made by ``convlens import``): it is judged on the same test images, not trained::

    runs/compare-20261129-101500/
      dnn/ ...  cnn/ ...        two complete run folders (dnn-seed0/, dnn-seed1/, ... with
                                repeats > 1)
      compare.csv compare.json  one row per model
      compare.png               accuracy per epoch, and final accuracy from 0 to 100%

Which model is more accurate is decided with McNemar's exact test on the two models'
per-image correctness on the same test images
(:mod:`convlens.experiments.significance`), never by the larger number alone: a gap of
4 images in 10,000 is "a tie within noise". With ``repeats`` > 1 every model is trained
once per seed (seed, seed + 1, ...), accuracies are reported as mean ± std over seeds,
and a model counts as more accurate only when it is so, significantly, in every seed.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convlens import fileio, runs
from convlens.data.config import DataConfig
from convlens.errors import OptionError
from convlens.experiments.significance import Paired, format_p, paired_test, wilson_interval
from convlens.models.registry import resolve_model
from convlens.notices import SmokeModeWarning, say
from convlens.provenance import combined_caveat
from convlens.recipe import TrainConfig
from convlens.runs import Run
from convlens.train import smoke
from convlens.train.progress import Reporter, SilentReporter

if TYPE_CHECKING:
    from convlens.data.dataset import Dataset

COLUMNS = (
    ("params", "Parameters", "{:,}"),
    ("seconds_per_epoch", "Seconds/epoch", "{:.1f}"),
    ("train_accuracy", "Train accuracy", "{:.2%}"),
    ("test_accuracy", "Test accuracy", "{:.2%}"),
    ("test_loss", "Test loss", "{:.4f}"),
)


@dataclass(frozen=True)
class Comparison:
    """The table (one row per model), the paired tests and the decision in words.

    ``tests[k]`` holds, for seed ``seeds[k]``, the best model (highest mean test
    accuracy) against each other model.
    """

    path: Path
    rows: tuple[dict[str, Any], ...]
    seeds: tuple[int, ...] = (0,)
    tests: tuple[tuple[Paired, ...], ...] = ()

    @property
    def decision(self) -> list[str]:
        """One sentence per other model: more accurate, or a tie within noise."""
        return [_decide(pair, self.seeds)[0] for pair in self._pairs()]

    @property
    def headline(self) -> list[str]:
        """The decision in short, for a figure: 'cnn and dnn: a tie within noise (p = 0.31)'."""
        return [_decide(pair, self.seeds)[1] for pair in self._pairs()]

    def _pairs(self) -> list[list[Paired]]:
        """For each other model, the best model against it in every seed."""
        if not self.tests:
            return []
        return [[seed_tests[i] for seed_tests in self.tests] for i in range(len(self.tests[0]))]

    def format(self) -> str:
        """A side-by-side table, one column per model, then the decision."""
        repeated = len(self.seeds) > 1
        names = [row["model"] for row in self.rows]
        width = max(16, *(len(n) + 2 for n in names))
        columns = self._columns()
        label_width = max(len(label) for _, label, _ in columns) + 2
        lines = ["".ljust(label_width) + "".join(n.rjust(width) for n in names)]
        for key, label, fmt in columns:
            cells = "".join(_cell(row, key, fmt, repeated).rjust(width) for row in self.rows)
            lines.append(label.ljust(label_width) + cells)
        count = self.rows[0].get("test_count")
        if count:
            lines.append(f"\n(on the same {count:,} test images; 95% interval: Wilson score)")
        lines += ["", *self.decision]
        if self.caveat:
            lines.append(f"({self.caveat})")
        return "\n".join(lines)

    @property
    def caveat(self) -> str:
        """What the figures come from when not the full data (sample, subset, smoke)."""
        folders = [Path(p) for row in self.rows for p in str(row.get("run", "")).split(";") if p]
        notes = [Run(f).data_note for f in folders if (f / runs.CONFIG).is_file()]
        return combined_caveat(notes)

    def __str__(self) -> str:
        return self.format()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.format())

    def _repr_html_(self) -> str:
        """The table (one column per model), the decision, the caveat and compare.png."""
        from convlens.display import block, caveat_html, file_img, html_table

        repeated = len(self.seeds) > 1
        names = [row["model"] for row in self.rows]
        table = html_table(
            ["", *names],
            [
                (label.strip(), *(_cell(row, key, fmt, repeated) for row in self.rows))
                for key, label, fmt in self._columns()
            ],
            caption=f"Comparison ({self.path})",
            numeric=[False, *([True] * len(names))],
        )
        text = "".join(f'<p style="margin:2px 0">{html.escape(line)}</p>' for line in self.decision)
        picture = file_img(self.path / "compare.png", "accuracy per epoch and final accuracy")
        return block(table, text, caveat_html(self.caveat), picture)

    def _columns(self) -> list[tuple[str, str, str]]:
        """(key, label, format) per line of the table."""
        columns = [*COLUMNS]
        if len(self.seeds) > 1:
            columns[3] = (
                "test_accuracy",
                f"Test accuracy (mean ± std, {len(self.seeds)} seeds)",
                "",
            )
        else:
            columns.insert(4, ("test_interval", "  95% interval", ""))
        return columns

    def to_dict(self) -> dict[str, Any]:
        return {
            "seeds": list(self.seeds),
            "rows": list(self.rows),
            "tests": [[t.to_dict() for t in seed_tests] for seed_tests in self.tests],
            "decision": self.decision,
            "headline": self.headline,
        }


def _cell(row: dict[str, Any], key: str, fmt: str, repeated: bool) -> str:
    if row.get(key, 0) is None:  # an existing run: trained elsewhere, no train figures here
        return "-"
    if key == "test_interval":
        return f"{row['test_accuracy_low']:.2%}-{row['test_accuracy_high']:.2%}"
    if key == "test_accuracy" and repeated:
        return f"{row['test_accuracy']:.2%} ± {100 * row['test_accuracy_std']:.2f}"
    return fmt.format(row[key])


def _decide(tests: Sequence[Paired], seeds: Sequence[int]) -> tuple[str, str]:
    """(sentence, short form) for one pair over every seed's test."""
    first = tests[0]
    ps = ", ".join(format_p(t.p_value) for t in tests)
    winners = {t.better for t in tests}
    if len(winners) == 1 and None not in winners:
        better = first.better
        worse = first.b if better == first.a else first.a
        short = f"{better} more accurate than {worse} ({ps})"
        if len(tests) == 1:
            return first.sentence(), short
        return (
            f"{better} is more accurate than {worse} in every one of the {len(seeds)} seeds "
            f"(McNemar's exact test per seed: {ps})."
        ), short
    short = f"{first.a} and {first.b}: a tie within noise ({ps})"
    if len(tests) == 1:
        return first.sentence(), short
    significant = sum(t.significant for t in tests)
    return (
        f"{first.a} and {first.b} are a tie within noise: the difference is significant in "
        f"{significant} of {len(seeds)} seeds (McNemar's exact test per seed: {ps})."
    ), short


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
    repeats: int = 1,
) -> Comparison:
    """Train every model on the same data and seed; return (and write) the table.

    ``repeats`` trains every model once per seed ``config.seed + k`` (k < repeats).
    ``recipe_preset`` names the preset whose recipe ``config`` came from, for each run's
    config.json (see :func:`convlens.train.session.train`).
    """
    from convlens.plots.compare import compare_figure
    from convlens.train.session import train

    if len(models) < 1:
        raise OptionError("compare needs at least one model, e.g. convlens compare dnn cnn")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise OptionError(f"--repeats {repeats!r} is not valid; it must be 1 or more")
    base = Path(runs_dir or runs.default_runs_dir())
    specs = [_model_or_run(m, base) for m in models]  # fail fast on a bad name, before training
    labels = [
        runs.safe_name(spec.name if isinstance(spec, Run) else m)
        for m, spec in zip(models, specs, strict=True)
    ]
    if len(set(labels)) != len(labels):
        raise OptionError(f"compare was given the same model twice: {', '.join(models)}")
    data = data or DataConfig()
    config, smoke_note = smoke.cap(config or TrainConfig())  # said once, for every run
    if smoke_note:
        say(smoke_note, SmokeModeWarning)
        if on_note:
            on_note(smoke_note)
    dataset = data.load(progress=on_note is not None)
    if dataset.notice and on_note:
        on_note(dataset.notice)
    folder = Path(runs_dir or runs.default_runs_dir()) / runs.check_name(
        name or runs.new_run_name("compare")
    )
    seeds = tuple(config.seed + k for k in range(repeats))
    trials: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    correct: dict[str, list[np.ndarray]] = {label: [] for label in labels}
    for seed in seeds:
        seeded = replace(config, seed=seed)
        for label, spec in zip(labels, specs, strict=True):
            if isinstance(spec, Run):  # an existing run: judged, not trained
                own = spec.run_config.train  # judged with its own test-time views
                judged = replace(
                    seeded, augment=own.augment, tta_flip=own.tta_flip, tta_shift=own.tta_shift
                )
                right = _correct(spec, _matching(spec, dataset), judged)
                correct[label].append(right)
                trials[label].append(_existing_trial(label, spec, dataset, judged, right))
                continue
            run_name = label if repeats == 1 else f"{label}-seed{seed}"
            reporter = reporter_for(run_name) if reporter_for else SilentReporter()
            run = train(
                spec,
                data=data,
                config=seeded,
                runs_dir=folder,
                name=run_name,
                reporter=reporter,
                dataset=dataset,
                recipe_preset=recipe_preset,
            )
            right = _correct(run, dataset, seeded)  # (N,) bool
            correct[label].append(right)
            trials[label].append(_trial(label, run, right))
    rows = [_row(label, trials[label]) for label in labels]
    best = max(range(len(labels)), key=lambda i: rows[i]["test_accuracy"])
    tests = tuple(
        tuple(
            paired_test(labels[best], correct[labels[best]][k], labels[i], correct[labels[i]][k])
            for i in range(len(labels))
            if i != best
        )
        for k in range(len(seeds))
    )
    comparison = Comparison(folder, tuple(rows), seeds, tests)
    fileio.write_csv(folder / "compare.csv", list(rows))
    fileio.write_json(
        folder / "compare.json",
        {
            "models": list(models),
            **comparison.to_dict(),
            "trials": [t for label in labels for t in trials[label]],
        },
    )
    histories = [Run(Path(trials[label][0]["run"])).history() for label in labels]
    figure = compare_figure(rows, histories, comparison.headline, seeds)
    fileio.write_figure(folder / "compare.png", figure)
    return comparison


def _model_or_run(model: str, runs_dir: Path) -> Any:
    """A preset, spec file or layer text as a ModelSpec; else an existing run by name or
    path (``convlens import`` makes such runs); else resolve_model's one-line error."""
    from convlens.errors import ConvlensError
    from convlens.models.registry import PRESETS

    if model.strip() in PRESETS:
        return resolve_model(model)
    try:
        return Run.open(model, runs_dir)
    except ConvlensError:
        return resolve_model(model)


def _matching(run: Run, dataset: Dataset) -> Any:
    if list(dataset.class_names) != run.class_names or tuple(dataset.input_shape) != tuple(
        run.input_shape
    ):
        raise OptionError(
            f"run {run.path} takes {run.input_shape} images of {len(run.class_names)} classes, "
            f"not the compared data's ({dataset.name}); compare it on its own data with --data"
        )
    return dataset


def _existing_trial(
    label: str, run: Run, dataset: Dataset, config: TrainConfig, correct: np.ndarray
) -> dict[str, Any]:
    """An existing run's row: its test figures on the compared images, measured now; the
    training figures only if convlens trained it."""
    from convlens.train.evaluation import evaluate_network
    from convlens.train.session import apply_subsets

    judged = apply_subsets(dataset, config)
    evaluation = evaluate_network(run.load_network(), judged.test_images, judged.test_labels,
                                  judged.class_names, tta_flip=config.tta_flip,
                                  tta_shift=config.tta_shift)  # fmt: skip
    metrics = run.metrics() if run.file(runs.METRICS_JSON).is_file() else {}
    trial = _trial_figures(label, run, correct, metrics)
    return {**trial, "test_loss": evaluation.loss, "is_sample": dataset.is_sample}


def _correct(run: Run, dataset: Dataset, config: TrainConfig) -> np.ndarray:
    """(N,) bool: which of the run's test images its saved weights classify correctly,
    with the test-time views (flip, shifts) it was evaluated with."""
    from convlens.predict import predict_arrays
    from convlens.train.session import apply_subsets

    judged = apply_subsets(dataset, config)
    probabilities = predict_arrays(
        run.load_network(),
        judged.test_images,
        tta_flip=config.tta_flip,
        tta_shift=config.tta_shift,
    )  # (N, K)
    return probabilities.argmax(axis=1) == np.asarray(judged.test_labels)


def _trial(label: str, run: Run, correct: np.ndarray) -> dict[str, Any]:
    """One model, one seed: its figures, and the accuracy of ``correct`` with its interval."""
    return _trial_figures(label, run, correct, run.metrics())


def _trial_figures(
    label: str, run: Run, correct: np.ndarray, metrics: dict[str, Any]
) -> dict[str, Any]:
    from convlens.models.network import build_network, count_params

    trainable, frozen = count_params(build_network(run.spec(), run.input_shape))
    right, total = int(correct.sum()), len(correct)
    low, high = wilson_interval(right, total)
    return {
        "model": label,
        "run": str(run.path),
        "seed": run.run_config.train.seed,
        "params": trainable + frozen,
        "seconds_per_epoch": metrics.get("seconds_per_epoch"),
        "train_accuracy": metrics.get("train_accuracy"),
        "test_accuracy": right / total,
        "test_accuracy_low": low,
        "test_accuracy_high": high,
        "test_correct": right,
        "test_count": total,
        "test_loss": metrics.get("test_loss"),
        "epochs": metrics.get("epochs_done"),
        "is_sample": facts.is_sample if (facts := run.run_config.dataset) else None,
        "data": run.data_note.short,
    }


def _row(label: str, trials: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A model's row: one trial as it is, several as means (and the test accuracy's std)."""
    if len(trials) == 1:
        return {**trials[0], "test_accuracy_std": 0.0, "repeats": 1}
    mean = {
        key: None
        if any(t[key] is None for t in trials)
        else float(np.mean([t[key] for t in trials]))
        for key in ("seconds_per_epoch", "train_accuracy", "test_accuracy", "test_loss")
    }
    first = trials[0]
    return {
        **first,
        **mean,
        "run": ";".join(t["run"] for t in trials),
        "seed": ";".join(str(t["seed"]) for t in trials),
        "test_accuracy_std": float(np.std([t["test_accuracy"] for t in trials], ddof=1)),
        "test_accuracy_low": None,  # each seed has its interval (compare.json "trials")
        "test_accuracy_high": None,
        "test_correct": sum(t["test_correct"] for t in trials),
        "repeats": len(trials),
    }
