"""reload_module: order, atomicity, hooks and return values, on both cores."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
import time
import types
from typing import Any

import pytest

from muckrack_hmr.reload.reloader import _APPLYING_SWITCH_INTERVAL
from tests.conftest import Project, leases_tell
from tests.subprocesses import DEADLINE

# Each run of a version appends it to the state a module keeps (through a function: a
# ``STATE.append(VERSION)`` at the top level starts again from ``STATE = []``).
APPENDS = (
    "STATE = []\n\ndef note(version):\n    STATE.append(version)\n\n"
    "VERSION = {version}\nnote(VERSION)\n"
)

# Modules append their name here when they execute, so tests can see exactly
# which modules ran, in which order.
LOG_MODULE = "hmr_test_exec_log"


@pytest.fixture
def runs() -> Any:
    log: list[str] = []
    module = type(sys)(LOG_MODULE)
    module.runs = log  # type: ignore[attr-defined]
    sys.modules[LOG_MODULE] = module
    yield log
    sys.modules.pop(LOG_MODULE, None)


def logged(name: str, body: str) -> str:
    """Source that records its own execution in the run log, then runs ``body``."""
    return f"import {LOG_MODULE}\n{LOG_MODULE}.runs.append({name!r})\n{body}\n"


def test_diamond_dependency_ends_fresh(project: Project, hmr: Any, runs: list[str]) -> None:
    project.write("a.py", logged("a", "X = 1"))
    project.write("b.py", logged("b", "import a\nY = a.X + 10"))
    project.write("c.py", logged("c", "from a import X\nZ = X + 100"))
    project.write("d.py", logged("d", "import c\nimport b\nTOTAL = b.Y + c.Z"))
    d = importlib.import_module("d")
    assert d.TOTAL == 112
    runs.clear()
    project.write("a.py", logged("a", "X = 2"))
    reloaded, elapsed = hmr.reload_module("a")
    assert d.TOTAL == 114
    assert sorted(reloaded) == ["a", "b", "c", "d"]  # each once: all consumed the change
    assert reloaded[0] == "a"
    assert reloaded[-1] == "d"
    assert isinstance(elapsed, float)
    assert 0.0 < elapsed < 10_000.0


def test_reload_returns_milliseconds(project: Project, hmr: Any) -> None:
    project.write("slow.py", "import time\ntime.sleep(0.05)\n")
    importlib.import_module("slow")
    reloaded, elapsed = hmr.reload_module("slow", force=True)
    assert reloaded == ["slow"]
    assert elapsed >= 50.0  # milliseconds, not seconds


def test_reads_the_source_never_a_stale_pyc(project: Project, hmr: Any) -> None:
    path = project.write("same.py", "X = 1\n")
    stat = os.stat(path)
    module = importlib.import_module("same")
    assert module.X == 1
    # Same size, same mtime: Python's own .pyc check cannot tell the difference.
    path.write_text("X = 2\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    hmr.reload_module("same")
    assert module.X == 2


def test_other_threads_never_see_a_name_missing_while_a_module_runs_again(
    project: Project, hmr: Any
) -> None:
    project.write("paced.py", "import time\n\nX = 1\ntime.sleep(0.05)\nY = 2\n")
    paced = importlib.import_module("paced")
    misses: list[str] = []
    reads = 0
    stop = threading.Event()

    def read() -> None:
        nonlocal reads
        while not stop.is_set():
            for name in ("X", "Y", "time"):
                if not hasattr(paced, name):
                    misses.append(name)
            reads += 1

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # Forced: the module runs again whole, sleeping half-way while the
        # reader keeps reading.
        assert hmr.reload_module("paced", force=True)[0] == ["paced"]
    finally:
        stop.set()
        reader.join(timeout=10)
    assert not reader.is_alive()
    assert reads > 0
    assert misses == []
    assert (paced.X, paced.Y) == (1, 2)


def _waited_for_a_processor() -> int | None:
    """How long this thread has waited, runnable, for the kernel to run it (ns), or None
    where the kernel does not say (``/proc/self/task/<id>/schedstat``)."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/schedstat") as stats:
            return int(stats.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None


@pytest.mark.parametrize("asked_by", ["watcher", "request"])
@pytest.mark.parametrize("first", [False, True], ids=["later", "first"])
def test_other_threads_never_see_an_edit_beside_its_dependent_s_old_values(
    project: Project, hmr: Any, asked_by: str, first: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save of ``work`` reaches ``user``, which reads ``work.value()`` at import, in one
    step for the program's other threads: no thread runs between the edited module's
    new code and its dependent's run.  Before, each module of the reload let them in
    (a yield, and the dependent's file read), and a thread that computes saw the new
    ``value()`` beside the old ``SEEN`` in most saves.  The same for ``reload_module``
    asked for by the program while a watcher runs (which applies ``user``'s own saves):
    it read ``user``'s file in between.  And for the first reload, asked for before
    the watcher's idle work (or under ``--no-watch``): ``ast.walk``, which the reload
    calls, imports ``deque`` as it runs, and the import hook's first look at the
    standard library's folder (a system call per component of its path) let them in.

    A save where the kernel kept the reloading thread off the processors for longer
    than the hold (a loaded machine) proves nothing either way: another is made."""
    project.write("probe.py", "COUNT = 0\n")
    source = "import probe\n\n\ndef value():\n    return {n}\n\n\nMARK = probe.COUNT, {n}\n"
    project.write("work.py", source.format(n=1))
    project.write("user.py", "import probe\nimport work\n\nSEEN = probe.COUNT, work.value()\n")
    probe = importlib.import_module("probe")
    work = importlib.import_module("work")
    user = importlib.import_module("user")
    n = 1
    if not first:
        # What the program's start-up and the watcher's idle time leave done before a
        # save (each of the engine's first looks at a folder, say, asks the system once).
        hmr.warm()
        hmr.reloader.warm_up()
        n = 2
        project.write("work.py", source.format(n=n))
        assert hmr.reloader.reload_result(["work"]).reloaded == ["work", "user"]
    if asked_by == "request":
        # A watcher runs (its thread is not needed here: the program asks).
        monkeypatch.setattr(hmr, "watcher", types.SimpleNamespace(stop=lambda: None))
    stop = threading.Event()

    def count() -> None:  # a thread of the program that computes without rest
        while not stop.is_set():
            probe.COUNT += 1

    counter = threading.Thread(target=count, daemon=True)
    counter.start()
    proved = 0
    try:
        deadline = time.monotonic() + DEADLINE
        while probe.COUNT == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert probe.COUNT > 0
        while proved < 8 and n < 40:
            n += 1
            edited = source.format(n=n)
            project.write("work.py", edited)
            waited = _waited_for_a_processor()
            if asked_by == "watcher":  # as the watcher asks, with the bytes it judged
                result = hmr.reloader.reload_result(["work"], sources={"work": edited.encode()})
            else:
                result = hmr.reload("work")
            assert result.reloaded == ["work", "user"]
            assert (work.value(), user.SEEN[1]) == (n, n)
            now = _waited_for_a_processor()
            if waited is not None and now is not None and now - waited > 10_000_000:
                continue  # (off the processors 10 ms and more: see above)
            assert user.SEEN[0] == work.MARK[0], f"save {n}: the counter ran in between"
            proved += 1
    finally:
        stop.set()
        counter.join(timeout=10)
    assert not counter.is_alive()
    assert proved == 8


@pytest.mark.parametrize("kept", ["compressed", "as imported"])
def test_a_thread_that_sleeps_in_a_loop_never_sees_a_save_of_several_files_half_applied(
    project: Project, hmr: Any, kept: str
) -> None:
    """A ``git checkout`` of three modules is one transaction: a thread of the program that
    sleeps a millisecond between looks sees all three old or all three new.  Before, once
    the idle time had compressed what they ran into the spill file, the reload read it
    back module by module while it held the threads off: each read waited for the
    system without the interpreter, and the sleeper saw ``v1 v0 v0`` in a third of the
    saves.  A save where the kernel kept the reloading thread off the processors longer
    than the hold proves nothing either way: another is made."""
    names = ["ca", "cb", "cc"]
    for name in names:
        project.write(f"{name}.py", 'def val():\n    return "v0"\n')
    modules = [importlib.import_module(name) for name in names]
    hmr.remember_sources()
    seen: list[tuple[str, ...]] = []
    stop = threading.Event()

    def look() -> None:  # the program's loop: look, sleep a millisecond, look again
        last = None
        while not stop.is_set():
            now = tuple(module.val() for module in modules)
            if now != last:
                seen.append(now)
                last = now
            time.sleep(0.001)

    looker = threading.Thread(target=look, daemon=True)
    looker.start()
    proved = 0
    try:
        for n in range(1, 40):
            if proved == 12:
                break
            if kept == "compressed":
                hmr.sources.compress()  # as the idle time does
            del seen[:]
            for name in names:
                project.write(f"{name}.py", f'def val():\n    return "v{n}"\n')
            waited = _waited_for_a_processor()
            result = hmr.reloader.reload_result(names)
            now = _waited_for_a_processor()
            assert sorted(result.reloaded) == names
            deadline = time.monotonic() + DEADLINE
            while (not seen or seen[-1] != (f"v{n}",) * 3) and time.monotonic() < deadline:
                time.sleep(0.001)
            if waited is not None and now is not None and now - waited > 10_000_000:
                continue  # (off the processors 10 ms and more)
            assert all(len(set(state)) == 1 for state in seen), f"save {n}: {seen}"
            proved += 1
    finally:
        stop.set()
        looker.join(timeout=10)
    assert not looker.is_alive()
    assert proved == 12


def test_names_bound_out_of_sight_survive_a_whole_run(project: Project, hmr: Any) -> None:
    project.write("consts.py", "__all__ = ['K']\nK = 7\n")
    project.write(
        "dyn.py",
        "from consts import *\nfor _name in ('A', 'B'):\n    globals()[_name] = _name\n",
    )
    project.write("star.py", "from consts import *\nGONE = 1\n")
    dyn = importlib.import_module("dyn")
    star = importlib.import_module("star")
    assert (dyn.A, dyn.B, dyn.K, star.K, star.GONE) == ("A", "B", 7, 7, 1)
    assert hmr.reload_module("dyn", force=True)[0] == ["dyn"]
    assert (dyn.A, dyn.B, dyn.K) == ("A", "B", 7)
    project.write("star.py", "from consts import *\n")
    assert "star" in hmr.reload_module("star")[0]
    assert star.K == 7
    assert not hasattr(star, "GONE")


def test_names_removed_from_the_source_disappear(project: Project, hmr: Any) -> None:
    project.write("a.py", "def keep(): return 1\ndef gone(): return 2\n")
    a = importlib.import_module("a")
    assert hasattr(a, "gone")
    project.write("a.py", "def keep(): return 10\n")
    assert hmr.reload_module("a")[0] == ["a"]
    assert not hasattr(a, "gone")
    assert a.keep() == 10


def test_package_reload_keeps_submodule_attributes(project: Project, hmr: Any) -> None:
    project.write("pkg/__init__.py", "X = 1\n")
    project.write("pkg/sub.py", "Y = 2\n")
    pkg = importlib.import_module("pkg")
    importlib.import_module("pkg.sub")
    project.write("pkg/__init__.py", "X = 5\n")
    hmr.reload_module("pkg")
    assert pkg.X == 5
    assert pkg.sub.Y == 2  # type: ignore[attr-defined]


def test_failing_module_is_restored_exactly(
    project: Project, hmr: Any, runs: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    project.write("a.py", logged("a", "X = 1\ndef old(): return 'old'\nCACHE = {'k': 1}"))
    project.write("b.py", logged("b", "from a import X\nY = X * 2"))
    a = importlib.import_module("a")
    b = importlib.import_module("b")
    before = dict(a.__dict__)
    errors: list[tuple[str, BaseException]] = []
    hmr.add_error_handler(lambda name, exc: errors.append((name, exc)))
    runs.clear()
    # The new code adds a name, drops another, rebinds a third, then raises.
    project.write("a.py", logged("a", "X = 2\nADDED = True\nCACHE = {}\n1 / 0"))
    with caplog.at_level(logging.INFO, logger="muckrack_hmr"):
        reloaded, _ = hmr.reload_module("a", force=True)
    assert reloaded == []
    assert runs == ["a"]  # b was left alone
    assert a.__dict__.keys() == before.keys()
    assert all(a.__dict__[key] is value for key, value in before.items())
    assert not hasattr(a, "ADDED")
    assert a.old() == "old"
    assert b.Y == 2
    assert [name for name, _ in errors] == ["a"]
    assert isinstance(errors[0][1], ZeroDivisionError)
    failure = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failure) == 1
    message = failure[0].getMessage()
    assert f"{project.root / 'a.py'}:6" in message  # two lines of run logging first
    assert "ZeroDivisionError" in message
    assert "muckrack_hmr" not in message.split("\n", 1)[1]  # the traceback is the user's
    # The next good save applies.
    project.write("a.py", logged("a", "X = 3"))
    assert hmr.reload_module("a")[0] == ["a", "b"]
    assert b.Y == 6
    assert not hasattr(a, "old")


def test_syntax_error_keeps_the_old_code(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture
) -> None:
    project.write("a.py", "def f(): return 'old'\n")
    a = importlib.import_module("a")
    errors: list[tuple[str, BaseException]] = []
    hmr.add_error_handler(lambda name, exc: errors.append((name, exc)))
    project.write("a.py", "def f(): return 'new'\n\ndef broken(:\n")
    with caplog.at_level(logging.ERROR, logger="muckrack_hmr"):
        assert hmr.reload_module("a")[0] == []
    assert a.f() == "old"
    assert isinstance(errors[0][1], SyntaxError)
    assert f"{project.root / 'a.py'}:3" in caplog.records[0].getMessage()
    project.write("a.py", "def f(): return 'new'\n")
    assert hmr.reload_module("a")[0] == ["a"]
    assert a.f() == "new"


def test_an_error_raised_in_a_library_is_located_in_the_users_code(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture
) -> None:
    project.write("a.py", "import json\nCONFIG = json.loads('{}')\n")
    a = importlib.import_module("a")
    assert a.CONFIG == {}
    # json raises deep inside the standard library.
    project.write("a.py", "import json\nCONFIG = json.loads('{bad')\n")
    with caplog.at_level(logging.ERROR, logger="muckrack_hmr"):
        assert hmr.reload_module("a")[0] == []
    assert a.CONFIG == {}
    summary = caplog.records[0].getMessage().splitlines()[0]
    assert f"({project.root / 'a.py'}:2)" in summary
    assert "JSONDecodeError" in summary
    assert "decoder.py" not in summary


def test_a_message_on_several_lines_is_summarized_on_one(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture
) -> None:
    project.write("a.py", "X = 1\n")
    a = importlib.import_module("a")
    project.write("a.py", "X = 2\nraise RuntimeError('first line\\nsecond line')\n")
    with caplog.at_level(logging.ERROR, logger="muckrack_hmr"):
        assert hmr.reload_module("a")[0] == []
    assert a.X == 1
    message = caplog.records[0].getMessage()
    summary, _, rest = message.partition("\n")
    assert "RuntimeError: first line [...]; the old code keeps running" in summary
    assert "second line" not in summary
    assert "second line" in rest  # the traceback has all of it


@pytest.mark.parametrize("forced", [False, True], ids=["incremental", "whole"])
def test_a_submodule_a_failed_run_imported_stays_an_attribute_of_its_package(
    project: Project, hmr: Any, forced: bool
) -> None:
    """A save of ``pkg/__init__.py`` imports a new submodule, then raises: undone, the
    package keeps the attribute the import system set for the submodule, which stays
    loaded.  Before, it was dropped with the run's other names, and the fixed save's
    import found the submodule loaded and never set it again: ``pkg.newmod`` was missing
    for good, where a fresh start has it."""
    project.write("pkg/__init__.py", "from .a import fa\n")
    project.write("pkg/a.py", "def fa():\n    return 'a'\n")
    pkg = importlib.import_module("pkg")
    project.write("pkg/newmod.py", "def helper():\n    return 'helper'\n")
    broken = "from .a import fa\nfrom .newmod import helper\nVALUE = helper() + typo_name\n"
    project.write("pkg/__init__.py", broken)
    assert hmr.reload_module("pkg", force=forced)[0] == []
    assert "pkg" in hmr.reloader.failing
    assert not hasattr(pkg, "VALUE")
    assert not hasattr(pkg, "helper")  # (the run's own names go)
    assert pkg.newmod is sys.modules["pkg.newmod"]
    project.write("pkg/__init__.py", broken.replace("typo_name", "'!'"))
    assert hmr.reload_module("pkg", force=forced)[0] == ["pkg"]
    assert pkg.VALUE == "helper!"
    assert importlib.import_module("pkg.newmod") is pkg.newmod
    assert pkg.newmod.helper() == "helper"


def test_a_failed_edit_is_one_error_line_and_its_importers_are_not_left_alone(
    project: Project, hmr: Any, runs: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    project.write("a.py", logged("a", "X = 1\n\ndef f():\n    return 1"))
    project.write("b.py", logged("b", "import a\nY = a.X"))
    project.write("c.py", logged("c", "from a import X\nZ = X"))
    a, b, c = (importlib.import_module(name) for name in ("a", "b", "c"))
    hmr.remember_sources()
    runs.clear()
    path = project.write("a.py", logged("a", "X = 1\n\ndef f():\n    return (2"))
    with caplog.at_level(logging.INFO, logger="muckrack_hmr"):
        result = hmr.reload("a")
    assert list(result.failed) == ["a"]
    # The edit changed nothing: b and c have nothing to follow, and are not
    # reported as left behind.
    assert result.left_alone == []
    assert runs == []
    assert (a.f(), b.Y, c.Z) == (1, 1, 1)
    lines = [record.getMessage().splitlines()[0] for record in caplog.records]
    assert lines == [
        f"failed to reload a ({path}:6): SyntaxError: '(' was never closed; "
        "the old code keeps running"
    ]
    # The fix applies, and says so.
    caplog.clear()
    project.write("a.py", logged("a", "X = 1\n\ndef f():\n    return 2"))
    with caplog.at_level(logging.INFO, logger="muckrack_hmr"):
        assert hmr.reload_module("a")[0] == ["a"]
    assert a.f() == 2
    assert [record.getMessage() for record in caplog.records][-1] == "a recovered"


def test_asking_again_for_a_failed_edit_tries_it_again_and_reload_says_it_failed(
    project: Project, hmr: Any, runs: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The short form cannot tell "failed" from "nothing to do"; ``reload`` can."""
    project.write("a.py", logged("a", "def f():\n    return 1"))
    a = importlib.import_module("a")
    hmr.remember_sources()
    project.write("a.py", logged("a", "def f():\n    return 1 +"))
    assert list(hmr.reload("a").failed) == ["a"]
    runs.clear()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="muckrack_hmr"):
        assert hmr.reload_module("a")[0] == []
        again = hmr.reload("a")
    assert (again.reloaded, list(again.failed), again.edited) == ([], ["a"], ["a"])
    assert isinstance(again.failed["a"], SyntaxError)
    # Tried again each time, each time said, and the old code still runs.
    assert [record.getMessage().split(":")[0] for record in caplog.records] == [
        f"failed to reload a ({project.root / 'a.py'}"
    ] * 2
    assert (runs, a.f()) == ([], 1)
    project.write("a.py", logged("a", "def f():\n    return 2"))
    assert hmr.reload_module("a")[0] == ["a"]
    assert a.f() == 2


UTILS = "def old():\n    return 'old'\n\ndef compute():\n    return 1 // {divisor}\n"


@pytest.mark.parametrize(
    ("use", "where", "error"),
    [
        (
            "from utils import old, new\nVALUE = new()",
            "views.py:3",
            "ImportError: cannot import name 'new'",
        ),
        ("import utils\nVALUE = utils.new()", "views.py:4", "AttributeError: module 'utils'"),
        ("from utils import *\nVALUE = new()", "views.py:4", "NameError: name 'new' is not"),
        ("import utils\nVALUE = utils.compute()", "utils.py:5", "ZeroDivisionError: "),
    ],
    ids=["from-import", "attribute", "star-import", "raised-inside"],
)
def test_an_edit_that_failed_for_want_of_a_helper_applies_once_the_helper_is_saved(
    project: Project,
    hmr: Any,
    caplog: pytest.LogCaptureFixture,
    use: str,
    where: str,
    error: str,
) -> None:
    """The everyday order: the module that uses a new helper is saved first, and
    fails; then the helper's module.  The first edit applies with the second, as a
    restart would have it (before, it stayed failed until saved again)."""
    project.write("utils.py", UTILS.format(divisor=0))
    project.write("views.py", "import utils\nSTATE = []\n")
    views = importlib.import_module("views")
    hmr.remember_sources()
    state = views.STATE
    project.write("views.py", f"import utils\nSTATE = []\n{use}\n")
    with caplog.at_level(logging.INFO, logger="muckrack_hmr"):
        assert list(hmr.reload("views").failed) == ["views"]
        # A reload of the helper's module that does not mend it: tried again, one line.
        project.write("utils.py", UTILS.format(divisor=0) + "\nOTHER = 1\n")
        caplog.clear()
        result = hmr.reload("utils")
    messages = [record.getMessage() for record in caplog.records]
    if "NameError" in error:
        # Nothing it lacks came: not tried again.
        assert (result.reloaded, list(result.failed)) == (["utils"], [])
        assert messages == ["reloaded utils in " + messages[-1].rpartition(" in ")[2]]
        messages = []
    else:
        assert (result.reloaded, list(result.failed)) == (["utils"], ["views"])
    assert len(messages) in (0, 2), messages
    location = f"{project.root / where.partition(':')[0]}:{where.partition(':')[2]}"
    if messages:
        assert messages[0].startswith(f"views still fails ({location}): {error}"), messages
        assert messages[0].endswith("; the old code keeps running"), messages
        assert messages[1].startswith("reloaded utils (1 failed) in "), messages
    assert not hasattr(views, "VALUE")
    # The helper arrives: the failed edit applies with it.
    project.write(
        "utils.py", UTILS.format(divisor=1) + "\nOTHER = 1\n\ndef new():\n    return 'new'\n"
    )
    result = hmr.reload("utils")
    assert (result.reloaded, result.recovered, dict(result.failed)) == (
        ["utils", "views"],
        ["views"],
        {},
    )
    value = views.VALUE
    assert value == (1 if "compute" in use else "new")
    assert views.STATE is state  # its edit applied, not a fresh run
    assert "views" not in hmr.reloader.failing


@pytest.mark.parametrize(
    ("statement", "new_file"),
    [
        ("from helpers import g", "helpers.py"),
        ("import pkg.helpers", "pkg/helpers.py"),
        ("from pkg import helpers", "pkg/helpers.py"),
        ("from pkg.sub import g", "pkg/sub/__init__.py"),
        # A namespace package (no __init__.py): its first file makes it exist.
        ("from newns.mod import g", "newns/mod.py"),
    ],
)
def test_an_edit_that_failed_on_a_missing_module_awaits_its_file(
    project: Project, hmr: Any, statement: str, new_file: str
) -> None:
    """What the watcher asks when a new file appears: which failed edits wanted it."""
    project.write("pkg/__init__.py", "")
    project.write("views.py", "import pkg\n")
    importlib.import_module("views")
    hmr.remember_sources()
    project.write("views.py", f"import pkg\n{statement}\n")
    assert list(hmr.reload("views").failed) == ["views"]
    assert hmr.reloader.awaiting(str(project.root / "other.py")) == []
    assert hmr.reloader.awaiting(str(project.root / "pkg" / "other.py")) == []
    path = project.write(new_file, "def g():\n    return 1\n")
    assert hmr.reloader.awaiting(str(path)) == ["views"]
    assert hmr.reload("views").recovered == ["views"]
    assert hmr.reloader.awaiting(str(path)) == []


_CONFIG = """\
DEBUG = False
MISSES = []

try:
    from .local import *
except ImportError:
    pass

try:
    import not_there_at_all
except ImportError:
    MISSES.append(1)
{extra}"""


@pytest.mark.parametrize("how", ["new file", "saved"])
def test_an_optional_import_that_missed_runs_again_once_its_module_exists(
    project: Project, hmr: Any, how: str
) -> None:
    """``try: from .local import *`` / ``except ImportError: pass`` (a Django settings'
    ``local_settings``): once ``local.py`` is made, the statement runs again, as a fresh
    start runs it, when the watcher sees the new file or when the module is saved.
    Before, its text had not changed: it never ran again, and ``DEBUG`` stayed False.
    An optional import that still misses does not run again."""
    project.write("config/__init__.py", _CONFIG.format(extra=""))
    project.write("app.py", "from config import DEBUG\n\nMODE = 'debug' if DEBUG else 'prod'\n")
    config = importlib.import_module("config")
    app = importlib.import_module("app")
    misses = config.MISSES
    assert (config.DEBUG, app.MODE, misses) == (False, "prod", [1])
    project.write("config/local.py", "DEBUG = True\n")
    if how == "new file":  # what the watcher asks when a new file appears
        assert hmr.reloader.awaiting(str(project.root / "config" / "local.py")) == ["config"]
        reloaded = hmr.reloader.reload_result(["config"]).reloaded
    else:
        project.write("config/__init__.py", _CONFIG.format(extra="\nOTHER = 1\n"))
        reloaded, _ = hmr.reload_module("config")
    assert config.DEBUG is True
    assert reloaded == ["config", "app"]
    assert (config.DEBUG, app.DEBUG, app.MODE) == (True, True, "debug")
    assert config.MISSES is misses
    assert misses == [1]  # (the other optional import did not run again)
    project.write("config/__init__.py", _CONFIG.format(extra="\nOTHER = 2\n"))
    assert hmr.reload_module("config")[0] == ["config"]
    assert (config.DEBUG, config.OTHER, misses) == (True, 2, [1])


def test_a_deleted_module_keeps_its_code_and_no_reload_fails_for_it(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A module whose file was deleted (a branch switched) is still loaded, and imports a
    module that is then edited.  Each such reload reported it failed (``failed to reload
    b (<unknown>): FileNotFoundError``, with a traceback), though nothing failed: it
    keeps its old code, as the watcher says when it sees the delete, and a request for
    it says so in one line."""
    project.write("a.py", "V = 1\n")
    project.write("b.py", "from a import V\n\nW = V + 1\n")
    a, b = importlib.import_module("a"), importlib.import_module("b")
    hmr.remember_sources()
    os.remove(project.root / "b.py")
    project.write("a.py", "V = 2\n")
    result = hmr.reload("a")
    assert (result.reloaded, dict(result.failed)) == (["a"], {})
    assert (a.V, b.W) == (2, 2)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="muckrack_hmr"):
        result = hmr.reload("b")
    assert (result.reloaded, result.edited, dict(result.failed)) == ([], [], {})
    assert [record.getMessage() for record in caplog.records] == [
        f"{project.root / 'b.py'} was deleted; b keeps running its old code"
    ]
    assert "b" not in hmr.reloader.failing


def test_a_failure_a_reload_cannot_mend_is_not_tried_again(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture
) -> None:
    project.write("utils.py", UTILS.format(divisor=1))
    project.write("views.py", "import utils\n")
    views = importlib.import_module("views")
    hmr.remember_sources()
    project.write("views.py", "import utils\nVALUE = 1 // 0\n")
    assert list(hmr.reload("views").failed) == ["views"]
    project.write("utils.py", UTILS.format(divisor=1) + "\ndef new():\n    return 'new'\n")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="muckrack_hmr"):
        result = hmr.reload("utils")
    assert (result.reloaded, dict(result.failed)) == (["utils"], {})
    assert [record.getMessage() for record in caplog.records] == [
        "reloaded utils in " + caplog.records[0].getMessage().rpartition(" in ")[2]
    ]
    assert not hasattr(views, "VALUE")
    assert "views" in hmr.reloader.failing


def test_a_failed_edit_undone_is_reported_recovered_by_a_request(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """api.md: the result hooks hear of a module fine again because its file was saved
    back.  The watcher said so; a request (``--no-watch``) ran nothing and said nothing,
    and the module stayed failing until its next real reload."""
    project.write("m.py", "X = 1\n")
    m = importlib.import_module("m")
    hmr.remember_sources()
    heard: list[Any] = []
    hmr.add_result_hook(heard.append)
    project.write("m.py", "X = 1 / 0\n")
    assert list(hmr.reload("m").failed) == ["m"]
    project.write("m.py", "X = 1\n")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="muckrack_hmr"):
        result = hmr.reload("m")
    assert (result.reloaded, result.recovered) == ([], ["m"])
    assert [record.getMessage() for record in caplog.records] == [
        "m recovered (its file is back to the code that runs)"
    ]
    assert heard[-1].recovered == ["m"]
    assert "m" not in hmr.reloader.failing
    assert m.X == 1
    assert hmr.reload("m").recovered == []  # said once


def test_a_request_held_up_after_reading_a_truncated_file_does_not_apply_it(
    project: Project, hmr: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread kept off the interpreter between its read and its look at the clock
    (another thread applying a reload) took a file truncated just before the read
    for one quiet long ago, and applied it empty: the module's names went."""
    from muckrack_hmr.reload import sources

    path = project.write("a.py", APPENDS.format(version=1))
    a = importlib.import_module("a")
    hmr.remember_sources()
    state = a.STATE
    path.write_text("")  # an editor's first step: truncate
    real_read = sources.read_steady
    reads: list[bytes] = []

    def held_up_read(filename: str, tries: int = 4) -> Any:
        found = real_read(filename, tries)
        reads.append(found[0])
        if len(reads) == 1:
            time.sleep(sources.SETTLE * 1.5)  # the thread waits for the interpreter
            # ... while the editor's second step lands.
            path.write_text(APPENDS.format(version=2))
        return found

    monkeypatch.setattr(sources, "read_steady", held_up_read)
    assert hmr.reload_module("a")[0] == ["a"]
    assert reads[0] == b""
    assert (a.VERSION, a.STATE is state, state) == (2, True, [1, 2])


def test_a_request_never_applies_an_emptied_file(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An editor's truncate whose write is late (a loaded machine: 120-400 ms seen) looks
    quiet: the module was emptied, and its next save ran whole.  As the watcher does,
    an empty file keeps the module's code, and says so once."""
    path = project.write("a.py", APPENDS.format(version=1))
    a = importlib.import_module("a")
    hmr.remember_sources()
    state = a.STATE
    path.write_text("")
    long_ago = time.time() - 5
    os.utime(path, (long_ago, long_ago))  # quiet for long
    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        for _ in range(2):
            assert hmr.reload_module("a")[0] == []
    assert (a.VERSION, a.STATE) == (1, [1])
    assert [r.getMessage() for r in caplog.records] == [
        f"{path} is empty; a keeps running its old code"
    ]
    path.write_text(APPENDS.format(version=2))
    assert hmr.reload_module("a")[0] == ["a"]
    assert (a.VERSION, a.STATE is state, state) == (2, True, [1, 2])


def test_a_request_waits_for_a_writer_to_close_the_file(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow writer (one open: a first part that parses, a pause, the rest) caught in
    its pause by ``reload_module``: the first part was applied, and ``f`` gone.  The
    request waits for the close, and applies the whole file once; a writer that keeps
    the file open longer than ``SETTLE_AT_MOST`` leaves the module as it runs."""
    from muckrack_hmr.reload import reloader as reloader_module

    if not leases_tell(project.root):
        pytest.skip("this system cannot tell a file open for writing")
    path = project.write("a.py", "X = 1\n\n\ndef f():\n    return 'f1'\n")
    a = importlib.import_module("a")
    hmr.remember_sources()
    writer = open(path, "w")  # noqa: SIM115 (held open across the request)
    try:
        writer.write("X = 2\n")  # parses: a module with no f
        writer.flush()
        long_ago = time.time() - 5
        os.utime(path, (long_ago, long_ago))  # and quiet for long

        def the_rest() -> None:
            writer.write("\n\ndef f():\n    return 'f2'\n")
            writer.close()

        closing = threading.Timer(0.2, the_rest)
        closing.start()
        ran, _ = hmr.reload_module("a")
        closing.join()
    finally:
        writer.close()
    assert ran == ["a"]
    assert (a.X, a.f()) == (2, "f2")
    assert hmr.reload_module("a")[0] == []

    # Held open for longer than a request waits: nothing of it applies.
    monkeypatch.setattr(reloader_module, "SETTLE_AT_MOST", 0.3)
    with open(path, "w") as writer, caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        writer.write("X = 3\n")
        writer.flush()
        started = time.monotonic()
        assert hmr.reload_module("a")[0] == []
        waited = time.monotonic() - started
    assert (a.X, a.f()) == (2, "f2")
    assert 0.3 <= waited < DEADLINE
    assert [r.getMessage() for r in caplog.records] == [
        f"{path} is held open for writing; a keeps running its code"
    ]


def test_a_writer_that_finishes_between_the_read_and_the_look_for_writers_is_read_again(
    project: Project, hmr: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``reload_module`` read a slow writer's first part (it parses: a module with no
    ``f``); the writer wrote the rest and closed the file before the request asked
    whether anyone writes it, and the first part was applied (a user's repro: 2 of 300
    saves).  The file's figures changed since the read: it is read again."""
    from muckrack_hmr.reload import sources as sources_module

    path = project.write("a.py", "X = 1\n\n\ndef f():\n    return 'f1'\n")
    a = importlib.import_module("a")
    hmr.remember_sources()
    asked = sources_module.being_written
    writer = open(path, "w")  # noqa: SIM115 (closed by the request's look, or below)
    try:
        writer.write("X = 2\n")
        writer.flush()

        def the_rest_then_ask(filename: str) -> bool:
            if not writer.closed:  # its last part and its close, right after the read
                writer.write("\n\ndef f():\n    return 'f2'\n")
                writer.close()
            return asked(filename)

        monkeypatch.setattr(sources_module, "being_written", the_rest_then_ask)
        assert hmr.reload_module("a")[0] == ["a"]
    finally:
        writer.close()
    assert (a.X, a.f()) == (2, "f2")


def test_a_file_held_open_whose_running_source_is_unknown_is_waited_for_once(
    project: Project, hmr: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A module whose source was not kept at import (another loader's) and whose file a
    writer holds open: the request read it ahead, waited its patience, then read it
    again in the transaction and waited as long once more."""
    from muckrack_hmr.reload import reloader as reloader_module

    if not leases_tell(project.root):
        pytest.skip("this system cannot tell a file open for writing")
    path = project.write("a.py", "X = 1\n")
    a = importlib.import_module("a")
    hmr.sources._fresh.pop("a")  # as another loader leaves it: the source is unknown
    monkeypatch.setattr(reloader_module, "SETTLE_AT_MOST", 0.3)
    with open(path, "w") as writer, caplog.at_level(logging.ERROR, logger="muckrack_hmr"):
        writer.write("X = 2\n")
        writer.flush()
        started = time.monotonic()
        assert hmr.reload_module("a")[0] == []
        waited = time.monotonic() - started
    assert a.X == 1
    assert 0.3 <= waited < 0.55, waited
    assert (
        caplog.records[0]
        .getMessage()
        .startswith(f"failed to reload a ({path}): StillWritten: {path} is held open for writing;")
    )


def test_a_dependent_being_written_runs_again_from_the_code_that_runs(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """``reload_module("a")`` while b.py, which reads ``a`` at import, is half written:
    b ran again from its first part, and lost ``g`` until its own save was applied.  A
    dependent is not waited for: it follows ``a`` with the code it runs, at once."""
    if not leases_tell(project.root):
        pytest.skip("this system cannot tell a file open for writing")
    project.write("a.py", "def f():\n    return 'a1'\n")
    b_path = project.write(
        "b.py", "from a import f\n\nB = f() + '-b'\n\n\ndef g():\n    return B\n"
    )
    importlib.import_module("a")
    b = importlib.import_module("b")
    hmr.remember_sources()
    project.write("a.py", "def f():\n    return 'a2'\n")
    with open(b_path, "w") as writer, caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        writer.write("from a import f\n\nB = f() + '-b2'\n")  # parses, and has no g
        writer.flush()
        started = time.monotonic()
        ran, _ = hmr.reload_module("a")
        waited = time.monotonic() - started
    assert ran == ["a", "b"]
    assert (b.B, b.g()) == ("a2-b", "a2-b")
    assert waited < 1.0  # not the patience a module asked for gets
    assert [r.getMessage() for r in caplog.records] == [
        f"{b_path} is held open for writing; b keeps running its code"
    ]
    b_path.write_text("from a import f\n\nB = f() + '-b2'\n\n\ndef g():\n    return B + '!'\n")
    assert hmr.reload_module("b")[0] == ["b"]
    assert b.g() == "a2-b2!"


def test_bytes_the_watcher_judged_do_not_undo_a_later_save_the_program_applied(
    project: Project, hmr: Any
) -> None:
    """The watcher's reload waited for the engine while the program's own
    ``reload_module`` applied a later save: the bytes it judged are older than the
    code that runs, and applying them put an old version back for a while."""
    versions = [APPENDS.format(version=n) for n in range(3)]
    path = project.write("a.py", versions[0])
    a = importlib.import_module("a")
    hmr.remember_sources()
    path.write_text(versions[1])  # judged by the watcher, which then waits
    path.write_text(versions[2])  # saved again; the program applies it first
    assert hmr.reload_module("a")[0] == ["a"]
    assert (a.VERSION, a.STATE) == (2, [0, 2])
    result = hmr.reloader.reload_result(["a"], sources={"a": versions[1].encode()})
    assert result.reloaded == []
    assert (a.VERSION, a.STATE) == (2, [0, 2])
    # Saved again since, not applied yet: the file's newest content applies.
    path.write_text(versions[0])
    result = hmr.reloader.reload_result(["a"], sources={"a": versions[1].encode()})
    assert (result.reloaded, a.VERSION, a.STATE) == (["a"], 0, [0, 2, 0])
    # Bytes the file still holds apply as given.
    path.write_text(versions[1])
    result = hmr.reloader.reload_result(["a"], sources={"a": versions[1].encode()})
    assert (result.reloaded, a.VERSION, a.STATE) == (["a"], 1, [0, 2, 0, 1])


def test_system_exit_in_module_code_does_not_end_the_program(project: Project, hmr: Any) -> None:
    project.write("a.py", "X = 1\n")
    a = importlib.import_module("a")
    project.write("a.py", "import sys\nX = 2\nsys.exit(3)\n")
    assert hmr.reload_module("a")[0] == []
    assert a.X == 1


def test_modules_reloaded_before_a_failure_stay_reloaded(
    project: Project, hmr: Any, runs: list[str]
) -> None:
    project.write("a.py", logged("a", "X = 1"))
    project.write("ok.py", logged("ok", "import a\nV = a.X"))
    project.write("bad.py", logged("bad", "import a\nassert a.X < 2, 'X too big'\nV = a.X"))
    project.write("top.py", logged("top", "import bad\nimport ok\nV = bad.V + ok.V"))
    ok = importlib.import_module("ok")
    bad = importlib.import_module("bad")
    top = importlib.import_module("top")
    failed: list[str] = []
    hmr.add_error_handler(lambda name, exc: failed.append(name))
    runs.clear()
    project.write("a.py", logged("a", "X = 5"))
    reloaded, _ = hmr.reload_module("a")
    assert reloaded == ["a", "ok"]
    assert failed == ["bad"]
    assert "top" not in runs  # depends on the failed module: left alone
    assert (ok.V, bad.V, top.V) == (5, 1, 2)
    # A failed module is retried on the next reload.
    project.write("a.py", logged("a", "X = 0"))
    reloaded, _ = hmr.reload_module("a")
    assert sorted(reloaded) == ["a", "bad", "ok", "top"]
    assert (ok.V, bad.V, top.V) == (0, 0, 0)


def test_importers_through_a_second_name_in_sys_modules_are_dependents(
    project: Project, hmr: Any
) -> None:
    """A renamed module's shim (``sys.modules["app.compat"] = real``): its importers
    through the old names are dependents of the module.  Before, they were recorded under
    the second name: a save of ``app/real.py`` reached none of them (no statement ran
    again, no ``from`` binding was rebound), where a fresh start has the new values."""
    project.write(
        "app/__init__.py",
        "import sys\nfrom . import real\n\n"
        "sys.modules['app.compat'] = real\nsys.modules['legacy'] = real\n",
    )
    project.write("app/real.py", "LIMIT = 3\n\n\ndef f():\n    return 'f1'\n")
    project.write("app/u1.py", "from app.compat import f, LIMIT\n\nV = f() + '!'\nL2 = LIMIT * 2\n")
    project.write("app/u2.py", "import legacy\n\nL2 = legacy.LIMIT * 2\n")
    u1 = importlib.import_module("app.u1")
    u2 = importlib.import_module("app.u2")
    assert (u1.V, u1.L2, u1.LIMIT, u2.L2) == ("f1!", 6, 3, 6)
    project.write("app/real.py", "LIMIT = 4\n\n\ndef f():\n    return 'f2'\n")
    reloaded, _ = hmr.reload_module("app.real")
    assert sorted(reloaded) == ["app.real", "app.u1", "app.u2"]
    assert (u1.V, u1.L2, u1.LIMIT, u2.L2) == ("f2!", 8, 4, 8)
    assert u1.f() == "f2"


def test_dependent_of_a_removed_name_fails_with_an_import_error(project: Project, hmr: Any) -> None:
    project.write("a.py", "def helper(): return 1\n")
    project.write("b.py", "from a import helper\nVALUE = helper()\n")
    b = importlib.import_module("b")
    errors: list[tuple[str, BaseException]] = []
    hmr.add_error_handler(lambda name, exc: errors.append((name, exc)))
    project.write("a.py", "def renamed(): return 2\n")
    reloaded, _ = hmr.reload_module("a")
    assert reloaded == ["a"]
    assert [name for name, _ in errors] == ["b"]
    assert isinstance(errors[0][1], ImportError)
    assert "helper" in str(errors[0][1])
    assert b.VALUE == 1
    assert b.helper() == 1


@pytest.mark.parametrize("spelling", ["from a import X\nY = X * 10\n", "import a\nY = a.X * 10\n"])
def test_a_value_put_back_runs_again_the_dependents_that_failed_while_it_was_gone(
    project: Project, hmr: Any, spelling: str
) -> None:
    """``X`` removed, then saved again with another value: the dependent that failed
    for want of it follows, as a cold start would (it kept its old value)."""
    project.write("a.py", "X = 1\n")
    project.write("b.py", spelling)
    a, b = importlib.import_module("a"), importlib.import_module("b")
    hmr.remember_sources()
    project.write("a.py", "X = 2\n")
    assert hmr.reload("a").reloaded == ["a", "b"]
    assert b.Y == 20
    project.write("a.py", "# X removed\n")
    result = hmr.reload("a")
    assert (result.reloaded, list(result.failed)) == (["a"], ["b"])
    assert b.Y == 20
    # b's file holds the code that runs, as it always did: asked for (the watcher looks
    # at the files beside a saved one), it is no failed edit undone.
    result = hmr.reload("b")
    assert (result.reloaded, result.recovered) == ([], [])
    assert "b" in hmr.reloader.failing
    project.write("a.py", "X = 3\n")
    result = hmr.reload("a")
    assert (result.reloaded, result.recovered) == (["a", "b"], ["b"])
    assert (a.X, b.Y) == (3, 30)


def test_import_cycles_reload_each_module_once(project: Project, hmr: Any, runs: list[str]) -> None:
    project.write("x.py", logged("x", "import y\nX = 1\ndef get(): return y.Y"))
    project.write("y.py", logged("y", "import x\nY = 2\ndef get(): return x.X"))
    project.write("z.py", logged("z", "import x\nZ = x.X"))
    x = importlib.import_module("x")
    z = importlib.import_module("z")
    runs.clear()
    hmr.cascade = "always"  # every dependent whole, as the seed implementation does
    project.write("y.py", logged("y", "import x\nY = 20\ndef get(): return x.X"))
    reloaded, _ = hmr.reload_module("y")
    assert reloaded == runs
    assert reloaded[:2] == ["y", "x"]  # the edited module first inside its cycle
    assert reloaded[2:] == ["z"]
    assert x.get() == 20
    assert z.Z == 1
    # auto: x and z consumed nothing of y at import time; y re-runs its edit only.
    hmr.cascade = "auto"
    runs.clear()
    project.write("y.py", logged("y", "import x\nY = 30\ndef get(): return x.X"))
    assert hmr.reload_module("y")[0] == ["y"]
    assert runs == []  # the statement that logs did not change: it did not run again
    assert x.get() == 30


@pytest.mark.parametrize("name", ["json", "pytest", "never_imported_xyz", "__main__"])
def test_names_that_are_not_project_modules_execute_nothing(
    project: Project, hmr: Any, runs: list[str], caplog: pytest.LogCaptureFixture, name: str
) -> None:
    project.write("uses_json.py", logged("uses_json", "import json\nimport pytest"))
    importlib.import_module("uses_json")
    runs.clear()
    with caplog.at_level(logging.INFO, logger="muckrack_hmr"):
        reloaded, elapsed = hmr.reload_module(name)
    assert reloaded == []
    assert isinstance(elapsed, float)
    assert runs == []
    assert any(f"not reloading {name}" in r.getMessage() for r in caplog.records)


def test_a_call_with_the_wrong_kind_of_argument_says_what_it_takes(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """``reload_modules("settings")`` tried a module per letter ("not reloading s: it was
    never imported" eight times), ``reload_module(["settings"])`` died on an unhashable
    list, and a hook that is no function was taken, to fail at the next reload.  Each
    now raises a TypeError that says what the call takes, and nothing is reloaded."""
    project.write("settings.py", "X = 1\n")
    settings = importlib.import_module("settings")
    project.write("settings.py", "X = 2\n")
    with caplog.at_level(logging.INFO, logger="muckrack_hmr"):
        with pytest.raises(
            TypeError,
            match=r"^reload_modules\(\) takes a list of module names, "
            r"not str \(reload_module\('settings'\) reloads one\)$",
        ):
            hmr.reload_modules("settings")
        for call in (hmr.reload_module, hmr.reload):
            for wrong in (["settings"], None, 42):
                with pytest.raises(TypeError, match=r"takes a module's name \(a str"):
                    call(wrong)
        with pytest.raises(TypeError, match=r"^reload_modules\(\) takes a module's name"):
            hmr.reload_modules([settings])
        for add in (
            hmr.add_pre_reload_hook,
            hmr.add_post_reload_hook,
            hmr.add_error_handler,
            hmr.add_result_hook,
            hmr.add_refusal_check,
            hmr.on_dispose,
        ):
            with pytest.raises(TypeError, match=r"takes a function, not int: 42$"):
                add(42)
    assert caplog.records == []
    assert settings.X == 1
    assert hmr.reload_modules(["settings"])[0] == ["settings"]
    assert settings.X == 2


@pytest.mark.parametrize("whole", [False, True], ids=["statements", "whole"])
def test_a_function_moved_to_another_module_says_that_references_keep_the_old_code(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture, whole: bool
) -> None:
    """``def util`` in a.py became ``from c import util`` (moved, imported back under its
    name): ``a.util`` is c's, and a callback the program stored before keeps the old
    code, as no patch can give it c's (its globals are a's).  No line said so."""
    project.write("a.py", "def util(x):\n    return f'old{x}'\n")
    a = importlib.import_module("a")
    hmr.remember_sources()
    held = a.util
    project.write("c.py", "def util(x):\n    return f'new{x}'\n")
    project.write("a.py", "from c import util\n")
    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        assert hmr.reload_module("a", force=whole)[0] == ["a"]
    assert (a.util(1), held(2)) == ("new1", "old2")
    assert [r.getMessage() for r in caplog.records] == [
        "a.util is a new function object (c.util now): the name runs the new code, "
        "references taken before it (a callback stored) keep the old"
    ]


def test_a_module_whose_file_became_a_folder_fails_naming_the_file(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The read's error had no file name, nor a frame of the user's code: the line said
    ``failed to reload m (<unknown>): IsADirectoryError: [Errno 21] Is a directory``."""
    path = project.write("m.py", "X = 1\n")
    m = importlib.import_module("m")
    hmr.remember_sources()
    os.remove(path)
    os.mkdir(path)
    with caplog.at_level(logging.ERROR, logger="muckrack_hmr"):
        assert hmr.reload_module("m")[0] == []
    assert m.X == 1
    said = caplog.records[0].getMessage()
    assert said.startswith(f"failed to reload m ({path}): IsADirectoryError: [Errno 21] ")


def test_hooks_run_once_per_module_in_order(project: Project, hmr: Any) -> None:
    project.write("a.py", "X = 1\n")
    project.write("b.py", "import a\nY = a.X\n")
    a = importlib.import_module("a")
    importlib.import_module("b")
    events: list[tuple[str, str, int]] = []

    def pre(name: str) -> None:
        events.append(("pre", name, a.X))

    def post(name: str) -> None:
        events.append(("post", name, a.X))

    hmr.add_pre_reload_hook(pre)
    hmr.add_post_reload_hook(post)
    project.write("a.py", "X = 2\n")
    hmr.reload_module("a")
    assert events == [("pre", "a", 1), ("post", "a", 2), ("pre", "b", 2), ("post", "b", 2)]
    hmr.remove_pre_reload_hook(pre)
    hmr.remove_post_reload_hook(post)
    events.clear()
    hmr.reload_module("a")
    assert events == []
    # Said with the call and the function (it was list.remove's "x not in list").
    with pytest.raises(
        ValueError,
        match=r"^remove_pre_reload_hook\(\): <function .*pre.* was not added "
        r"\(by add_pre_reload_hook\(\)\)$",
    ):
        hmr.remove_pre_reload_hook(pre)


def test_result_hooks_run_once_per_reload_with_what_it_did(project: Project, hmr: Any) -> None:
    project.write("a.py", "X = 1\n")
    project.write("b.py", "import a\nY = a.X\n")
    importlib.import_module("a")
    importlib.import_module("b")
    results: list[tuple[list[str], list[str], list[str]]] = []

    def hook(result: Any) -> None:
        results.append((list(result.reloaded), sorted(result.failed), list(result.recovered)))

    hmr.add_result_hook(hook)
    project.write("a.py", "X = 2\n")
    hmr.reload_module("a")
    assert results == [(["a", "b"], [], [])]  # one call for the module and its dependent
    hmr.reload_module("a")
    assert len(results) == 1  # nothing to apply: nothing reported
    project.write("a.py", "X = (\n")
    hmr.reload_module("a")
    assert results[1] == ([], ["a"], [])
    project.write("a.py", "X = 3\n")
    hmr.reload_module("a")
    assert results[2] == (["a", "b"], [], ["a"])
    hmr.remove_result_hook(hook)
    project.write("a.py", "X = 4\n")
    hmr.reload_module("a")
    assert len(results) == 3
    with pytest.raises(ValueError, match=r"^remove_result_hook\(\): .* was not added"):
        hmr.remove_result_hook(hook)


def test_a_raising_hook_is_reported_and_does_not_abort(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture
) -> None:
    project.write("a.py", "X = 1\n")
    a = importlib.import_module("a")
    errors: list[tuple[str, BaseException]] = []

    def handler(name: str, exc: BaseException) -> None:
        errors.append((name, exc))

    def bad_hook(name: str) -> None:
        raise RuntimeError(f"hook failed for {name}")

    def bad_handler(name: str, exc: BaseException) -> None:
        raise RuntimeError("handler failed too")

    hmr.add_error_handler(handler)
    hmr.add_error_handler(bad_handler)
    hmr.add_pre_reload_hook(bad_hook)
    hmr.add_post_reload_hook(bad_hook)
    project.write("a.py", "X = 2\n")
    with caplog.at_level(logging.ERROR, logger="muckrack_hmr"):
        assert hmr.reload_module("a")[0] == ["a"]
    assert a.X == 2
    assert [(name, str(exc)) for name, exc in errors] == [
        ("a", "hook failed for a"),
        ("a", "hook failed for a"),
    ]
    assert any("pre-reload hook" in r.getMessage() for r in caplog.records)
    hmr.remove_error_handler(bad_handler)
    hmr.remove_error_handler(handler)
    errors.clear()
    project.write("a.py", "1/0\n")
    hmr.reload_module("a")
    assert errors == []


def test_a_reload_requested_during_a_reload_runs_afterwards(
    project: Project, hmr: Any, runs: list[str]
) -> None:
    project.write("a.py", logged("a", "X = 1"))
    project.write("other.py", logged("other", "Y = 1"))
    importlib.import_module("a")
    importlib.import_module("other")
    nested: list[Any] = []

    def hook(name: str) -> None:
        if name == "a":
            nested.append(hmr.reload_module("other", force=True))

    hmr.add_post_reload_hook(hook)
    runs.clear()
    project.write("a.py", logged("a", "X = 2"))
    reloaded, _ = hmr.reload_module("a", force=True)
    assert nested[0][0] == []  # queued, not run inside the reload of a
    assert reloaded == ["a", "other"]
    assert runs == ["a", "other"]


def test_one_info_line_per_reload(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture
) -> None:
    project.write("a.py", "X = 1\n")
    project.write("b.py", "import a\n")
    project.write("c.py", "import a\n")
    importlib.import_module("b")
    importlib.import_module("c")
    hmr.cascade = "always"
    project.write("a.py", "X = 2\n")
    with caplog.at_level(logging.INFO, logger="muckrack_hmr"):
        hmr.reload_module("a")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert lines[0].startswith("reloaded a (+2 dependents) in ")
    assert lines[0].endswith(" ms")


@pytest.fixture
def fake_main(project: Project) -> Any:
    """Run a script in a real ``__main__`` module (as the CLI does), in-process."""
    saved = sys.modules["__main__"]

    def run(source: str) -> dict[str, Any]:
        path = project.write("script.py", source)
        main = type(sys)("__main__")
        main.__file__ = str(path)
        sys.modules["__main__"] = main
        exec(compile(path.read_text(), str(path), "exec"), main.__dict__)
        return main.__dict__

    yield run
    sys.modules["__main__"] = saved


def test_main_from_imports_follow_the_new_objects(
    project: Project, hmr: Any, fake_main: Any, caplog: pytest.LogCaptureFixture
) -> None:
    project.write("a.py", "def f(): return 'old'\nX = 1\nY = 1\ndef gone(): return 1\n")
    project.write("stars.py", "__all__ = ['s']\ndef s(): return 'old'\n")
    main = fake_main(
        "from a import f, f as g, X, Y, gone\nfrom stars import *\nY = 'mine'\n"
        "def call(): return f()\n"
    )
    assert (main["f"](), main["g"](), main["X"], main["call"](), main["s"]()) == (
        "old",
        "old",
        1,
        "old",
        "old",
    )
    project.write("a.py", "def f(): return 'new'\nX = 2\nY = 2\n")
    project.write("stars.py", "__all__ = ['s', 'added']\ndef s(): return 'new'\nadded = 1\n")
    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        assert hmr.reload_modules(["a", "stars"])[0] == ["a", "stars"]
    assert (main["f"](), main["g"](), main["X"], main["call"](), main["s"]()) == (
        "new",
        "new",
        2,
        "new",
        "new",
    )
    assert main["added"] == 1
    assert main["Y"] == "mine"  # rebound by the script itself: left alone
    assert main["gone"]() == 1  # removed from a: the script keeps its object, with a warning
    assert any("__main__ still refers to a.gone" in r.getMessage() for r in caplog.records)


def test_the_engine_is_made_once_when_threads_ask_for_it_together(
    hmr: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watcher's thread and the program's own ``reload_module`` may be the first to
    need the engine at the same moment: both get the same one, so their reloads take
    turns under one lock (two engines applied one save twice, the second time whole)."""
    from muckrack_hmr.reload.reloader import Reloader

    assert hmr._reloader is None  # made on first use, not at install
    made: list[object] = []
    original = Reloader.__init__

    def slow_init(self: Any, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        time.sleep(0.05)  # a long first use: the import of the engine, say
        original(self, *args, **kwargs)

    monkeypatch.setattr(Reloader, "__init__", slow_init)
    start = threading.Barrier(4)
    got: list[object] = []

    def first_use() -> None:
        start.wait(timeout=DEADLINE)
        got.append(hmr.reloader)

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DEADLINE)
    assert len(got) == 4
    assert len(made) == 1
    assert all(reloader is got[0] for reloader in got)


def test_a_module_aliasing_another_ones_file_does_not_take_its_saves(
    project: Project, hmr: Any
) -> None:
    """toolz's ``tlz.itertoolz`` copies ``toolz.itertoolz`` and its ``__file__``: a save of
    the file is the real module's (its loader ran that file), never the alias's."""
    project.write("real.py", "def f():\n    return 1\n")
    project.write(
        "make_alias.py",
        """\
import importlib.machinery
import sys
import types

import real

alias = types.ModuleType("alias")
alias.__dict__.update(real.__dict__)
alias.__name__ = "alias"
alias.__spec__ = importlib.machinery.ModuleSpec("alias", None)
sys.modules["alias"] = alias
""",
    )
    project.write(
        "user.py", "import make_alias\nimport alias\n\ndef call():\n    return alias.f()\n"
    )
    user = importlib.import_module("user")
    path = os.path.realpath(os.path.join(project.root, "real.py"))
    assert hmr.tracker.is_tracked("alias")  # the alias is project code too
    assert hmr.project.loaded[path][0] == "real"
    project.write("real.py", "def f():\n    return 2\n")
    reloaded, _ = hmr.reload_module(hmr.project.loaded[path][0])
    assert reloaded == ["real"]
    assert user.call() == 2  # the alias holds the same function, patched in place


def test_another_thread_never_sees_a_failed_reload_half_applied(project: Project, hmr: Any) -> None:
    """The body of ``f`` is patched, then a later statement of the same save raises: the
    patch is undone.  A thread calling ``f`` all the while sees the old body only, even
    when the failing statement computes for 12 ms (two of the interpreter's usual
    switches; the reload keeps the others out for _APPLYING_SWITCH_INTERVAL)."""
    project.write("a.py", "def f():\n    return 'old'\n")
    module = importlib.import_module("a")
    held = module.f
    project.write(
        "a.py",
        "def f():\n    return 'new'\n\n\nimport time\n\n_start = time.perf_counter()\n"
        "while time.perf_counter() - _start < 0.012:\n    pass\n"
        "raise RuntimeError('broken save')\n",
    )
    seen: set[str] = set()
    started = threading.Event()
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            seen.add(held())
            started.set()

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        assert started.wait(timeout=DEADLINE)
        began = time.perf_counter()
        reloaded, _ = hmr.reload_module("a")
        took = time.perf_counter() - began
    finally:
        stop.set()
        thread.join(timeout=DEADLINE)
    assert reloaded == []
    assert "a" in hmr.reloader.failing
    assert held() == "old"
    if seen != {"old"} and took > _APPLYING_SWITCH_INTERVAL:
        # The other threads are held off by the switch interval, a wall-clock span:
        # a machine that took the reload's thread off its core for longer (a whole
        # test run on two cores) let the hammer in, as it lets any program's thread.
        pytest.skip(f"the reload took {took * 1000:.0f} ms of wall time on a loaded machine")
    assert seen == {"old"}


@pytest.mark.skipif(not hasattr(os, "sched_yield"), reason="no os.sched_yield here")
def test_a_reload_lets_other_threads_in_without_sleeping(
    project: Project, hmr: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Holding the other threads off starts by letting them have the interpreter once;
    time.sleep(0) did it by sleeping the kernel's timer slack (80 us here), twice for
    each module reloaded.  Nothing in a reload sleeps."""
    project.write("a.py", "def f():\n    return 'old'\n")
    module = importlib.import_module("a")
    hmr.remember_sources()
    slept: list[float] = []
    real_sleep = time.sleep

    def recording(seconds: float) -> None:
        slept.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", recording)
    for version in ("new", "newer"):
        project.write("a.py", f"def f():\n    return {version!r}\n")
        assert hmr.reload_module("a")[0] == ["a"]
        assert module.f() == version
    monkeypatch.undo()
    assert slept == []


def test_no_garbage_collection_runs_while_the_new_code_goes_in(project: Project, hmr: Any) -> None:
    """A collection in a reload would run the program's finalizers on half-patched
    modules, and one due since start-up (100+ ms with a big heap) held the new code
    back: the collector waits for the reload's end, and is on again after it (after a
    failed one too); a program that turned it off keeps it off."""
    import gc

    project.write("a.py", "import gc\n\ndef f():\n    return 'old'\n")
    module = importlib.import_module("a")
    hmr.remember_sources()
    thresholds = gc.get_threshold()
    collected: list[int] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collected.append(info["generation"])

    def restart(name: str) -> None:
        collected.clear()

    gc.callbacks.append(record)
    gc.set_threshold(1, 1, 1)  # every allocation of a container collects
    try:
        assert gc.isenabled()
        project.write(
            "a.py",
            "import gc\n\nDURING = (gc.isenabled(), len(COLLECTED))\n\n"
            "def f():\n    return 'new'\n",
        )
        module.COLLECTED = collected
        # Counted from the reload's start (its hooks run inside it).
        hmr.add_pre_reload_hook(restart)
        assert hmr.reload_module("a")[0] == ["a"]
        assert module.f() == "new"
        assert module.DURING == (False, 0)
        assert gc.isenabled()
        collected.clear()
        made = [type("Made", (), {}) for _ in range(10)]  # a collection: the collector is on
        assert made
        assert collected

        project.write("a.py", "import gc\n\nDURING = 1 / 0\n\ndef f():\n    return 'new'\n")
        assert hmr.reload_module("a")[0] == []
        assert module.DURING == (False, 0)
        assert gc.isenabled()

        gc.disable()
        project.write(
            "a.py", "import gc\n\nDURING = gc.isenabled()\n\ndef f():\n    return 'newer'\n"
        )
        assert hmr.reload_module("a")[0] == ["a"]
        assert module.f() == "newer"
        assert module.DURING is False
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.set_threshold(*thresholds)
        gc.callbacks.remove(record)
        hmr.remove_pre_reload_hook(restart)


@pytest.mark.parametrize("force", [False, True])
def test_a_module_that_raises_keyboardinterrupt_fails_its_edit_off_the_main_thread(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture, force: bool
) -> None:
    """The watcher's thread reloads: a ``raise KeyboardInterrupt`` of the module's own
    is its edit's failure (the user's Ctrl-C reaches the main thread), as SystemExit
    is; the watcher lived on, and the next save applied."""
    project.write("a.py", "A = 1\nB = 1\n")
    a = importlib.import_module("a")
    hmr.remember_sources()
    results: list[object] = []

    def reload() -> None:
        try:
            results.append(hmr.reload_module("a", force=force)[0])
        except BaseException as exc:  # what the test is about
            results.append(exc)

    project.write("a.py", "A = 2\nraise KeyboardInterrupt\nB = 2\n")
    with caplog.at_level(logging.ERROR, logger="muckrack_hmr"):
        worker = threading.Thread(target=reload)
        worker.start()
        worker.join(10)
    assert results == [[]]
    assert (a.A, a.B) == (1, 1)
    summary = caplog.records[0].getMessage().splitlines()[0]
    assert f"({project.root / 'a.py'}:2)" in summary
    assert "KeyboardInterrupt" in summary
    project.write("a.py", "A = 3\nB = 3\n")
    worker = threading.Thread(target=reload)
    worker.start()
    worker.join(10)
    assert results[-1] == ["a"]
    assert (a.A, a.B) == (3, 3)


@pytest.mark.parametrize("force", [False, True])
def test_bytes_that_are_no_text_of_their_encoding_fail_at_their_line(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture, force: bool
) -> None:
    """As python says it: invalid UTF-8 at its line, an unknown ``coding:`` at its
    line (not ``<unknown>``, nor a line of the standard library's tokenize)."""
    project.write("a.py", "X = 1\n")
    a = importlib.import_module("a")
    hmr.remember_sources()
    (project.root / "a.py").write_bytes('X = 2\nS = "café"\n'.encode())
    assert hmr.reload_module("a", force=force)[0] == ["a"]
    path = project.root / "a.py"
    for content, line, words in [
        (b'X = 3\nS = "caf\xe9"\n', 2, "SyntaxError: "),  # (python's words vary)
        (b"# -*- coding: nonexistent -*-\nX = 4\n", 1, "SyntaxError: unknown encoding"),
    ]:
        path.write_bytes(content)
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="muckrack_hmr"):
            assert hmr.reload_module("a", force=force)[0] == []
        summary = caplog.records[0].getMessage().splitlines()[0]
        assert f"failed to reload a ({path}:{line}): {words}" in summary
        assert a.X == 2
    path.write_bytes(b"X = 5\n")
    assert hmr.reload_module("a", force=force)[0] == ["a"]
    assert a.X == 5


def test_a_module_whose_comment_holds_bytes_of_no_encoding_reloads_as_python_imports_it(
    project: Project, hmr: Any
) -> None:
    """A latin-1 ``é`` in a comment, no coding line: python imports it, and it could
    never be reloaded (every save failed with UnicodeDecodeError, no file, no line)."""
    try:
        compile(b"N = 1\n# caf\xe9\n", "n.py", "exec")
    except SyntaxError:
        pytest.skip("this Python refuses such a comment (3.14+): no module to reload")
    path = project.root / "n.py"
    path.write_bytes(b"N = 1\n# caf\xe9\n")
    n = importlib.import_module("n")
    hmr.remember_sources()
    path.write_bytes(b"N = 2\n")
    assert hmr.reload_module("n")[0] == ["n"]
    path.write_bytes(b"N = 3\n# caf\xe9 again\n")
    assert hmr.reload_module("n")[0] == ["n"]
    assert n.N == 3


def test_a_dependent_that_failed_to_follow_follows_with_its_own_next_edit(
    project: Project, hmr: Any
) -> None:
    """b failed to follow a's change (it kept ``A = 1``); its own next edit makes it
    follow what it imports, as a fresh start would (the unchanged ``from a import A``
    did not run again: b computed with the old A for good)."""
    project.write("a.py", "A = 1\n")
    project.write(
        "b.py", "from a import A\n\nif A == 2:\n    raise RuntimeError('not yet')\nB = A * 10\n"
    )
    a, b = importlib.import_module("a"), importlib.import_module("b")
    hmr.remember_sources()
    project.write("a.py", "A = 2\n")
    result = hmr.reload("a")
    assert (result.reloaded, list(result.failed)) == (["a"], ["b"])
    assert (a.A, b.A, b.B) == (2, 1, 10)
    project.write("b.py", "from a import A\n\nB = A * 10\n")
    result = hmr.reload("b")
    assert (result.reloaded, result.recovered) == (["b"], ["b"])
    assert (b.A, b.B) == (2, 20)


def test_a_dependent_that_failed_to_follow_keeps_the_state_its_other_imports_made(
    project: Project, hmr: Any
) -> None:
    """``core`` failed to follow ``helpers``' rename; its own next edit (the new name, a
    view changed) runs again what reads ``helpers``' names, and nothing that reads only
    its other imports: ``STATE = Counter()`` keeps its count, ``app = App(...)`` its app
    (each ran again before: a Flask app made anew is refused, and the state was lost)."""
    project.write("helpers.py", "def get_x():\n    return 'x'\n")
    project.write(
        "framework.py", "class App:\n    def __init__(self, name):\n        self.name = name\n"
    )
    core_source = (
        "from collections import Counter\n\n"
        "from framework import App\n"
        "from helpers import get_x\n\n"
        "STATE = Counter()\n"
        "app = App(__name__)\n"
        "PREFIX = get_x()\n\n\n"
        "def view():\n"
        "    STATE['n'] += 1\n"
        "    return f\"v1 {PREFIX}{get_x()} n={STATE['n']}\"\n"
    )
    project.write("core.py", core_source)
    core = importlib.import_module("core")
    app, state = core.app, core.STATE
    assert (core.view(), core.view()) == ("v1 xx n=1", "v1 xx n=2")
    hmr.remember_sources()

    project.write("helpers.py", "def fetch_x():\n    return 'y'\n")
    result = hmr.reload("helpers")
    assert (result.reloaded, list(result.failed)) == (["helpers"], ["core"])  # ImportError
    assert core.view() == "v1 xx n=3"

    project.write("core.py", core_source.replace("get_x", "fetch_x").replace("v1", "v2"))
    result = hmr.reload("core")
    assert (result.reloaded, result.recovered) == (["core"], ["core"])
    assert core.view() == "v2 yy n=4"  # PREFIX, which read the helper, ran again
    assert core.app is app
    assert core.STATE is state
