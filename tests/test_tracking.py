"""Import tracking: which edges each import form records, on both cores."""

from __future__ import annotations

import builtins
import gc
import importlib
import importlib.util
import marshal
import os
import py_compile
import sys
import threading
import weakref
from pathlib import Path
from typing import Any

import pytest

import muckrack_hmr
from tests.conftest import Project


def deps(hmr: Any, name: str) -> list[str]:
    return hmr.dependencies_of(name)


def test_install_and_uninstall_restore_the_originals_exactly(project: Project, core: Any) -> None:
    muckrack_hmr.uninstall()
    original_import = builtins.__import__
    original_import_module = importlib.import_module
    assert not hasattr(builtins, "__hmr__")
    hmr = muckrack_hmr.install([project.root], core=core)
    assert builtins.__import__ is not original_import
    assert importlib.import_module is not original_import_module
    assert builtins.__hmr__ is hmr  # type: ignore[attr-defined]
    assert muckrack_hmr.active() is hmr
    assert muckrack_hmr.install([project.root], core=core) is hmr
    muckrack_hmr.uninstall()
    assert builtins.__import__ is original_import
    assert importlib.import_module is original_import_module
    assert not hasattr(builtins, "__hmr__")
    assert muckrack_hmr.active() is None


def test_dotted_import_records_the_module_and_its_parents(project: Project, hmr: Any) -> None:
    project.write("a/__init__.py", "")
    project.write("a/b/__init__.py", "")
    project.write("a/b/c.py", "X = 1")
    project.write("user.py", "import a.b.c\nimport a.b.c as abc\n")
    assert deps(hmr, "user") == []
    importlib.import_module("user")
    assert deps(hmr, "user") == ["a", "a.b", "a.b.c"]
    assert hmr.dependents_of("a.b.c") == ["user"]


def test_import_as_records_the_real_name(project: Project, hmr: Any) -> None:
    project.write("target.py", "X = 1")
    project.write("user.py", "import target as renamed\n")
    importlib.import_module("user")
    assert deps(hmr, "user") == ["target"]


def test_from_package_import_submodule_records_the_submodule(project: Project, hmr: Any) -> None:
    project.write("pkg/__init__.py", "")
    project.write("pkg/sub.py", "X = 1")
    project.write("user.py", "from pkg import sub\n")
    importlib.import_module("user")
    assert deps(hmr, "user") == ["pkg", "pkg.sub"]
    # ``sub`` is a module, not a name bound from pkg's namespace.
    assert hmr.graph.bound_names("user", "pkg") == []


def test_relative_imports_resolve_against_the_package(project: Project, hmr: Any) -> None:
    project.write("pkg/__init__.py", "from . import base\n")
    project.write("pkg/base.py", "VALUE = 1\ndef helper(): return 1\n")
    project.write("pkg/deep/__init__.py", "")
    project.write("pkg/deep/sibling.py", "Y = 2")
    project.write(
        "pkg/deep/leaf.py",
        "from . import sibling\nfrom ..base import VALUE, helper\nfrom .. import base\n",
    )
    importlib.import_module("pkg.deep.leaf")
    assert deps(hmr, "pkg") == ["pkg.base"]
    assert deps(hmr, "pkg.deep.leaf") == ["pkg.deep", "pkg.deep.sibling", "pkg.base", "pkg"]
    assert hmr.graph.bound_names("pkg.deep.leaf", "pkg.base") == ["VALUE", "helper"]


def test_import_module_absolute_and_relative(project: Project, hmr: Any) -> None:
    project.write("pkg/__init__.py", "")
    project.write("pkg/plugin.py", "X = 1")
    project.write("other.py", "X = 1")
    project.write(
        "pkg/loader.py",
        "import importlib\n"
        "importlib.import_module('other')\n"
        "importlib.import_module('.plugin', package='pkg')\n",
    )
    importlib.import_module("pkg.loader")
    assert deps(hmr, "pkg.loader") == ["other", "pkg.plugin"]


