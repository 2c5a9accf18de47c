"""DependencyGraph, on both cores."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest


def make(core: ModuleType, edges: list[tuple[str, str]]) -> Any:
    graph = core.DependencyGraph()
    for importer, imported in edges:
        graph.add_edge(importer, imported)
    return graph


def test_edges_in_and_out(core: ModuleType) -> None:
    graph = make(core, [("b", "a"), ("c", "a"), ("c", "b")])
    assert graph.dependencies_of("c") == ["a", "b"]
    assert graph.dependents_of("a") == ["b", "c"]
    assert graph.dependencies_of("a") == []
    assert graph.dependents_of("missing") == []
    assert "a" in graph
    assert "zzz" not in graph
    assert len(graph) == 3
    assert graph.modules() == ["b", "a", "c"]


def test_add_edge_reports_new_edges_and_ignores_self_loops(core: ModuleType) -> None:
    graph = core.DependencyGraph()
    assert graph.add_edge("b", "a") is True
    assert graph.add_edge("b", "a") is False
    assert graph.add_edge("a", "a") is False
    assert graph.dependencies_of("a") == []


def test_transitive_dependents_excludes_the_start_even_in_a_cycle(core: ModuleType) -> None:
    graph = make(core, [("b", "a"), ("c", "b"), ("a", "c"), ("d", "c"), ("x", "y")])
    assert graph.transitive_dependents(["a"]) == ["b", "c", "d"]
    assert graph.transitive_dependents(["y"]) == ["x"]
    assert graph.transitive_dependents(["x"]) == []
    assert graph.transitive_dependencies("d") == ["c", "b", "a"]


def test_topological_order_puts_dependencies_first(core: ModuleType) -> None:
    # The diamond: d imports b and c, both import a.
    graph = make(core, [("d", "b"), ("d", "c"), ("b", "a"), ("c", "a")])
    order = [group[0] for group in graph.topological_order(["d", "c", "b", "a"])]
    assert order.index("a") < order.index("b") < order.index("d")
    assert order.index("c") < order.index("d")
    assert sorted(order) == ["a", "b", "c", "d"]


def test_topological_order_collapses_cycles(core: ModuleType) -> None:
    graph = make(core, [("a", "b"), ("b", "a"), ("c", "a"), ("b", "base")])
    groups = graph.topological_order(["c", "a", "b", "base"])
    assert groups == [["base"], ["a", "b"], ["c"]]


def test_topological_order_only_counts_edges_inside_the_set(core: ModuleType) -> None:
    graph = make(core, [("c", "b"), ("b", "a")])
    assert graph.topological_order(["c", "a"]) in ([["c"], ["a"]], [["a"], ["c"]])
    assert graph.topological_order(["unknown", "a"]) == [["unknown"], ["a"]]


def test_deep_chain_has_no_recursion_limit(core: ModuleType) -> None:
    chain = [(f"m{i + 1}", f"m{i}") for i in range(5000)]
    graph = make(core, chain)
    groups = graph.topological_order([f"m{i}" for i in range(5001)])
    assert [group[0] for group in groups] == [f"m{i}" for i in range(5001)]
    assert len(graph.transitive_dependents(["m0"])) == 5000


def test_clear_and_restore_dependencies(core: ModuleType) -> None:
    graph = make(core, [("b", "a"), ("b", "c")])
    graph.add_binding("b", "a", "f")
    saved = graph.clear_dependencies("b")
    assert graph.dependencies_of("b") == []
    assert graph.dependents_of("a") == []
    assert graph.bound_names("b", "a") == []
    graph.add_edge("b", "new")
    graph.restore_dependencies("b", saved)
    assert graph.dependencies_of("b") == ["a", "c"]
    assert graph.dependents_of("new") == []
    assert graph.bound_names("b", "a") == ["f"]


def test_bindings(core: ModuleType) -> None:
    graph = core.DependencyGraph()
    graph.add_binding("b", "a", "f")
    graph.add_binding("b", "a", "g")
    graph.add_binding("b", "a", "f")
    assert graph.bound_names("b", "a") == ["f", "g"]
    assert graph.bound_names("b", "zzz") == []


def test_binders_are_the_importers_that_bound_a_name(core: ModuleType) -> None:
    graph = core.DependencyGraph()
    for importer, names in (("b", "fg"), ("c", "h"), ("d", "*"), ("e", "")):
        graph.add_edge(importer, "a")
        for name in names:
            graph.add_binding(importer, "a", name)
    graph.add_binding("c", "other", "f")  # f bound from another module
    assert graph.binders("a", ["f"]) == ["b", "d"]
    assert graph.binders("a", {"g", "h"}) == ["b", "c", "d"]
    assert graph.binders("a", []) == ["d"]  # a star import takes every name
    assert graph.binders("zzz", ["f"]) == []
    graph.clear_dependencies("b")
    assert graph.binders("a", ["f"]) == ["d"]


def test_binders_follow_every_binding_change_after_a_question(core: ModuleType) -> None:
    # A question about names nobody bound is answered from what is known of
    # the module: every later change to bindings or edges must count.
    graph = core.DependencyGraph()
    graph.add_edge("b", "a")
    graph.add_binding("b", "a", "f")
    assert graph.binders("a", ["LIMIT"]) == []
    graph.add_binding("b", "a", "LIMIT")
    assert graph.binders("a", ["LIMIT"]) == ["b"]
    saved = graph.clear_dependencies("b")
    assert graph.binders("a", ["LIMIT"]) == []
    graph.restore_dependencies("b", saved)
    assert graph.binders("a", ["LIMIT"]) == ["b"]
    graph.add_edge("c", "a")
    graph.add_binding("c", "a", "*")
    assert graph.binders("a", ["NEW"]) == ["c"]
    graph.remove_module("c")
    assert graph.binders("a", ["NEW"]) == []
    graph.remove_module("b")
    assert graph.binders("a", ["LIMIT"]) == []


def test_remove_module(core: ModuleType) -> None:
    graph = make(core, [("b", "a"), ("c", "b")])
    graph.add_binding("c", "b", "x")
    graph.remove_module("b")
    assert "b" not in graph
    assert graph.dependents_of("a") == []
    assert graph.dependencies_of("c") == []
    assert graph.bound_names("c", "b") == []
    graph.add_edge("b", "a")  # comes back as a fresh node
    assert graph.dependents_of("a") == ["b"]


@pytest.mark.parametrize(
    ("name", "package", "level", "expected"),
    [
        ("x", "pkg", 1, "pkg.x"),
        ("", "pkg.sub", 1, "pkg.sub"),
        ("y", "pkg.sub", 2, "pkg.y"),
        ("", "pkg.sub", 2, "pkg"),
        ("z", "a.b.c.d", 3, "a.b.z"),
        ("", "a.b.c.d", 4, "a"),
    ],
)
def test_resolve_relative(
    core: ModuleType, name: str, package: str, level: int, expected: str
) -> None:
    assert core.resolve_relative(name, package, level) == expected


def test_resolve_relative_errors(core: ModuleType) -> None:
    with pytest.raises(ImportError, match="no known parent package"):
        core.resolve_relative("x", "", 1)
    with pytest.raises(ImportError, match="beyond top-level package"):
        core.resolve_relative("x", "pkg", 3)
    with pytest.raises(ImportError, match="beyond top-level package"):
        core.resolve_relative("x", "a.b.c", 4)


def test_the_open_audit_hook_sees_data_files_only(core: ModuleType, tmp_path: Any) -> None:
    """The data-file hook's events: every ``open`` but a module's source or bytecode
    (the compiled core filters the process's other events in C: a Python hook took
    5% of a 1,000-module app's start-up); what the listener raises, the open raises."""
    import os

    seen: list[object] = []
    active = [True]

    class Refused(Exception):
        pass

    def listener(args: tuple[object, ...]) -> None:
        if not active[0]:
            return  # hooks stay for the process's life: inert after this test
        path = args[0]
        if isinstance(path, str) and path.endswith(".refuse"):
            raise Refused(path)
        seen.append(path)

    data = tmp_path / "table.json"
    data.write_text("{}")
    module = tmp_path / "mod.py"
    module.write_text("")
    core.add_open_audit_hook(listener)
    try:
        with open(data) as handle:
            handle.read()
        with open(module) as handle:
            handle.read()
        os.close(os.open(str(module) + "c", os.O_RDONLY | os.O_CREAT))
        with open(os.fsencode(data), "rb") as handle:
            handle.read()
        with pytest.raises(Refused):
            open(tmp_path / "x.refuse", "w")  # noqa: SIM115
    finally:
        active[0] = False
    assert seen == [str(data), os.fsencode(data)]
