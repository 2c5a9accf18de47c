"""The package's shape, read from its source: no import cycle, and the layers import downwards.

Every import counts, at module level or deferred inside a function (a deferred
import only hides a cycle), except those under ``if TYPE_CHECKING:``, which
never run.  ``from . import name`` depends on the submodule ``name`` when
there is one, else on the package's ``__init__``.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

from muckrack_hmr._core_py import DependencyGraph

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "muckrack_hmr"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    # The compiled core is a submodule too, built from src/_hmr_core.pyx.
    found["muckrack_hmr._hmr_core"] = SRC / "_hmr_core.pyx"
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of the package that ``name`` imports (the runtime ones)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if _is_type_checking(node.test):
                for statement in node.orelse:
                    self.visit(statement)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(alias.name for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level == 0:
                target = node.module or ""
            else:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in modules else target)

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    return {target for target in found if target in modules and target != name}


@functools.cache
def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: _imports(name, path, modules)
        for name, path in modules.items()
        if path.suffix == ".py"
    } | {"muckrack_hmr._hmr_core": set()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles (of more than one module), found by the engine's own graph."""
    found = DependencyGraph()
    for importer, targets in graph.items():
        found.add_module(importer)
        for target in targets:
            found.add_edge(importer, target)
    return sorted(sorted(group) for group in found.topological_order(graph) if len(group) > 1)


def test_the_graph_reader_sees_a_cycle_when_there_is_one() -> None:
    graph = _graph()
    assert "muckrack_hmr.reload.reloader" in graph["muckrack_hmr.api"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_no_import_cycle_in_src() -> None:
    assert _cycles(_graph()) == []


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        # The engine: what changed, what runs again, patching; and its cores.
        (
            ("muckrack_hmr.reload", "muckrack_hmr._core", "muckrack_hmr._core_py"),
            ("muckrack_hmr.watch", "muckrack_hmr.cli", "muckrack_hmr.integrations"),
        ),
        # Settled saves, for every consumer: never the CLI or an integration.
        (("muckrack_hmr.watch",), ("muckrack_hmr.cli", "muckrack_hmr.integrations")),
    ],
)
def test_layers_import_downwards(layer: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    wrong = sorted(
        f"{name} imports {target}"
        for name, targets in _graph().items()
        if name.startswith(layer)
        for target in targets
        if target.startswith(forbidden)
    )
    assert wrong == []
