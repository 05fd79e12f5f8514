"""The package's import graph: packages import only those below them, and no module imports itself round a circle."""

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "toponets_exp"
# Each package (or top-level module) of toponets_exp by layer: a module may import its own package and lower layers.
LAYERS = [
    {"errors"},
    {"checks", "io", "console", "resolvers", "trainer_config", "restricted_pickle"},
    {"models", "data", "sweep", "search"},
    {"topo", "lit", "resume", "loggers"},
    {"brain"},
    {"evaluation", "sweep_report"},
    {"build", "summary"},
    {"tasks"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Every toponets_exp module → the toponets_exp modules it imports (anywhere in it, TYPE_CHECKING included)."""
    graph: dict[str, set[str]] = defaultdict(set)
    names = {module_name(p) for p in PACKAGE.rglob("*.py")}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("toponets_exp"):
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in names else node.module
                           for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("toponets_exp")]
            graph[module_name(path)].update(t for t in targets if t in names)
    return graph


def top(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def test_every_package_has_a_layer():
    assert {top(m) for m in imports()} - {"toponets_exp"} <= set(RANK)


def test_no_upward_or_sideways_import():
    wrong = sorted(f"{a} -> {b}" for a, targets in imports().items() for b in targets  # the root's init aside
                   if "." in a and "." in b and top(a) != top(b) and RANK[top(b)] >= RANK[top(a)])
    assert not wrong, wrong


def test_no_import_circle():
    graph, state, path = imports(), {}, []

    def visit(module: str) -> None:
        state[module] = "open"
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                raise AssertionError("import circle: " + " -> ".join(path[path.index(target):] + [target]))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
