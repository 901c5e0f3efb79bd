"""How result objects show themselves in a notebook: HTML tables and PNG figures.

Jupyter, JupyterLab, Colab and VS Code call ``_repr_html_`` / ``_repr_png_`` on the
value of a cell; ``str()`` stays the plain text the CLI prints. The pieces here are
shared by every result object (summary, run, comparison, sweep, evaluation, journey,
filters, explanation, predictions). No torch, no IPython: only the standard library,
and matplotlib when a figure is drawn.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# One small stylesheet, inline, so a notebook saved to HTML keeps its look.
_STYLE = (
    "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:13px;"
    "border-collapse:collapse;margin:4px 0"
)
_CELL = "padding:3px 10px;border-bottom:1px solid #ddd;"


class FigureResult:
    """A result drawn as one figure: a PNG in a notebook (with the data caveat under it,
    when there is one), the CLI's text with str(). Subclasses define ``figure()``."""

    title: str = ""
    caveat: str = ""

    def figure(self) -> Any:
        raise NotImplementedError

    def _repr_png_(self) -> bytes:
        return figure_png(self.figure())

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """The figure, drawn once: PNG, and HTML when a caveat must be said under it."""
        png = self._repr_png_()
        bundle: dict[str, Any] = {"image/png": png, "text/plain": str(self)}
        if self.caveat:
            bundle["text/html"] = block(png_img(png, self.title), caveat_html(self.caveat))
        return bundle

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the figure (PNG, PDF or SVG by the suffix); returns the path."""
        from convlens.fileio import write_figure

        write_figure(path, self.figure(), dpi=110)
        return Path(path)


def figure_png(figure: Any, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes, cropped to what is drawn."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def png_img(data: bytes, alt: str, max_width: int = 900) -> str:
    """An inline <img> of PNG bytes (base64; no file next to the notebook needed)."""
    encoded = base64.b64encode(data).decode("ascii")
    return (
        f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}" '
        f'style="max-width:{max_width}px;width:100%">'
    )


def file_img(path: Path, alt: str, max_width: int = 900) -> str:
    """An inline <img> of a PNG file, or "" when the file is not there."""
    try:
        return png_img(path.read_bytes(), alt, max_width)
    except OSError:
        return ""


def html_table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    caption: str = "",
    numeric: Sequence[bool] | None = None,
) -> str:
    """A plain HTML table; ``numeric[i]`` right-aligns column i. Cells are escaped."""
    numeric = numeric or [False] * len(header)
    align = ["text-align:right;" if n else "text-align:left;" for n in numeric]
    head = "".join(
        f'<th style="{_CELL}{a}border-bottom:2px solid #888">{html.escape(str(h))}</th>'
        for h, a in zip(header, align, strict=True)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td style="{_CELL}{a}{_wrap(c)}">{html.escape(str(c))}</td>'
            for c, a in zip(row, align, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    top = (
        f'<caption style="caption-side:top;text-align:left;font-weight:600;padding:2px 0">'
        f"{html.escape(caption)}</caption>"
        if caption
        else ""
    )
    return (
        f'<table style="{_STYLE}">{top}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


def _wrap(cell: Any) -> str:
    """Short cells (a shape, a number) stay on one line; sentences wrap."""
    return "white-space:nowrap;" if len(str(cell)) <= 40 else ""


def caveat_html(text: str) -> str:
    """A visible note (e.g. "trained on the embedded 10% sample"), or "" for none."""
    if not text:
        return ""
    return (
        '<p style="margin:4px 0;padding:4px 8px;background:#fff4d6;border-left:4px solid '
        f'#d49a00;font-family:system-ui,sans-serif;font-size:13px">{html.escape(text)}</p>'
    )


def pre_html(text: str) -> str:
    """Monospaced text (a Keras-style summary keeps its columns)."""
    return f'<pre style="font-size:12px;line-height:1.3;margin:4px 0">{html.escape(text)}</pre>'


def block(*parts: str) -> str:
    """Parts one under the other, in one <div>."""
    return "<div>" + "".join(p for p in parts if p) + "</div>"


def pixels_png(image: Any, scale: int = 2) -> bytes:
    """One uint8 image (C, H, W) as a PNG, each pixel drawn ``scale`` x ``scale``."""
    import numpy as np
    from PIL import Image

    array = np.asarray(image, dtype=np.uint8)
    picture = Image.fromarray(array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0))
    if scale > 1:
        size = (picture.width * scale, picture.height * scale)
        picture = picture.resize(size, Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
