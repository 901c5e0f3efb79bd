"""HTML building blocks for reports: escaped text, tables, cards, inline PNG images.

Every function returns a string of HTML. Text from files (names, class names, errors) is
escaped here with :func:`html.escape`, so page builders never write raw text into HTML.
Images are embedded as base64 ``data:`` URLs: a report is one file, readable offline.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from convlens.reports.templates import CSS, PAGE


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def page(title: str, subtitle: str, body: str, *, source: str) -> str:
    """The whole document; ``title``, ``subtitle`` and ``source`` are plain text."""
    return PAGE.substitute(
        title=esc(title),
        subtitle=esc(subtitle),
        body=body,
        css=CSS,
        version=esc(_version()),
        date=esc(dt.datetime.now().strftime("%Y-%m-%d %H:%M")),
        source=esc(source),
    )


def img(png: bytes, alt: str, *, css_class: str = "figure", width: int | None = None) -> str:
    """An <img> carrying its PNG inline as base64 (``width`` draws it square)."""
    data = base64.b64encode(png).decode("ascii")
    size = f' width="{width}" height="{width}"' if width else ""
    return f'<img class="{css_class}" alt="{esc(alt)}"{size} src="data:image/png;base64,{data}">'


def figure_file(path: Path, alt: str) -> str:
    """A PNG file of a run or sweep folder, embedded; a note if it is missing."""
    if not path.is_file():
        return note(f"{path.name} is missing.")
    return img(path.read_bytes(), alt)


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    numeric: Sequence[int] = (),
    row_classes: Sequence[str] | None = None,
    raw: Sequence[int] = (),
) -> str:
    """A table of escaped cells; ``numeric`` columns align right; ``raw`` columns hold
    HTML built by this module (bars)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    lines = []
    for index, row in enumerate(rows):
        cells = []
        for col, cell in enumerate(row):
            text = cell if col in raw else esc("" if cell is None else cell)
            cells.append(f'<td class="num">{text}</td>' if col in numeric else f"<td>{text}</td>")
        css = row_classes[index] if row_classes else ""
        lines.append((f'<tr class="{css}">' if css else "<tr>") + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def bar(fraction: float) -> str:
    """A horizontal bar for a fraction in 0..1 (CSS only)."""
    width = max(0.0, min(1.0, fraction)) * 100
    return f'<div class="bar"><i style="width:{width:.1f}%"></i></div>'


def cards(items: Iterable[tuple[str, str]]) -> str:
    """Big numbers with a label under each: ``[("91.2%", "test accuracy"), ...]``."""
    inner = "".join(
        f'<div class="card"><b>{esc(value)}</b><span>{esc(label)}</span></div>'
        for value, label in items
    )
    return f'<div class="cards">{inner}</div>'


def section(title: str, *parts: str) -> str:
    return f"<h2>{esc(title)}</h2>\n" + "\n".join(parts)


def para(text: str, css_class: str = "") -> str:
    return f'<p class="{css_class}">{esc(text)}</p>' if css_class else f"<p>{esc(text)}</p>"


def note(text: str) -> str:
    return para(text, "note")


def pct(value: Any, digits: int = 2) -> str:
    """0.9123 -> '91.23%'; blank for a missing value (None or an empty CSV cell)."""
    return "" if value in (None, "") else f"{float(value):.{digits}%}"


def points(value: Any) -> str:
    """A difference of accuracies in points: 0.0123 -> '1.23' (never '-0.00')."""
    return "" if value in (None, "") else f"{round(100 * float(value), 2) + 0.0:.2f}"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("convlens")
    except PackageNotFoundError:
        return "(version unknown)"
