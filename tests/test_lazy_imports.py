"""Explicit lazy imports (PEP 810, Python 3.15+), on both cores.

A lazy import binds a proxy; the module is imported when the name is first used
(reified), through ``builtins.__import__``: our hook sees it then.  Each test
asserts the state before the first use and after it, edits real files, and
checks what a reload did: the new code runs, the dependency is known once used,
early cutoff holds, and a reload never reifies an import the program has not
used yet.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Project

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 15), reason="lazy imports (PEP 810): Python 3.15+"
)

LIB = "K = {K}\n\n\ndef f():\n    return {F}\n"


@pytest.fixture
def normal_mode() -> Iterator[None]:
    """The process-wide lazy-imports mode and filter, put back after the test."""
    mode = sys.get_lazy_imports()
    found = sys.get_lazy_imports_filter()
    try:
        yield
    finally:
        sys.set_lazy_imports(mode)
        sys.set_lazy_imports_filter(found)


def _use(project: Project, head: str) -> None:
    """A module that imports ``lib`` with ``head`` and uses it only inside functions."""
    project.write("user.py", head + "\n\n\ndef value():\n    return lib.f()\n")


def test_lazy_import_edited_before_its_first_use_loads_the_new_code(
    project: Project, hmr: Any, normal_mode: None
) -> None:
    lib = project.write("lib.py", LIB.format(K=1, F="'v1'"))
    _use(project, "lazy import lib")
    user = importlib.import_module("user")
    assert "lib" not in sys.modules  # not used yet: not imported
    lib.write_text(LIB.format(K=2, F="'v2'"))
    reloaded, _ = hmr.reload_module("user")
    assert reloaded == []  # the importer did not change
    assert "lib" not in sys.modules  # a reload request did not reify it
    assert user.value() == "v2"  # first use: the file as it is now
    assert "user" in hmr.dependents_of("lib")


def test_lazy_import_used_then_edited_is_patched_with_early_cutoff(
    project: Project, hmr: Any, normal_mode: None
) -> None:
    lib = project.write("lib.py", LIB.format(K=1, F="'v1'"))
    _use(project, "lazy import lib")
    user = importlib.import_module("user")
    assert user.value() == "v1"
    held = sys.modules["lib"].f
    assert hmr.dependents_of("lib") == ["user"]
    lib.write_text(LIB.format(K=1, F="'v2'"))
    reloaded, _ = hmr.reload_module("lib")
    assert reloaded == ["lib"]  # a body edit: the importer does not run again
    assert held() == "v2"
    assert user.value() == "v2"


def test_lazy_from_import_binds_the_new_values(
    project: Project, hmr: Any, normal_mode: None
) -> None:
    lib = project.write("lib.py", LIB.format(K=1, F="'v1'"))
    project.write(
        "user.py",
        "lazy from lib import K, f\n\n\ndef both():\n    return K, f()\n",
    )
    user = importlib.import_module("user")
    assert "lib" not in sys.modules
    lib.write_text(LIB.format(K=2, F="'v2'"))  # before the first use
    assert user.both() == (2, "v2")
    assert hmr.dependents_of("lib") == ["user"]
    lib.write_text(LIB.format(K=3, F="'v3'"))  # after it
    reloaded, _ = hmr.reload_module("lib")
    assert reloaded[0] == "lib"
    assert user.both() == (3, "v3")  # the from-binding K follows the edit


def test_lazy_modules_makes_plain_imports_lazy(
    project: Project, hmr: Any, normal_mode: None
) -> None:
    lib = project.write("lib.py", LIB.format(K=1, F="'v1'"))
    _use(project, "__lazy_modules__ = ['lib']\nimport lib")
    user = importlib.import_module("user")
    assert "lib" not in sys.modules
    lib.write_text(LIB.format(K=1, F="'v2'"))
    assert user.value() == "v2"
    lib.write_text(LIB.format(K=1, F="'v3'"))
    assert hmr.reload_module("lib")[0] == ["lib"]
    assert user.value() == "v3"


def test_a_reload_of_the_importer_never_reifies_an_unused_lazy_import(
    project: Project, hmr: Any, normal_mode: None
) -> None:
    project.write("lib.py", LIB.format(K=1, F="'v1'"))
    source = (
        "lazy import lib\nlazy from lib import K\n\nLABEL = {L!r}\n\n\n"
        "def label():\n    return LABEL\n"
    )
    path = project.write("user.py", source.format(L="a"))
    user = importlib.import_module("user")
    label = user.label
    path.write_text(source.format(L="b"))
    reloaded, _ = hmr.reload_module("user")
    assert reloaded == ["user"]
    assert label() == "b"
    assert "lib" not in sys.modules
    hmr.reload_module("user", force=True)  # even run again whole
    assert "lib" not in sys.modules
    assert user.K == 1  # and the proxies still work


def test_the_global_mode_and_the_filter(project: Project, hmr: Any, normal_mode: None) -> None:
    lib = project.write("lib.py", LIB.format(K=1, F="'v1'"))
    project.write("other.py", LIB.format(K=5, F="'o1'"))
    _use(project, "import lib\nimport other")
    seen: list[tuple[str, str]] = []

    def only_lib(importer: str, name: str, fromlist: object) -> bool:
        seen.append((importer, name))
        return name == "lib"

    sys.set_lazy_imports("all")
    sys.set_lazy_imports_filter(only_lib)
    user = importlib.import_module("user")
    assert ("user", "lib") in seen
    assert "lib" not in sys.modules  # lazy: the filter said so
    assert "other" in sys.modules  # eager: the filter said no
    lib.write_text(LIB.format(K=1, F="'v2'"))
    assert user.value() == "v2"
    lib.write_text(LIB.format(K=1, F="'v3'"))
    assert hmr.reload_module("lib")[0] == ["lib"]
    assert user.value() == "v3"
    assert "lib" in hmr.dependencies_of("user")
    assert hmr.tracker.is_tracked("other")  # classified as its loader ran it


def test_an_import_the_filter_makes_eager_is_a_known_dependency(
    project: Project, hmr: Any, normal_mode: None
) -> None:
    """CPython 3.15 runs an import that the filter turns down without calling
    ``builtins.__import__``: the filter is watched instead, and a ``from`` binding of
    such an import follows an edit as any other."""
    other = project.write("other.py", LIB.format(K=5, F="'o1'") + "LONGER = 'a'\n")
    project.write(
        "user.py",
        "import other\nfrom other import K\nfrom other import LONGER\n\n\n"
        "def k():\n    return K, LONGER\n",
    )

    def never(importer: str, name: str, fromlist: object) -> bool:
        return False

    sys.set_lazy_imports("all")
    sys.set_lazy_imports_filter(never)
    assert sys.get_lazy_imports_filter() is never  # the program sees its own filter
    user = importlib.import_module("user")
    assert "other" in sys.modules
    assert hmr.dependencies_of("user") == ["other"]
    assert sorted(hmr.tracker.graph.bound_names("user", "other")) == ["K", "LONGER"]
    other.write_text(LIB.format(K=6, F="'o1'") + "LONGER = 'b'\n")
    reloaded, _ = hmr.reload_module("other")
    assert reloaded == ["other", "user"]  # user bound K and LONGER: they are rebound
    assert user.k() == (6, "b")


SCRIPT = """\
import sys
import lib


def main():
    print("lazy" if "lib" not in sys.modules else "eager", flush=True)
    print("value", lib.f(), flush=True)


main()
"""


@pytest.mark.parametrize(
    "how", [["-X", "lazy_imports=all"], ["env"]], ids=["-X lazy_imports=all", "PYTHON_LAZY_IMPORTS"]
)
def test_the_global_mode_from_the_command_line(project: Project, how: list[str]) -> None:
    """``python -X lazy_imports=all -m muckrack.hmr`` and ``PYTHON_LAZY_IMPORTS=all``:
    the program's imports stay lazy under the CLI, and run the file as it is."""
    project.write("lib.py", LIB.format(K=1, F="'v1'"))
    project.write("main.py", SCRIPT)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    flags: list[str] = []
    if how == ["env"]:
        env["PYTHON_LAZY_IMPORTS"] = "all"
    else:
        flags = how
    done = subprocess.run(
        [sys.executable, *flags, "-m", "muckrack.hmr", "--no-watch", "main.py"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["lazy", "value v1"]
