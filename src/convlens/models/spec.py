"""A model spec: an ordered list of layer specs, plus parsing from text and files.

Two forms describe the same thing:

* text, for the command line::

      conv(64, 3, relu), maxpool(2), conv(64, 3, relu), maxpool(2),
      flatten, dense(128, relu), dense(10, softmax)

  Positional arguments fill a layer's fields in order, except that a word naming an
  activation sets ``activation`` and ``same``/``valid`` set ``padding``. ``key=value`` sets
  any field. Layer words are the kinds (``conv``), the Keras types (``Conv2D``) or aliases.

* a file (YAML, JSON or TOML), for bigger models::

      name: my-cnn
      input: [28, 28, 1]          # (H, W, C), optional: taken from the data otherwise
      layers:
        - conv: {filters: 64, kernel: 3, activation: relu}
        - maxpool: {size: 2}
        - flatten
        - dense: {units: 10, activation: softmax}

  A layer item may also be a text item such as ``- conv(64, 3, relu)``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convlens import fileio
from convlens.errors import ConvlensError, SpecError, shorten
from convlens.models.edits import edit_layers
from convlens.models.layers import (
    ACTIVATIONS,
    Dense,
    LayerSpec,
    Shape,
    layer_type,
    output_shapes,
)

SPEC_SUFFIXES = (".yaml", ".yml", ".json", ".toml")

# Limits on what a spec may ask of the parser, each refused in one line when crossed.
#: Bytes a spec file may have (the presets are 100-300 bytes as text).
MAX_SPEC_BYTES = 1_000_000
#: Layers a model may have (a ResNet-152 written out layer by layer is about 500).
MAX_LAYERS = 10_000
#: Values a YAML file may expand to, each alias counted at its full size every time it is
#: used (a 400-byte "billion laughs" file expands to billions).
MAX_YAML_VALUES = 100_000
#: How deeply a spec file's lists and mappings may nest (a spec needs 4).
MAX_NESTING = 32


@dataclass(frozen=True)
class ModelSpec:
    """An ordered tuple of layers. ``input_shape`` is (C, H, W), or None to take the data's."""

    layers: tuple[LayerSpec, ...]
    name: str = "custom"
    input_shape: Shape | None = None

    def __post_init__(self) -> None:
        if not self.layers:
            raise SpecError(f"model '{self.name}' has no layers; add at least one dense layer")
        for index, layer in enumerate(self.layers):
            layer.validate(f"layer {index + 1} ({layer.kind})")

    def layer_names(self) -> list[str]:
        """Keras-style unique names: conv2d, max_pooling2d, conv2d_1, ..., dense, dense_1."""
        counts: dict[str, int] = {}
        names: dict[str, None] = {}  # ordered, and a set for the uniqueness check
        for layer in self.layers:
            if layer.name:
                name = layer.name
            else:
                n = counts.get(layer.keras_name, 0)
                counts[layer.keras_name] = n + 1
                name = layer.keras_name if n == 0 else f"{layer.keras_name}_{n}"
            if name in names:
                raise SpecError(f"two layers are named '{name}'; layer names must be unique")
            names[name] = None
        return list(names)

    def shapes(self, input_shape: Shape) -> list[Shape]:
        """The output shape of every layer, in order, for an input of ``input_shape``."""
        return output_shapes(self.layers, input_shape, self.name)

    def check_fits(self, input_shape: Shape, num_classes: int | None = None) -> list[Shape]:
        """:meth:`shapes`, after checking what a classifier needs: a final dense layer
        giving one score per class (``num_classes`` of them, when given), with softmax or
        no activation. What the builder checks, without building anything."""
        return self.check_classifier(self.shapes(input_shape), num_classes)

    def check_classifier(
        self, shapes: Sequence[Shape], num_classes: int | None = None
    ) -> list[Shape]:
        """``shapes`` (every layer's output, from :meth:`shapes`) if the spec ends as a
        classifier must; the checks of :meth:`check_fits` without walking the layers."""
        shapes = list(shapes)
        final = self.layers[-1]
        if len(shapes[-1]) != 1 or not isinstance(final, Dense):
            raise SpecError(
                f"model '{self.name}' must end with a dense layer giving one score per class, "
                f"e.g. dense({num_classes or 10}, softmax)"
            )
        if num_classes is not None and shapes[-1][0] != num_classes:
            raise SpecError(
                f"model '{self.name}' ends with {shapes[-1][0]} outputs but the data has "
                f"{num_classes} classes; make the last layer dense({num_classes}, softmax)"
            )
        if final.activation not in (None, "softmax"):
            raise SpecError(
                f"model '{self.name}': the last dense layer must use softmax (or no "
                f"activation), not {final.activation}"
            )
        return shapes

    def edit(
        self,
        *,
        filters: int | None = None,
        convs: int | None = None,
        dense: int | None = None,
        input_shape: Shape | None = None,
    ) -> ModelSpec:
        """This spec with every conv's ``filters``, ``convs`` conv blocks or every hidden
        dense layer's ``dense`` units changed, renamed ``NAME[filters=32,convs=2]``; the
        spec itself when nothing changes (see :mod:`convlens.models.edits`).

        ``input_shape`` (C, H, W; default the spec's own) lets a repeated conv block drop
        its pooling once the map is too small to pool again.
        """
        layers, name = edit_layers(
            self.layers,
            self.name,
            filters=filters,
            convs=convs,
            dense=dense,
            input_shape=input_shape or self.input_shape,
        )
        return self if layers == self.layers else self.with_layers(layers, name=name)

    def with_layers(self, layers: Iterable[LayerSpec], name: str | None = None) -> ModelSpec:
        return dataclasses.replace(self, layers=tuple(layers), name=name or self.name)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.input_shape is not None:
            c, h, w = self.input_shape
            out["input"] = [h, w, c]
        out["layers"] = [layer.to_dict() for layer in self.layers]
        return out

    def to_text(self) -> str:
        return ", ".join(layer.to_text() for layer in self.layers)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "spec") -> ModelSpec:
        if not isinstance(data, dict) or "layers" not in data:
            raise SpecError(f"{source}: expected a mapping with a 'layers' list")
        raw_layers = data["layers"]
        if isinstance(raw_layers, list) and len(raw_layers) > MAX_LAYERS:
            raise SpecError(
                f"{source}: {len(raw_layers):,} layers, over the {MAX_LAYERS:,} a model may have"
            )
        if isinstance(raw_layers, str):
            layers = parse_layers(raw_layers, source=source)
        elif isinstance(raw_layers, list):
            layers = tuple(
                _layer_from_item(item, f"{source}, layer {i + 1}")
                for i, item in enumerate(raw_layers)
            )
        else:
            raise SpecError(f"{source}: 'layers' must be a list or a text form")
        input_shape = None
        if data.get("input") is not None:
            raw = data["input"]
            if (
                not isinstance(raw, list | tuple)
                or len(raw) not in (2, 3)
                or not all(isinstance(v, int) and v > 0 for v in raw)
            ):
                raise SpecError(f"{source}: 'input' must be [H, W] or [H, W, C], got {shown(raw)}")
            h, w, c = (*raw, 1) if len(raw) == 2 else raw
            input_shape = (c, h, w)
        name = data.get("name") or "custom"
        if not isinstance(name, str | int | float) or len(str(name)) > 200:
            raise SpecError(f"{source}: 'name' must be a short text, not {shown(name)}")
        return cls(layers=layers, name=str(name), input_shape=input_shape)