def test_explicit_dunder_import_is_credited_to_the_caller(project: Project, hmr: Any) -> None:
    project.write("target.py", "X = 1")
    project.write("caller.py", "mod = __import__('target')\n")
    importlib.import_module("caller")
    assert deps(hmr, "caller") == ["target"]


def test_lazy_import_is_recorded_when_it_runs(project: Project, hmr: Any) -> None:
    project.write("late.py", "X = 1")
    project.write(
        "user.py",
        "def later():\n    import late\n    return late.X\n",
    )
    user = importlib.import_module("user")
    assert deps(hmr, "user") == []
    assert user.later() == 1
    assert deps(hmr, "user") == ["late"]
    for _ in range(3):  # the repeated statement is recorded once
        user.later()
    assert deps(hmr, "user") == ["late"]


def test_statements_of_imported_modules_are_trimmed_and_recorded_again(
    project: Project, hmr: Any
) -> None:
    project.write("late.py", "X = 1")
    project.write("other.py", "Y = 2")
    project.write(
        "user.py",
        """\
import other
def later():
    import late
    from other import Y
    import other
    return late.X + Y
""",
    )
    user = importlib.import_module("user")
    assert user.later() == 3
    assert deps(hmr, "user") == ["other", "late"]
    assert hmr.tracker.trim_statements() == 2  # "other" (two statements) and "late"
    assert hmr.tracker.trim_statements() == 0
    # Trimming leaves the graph alone ...
    assert deps(hmr, "user") == ["other", "late"]
    # ... and a statement that runs again is recorded again.
    hmr.graph.clear_dependencies("user")
    assert user.later() == 3
    assert deps(hmr, "user") == ["late", "other"]
    assert hmr.graph.bound_names("user", "other") == ["Y"]
    for _ in range(3):
        assert user.later() == 3
    assert deps(hmr, "user") == ["late", "other"]


def test_a_name_imported_by_several_statements_is_recorded_once_each_untracked_by_gc(
    project: Project, hmr: Any
) -> None:
    """``import pkg.mod``, ``from . import mod`` and ``import_module("pkg.mod")`` name one
    module three ways: the record keeps each statement once (a repeat takes the fast
    path), as a tuple the garbage collector stops walking after its first look (at
    5,000 modules, 23,000 lists it walked in every collection while they imported)."""
    project.write("pkg/__init__.py", "")
    project.write("pkg/mod.py", "X = 1\n")
    project.write(
        "pkg/user.py",
        """\
import importlib
def again():
    from . import mod
    from .mod import X
    importlib.import_module("pkg.mod")
    importlib.import_module(".mod", "pkg")
    return X
""",
    )
    user = importlib.import_module("pkg.user")
    for _ in range(3):
        assert user.again() == 1
    assert "pkg.mod" in deps(hmr, "pkg.user")
    record = hmr.tracker.statements("pkg.user")
    for _ in range(3):  # a tuple is let go once the tuples inside it were
        gc.collect()
    for name, statements in record.items():
        assert not gc.is_tracked(statements), (name, statements)
    several = [statements for statements in record.values() if type(statements) is tuple]
    assert several, record
    # Each statement once, however often it ran: (marker, level, fromlist or package, ...).
    pairs = [tuple(s[at : at + 2]) for s in several for at in range(1, len(s), 2)]
    assert len(pairs) == len(set(pairs)), record


def test_the_watchers_idle_steps_trim_the_record_once_modules_were_imported(
    project: Project, hmr: Any
) -> None:
    """Sources are taken at import, so keeping them adds none: the record of import
    statements must still be dropped once new modules have finished importing."""
    project.write("other.py", "Y = 2")
    project.write("user.py", "import other\nfrom other import Y\n")
    importlib.import_module("user")
    assert hmr.reloader.keep_sources() >= 0  # what the watcher does when idle
    assert hmr.tracker.trim_statements() == 0  # already trimmed
    project.write("late.py", "import other\n")
    importlib.import_module("late")
    assert hmr.remember_sources() == 0  # nothing to add: taken at import ...
    assert hmr.tracker.trim_statements() == 0  # ... and "late"'s statement went too


