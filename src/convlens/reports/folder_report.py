"""Reports of folders of runs: a sweep (results, Pareto figure, sweet spot) and a comparison.

Both read only what their folder already holds (``sweep.json``, ``results.csv``,
``trials.csv``, ``pareto.png``; ``compare.json``, ``compare.png``): no training, no torch.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from convlens import fileio, runs
from convlens.errors import ConvlensError
from convlens.experiments.pareto import DEFAULT_COST, Cost, get_cost
from convlens.provenance import combined_caveat
from convlens.reports.html import figure_file, note, para, pct, points, section, table

RESULT_HEADERS = ["configuration", "status", "params", "MFLOPs/image", "train s", "train acc"]
RESULT_HEADERS += ["test acc", "± std (points)", "gap (points)", "Pareto"]
TRIAL_HEADERS = ["configuration", "repeat", "seed", "folder", "status", "reused", "train s"]
TRIAL_HEADERS += ["test acc"]
COMPARE_HEADERS = ["model", "parameters", "seconds/epoch", "train accuracy", "test accuracy"]
COMPARE_HEADERS += ["95% interval (one seed) or ± std (seeds)", "test loss", "epochs"]


def sweep_body(folder: Path) -> tuple[str, str, str]:
    """(title, subtitle, body HTML) for a sweep folder."""
    info = fileio.read_json(folder / "sweep.json")
    rows = info.get("rows") or _read_csv(folder / "results.csv")
    trials = _read_csv(folder / "trials.csv")
    vary = info.get("vary", {})
    axes = "; ".join(f"{k}={','.join(str(v) for v in vs)}" for k, vs in vary.items()) or "none"
    subtitle = (
        f"model {info.get('model', {}).get('name', '?')}; varying {axes}; "
        f"{info.get('repeats', 1)} repeat(s) of {info.get('train', {}).get('epochs', '?')} "
        f"epoch(s); status {info.get('status', '?')}"
    )
    spot = info.get("sweet_spot")
    cost = get_cost(str(info.get("cost") or DEFAULT_COST))  # sweeps before --cost: seconds
    parts = [_sweet_spot(rows, spot, float(info.get("margin", 0.003)), cost)]
    parts[:0] = _caveat([folder / t["folder"] for t in trials if t.get("folder")])
    explain = note(
        "Means over repeats; gap = train - test accuracy at the last epoch. The Pareto front "
        "holds the configurations that no other beats on both cost and accuracy; the cost "
        f"here is {cost.axis}. "
        f"Trials ran on {info.get('plan') or '?'}; trials that share the machine slow "
        "each other a little, so compare times within one sweep."
    )
    parts.append(section("Results", _results(rows), explain))
    what = cost.axis.split(" (")[0]
    pareto = figure_file(folder / "pareto.png", f"test accuracy against {what}")
    parts.append(section(f"Accuracy against {what}", pareto))
    bad = [t for t in trials if t.get("status") in ("failed", "invalid")]
    if bad:
        rows_bad = [[t["config"], t["repeat"], t["status"], t["error"]] for t in bad]
        failures = table(["configuration", "repeat", "status", "error"], rows_bad,
                         row_classes=["bad"] * len(bad))  # fmt: skip
        parts.append(section("Failed and skipped trials", failures))
    first = next((t for t in trials if t["config"] == spot and t["folder"]), None)
    if spot and first:
        curves = figure_file(folder / first["folder"] / runs.CURVES, f"curves of {spot}")
        parts.append(section(f"Training curves of the sweet spot ({spot}, repeat 0)", curves))
    parts.append(section("Trials", _trials(trials)))
    return f"Sweep {folder.name}", subtitle, "\n".join(parts)


def _sweet_spot(rows: list[dict[str, Any]], spot: str | None, margin: float, cost: Cost) -> str:
    if not spot:
        return para("No configuration finished, so there is no sweet spot.", "verdict")
    row = next(r for r in rows if r["config"] == spot)
    return para(
        f"Sweet spot: {spot}, {pct(row['test_accuracy_mean'])} mean test accuracy with "
        f"{cost.shown(row)}: the configuration with {cost.words.removeprefix('the ')} "
        f"within {100 * margin:.1f} points of the best.",
        "spot",
    )


def _results(rows: list[dict[str, Any]]) -> str:
    cells, classes = [], []
    for r in rows:
        ok = r["status"] == "ok"
        spot, front = _true(r.get("sweet_spot")), _true(r.get("pareto"))
        params = r.get("params")
        cells.append(
            [
                r["config"],
                "ok" if ok else f"{r['status']}: {r.get('error', '')}",
                f"{int(float(params)):,}" if params not in (None, "") else "",
                f"{float(r['flops_per_image']) / 1e6:.2f}" if ok else "",
                f"{float(r['train_seconds_mean']):.1f}" if ok else "",
                pct(r.get("train_accuracy_mean")),
                pct(r.get("test_accuracy_mean")),
                points(r.get("test_accuracy_std")),
                points(r.get("gap_mean")),
                ("sweet spot, " if spot else "") + ("yes" if front else "no") if ok else "",
            ]
        )
        classes.append("spot-row" if spot else ("" if ok else "bad"))
    return table(RESULT_HEADERS, cells, numeric=range(2, 9), row_classes=classes)


def _trials(trials: list[dict[str, str]]) -> str:
    cells = [
        [
            t["config"],
            t["repeat"],
            t["seed"],
            t["folder"],
            t["status"],
            t["reused"],
            f"{float(t['train_seconds']):.1f}" if t.get("train_seconds") else "",
            pct(t.get("test_accuracy")),
        ]
        for t in trials
    ]
    return table(TRIAL_HEADERS, cells, numeric=(1, 2, 6, 7))


def compare_body(folder: Path) -> tuple[str, str, str]:
    """(title, subtitle, body HTML) for a folder written by ``convlens compare``."""
    info = fileio.read_json(folder / "compare.json")
    rows = info.get("rows", [])
    models = ", ".join(str(m) for m in info.get("models", []))
    subtitle = f"{len(rows)} models trained on the same data with the same seed: {models}"
    cells = [
        [
            r["model"],
            f"{int(r['params']):,}",
            f"{float(r['seconds_per_epoch']):.1f}",
            pct(r["train_accuracy"]),
            pct(r["test_accuracy"]),
            _spread(r),
            f"{float(r['test_loss']):.4f}",
            r.get("epochs", ""),
        ]
        for r in rows
    ]
    parts = _caveat([Path(p) for r in rows for p in str(r.get("run", "")).split(";") if p])
    parts.append(section("Side by side", table(COMPARE_HEADERS, cells, numeric=range(1, 8))))
    decision = info.get("decision")
    if decision:  # McNemar's exact test on the same test images (convlens.compare)
        parts.append(para(" ".join(str(line) for line in decision), "spot"))
    elif len(rows) > 1:  # a comparison written before the paired test: no decision to show
        old = "This comparison predates the paired test, so no model is called more accurate; "
        parts.append(note(old + "run convlens compare again for the decision."))
    figure = figure_file(folder / "compare.png", "the models compared")
    parts.append(section("Accuracy per epoch, and final accuracy", figure))
    return f"Comparison {folder.name}", subtitle, "\n".join(parts)


def _spread(row: dict[str, Any]) -> str:
    """'90.7%-91.8%' (Wilson, one seed), '± 0.15 points' (several seeds), '' (older files)."""
    if int(row.get("repeats") or 1) > 1 and row.get("test_accuracy_std") is not None:
        return f"± {100 * float(row['test_accuracy_std']):.2f} points"
    if row.get("test_accuracy_low") not in (None, ""):
        return f"{pct(row['test_accuracy_low'], 1)}-{pct(row['test_accuracy_high'], 1)}"
    return ""


def _caveat(run_folders: list[Path]) -> list[str]:
    """A paragraph saying what the runs trained on when not the full data, or none."""
    notes = []
    for path in run_folders:
        if (path / runs.CONFIG).is_file():
            try:
                notes.append(runs.Run(path).data_note)
            except ConvlensError:
                continue  # a damaged run folder: its own row says so
    caveat = combined_caveat(notes)
    return [para(f"Data: {caveat}.", "verdict")] if caveat else []


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
