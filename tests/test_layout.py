"""The package's layout rules, read from the source with ``ast``: no import cycle, the reference
imports no fast path, one place dispatches, no module over 600 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "snn_asr"
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The ``snn_asr`` modules ``path`` imports, at any depth (deferred imports count too).

    ``from a.b import c`` is an edge to ``a.b.c`` when that is a module, else to ``a.b``. The
    parent packages that Python runs first are not edges: they are already being imported.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()

    def longest_known(target: str) -> str | None:
        parts = target.split(".")
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in known:
                return ".".join(parts[:i])
        return None

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [longest_known(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.append(full if full in known else longest_known(base))
        found |= {t for t in targets if t is not None and t != name}
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a list of modules (first == last), or ``None``; depth-first search."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_relative_and_package_imports_are_edges(tmp_path):
    known = {"snn_asr", "snn_asr.x", "snn_asr.x.y", "snn_asr.z"}
    source = tmp_path / "m.py"
    source.write_text("from ..z import q\nimport snn_asr.x.y\n")
    assert imports_of("snn_asr.x.m", source, known) == {"snn_asr.z", "snn_asr.x.y"}


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_reference_imports_no_fast_path_and_nothing_above_it():
    graph = import_graph()
    for name, deps in graph.items():
        if name.startswith(("snn_asr.neurons", "snn_asr.primitives")):
            above = {d for d in deps if not d.startswith(("snn_asr.neurons", "snn_asr.primitives"))}
            assert not above, f"{name} imports {sorted(above)}"


def test_only_dispatch_chooses_an_implementation():
    """The fast-path entry points are called from ``snn_asr.dispatch`` alone (tests and benchmarks aside)."""
    entry_points = {"fused_forward", "EventDrivenRNN"}
    for name, path in modules().items():
        if name.startswith("snn_asr.fastpaths") or name == "snn_asr.dispatch":
            continue
        tree = ast.parse(path.read_text())
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
            alias.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for alias in n.names
        }
        called = sorted(used & entry_points)
        assert not called, f"{name} uses {called}: go through snn_asr.dispatch"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_over_600_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines"