def test_imports_are_recorded_in_the_graph_when_it_is_read(project: Project, hmr: Any) -> None:
    """Start-up pays a list append per import statement: the edges and bindings are
    worked out when the graph is first read (or the program rests), with the answers
    they had at import."""
    project.write("pkg/__init__.py", "")
    project.write("pkg/sub.py", "Z = 3\n")
    project.write("pkg/rel.py", "from . import sub\nfrom .sub import Z\n")
    project.write("other.py", "Y = 2\n")
    project.write(
        "user.py",
        "import importlib\nimport other\nfrom other import Y\nimport pkg.rel\n"
        "dyn = importlib.import_module('.sub', 'pkg')\n",
    )
    graph = hmr.tracker.graph
    importlib.import_module("user")
    assert graph.pending >= 6  # nothing recorded yet
    assert sorted(deps(hmr, "user")) == ["other", "pkg", "pkg.rel", "pkg.sub"]
    assert graph.pending == 0  # the read recorded everything first
    assert deps(hmr, "pkg.rel") == ["pkg", "pkg.sub"]
    assert graph.bound_names("user", "other") == ["Y"]
    assert graph.bound_names("pkg.rel", "pkg.sub") == ["Z"]
    assert graph.bound_names("pkg.rel", "pkg") == []  # ``sub`` is the submodule
    assert hmr.tracker.apply_pending() == 0


def test_pending_imports_are_recorded_oldest_first_in_steps(project: Project, hmr: Any) -> None:
    project.write("a.py", "X = 1\n")
    project.write("b.py", "import a\n")
    project.write("c.py", "import b\nfrom a import X\n")
    importlib.import_module("c")
    tracker = hmr.tracker
    waiting = tracker.graph.pending
    assert waiting == 3
    assert tracker.apply_pending(limit=1) == 1
    assert tracker.graph.pending == 2
    assert tracker.apply_pending(limit=5) == 2
    assert tracker.apply_pending() == 0
    assert deps(hmr, "b") == ["a"]
    assert deps(hmr, "c") == ["b", "a"]


def test_a_module_getattr_is_not_run_to_record_an_import(project: Project, hmr: Any) -> None:
    """Recording runs later, under the tracker's lock, maybe on the watcher's thread: it
    reads a package's namespace and never calls its ``__getattr__`` (PEP 562)."""
    project.write(
        "lazy/__init__.py",
        # The submodule is loaded, then its attribute dropped: ``from lazy import
        # part`` finds it in sys.modules, and a getattr would reach __getattr__.
        "from . import part\ndel part\nCALLS = []\n\ndef __getattr__(name):\n"
        "    CALLS.append(name)\n    raise AttributeError(name)\n",
    )
    project.write("lazy/part.py", "P = 1\n")
    project.write("user.py", "from lazy import part\nfrom lazy import CALLS\n")
    user = importlib.import_module("user")
    assert user.part.P == 1
    calls_at_import = list(user.CALLS)
    assert hmr.tracker.graph.pending > 0
    assert "lazy" in deps(hmr, "user")
    assert calls_at_import == user.CALLS


def test_a_module_still_importing_keeps_its_statements(project: Project, hmr: Any) -> None:
    project.write("other.py", "Y = 2")
    project.write(
        "busy.py",
        "import builtins\ndef load():\n    import other\n    from other import Y\n"
        "load()\nTRIMMED = builtins.__hmr__.tracker.trim_statements()\n",
    )
    busy = importlib.import_module("busy")
    assert busy.TRIMMED == 0  # busy was still running its top level
    assert hmr.tracker.trim_statements() == 1  # "other" (two statements in load)


