"""pytest-benchmark benchmarks of the hot paths, on both cores.

``pytest benchmarks`` measures; ``pytest benchmarks --benchmark-disable`` runs
each benchmark once and checks its result, as a plain test.
"""

from __future__ import annotations

import builtins
import json
import sys
from types import ModuleType
from typing import Any

import pytest

from benchmarks.generate import Info, edit_marker

# Taken when this file is imported, before any fixture installs HMR.
ORIGINAL_IMPORT = builtins.__import__


def repeated(benchmark: Any, func: Any) -> Any:
    """Same rounds and iterations for the plain and hooked import benchmarks, so that
    the timer's own cost is spread alike over both."""
    return benchmark.pedantic(func, iterations=1000, rounds=200, warmup_rounds=5)


def test_import_plain_repeated_import(benchmark: Any, plain_app: Info) -> None:
    """Baseline: a repeated lazy ``import json`` without HMR."""
    lazy_json = sys.modules[plain_app.leaf].lazy_json
    assert repeated(benchmark, lazy_json) is json


def test_import_hook_repeated_import(benchmark: Any, loaded_app: tuple[Any, Info]) -> None:
    """The import hook on a repeated lazy ``import json`` made by a tracked module."""
    hmr, info = loaded_app
    assert hmr.tracker.is_tracked(info.leaf)
    assert builtins.__import__ is not ORIGINAL_IMPORT  # the hook is installed
    lazy_json = sys.modules[info.leaf].lazy_json
    assert repeated(benchmark, lazy_json) is json
    # json is not project code: the leaf's edges are still exactly its imports.
    deps = hmr.dependencies_of(info.leaf)
    assert "json" not in deps
    assert sorted(dep for dep in deps if dep in info.specs) == sorted(info.deps[info.leaf])


@pytest.mark.parametrize("target", ["mid", "core"])
def test_graph_dependents_and_order(
    benchmark: Any, core: ModuleType, big_plan: Info, target: str
) -> None:
    """``transitive_dependents`` then ``topological_order``, as a reload does them."""
    graph = core.DependencyGraph()
    for importer, deps in big_plan.deps.items():
        graph.add_module(importer)
        for dep in deps:
            graph.add_edge(importer, dep)
    assert len(graph) == big_plan.n_modules
    name = big_plan.mid if target == "mid" else big_plan.core

    def query() -> tuple[list[str], list[list[str]]]:
        dependents = graph.transitive_dependents([name])
        return dependents, graph.topological_order([name, *dependents])

    dependents, groups = benchmark(query)
    assert set(dependents) == set(big_plan.transitive_dependents(name))
    assert all(len(group) == 1 for group in groups)  # the generated graph has no cycle
    order = [group[0] for group in groups]
    assert order[0] == name
    assert sorted(order) == sorted([name, *dependents])
    assert big_plan.order_errors(order) == []


def test_reload_leaf(benchmark: Any, loaded_app: tuple[Any, Info]) -> None:
    """``reload_module`` of a leaf module after an edit of a function body."""
    hmr, info = loaded_app
    path = info.path_of(info.leaf)
    tags: list[str] = []

    def edit() -> None:
        tags.append(f"edit-{len(tags)}")
        edit_marker(path, tags[-1])

    def reload() -> tuple[list[str], float]:
        return hmr.reload_module(info.leaf)  # type: ignore[no-any-return]

    names, ms = benchmark.pedantic(reload, setup=edit, rounds=50, warmup_rounds=2)
    assert names == [info.leaf]
    assert ms > 0
    assert sys.modules[info.leaf].marker() == tags[-1]