def parse_layers(text: str, *, source: str = "spec") -> tuple[LayerSpec, ...]:
    """Parse the compact text form into layer specs."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(
            f"{source}: {len(text):,} characters, over the {MAX_SPEC_BYTES:,} a spec may have"
        )
    items = [item.strip() for item in _split_top_level(text, source) if item.strip()]
    if not items:
        raise SpecError(f"{source}: no layers in {shown(text)}")
    if len(items) > MAX_LAYERS:
        raise SpecError(
            f"{source}: {len(items):,} layers, over the {MAX_LAYERS:,} a model may have"
        )
    return tuple(_layer_from_text(item, f"{source}, layer {i + 1}") for i, item in enumerate(items))


def parse_spec(text: str, name: str = "custom") -> ModelSpec:
    return ModelSpec(layers=parse_layers(text, source="model text"), name=name)


def load_spec_file(path: str | Path) -> ModelSpec:
    """Read a YAML, JSON or TOML spec file."""
    path = Path(path)
    try:
        raw = fileio.read_text(path, MAX_SPEC_BYTES)
    except FileNotFoundError:
        raise SpecError(f"spec file {path} does not exist") from None
    except ConvlensError as err:
        raise SpecError(f"spec file {err}") from None
    try:
        if path.suffix == ".json":
            data = json.loads(raw)
        elif path.suffix == ".toml":
            data = tomllib.loads(raw)
        else:
            data = _load_yaml(raw, path)
    except SpecError:
        raise
    except RecursionError:
        raise SpecError(
            f"spec file {path} nests deeper than Python can parse; a spec needs 4 levels"
        ) from None
    except Exception as err:  # each parser has its own error type; all mean "malformed"
        first_line = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise SpecError(
            f"spec file {path} is not valid {path.suffix[1:].upper()}: {first_line}"
        ) from None
    _check_nesting(data, path)
    spec = ModelSpec.from_dict(data, source=str(path))
    if spec.name == "custom":
        spec = dataclasses.replace(spec, name=path.stem)
    return spec


def _load_yaml(raw: str, path: Path) -> Any:
    """``yaml.safe_load`` with an expansion budget: the document's node graph is measured
    (aliases at their full size each time they are used, with memory of what was measured)
    before any Python object is built, so an alias bomb costs its nodes, not its expansion."""
    import yaml

    loader = yaml.SafeLoader(raw)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _yaml_size(node, path, {}, set(), 0)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _yaml_size(node: Any, path: Path, sizes: dict[int, int], open_: set[int], depth: int) -> int:
    """Values ``node`` expands to; refuses past MAX_YAML_VALUES or MAX_NESTING, and an alias
    that contains itself."""
    import yaml

    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        raise SpecError(f"spec file {path}: an alias contains itself; a spec cannot be infinite")
    if depth > MAX_NESTING:
        raise SpecError(f"spec file {path} nests deeper than {MAX_NESTING} levels")
    total = 1
    if isinstance(node, yaml.SequenceNode | yaml.MappingNode):
        open_.add(key)
        children = (
            node.value
            if isinstance(node, yaml.SequenceNode)
            else [part for pair in node.value for part in pair]
        )
        for child in children:
            total += _yaml_size(child, path, sizes, open_, depth + 1)
            if total > MAX_YAML_VALUES:
                raise SpecError(
                    f"spec file {path} expands to more than {MAX_YAML_VALUES:,} values (YAML "
                    "aliases repeat what they name); write the layers out"
                )
        open_.discard(key)
    sizes[key] = total
    return total


def _check_nesting(data: Any, path: Path) -> None:
    """Lists and mappings at most MAX_NESTING deep (JSON and TOML have no aliases, so
    their size is the file's)."""
    level, depth = [data], 0
    while level:
        depth += 1
        if depth > MAX_NESTING + 1:
            raise SpecError(f"spec file {path} nests deeper than {MAX_NESTING} levels")
        nxt: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                nxt.extend(item.values())
            elif isinstance(item, list):
                nxt.extend(item)
        level = nxt


def shown(value: Any, limit: int = 80) -> str:
    """A value quoted in a spec error: text in quotes, anything else as a bounded repr."""
    return f"'{shorten(value, limit)}'" if isinstance(value, str) else shorten(value, limit)


def _split_top_level(text: str, source: str) -> list[str]:
    """Split on commas (or newlines, ';' and '>') that are not inside parentheses."""
    items, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SpecError(f"{source}: unbalanced ')' in {shown(text)}")
        if depth == 0 and char in ",;\n>":
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise SpecError(f"{source}: unclosed '(' in {shown(text)}")
    items.append("".join(current))
    return items


_EXAMPLES = {"conv": "conv(64, 3, relu)", "dense": "dense(128, relu)"}

_SIZE = re.compile(r"^\d+x\d+$")  # a non-square kernel in text form: conv(16, 3x1)

_ITEM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_-]*)\s*(?:\((.*)\))?\s*$", re.DOTALL)


