"""``write_report(folder)``: find out what a folder holds and write its report.html.

A folder with ``sweep.json`` is a sweep, with ``compare.json`` a comparison, with
``config.json`` a run. The report goes inside the folder unless ``out`` says otherwise.
"""

from __future__ import annotations

from pathlib import Path

from convlens import fileio, runs
from convlens.errors import RunError
from convlens.reports.html import page

REPORT = "report.html"
KINDS = (("sweep", "sweep.json"), ("compare", "compare.json"), ("run", runs.CONFIG))


def write_report(
    target: str | Path,
    out: str | Path | None = None,
    *,
    runs_dir: str | Path | None = None,
    data_dir: str | None = None,
) -> Path:
    """Write the report of the run, sweep or comparison folder ``target``; return its path.

    ``out`` may be a file or an existing folder (default ``target/report.html``).
    ``data_dir`` tells a run's report where its data is now (for the misclassified images).
    """
    from convlens.reports.folder_report import compare_body, sweep_body
    from convlens.reports.run_report import run_body

    folder, kind = find_folder(target, runs_dir)
    if kind == "run":
        title, subtitle, body = run_body(runs.Run(folder), data_dir=data_dir)
    elif kind == "sweep":
        title, subtitle, body = sweep_body(folder)
    else:
        title, subtitle, body = compare_body(folder)
    path = Path(out) if out else folder / REPORT
    if path.is_dir():
        path = path / REPORT
    fileio.write_text(path, page(title, subtitle, body, source=str(folder)))
    return path


def find_folder(target: str | Path, runs_dir: str | Path | None = None) -> tuple[Path, str]:
    """The folder and its kind ("run", "sweep" or "compare"), by path or by name in runs/."""
    candidates = [Path(target)]
    if not Path(target).is_absolute():
        candidates.append(Path(runs_dir or runs.default_runs_dir()) / target)
    for folder in candidates:
        for kind, marker in KINDS:
            if (folder / marker).is_file():
                return folder, kind
    where = " or ".join(str(p) for p in dict.fromkeys(candidates))
    raise RunError(
        f"nothing to report at {where}: no config.json (run), sweep.json (sweep) or "
        "compare.json (comparison); give a folder written by convlens train, sweep or compare"
    )
