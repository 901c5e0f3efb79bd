"""Sweeps: train every configuration of a grid (x repeats), find the sweet spot.

``sweep("cnn", {"filters": [16, 32, 64]})`` answers the lesson's "what do more filters
buy?" with numbers. Every trial is an ordinary run folder inside one sweep folder::

    runs/sweep-NAME/
      filters-16-1a2b3c4d-r0/ ...   one run folder per configuration and repeat
      results.csv                   one row per configuration: cost and accuracy, mean/std
      trials.csv                    one row per trial, failed ones with their error
      sweep.json                    what was asked, the plan, the rows, the sweet spot
      pareto.png                    test accuracy against training time

Every configuration trains on the same data with the same seeds: repeat k uses seed
``seed + k`` (which also draws the ``--train-subset`` images), whatever the configuration.

Restarting. The sweep folder is named after ``name`` (default: the model's name), and a
trial folder after its configuration, a hash of everything it trains and its repeat. Run
the same sweep again and the trials whose folder is complete are reused, not retrained.
A trial that was interrupted is removed and trained again from scratch: trials are short,
and a fresh start keeps every timing comparable. Trials whose settings changed get new
folders; the tables always describe the latest call.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from convlens import fileio, runs
from convlens.data.config import DataConfig
from convlens.errors import ConvlensError, OptionError
from convlens.experiments import executors, ray_executor, resources
from convlens.experiments.executors import Trial, TrialOutcome
from convlens.experiments.grid import GridPoint, check_vary, expand
from convlens.experiments.pareto import (
    DEFAULT_COST,
    DEFAULT_MARGIN,
    get_cost,
    pareto_figure,
    pareto_front,
    sweet_spot,
)
from convlens.models.spec import ModelSpec
from convlens.notices import SmokeModeWarning, say
from convlens.provenance import combined_caveat
from convlens.recipe import TrainConfig
from convlens.train import smoke
from convlens.wording import counted

if TYPE_CHECKING:
    from convlens.data.dataset import Dataset

RESULTS_CSV = "results.csv"
TRIALS_CSV = "trials.csv"
SWEEP_JSON = "sweep.json"
PARETO_PNG = "pareto.png"
FINISHED = ("complete", "stopped")


class SweepReporter(Protocol):
    def start(self, total: int, to_train: int, plan: str) -> None: ...
    def trial_done(self, outcome: TrialOutcome) -> None: ...
    def note(self, text: str) -> None: ...


class SilentSweepReporter:
    def start(self, total: int, to_train: int, plan: str) -> None:
        pass

    def trial_done(self, outcome: TrialOutcome) -> None:
        pass

    def note(self, text: str) -> None:
        pass


@dataclass(frozen=True)
class SweepResult:
    path: Path
    rows: tuple[dict[str, Any], ...]  # results.csv: one per configuration
    trials: tuple[dict[str, Any], ...]  # trials.csv: one TrialRow.to_dict() per trial
    sweet_spot: str | None  # the configuration's name
    pareto: tuple[str, ...]  # names on the Pareto front, fastest first
    margin: float
    cost: str = DEFAULT_COST  # what "cheaper" means for the front and the sweet spot

    def format(self) -> str:
        table = format_table(
            self.rows, self.trials, self.sweet_spot, self.margin, self.path, self.cost
        )
        return table + (f"\n({self.caveat})" if self.caveat else "")

    def __str__(self) -> str:
        return self.format()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.format())

    @property
    def caveat(self) -> str:
        """What the trials trained on when not the full data (sample, subset, smoke)."""
        notes = []
        for trial in self.trials:
            folder = Path(str(trial.get("folder") or ""))
            path = folder if folder.is_absolute() else self.path / folder
            if (path / runs.CONFIG).is_file():
                try:
                    notes.append(runs.Run(path).data_note)
                except ConvlensError:
                    continue  # a damaged trial is reported in the table already
        return combined_caveat(notes)

    def _repr_html_(self) -> str:
        """The table as the CLI prints it, the caveat, and the Pareto figure."""
        from convlens.display import block, caveat_html, file_img, pre_html

        table = format_table(
            self.rows, self.trials, self.sweet_spot, self.margin, self.path, self.cost
        )
        picture = file_img(self.path / PARETO_PNG, "test accuracy against training time")
        return block(pre_html(table), caveat_html(self.caveat), picture)


def sweep(
    model: str | ModelSpec,
    vary: Mapping[str, Sequence[Any]],
    *,
    repeats: int = 1,
    data: DataConfig | None = None,
    config: TrainConfig | None = None,
    runs_dir: str | Path | None = None,
    name: str | None = None,
    workers: int | None = None,
    executor: str = "process",
    ray_address: str | None = None,
    margin: float = DEFAULT_MARGIN,
    cost: str = DEFAULT_COST,
    reporter: SweepReporter | None = None,
    dataset: Dataset | None = None,
    recipe_preset: str | None = None,
) -> SweepResult:
    """Train every point of ``vary`` over ``model`` ``repeats`` times; write the tables.

    ``vary`` maps axes to values (see :mod:`convlens.experiments.grid`). ``margin`` is a
    fraction (0.003 = 0.3 points). ``cost`` is what the Pareto front and the sweet spot
    minimise: "seconds" (measured training time), "params" or "mflops" (exact).
    ``executor`` is "process" (default), "ray" or "inline".
    ``dataset`` may pass already loaded data (its ``DataConfig`` is still recorded).
    ``recipe_preset`` names the preset whose recipe ``config`` came from, for each run's
    config.json (see :func:`convlens.train.session.train`).
    """
    from convlens.models.registry import resolve_model

    _check_options(executor, repeats, margin, ray_address)
    get_cost(cost)  # an unknown cost fails before anything trains
    reporter = reporter or SilentSweepReporter()
    vary = check_vary(vary)
    spec = resolve_model(model) if isinstance(model, str) else model
    data = data or DataConfig()
    config, smoke_note = smoke.cap(config or TrainConfig())  # said once, for every trial
    if smoke_note:
        say(smoke_note, SmokeModeWarning)
        reporter.note(smoke_note)
    if dataset is None:
        dataset = data.load(progress=not isinstance(reporter, SilentSweepReporter))
        if dataset.notice:
            reporter.note(dataset.notice)
    points = expand(spec, config, vary, dataset.input_shape, dataset.num_classes)
    valid = [point for point in points if not point.error]
    for point in points:
        if point.error:
            reporter.note(f"skipping {point.name}: {point.error}")
    if not valid:
        raise OptionError(f"no configuration of the sweep fits the data: {points[0].error}")
    folder = Path(runs_dir or runs.default_runs_dir()) / runs.check_name(
        f"sweep-{runs.safe_name(name or spec.name)}"
    )
    costs = {point.name: _cost(point, dataset) for point in valid}
    trials = [
        _trial(point, k, data, folder, recipe_preset) for point in valid for k in range(repeats)
    ]
    to_train = [t for t in trials if not _finished(t)]
    for trial in to_train:
        executors.clear_incomplete(trial)  # interrupted before: train it from scratch
    plan = _plan(executor, to_train, costs, workers, config)
    header = {
        "name": folder.name,
        "model": spec.to_dict(),
        "vary": vary,
        "repeats": repeats,
        "margin": margin,
        "cost": cost,
        "train": config.to_dict(),
        "recipe": recipe_preset,
        "data": data.to_dict(),
        "executor": executor,
        "ray_address": ray_address,
        "plan": _plan_text(executor, plan, ray_address),
        "started": dt.datetime.now().isoformat(timespec="seconds"),
    }
    fileio.write_json(folder / SWEEP_JSON, {**header, "status": "running"})
    reporter.start(len(trials), len(to_train), header["plan"])
    start = time.perf_counter()
    try:
        outcomes = _execute(executor, to_train, dataset, plan, ray_address, reporter)
    except KeyboardInterrupt:
        fileio.write_json(folder / SWEEP_JSON, {**header, "status": "interrupted"})
        reporter.note(f"sweep interrupted; run the same command again to continue {folder}")
        raise
    except Exception as err:  # the executor itself failed (e.g. Ray went away)
        status = f"stopped: {executors.one_line(err)}"
        fileio.write_json(folder / SWEEP_JSON, {**header, "status": status})
        raise
    header["wall_seconds"] = time.perf_counter() - start
    fresh = {o.folder: o for o in outcomes}
    trial_rows = [_trial_row(t, fresh.get(t.folder), t not in to_train) for t in trials]
    trial_rows += [_invalid_trial_row(p, k) for p in points if p.error for k in range(repeats)]
    rows = [_config_row(p, trial_rows, costs.get(p.name), vary) for p in points]
    return _write_results(folder, header, spec.name, rows, trial_rows, margin, cost)


def _check_options(executor: str, repeats: int, margin: float, ray_address: str | None) -> None:
    """Everything that can be wrong with the options, before data is loaded or files made."""
    if executor not in executors.EXECUTORS:
        raise OptionError(f"executor '{executor}' is unknown; use {', '.join(executors.EXECUTORS)}")
    if executor == "ray":
        ray_executor.import_ray()
        ray_executor.check_reachable(ray_address)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise OptionError(f"--repeats {repeats!r} is not valid; it must be 1 or more")
    if not 0 <= margin < 1:
        raise OptionError(f"--margin {100 * margin:g} points is not valid; use 0 to 100")


def _trial(
    point: GridPoint, repeat: int, data: DataConfig, folder: Path, recipe_preset: str | None
) -> Trial:
    """Repeat ``repeat`` of a configuration: the same recipe with seed + repeat."""
    config = point.config.replace(seed=point.config.seed + repeat)
    return Trial(
        point.name, point.folder(data, repeat), str(folder), point.spec, config, data, repeat,
        recipe_preset, point.footprint,
    )  # fmt: skip


def _write_results(
    folder: Path,
    header: dict[str, Any],
    model_name: str,
    rows: list[dict[str, Any]],
    trial_rows: list[TrialRow],
    margin: float,
    cost: str = DEFAULT_COST,
) -> SweepResult:
    """Mark the Pareto front and sweet spot; write results.csv, trials.csv, pareto.png and
    sweep.json (last: its status says the sweep is done)."""
    ranked = [r for r in rows if r["status"] == "ok"]
    front = [ranked[i]["config"] for i in pareto_front(ranked, cost)]
    spot_index = sweet_spot(ranked, margin, cost)
    spot = ranked[spot_index]["config"] if spot_index is not None else None
    for row in rows:
        row["pareto"] = row["config"] in front
        row["sweet_spot"] = row["config"] == spot
    fileio.write_csv(folder / RESULTS_CSV, rows)
    trials = [t.to_dict() for t in trial_rows]
    fileio.write_csv(folder / TRIALS_CSV, trials)
    axes = ", ".join(header["vary"]) or "repeats"
    figure = pareto_figure(ranked, margin, f"{model_name}: {axes} (sweet spot ringed)", cost)
    fileio.write_figure(folder / PARETO_PNG, figure)
    counts = {
        status: sum(t.status == status for t in trial_rows) for status in ("failed", "invalid")
    }
    summary = {
        "status": "complete with failures" if counts["failed"] else "complete",
        "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "trials": len(trial_rows),
        "trained": sum(not t.reused and t.status in FINISHED for t in trial_rows),
        "reused": sum(t.reused for t in trial_rows),
        **counts,
        "sweet_spot": spot,
        "pareto": front,
        "rows": rows,
    }
    fileio.write_json(folder / SWEEP_JSON, {**header, **summary})
    return SweepResult(folder, tuple(rows), tuple(trials), spot, tuple(front), margin, cost)


# --- planning and running ----------------------------------------------------------------


@dataclass(frozen=True)
class _Cost:
    params: int
    flops: int
    memory: int  # bytes one worker needs to train it


def _cost(point: GridPoint, dataset: Dataset) -> _Cost:
    """From the point's footprint (its shapes worked out once, in ``expand``): nothing is
    built here, and the trial trains with the same footprint."""
    from convlens.models.footprint import check_memory

    found = check_memory(
        point.spec, dataset.input_shape, batch_size=point.config.batch_size, found=point.footprint
    )
    memory = resources.estimate_trial_memory(found.shapes, found.parameters, point.config, dataset)
    return _Cost(found.parameters, found.flops, memory)


def _finished(trial: Trial) -> bool:
    run = runs.Run(trial.path)
    return (
        run.file(runs.METRICS_JSON).is_file()
        and run.file(runs.STATE).is_file()
        and run.state().get("status") in FINISHED
    )


def _plan(
    executor: str,
    trials: Sequence[Trial],
    costs: Mapping[str, _Cost],
    workers: int | None,
    config: TrainConfig,
) -> resources.WorkerPlan | None:
    if executor == "inline" or not trials:
        return None
    memory = max(costs[t.config_name].memory for t in trials)
    if executor == "ray":
        threads = config.threads or 1
        return resources.plan_workers(len(trials), memory, workers=workers, threads=threads)
    if workers is None and resources.uses_gpu(config.device):
        workers = 1  # every worker would use the same GPU: one at a time unless asked
    return resources.plan_workers(len(trials), memory, workers=workers, threads=config.threads)


def _plan_text(executor: str, plan: resources.WorkerPlan | None, address: str | None) -> str:
    if plan is None:
        return "in this process" if executor == "inline" else "nothing to train"
    if executor == "ray":
        where = f"Ray cluster at {address}" if address else "a local Ray runtime"
        return f"{where}, {counted(plan.threads, 'thread')} per trial"
    return plan.describe()


def _execute(
    executor: str,
    trials: Sequence[Trial],
    dataset: Dataset,
    plan: resources.WorkerPlan | None,
    address: str | None,
    reporter: SweepReporter,
) -> list[TrialOutcome]:
    if not trials:
        return []
    if executor == "inline" or plan is None:
        return executors.run_inline(trials, dataset=dataset, on_done=reporter.trial_done)
    if executor == "ray":
        return ray_executor.run_ray(
            trials,
            dataset=dataset,
            threads=plan.threads,
            on_done=reporter.trial_done,
            address=address,
            num_cpus=plan.workers * plan.threads,
        )
    return executors.run_local(
        trials,
        dataset=dataset,
        workers=plan.workers,
        threads=plan.threads,
        on_done=reporter.trial_done,
    )


# --- tables ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialRow:
    """One trials.csv row: which trial, how it ended, and its run's headline figures.

    The fields are the file's columns, in order; a figure the trial never reached (it
    failed, or was invalid) is None, an empty cell.
    """

    config: str  # the configuration's name: "filters=32,convs=2"
    repeat: int
    seed: int  # the base seed + repeat
    folder: str  # the run folder inside the sweep folder ("" for an invalid point)
    status: str  # the run's state ("complete", "stopped"), or "failed", "invalid"
    reused: bool  # finished by an earlier call of the same sweep
    error: str = ""
    train_seconds: float | None = None
    # None for a trial reused from before train accuracy was measured (see runs.py)
    train_accuracy: float | None = None
    test_accuracy: float | None = None
    best_epoch: int | None = None
    best_test_accuracy: float | None = None
    epochs_done: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The row as trials.csv and ``SweepResult.trials`` hold it: column -> value."""
        return dataclasses.asdict(self)