def _layer_from_text(item: str, where: str) -> LayerSpec:
    match = _ITEM.match(item)
    if not match:
        raise SpecError(
            f"{where}: cannot read {shown(item)}; write layers like conv(64, 3, relu) or flatten"
        )
    word, arg_text = match.group(1), match.group(2)
    cls = layer_type(word)
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    for raw_arg in (arg_text or "").split(","):
        raw_arg = raw_arg.strip()
        if not raw_arg:
            continue
        if "=" in raw_arg:
            key, value = (part.strip() for part in raw_arg.split("=", 1))
            keywords[key] = _scalar(value)
        else:
            positional.append(_scalar(raw_arg))
    return _make_layer(cls, positional, keywords, where)


def _layer_from_item(item: Any, where: str) -> LayerSpec:
    if isinstance(item, str):
        return _layer_from_text(item, where)
    if isinstance(item, dict) and len(item) == 1:
        ((word, args),) = item.items()
        cls = layer_type(str(word))
        if args is None:
            return _make_layer(cls, [], {}, where)
        if isinstance(args, dict):
            return _make_layer(cls, [], dict(args), where)
        if isinstance(args, list):
            return _make_layer(cls, list(args), {}, where)
        return _make_layer(cls, [args], {}, where)
    raise SpecError(
        f"{where}: expected a layer such as 'flatten' or {{conv: {{filters: 32}}}}, "
        f"got {shown(item)}"
    )