def test_top_level_statements_are_recorded_in_the_graph_and_not_remembered(
    project: Project, hmr: Any
) -> None:
    """A module's top-level import statements run once (a reload forgets them first):
    they go to the graph without a record of their own for a next run, which at
    start-up cost a lock and an object per statement and kept each ``from``
    statement's names alive after the module's code was gone.  One that a top-level
    loop runs again is recorded again, and the graph takes it once."""
    project.write("pkg/__init__.py", "")
    project.write("pkg/sub.py", "Z = 3\n")
    project.write("other.py", "Y = 2\nW = 4\n")
    project.write(
        "user.py",
        "import other\nfrom other import Y, W\nfrom pkg import sub\n"
        "for _ in range(3):\n    from pkg.sub import Z\n"
        "class C:\n    from other import Y as inner\n",
    )
    user = importlib.import_module("user")
    assert (user.Y, user.W, user.Z, user.C.inner) == (2, 4, 3, 2)
    # Only the class body's statement (its namespace is not the module's) is kept.
    assert list(hmr.tracker.statements("user")) == ["other"]
    assert sorted(deps(hmr, "user")) == ["other", "pkg", "pkg.sub"]
    assert hmr.graph.bound_names("user", "other") == ["Y", "W"]
    assert hmr.graph.bound_names("user", "pkg.sub") == ["Z"]  # three runs, one binding
    assert hmr.graph.bound_names("user", "pkg") == []  # ``sub`` is the submodule


def test_a_module_is_a_node_of_the_graph_once_it_is_read_and_costs_no_lists_before(
    project: Project, hmr: Any
) -> None:
    """A node is two lists (its edges either way): made at each module's import, they
    were 10,000 objects at 5,000 modules that the garbage collector walked in every
    collection of the start-up (one full collection more), empty until the imports are
    recorded.  The modules wait, in the order they were seen, until the graph is read."""
    for index in range(200):
        project.write(f"m{index}.py", "X = 1\n")
    project.write("every.py", "".join(f"import m{index}\n" for index in range(200)))
    gc.collect()
    before = sum(type(item) is list for item in gc.get_objects())
    importlib.import_module("every")
    gc.collect()
    made = sum(type(item) is list for item in gc.get_objects()) - before
    # The import system makes one a module (its ModuleSpec's); a node made at each
    # import made two more: 600 in all.
    assert made < 260, made
    modules = hmr.graph.modules()
    assert modules.index("every") < modules.index("m0") < modules.index("m199")
    assert deps(hmr, "every") == [f"m{index}" for index in range(200)]


def test_an_import_in_a_function_takes_the_fast_path_from_its_second_run(
    project: Project, hmr: Any
) -> None:
    """A module whose top level remembered nothing shares one empty record; its first
    import in a function gets a record of its own, and the compiled core's cache of
    records by namespace must not keep answering with the shared one (each run would
    then wait in the graph's list again)."""
    project.write("other.py", "Y = 2\n")
    project.write("user.py", "import other\ndef get():\n    from other import Y\n    return Y\n")
    user = importlib.import_module("user")
    graph = hmr.tracker.graph
    hmr.tracker.apply_pending()
    assert graph.pending == 0
    assert [user.get() for _ in range(500)] == [2] * 500
    assert graph.pending == 1  # the first run only
    assert list(hmr.tracker.statements("user")) == ["other"]


def test_a_top_level_loop_of_imports_keeps_the_waiting_list_bounded(
    project: Project, hmr: Any
) -> None:
    """Top-level statements are not remembered, so a loop at a module's top level runs
    the slow path each time: past a limit, the importing thread records what waits
    itself, and the list never grows without end in a program that never rests."""
    project.write("other.py", "Y = 2\n")
    project.write("loop.py", "for _ in range(70_000):\n    from other import Y\n")
    importlib.import_module("loop")
    graph = hmr.tracker.graph
    assert graph.pending <= 65_536
    assert hmr.graph.bound_names("loop", "other") == ["Y"]