def _trial_row(trial: Trial, outcome: TrialOutcome | None, reused: bool) -> TrialRow:
    """One trials.csv row, read back from the run folder (reused: finished before)."""
    row = TrialRow(trial.config_name, trial.repeat, trial.config.seed, trial.folder, "", reused)
    if not reused and (outcome is None or not outcome.ok):
        error = outcome.error if outcome else "the executor returned no result"
        return dataclasses.replace(row, status="failed", error=error or "unknown error")
    run = runs.Run(trial.path)
    try:
        metrics = run.metrics()
        status = run.state().get("status", "complete")
    except Exception as err:  # a folder damaged after training: say so, keep the sweep
        return dataclasses.replace(row, status="failed", error=executors.one_line(err))
    return dataclasses.replace(
        row,
        status=status,
        train_seconds=metrics["train_seconds"],
        train_accuracy=metrics.get("train_accuracy"),
        test_accuracy=metrics["test_accuracy"],
        best_epoch=metrics["best_epoch"],
        best_test_accuracy=metrics["best_test_accuracy"],
        epochs_done=metrics["epochs_done"],
    )


def _invalid_trial_row(point: GridPoint, repeat: int) -> TrialRow:
    return TrialRow(
        point.name, repeat, point.config.seed + repeat, "", "invalid", False, point.error or ""
    )


