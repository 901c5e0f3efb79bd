"""Reports: one self-contained HTML page for a run, a sweep or a comparison folder.

    >>> from convlens.reports import write_report
    >>> write_report("runs/sweep-cnn")          # -> runs/sweep-cnn/report.html

Figures are embedded as base64 PNGs and the CSS is inline: no network, no scripts.
"""

from convlens.reports.write import REPORT, find_folder, write_report

__all__ = ["REPORT", "find_folder", "write_report"]