def test_from_import_names_are_recorded(project: Project, hmr: Any) -> None:
    project.write("a.py", "def f(): pass\ndef g(): pass\nX = 1\n")
    project.write("user.py", "from a import f, X as renamed\n")
    importlib.import_module("user")
    assert hmr.graph.bound_names("user", "a") == ["f", "X"]


def test_only_project_modules_are_tracked(project: Project, hmr: Any, tmp_path: Any) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "foreign_mod.py").write_text("X = 1\n")
    sys.path.insert(0, str(outside))
    try:
        project.write(
            "user.py",
            "import json, collections.abc, _thread, math\nimport pytest\nimport foreign_mod\n",
        )
        importlib.import_module("user")
        assert deps(hmr, "user") == []
        assert hmr.tracked_modules() == ["user"]
        assert not hmr.tracker.is_tracked("json")
        assert not hmr.tracker.is_tracked("pytest")
        assert not hmr.tracker.is_tracked("foreign_mod")
    finally:
        sys.path.remove(str(outside))
        sys.modules.pop("foreign_mod", None)


def test_each_module_gets_its_files_lstat_as_baseline_and_links_lead_to_their_target(
    project: Project, hmr: Any, tmp_path: Any
) -> None:
    # The first module of a folder is judged by the project filter, the next
    # ones by the compiled core itself: both must record the same baselines.
    for index in range(4):
        project.write(f"pkg/m{index}.py", "X = 1\n")
    project.write("pkg/__init__.py", "")
    project.write("pkg/target.py", "Y = 2\n")
    (project.root / "pkg" / "link.py").symlink_to(project.root / "pkg" / "target.py")
    outside = tmp_path / "outside.py"
    outside.write_text("Z = 3\n")
    (project.root / "pkg" / "away.py").symlink_to(outside)
    project.write(
        "user.py",
        "import pkg.m0, pkg.m1, pkg.m2, pkg.m3, pkg.link, pkg.away\n",
    )
    importlib.import_module("user")
    loaded = hmr.project.loaded
    folder = os.path.realpath(project.root / "pkg")
    for index in range(4):
        path = os.path.join(folder, f"m{index}.py")
        status = os.lstat(path)
        assert loaded[path] == (f"pkg.m{index}", (status.st_mtime_ns, status.st_size))
    target = os.path.join(folder, "target.py")
    status = os.stat(target)
    assert loaded[target] == ("pkg.link", (status.st_mtime_ns, status.st_size))
    assert os.path.join(folder, "link.py") not in loaded
    assert hmr.tracker.is_tracked("pkg.link")
    assert not hmr.tracker.is_tracked("pkg.away")  # a link out of the project
    assert str(outside) not in loaded


def test_a_virtualenv_inside_the_project_is_not_project_code(project: Project, core: Any) -> None:
    # Make the project root the folder that holds this interpreter's
    # site-packages: its modules must still count as third-party.
    site_packages = next(p for p in sys.path if p.endswith("site-packages"))
    filter_ = muckrack_hmr.tracking.ProjectFilter([site_packages + "/.."])
    assert not filter_.contains_file(pytest.__file__)
    assert filter_.contains_file(str(project.root / "x.py")) is False
    assert muckrack_hmr.tracking.ProjectFilter([project.root]).contains_file(
        str(project.root / "x.py")
    )


def test_reexecution_replaces_outgoing_edges(project: Project, hmr: Any) -> None:
    project.write("one.py", "X = 1")
    project.write("two.py", "X = 2")
    project.write("user.py", "import one\nimport two\n")
    importlib.import_module("user")
    assert deps(hmr, "user") == ["one", "two"]
    project.write("user.py", "import two\n")
    reloaded, _ = hmr.reload_module("user")
    assert reloaded == ["user"]
    assert deps(hmr, "user") == ["two"]
    assert hmr.dependents_of("one") == []