def _config_row(
    point: GridPoint,
    trial_rows: Sequence[TrialRow],
    cost: _Cost | None,
    vary: Mapping[str, Any],
) -> dict[str, Any]:
    """One results.csv row: the configuration's cost and its accuracy over repeats."""
    mine = [r for r in trial_rows if r.config == point.name]
    done = [r for r in mine if r.status in FINISHED]
    fails = [r for r in mine if r.status == "failed"]
    settings = dict(point.values)
    row: dict[str, Any] = {
        "config": point.name,
        "status": "invalid" if point.error else ("ok" if done else "failed"),
        **{axis: settings.get(axis) for axis in vary},
        "params": cost.params if cost else None,
        "flops_per_image": cost.flops if cost else None,
        "repeats_done": len(done),
        "repeats_failed": len(fails),
    }
    for key in ("train_seconds", "train_accuracy", "test_accuracy"):
        values = [getattr(r, key) for r in done if getattr(r, key) is not None]
        row[f"{key}_mean"] = statistics.fmean(values) if values else None
        row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else None
    # measured train accuracy only: a running mean over the steps would make the gap lie
    gaps = [r.train_accuracy - r.test_accuracy for r in done if r.train_accuracy is not None]
    row["gap_mean"] = statistics.fmean(gaps) if gaps else None
    row["best_epoch_mean"] = statistics.fmean(r.best_epoch for r in done) if done else None
    row["error"] = point.error or (fails[0].error if fails else "")
    row["pareto"] = False
    row["sweet_spot"] = False
    return row


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _points(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def format_table(
    rows: Sequence[dict[str, Any]],
    trials: Sequence[dict[str, Any]],
    spot: str | None,
    margin: float,
    path: Path | None = None,
    cost: str = DEFAULT_COST,
) -> str:
    """The sweep as people read it: one line per configuration, then the verdict."""
    width = max(14, *(len(r["config"]) + 2 for r in rows)) if rows else 14
    head = (
        f"{'configuration':<{width}}{'params':>11}{'MFLOPs':>9}{'train s':>10}"
        f"{'train acc':>11}{'test acc':>17}{'gap':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        mark = (">" if r["sweet_spot"] else " ") + ("*" if r["pareto"] else " ")
        if r["status"] != "ok":
            lines.append(f"{mark}{r['config']:<{width - 2}}  {r['status']}: {r['error']}")
            continue
        std = r["test_accuracy_std"]
        test = f"{r['test_accuracy_mean']:.2%}" + (f" ±{100 * std:.2f}" if std is not None else "")
        lines.append(
            f"{mark}{r['config']:<{width - 2}}{r['params']:>11,}{r['flops_per_image'] / 1e6:>9.2f}"
            f"{r['train_seconds_mean']:>10.1f}{_pct(r['train_accuracy_mean']):>11}{test:>17}"
            f"{_points(r['gap_mean']):>8}"
        )
    measure = get_cost(cost)
    lines.append(
        f"(> sweet spot, * on the Pareto front, cost: {measure.axis}; "
        "gap = train - test accuracy, points)"
    )
    ok = [r for r in rows if r["status"] == "ok"]
    if spot is not None:
        chosen = next(r for r in ok if r["config"] == spot)
        best = max(ok, key=lambda r: r["test_accuracy_mean"])
        if chosen["test_accuracy_mean"] >= best["test_accuracy_mean"]:
            why = "it is also the most accurate"
        else:
            why = (
                f"{measure.words} within {100 * margin:.1f} points of the best "
                f"({best['config']}, {best['test_accuracy_mean']:.2%} with "
                f"{measure.shown(best)})"
            )
        lines.append(
            f"\nSweet spot: {spot}: {chosen['test_accuracy_mean']:.2%} test accuracy with "
            f"{measure.shown(chosen)}; {why}."
        )
    reused = sum(bool(t["reused"]) for t in trials)
    trained = sum(t["status"] in FINISHED and not t["reused"] for t in trials)
    failed = sum(t["status"] == "failed" for t in trials)
    invalid = sum(t["status"] == "invalid" for t in trials)
    lines.append(
        f"{len(trials)} trials: {trained} trained now, {reused} reused, {failed} failed"
        + (f", {invalid} invalid (skipped)" if invalid else "")
        + (f"; see {path / TRIALS_CSV}" if failed and path else "")
    )
    return "\n".join(lines)
