"""The floors run one way: a module imports only from its own floor or the floors below.

::

    errors, fileio, version, notices, provenance, display,  foundations, no convlens
      option_fields, idle_cores, cpu_features, wording,
      background_import
    models, data, byhand                                    things as data (no runs)
    recipe                                                  TrainConfig, plan_training
    run_config, runs, run_card, introspect                  a run folder; looking inside
    plots                                                   figures (of introspection)
    train                                                   the engine and whole runs
    experiments, compare, predict, export, interop,         what users ask of runs
    look, convolution                                       (and the notebook helpers)
    reports                                                 pages about runs
    web, cli                                                the shells
    convlens (the package's lazy namespace), __main__

Where new code goes: on the lowest floor whose names it needs. A helper that a lower
floor wants moves down (``to_float_images`` lives in models, not in evaluation). A new
top-level module or package must be given a floor here, or this test fails. Imports
inside ``if TYPE_CHECKING:`` do not run and are not counted; imports inside functions
are (they run the first time the function does). The web page's JavaScript modules
import each other without a circle (they talk through util.js's bus instead).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import convlens

PACKAGE = Path(convlens.__file__).parent
FOUNDATIONS = ("errors", "fileio", "version", "notices", "provenance", "display")
FLOORS: list[tuple[str, ...]] = [
    (
        *FOUNDATIONS,
        "option_fields",
        "idle_cores",
        "cpu_features",
        "wording",
        "background_import",
    ),
    ("models", "data", "byhand"),
    ("recipe",),
    ("run_config", "runs", "run_card", "introspect"),
    ("plots",),
    ("train",),
    ("experiments", "compare", "predict", "export", "interop", "look", "convolution"),
    ("reports",),
    ("web", "cli"),
    ("convlens", "__main__"),
]
FLOOR = {unit: level for level, units in enumerate(FLOORS) for unit in units}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    """convlens.train.session -> train; convlens -> convlens."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "convlens"


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports() -> dict[str, set[tuple[str, int]]]:
    """module -> {(imported convlens module, line)}, for every module that runs."""
    found: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_lines(tree)
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module == "convlens":
                    for alias in node.names:
                        found[module].add((f"convlens.{alias.name}", node.lineno))
                elif node.module.startswith("convlens."):
                    found[module].add((node.module, node.lineno))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("convlens"):
                        found[module].add((alias.name, node.lineno))
    return found


def test_every_top_level_module_has_a_floor() -> None:
    units = {_unit(_module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert sorted(units - set(FLOOR)) == [], "give the new module a floor in FLOORS"


def test_imports_run_downward_only() -> None:
    upward = []
    for module, targets in imports().items():
        for target, line in targets:
            here, there = _unit(module), _unit(target)
            if FLOOR.get(there, -1) > FLOOR.get(here, -1):
                upward.append(f"{module}:{line} imports {target} (floor {there} is above {here})")
    assert upward == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                group.append(item)
                if item == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_import_circle_between_top_level_modules() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, targets in imports().items():
        for target, _ in targets:
            if _unit(target) != _unit(module):
                graph[_unit(module)].add(_unit(target))
    assert _cycles(graph) == []


def test_no_import_circle_in_the_pages_javascript() -> None:
    static = PACKAGE / "web" / "static"
    pattern = re.compile(r"""^\s*import\b[^'"]*['"]\./([\w.-]+\.js)['"]""", re.M)
    graph = {
        path.name: set(pattern.findall(path.read_text(encoding="utf-8")))
        for path in static.glob("*.js")
    }
    assert graph, "no JavaScript modules found"
    assert _cycles(graph) == []


#: Module pairs that name each other, and why that is allowed: a Run shows itself (its
#: ``__str__`` and notebook card) through run_card, which names Run in type hints only.
KNOWN_PAIRS = [["convlens.run_card", "convlens.runs"]]


def test_no_two_modules_import_each_other() -> None:
    """Within a floor too, and counting imports made for type hints only: a circle there
    is a design one (``ModelSpec.edit`` once imported edits lazily while edits named
    ModelSpec for its types; edits now take the spec's layers as data). A package's
    ``__init__``, which only gathers its modules' names, is left aside."""
    packages = {_module_name(p) for p in PACKAGE.rglob("__init__.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        if module in packages:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module):
                continue
            if node.module == "convlens":
                targets = [f"convlens.{alias.name}" for alias in node.names]
            else:
                targets = [node.module] if node.module.startswith("convlens.") else []
            graph[module].update(t for t in targets if t != module and t not in packages)
    assert _cycles(graph) == KNOWN_PAIRS
