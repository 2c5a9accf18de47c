"""Fixtures of the pytest-benchmark benchmarks (tests/conftest.py is not used; the cores
come from tests/cores.py, as the tests').

Run with ``pytest benchmarks`` (``--benchmark-disable`` runs each benchmark
once, as a plain test).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from tests.cores import CORE_PARAMS, core_module

import muckrack_hmr
from benchmarks.generate import Info, generate, plan

#: Modules of the generated codebase used by the import and reload benchmarks.
PROJECT_SIZE = 100
#: Nodes of the generated graph used by the graph benchmarks.
GRAPH_SIZE = 5000


@pytest.fixture(params=CORE_PARAMS)
def core(request: pytest.FixtureRequest) -> ModuleType:
    """The core module under test: compiled ``_hmr_core`` or pure ``_core_py``."""
    return core_module(request.param)


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Info:
    """A generated codebase of PROJECT_SIZE modules, written once per session."""
    return generate(tmp_path_factory.mktemp("bench") / "proj", PROJECT_SIZE, seed=0)


@pytest.fixture(scope="session")
def big_plan() -> Info:
    """The layout (not written) of a generated codebase of GRAPH_SIZE modules."""
    return plan(GRAPH_SIZE, seed=0)


def _unload() -> None:
    for name in list(sys.modules):
        if name == "app" or name.startswith("app."):
            del sys.modules[name]


@pytest.fixture
def loaded_app(generated: Info, core: ModuleType) -> Iterator[tuple[Any, Info]]:
    """The generated app imported under HMR (on ``core``); everything undone afterwards."""
    assert generated.root is not None
    root = str(generated.root)
    originals = {name: generated.path_of(name).read_bytes() for name in generated.modules}
    muckrack_hmr.uninstall()
    _unload()
    hmr = muckrack_hmr.install([root], core=core)
    assert type(hmr.tracker).__module__ == core.__name__
    sys.path.insert(0, root)
    importlib.invalidate_caches()
    try:
        for name in generated.top:
            importlib.import_module(name)
        yield hmr, generated
    finally:
        muckrack_hmr.uninstall()
        _unload()
        sys.path.remove(root)
        for name, source in originals.items():
            path = generated.path_of(name)
            if path.read_bytes() != source:
                path.write_bytes(source)
        importlib.invalidate_caches()


@pytest.fixture
def plain_app(generated: Info) -> Iterator[Info]:
    """The generated app imported without HMR."""
    assert generated.root is not None
    root = str(generated.root)
    muckrack_hmr.uninstall()
    _unload()
    sys.path.insert(0, root)
    importlib.invalidate_caches()
    try:
        for name in generated.top:
            importlib.import_module(name)
        yield generated
    finally:
        _unload()
        sys.path.remove(root)
        importlib.invalidate_caches()