def _make_layer(
    cls: type[LayerSpec], positional: Sequence[Any], keywords: dict[str, Any], where: str
) -> LayerSpec:
    fields = [f.name for f in dataclasses.fields(cls) if f.name != "name"]
    ordered = [f for f in fields if f not in ("activation", "padding")]
    args: dict[str, Any] = {}
    slot = iter(ordered)
    for value in positional:
        if isinstance(value, str) and value in (*ACTIVATIONS, "none") and "activation" in fields:
            args["activation"] = None if value in ("none", "linear") else value
            continue
        if isinstance(value, str) and value in ("same", "valid") and "padding" in fields:
            args["padding"] = value
            continue
        if isinstance(value, str) and "activation" in fields and not _SIZE.match(value):
            raise SpecError(
                f"{where}: unknown activation '{value}'; use one of {', '.join(ACTIVATIONS)}"
            )
        field = next(slot, None)
        if field is None:
            raise SpecError(
                f"{where}: too many arguments for {cls.kind}: {shown(list(positional))}"
            )
        args[field] = value
    for key, value in keywords.items():
        if key not in fields and key != "name":
            raise SpecError(
                f"{where}: {cls.kind} has no option '{key}'; its options are {', '.join(fields)}"
            )
        if key == "activation" and value in ("none", "linear"):
            value = None
        args[key] = value
    required = [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [name for name in required if name not in args]
    if missing:
        raise SpecError(
            f"{where}: {cls.kind} needs {', '.join(missing)}, e.g. {_EXAMPLES[cls.kind]}"
        )
    return cls(**args)


def _scalar(text: str) -> Any:
    """'64' -> 64, '0.5' -> 0.5, 'true' -> True, 'relu' -> 'relu'."""
    text = text.strip().strip("'\"")
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return lowered