def test_transitive_queries(project: Project, hmr: Any) -> None:
    project.write("base.py", "X = 1")
    project.write("mid.py", "import base")
    project.write("top.py", "import mid")
    importlib.import_module("top")
    assert hmr.dependents_of("base") == ["mid"]
    assert hmr.dependents_of("base", transitive=True) == ["mid", "top"]
    assert hmr.dependencies_of("top", transitive=True) == ["mid", "base"]


def test_imports_on_other_threads_during_reloads(project: Project, hmr: Any) -> None:
    """Threads importing while reloads run: no corruption, no deadlock."""
    count = 40
    for i in range(count):
        project.write(f"lazy{i}.py", f"import base\nX = {i}\n")
    project.write("base.py", "VALUE = 0\n")
    project.write(
        "worker.py",
        "import importlib\n"
        "def load(i):\n"
        "    return importlib.import_module(f'lazy{i}').X\n"
        "def lazy_json():\n"
        "    import json\n"
        "    return json\n",
    )
    worker = importlib.import_module("worker")
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def run() -> None:
        try:
            start.wait(timeout=10)
            for i in range(count):
                assert worker.load(i) == i
                worker.lazy_json()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    start.wait(timeout=10)
    for _ in range(20):
        hmr.reload_module("base")
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive(), "deadlock: an importing thread never finished"
    assert errors == []
    assert sorted(hmr.dependencies_of("worker")) == sorted(f"lazy{i}" for i in range(count))
    for i in range(count):
        assert hmr.dependencies_of(f"lazy{i}") == ["base"]


