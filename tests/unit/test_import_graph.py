"""The package's imports point one way and form no cycle.

    contract, errors -> config, tables, protocol -> (oracles | pipeline stages | strategies |
    infra | validators) -> (compare, perf, faults, testing) -> (reports, runner, repro, suite)
    -> cli

Every ``import`` of the package counts, at module level or inside a function
(a lazy import is still a dependency). Two walls besides the layers: the
oracle and the pipeline never import each other, and infra knows no business
rule (it imports none of oracles, pipeline, strategies, validators).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pipeline_props

pytestmark = pytest.mark.unit

ROOT = Path(pipeline_props.__file__).parent

#: Layer of each top-level module or subpackage; a module imports only its own layer or lower ones.
LAYERS: dict[str, int] = {
    "contract": 0, "errors": 0,
    "config": 1, "tables": 1, "protocol": 1, "logcapture": 1,
    "oracles": 2, "pipeline": 2, "strategies": 2, "infra": 2, "validators": 2,
    "compare": 3, "perf": 3, "faults": 3, "testing": 3,
    "reports": 4, "runner": 4, "repro": 4, "suite": 4, "scaling": 4,
    "cli": 5, "cli_display": 5, "commands": 5, "__init__": 5,
}
#: (importer, imported) pairs forbidden within a layer.
WALLS = {("oracles", "pipeline"), ("pipeline", "oracles"),
         *(("infra", other) for other in ("oracles", "pipeline", "strategies", "validators"))}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    deps.add(full if full in modules else base)
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_module_has_a_layer() -> None:
    unknown = sorted({_top(m) for m in _graph()} - set(LAYERS))
    assert not unknown, f"add these to LAYERS (and to docs/architecture.md): {unknown}"


def test_imports_point_down_and_keep_the_walls() -> None:
    graph = _graph()
    wrong = []
    for module, deps in sorted(graph.items()):
        for dep in sorted(deps):
            a, b = _top(module), _top(dep)
            if a == b:
                continue
            if LAYERS.get(b, 99) > LAYERS.get(a, -1):
                wrong.append(f"{module} -> {dep} (layer {LAYERS.get(a)} imports layer {LAYERS.get(b)})")
            elif (a, b) in WALLS:
                wrong.append(f"{module} -> {dep} (a wall: {a} never imports {b})")
    assert not wrong, "imports that run up or through a wall:\n  " + "\n  ".join(wrong)


def test_no_import_cycle() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, "import cycles:\n  " + "\n  ".join(" <-> ".join(c) for c in cycles)
