"""``model.summary()`` as Keras prints it, plus the *why* of every output shape.

The layout follows tf.keras' classic text summary (``Layer (type)``, ``Output Shape``,
``Param #``, then the totals) with shapes in Keras order, ``(None, H, W, C)``, so a
learner can hold it next to the lesson's. Parameter counts come from the built torch
modules, never from a formula typed here; the tests pin them to Keras' figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from convlens.errors import SpecError
from convlens.models.layers import Shape
from convlens.models.network import Network, count_params
from convlens.models.spec import ModelSpec
from convlens.wording import counted


@dataclass(frozen=True)
class LayerRow:
    name: str
    keras_type: str
    output_shape: Shape  # (C, H, W) or (F,)
    params: int
    flops: int
    explanation: str

    @property
    def keras_shape(self) -> str:
        """``(None, 26, 26, 64)`` for (64, 26, 26); ``(None, 1600)`` for (1600,)."""
        dims = self.output_shape
        ordered = (*dims[1:], dims[0]) if len(dims) == 3 else dims
        return "(None, " + ", ".join(str(d) for d in ordered) + ")"


@dataclass(frozen=True)
class ModelSummary:
    model_name: str
    input_shape: Shape
    rows: tuple[LayerRow, ...]
    trainable: int
    non_trainable: int
    explained: bool = False  # str() includes the why of every shape

    def __str__(self) -> str:
        return self.format(self.explained)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        """The summary as an HTML table (a notebook shows it), the why beside each row."""
        from convlens.display import html_table

        c, h, w = self.input_shape
        header = ["Layer (type)", "Output Shape", "Param #"]
        rows = [[f"{r.name} ({r.keras_type})", r.keras_shape, f"{r.params:,}"] for r in self.rows]
        if self.explained:
            header.append("Why")
            for row, layer in zip(rows, self.rows, strict=True):
                row.append(layer.explanation)
        totals = (
            f"Total params: {self.total:,} ({_size(self.total)}); trainable {self.trainable:,}"
            f", non-trainable {self.non_trainable:,}; "
            f"{self.flops / 1e6:,.2f} MFLOPs per image"
        )
        table = html_table(
            header,
            rows,
            caption=f'Model: "{self.model_name}", input {h}x{w}x{c} (H, W, C)',
            numeric=[False, False, True] + [False] * self.explained,
        )
        return f'<div>{table}<p style="margin:2px 0;font-size:13px">{totals}</p></div>'

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable

    @property
    def flops(self) -> int:
        return sum(row.flops for row in self.rows)

    def format(self, explain: bool = False) -> str:
        return format_summary(self, explain=explain)

    def to_dict(self) -> dict:
        return {
            "model": self.model_name,
            "input_shape": list(self.input_shape),
            "layers": [
                {
                    "name": r.name,
                    "type": r.keras_type,
                    "output_shape": list(r.output_shape),
                    "params": r.params,
                    "flops": r.flops,
                    "explanation": r.explanation,
                }
                for r in self.rows
            ],
            "total_params": self.total,
            "trainable_params": self.trainable,
            "non_trainable_params": self.non_trainable,
            "flops_per_image": self.flops,
        }


def summarize(network: Network) -> ModelSummary:
    rows = []
    in_shape = network.input_shape
    for (name, layer), out_shape, block in zip(
        network.layer_specs().items(), network.shapes, network.blocks.values(), strict=True
    ):
        trainable, frozen = count_params(block)
        rows.append(
            LayerRow(
                name=name,
                keras_type=layer.keras_type,
                output_shape=out_shape,
                params=trainable + frozen,
                flops=layer.flops(in_shape),
                explanation=layer.explain(in_shape),
            )
        )
        in_shape = out_shape
    trainable, frozen = count_params(network)
    return ModelSummary(network.spec.name, network.input_shape, tuple(rows), trainable, frozen)


def summary_until_failure(spec: ModelSpec, input_shape: Shape) -> str | None:
    """The table of every layer up to the first that does not fit its input, or None when
    all fit: what ``summary`` and ``import`` print before the one-line reason, so the
    shapes that led there are in view (a 5x5 map meeting a 7x7 kernel, one pooling too
    many). Counts come from the shapes alone (``LayerSpec.params``): nothing is built."""
    rows = []
    shape = tuple(input_shape)
    for name, layer in zip(spec.layer_names(), spec.layers, strict=True):
        try:
            out_shape = layer.output_shape(shape)
        except SpecError:
            break
        rows.append(LayerRow(name, layer.keras_type, out_shape, layer.params(shape),
                             layer.flops(shape), layer.explain(shape)))  # fmt: skip
        shape = out_shape
    else:
        return None
    failing, name = spec.layers[len(rows)], spec.layer_names()[len(rows)]
    cells = [(f"{r.name} ({r.keras_type})", r.keras_shape, f"{r.params:,}") for r in rows]
    cells.append((f"{name} ({failing.keras_type})", "does not fit (below)", ""))
    widths = tuple(
        max(minimum, *(len(cell[i]) + 2 for cell in cells)) for i, minimum in enumerate(_WIDTHS)
    )
    width = sum(widths)
    lines = [f'Model: "{spec.name}", up to layer {len(rows) + 1}, which does not fit', "_" * width]
    lines += [_row(("Layer (type)", "Output Shape", "Param #"), widths), "=" * width]
    for cell in cells:
        lines += [_row(cell, widths), ""]
    lines[-1] = "=" * width
    return "\n".join(lines)


# Column widths of tf.keras' classic summary (line_length 65, stops at 29, 55 and 65);
# they widen when a layer name or shape would not fit.
_WIDTHS = (29, 26, 10)


def format_summary(summary: ModelSummary, explain: bool = False) -> str:
    cells = [(f"{r.name} ({r.keras_type})", r.keras_shape, f"{r.params:,}") for r in summary.rows]
    widths = tuple(
        max(minimum, *(len(cell[i]) + 2 for cell in cells)) for i, minimum in enumerate(_WIDTHS)
    )
    width = sum(widths)
    lines = [f'Model: "{summary.model_name}"', "_" * width]
    lines.append(_row(("Layer (type)", "Output Shape", "Param #"), widths))
    lines.append("=" * width)
    c, h, w = summary.input_shape
    if explain:
        lines.append(f" input: {h}x{w} pixels, {counted(c, 'channel')}")
        lines.append("")
    for index, (row, cell) in enumerate(zip(summary.rows, cells, strict=True)):
        lines.append(_row(cell, widths))
        if explain:
            lines.append(f"   why: {row.explanation}")
        lines.append("=" * width if index == len(summary.rows) - 1 else "")
    lines.append(f"Total params: {summary.total:,} ({_size(summary.total)})")
    lines.append(f"Trainable params: {summary.trainable:,} ({_size(summary.trainable)})")
    lines.append(
        f"Non-trainable params: {summary.non_trainable:,} ({_size(summary.non_trainable)})"
    )
    lines.append("_" * width)
    if explain:
        lines.append(f"Forward pass: {summary.flops / 1e6:,.2f} MFLOPs per image")
    return "\n".join(lines)


def _row(fields: tuple[str, str, str], widths: tuple[int, ...]) -> str:
    return "".join((" " + text).ljust(w) for text, w in zip(fields, widths, strict=True)).rstrip()


def _size(params: int) -> str:
    """float32 storage, as Keras 3 prints it: 952.29 KB for 243,786 params."""
    size = params * 4.0
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GB"