def test_a_module_read_at_import_is_classified_without_a_second_look_at_its_file(
    project: Project, hmr: Any, core: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loader's read opened the file without following a link: its figures are
    the baseline, and the classifier needs no lstat of its own."""
    project.write("plain.py", "X = 1\n")
    project.write("target.py", "Y = 2\n")
    (project.root / "link.py").symlink_to(project.root / "target.py")
    looked: list[str] = []
    real_lstat = os.lstat

    def counting_lstat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        looked.append(os.fspath(path))
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", counting_lstat)
    importlib.import_module("plain")
    importlib.import_module("link")
    root = os.path.realpath(project.root)
    plain = os.path.join(root, "plain.py")
    status = real_lstat(plain)
    assert hmr.project.loaded[plain] == ("plain", (status.st_mtime_ns, status.st_size))
    assert plain not in looked
    # A symlinked module is still looked at, and recorded under its real path.
    target = os.path.join(root, "target.py")
    status = os.stat(target)
    assert hmr.project.loaded[target] == ("link", (status.st_mtime_ns, status.st_size))
    assert hmr.tracker.is_tracked("plain")
    assert hmr.tracker.is_tracked("link")
    if core.__name__.endswith("_core_py"):  # the compiled core's lstat is its own C call
        assert os.path.join(root, "link.py") in looked


def test_a_valid_bytecode_cache_is_read_whole_and_used_as_python_uses_it(
    project: Project, hmr: Any
) -> None:
    """The cache of a project module is read by the capture's own read: all of it,
    whatever its size, and trusted exactly when Python would trust it."""
    body = "VALUES = [" + ", ".join(str(n) for n in range(30_000)) + "]\n"
    path = project.write("big.py", "X = 1\n" + body)
    py_compile.compile(str(path), doraise=True)
    cache = importlib.util.cache_from_source(str(path))
    assert os.path.getsize(cache) > 1 << 17  # longer than one read of the chunked path
    # The cache says X = 2 with the source's own figures: Python would run it.
    stat = os.stat(path)
    other = project.write("other_src.py", "X = 2\n" + body)
    code = compile(other.read_text(), str(path), "exec")
    header = importlib.util.MAGIC_NUMBER + (0).to_bytes(4, "little")
    header += (int(stat.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little")
    header += (stat.st_size & 0xFFFFFFFF).to_bytes(4, "little")
    with open(cache, "wb") as handle:
        handle.write(header + marshal.dumps(code))
    module = importlib.import_module("big")
    assert module.X == 2
    assert len(module.VALUES) == 30_000


def test_the_standard_library_and_installed_packages_are_never_project_code_under_any_root(
    tmp_path: Any,
) -> None:
    """Even with a root that holds the whole interpreter (a project kept under the
    prefix), the standard library, lib-dynload and site-packages stay third-party."""
    import json
    import sysconfig

    paths = sysconfig.get_paths()
    for root in ("/", sys.prefix, sys.base_prefix):
        filter_ = muckrack_hmr.tracking.ProjectFilter([root])
        assert not filter_.contains_file(os.__file__), root
        assert not filter_.contains_file(json.__file__), root
        assert not filter_.contains_file(os.path.join(paths["stdlib"], "x.py")), root
        assert not filter_.contains_file(pytest.__file__), root
        assert not filter_.contains_file(os.path.join(paths["purelib"], "x.py")), root
    assert muckrack_hmr.tracking.ProjectFilter([tmp_path]).contains_file(str(tmp_path / "a.py"))


def test_the_loader_keeps_the_bytes_and_figures_it_read_and_a_failing_listener_is_not_the_import(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The core's loader steps (``capture_sources``): each project module's bytes as it
    ran them, with the figures of the read; a symlinked module through its link; what
    a listener raises is logged, and the import goes on."""
    text = "X = 1\n# é, a non-ASCII comment: bytes are kept, not text\n"
    plain = project.write("plain.py", text)
    target = project.write("target.py", "Y = 2\n" * 5000)  # longer than one page
    (project.root / "link.py").symlink_to(target)
    seen: list[str] = []

    def listener(code: Any, _cached: bytes | None) -> None:
        seen.append(code.co_filename)
        raise RuntimeError("listener broke")

    capture = muckrack_hmr.tracking.capture()
    assert capture is not None
    capture.listeners.append(listener)
    try:
        with caplog.at_level("ERROR", logger="muckrack_hmr"):
            assert importlib.import_module("plain").X == 1
            assert importlib.import_module("link").Y == 2
    finally:
        capture.listeners.remove(listener)
    assert hmr.sources.ran("plain") == plain.read_bytes()
    status = os.stat(plain)
    assert hmr.sources.import_stats["plain"] == (status.st_mtime_ns, status.st_size)
    assert hmr.sources.ran("link") == target.read_bytes()
    status = os.stat(target)
    assert hmr.sources.import_stats["link"] == (status.st_mtime_ns, status.st_size)
    assert [os.path.basename(name) for name in seen] == ["plain.py", "link.py"]
    assert "a listener failed on the code of plain" in caplog.text
    assert "listener broke" in caplog.text
    # A module the capture does not keep (not project code) loads as Python loads it.
    assert importlib.import_module("json.decoder").JSONDecodeError


def test_a_module_made_outside_the_project_is_freed_with_its_cycles(
    project: Project, hmr: Any, tmp_path: Path
) -> None:
    """A module imported from outside the project (jinja2's templates compiled to modules)
    that imports project code, dropped and in a reference cycle: the compiled core's
    cache of namespaces held its namespace, which the collector cannot see, and it was
    never freed (jinja2's test_weak_references failed from the second run on)."""
    project.write("helpers.py", "def shout(text):\n    return text.upper()\n")
    outside = tmp_path / "templates"
    outside.mkdir()
    (outside / "tmpl_a.py").write_text(
        "from helpers import shout\n\n\ndef root():\n    return shout('hi')\n"
    )
    sys.path.append(str(outside))
    try:
        template = importlib.import_module("tmpl_a")
    finally:
        sys.path.remove(str(outside))
    del sys.modules["tmpl_a"]
    assert template.root() == "HI"
    template.itself = template  # a cycle, as a template's reference to its loader makes
    gone = weakref.ref(template)
    del template
    gc.collect()
    assert gone() is None
