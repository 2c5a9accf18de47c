"""The watcher's decisions, driven in-process with a fake backend and a fake clock.

A real HMR (both cores) on a real throwaway project reloads real modules; only
the OS boundary (where file events come from) and time are faked, so each test
feeds events, moves the clock, and asserts exactly which reload transactions
happened.  The real backends run in ``test_watcher.py``.
"""

from __future__ import annotations

import errno
import gc
import importlib
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from muckrack_hmr import collector
from muckrack_hmr.watch import backends, safepoint, saves
from muckrack_hmr.watch import idle as idle_work
from muckrack_hmr.watch import pipeline as pipeline_module
from muckrack_hmr.watch.backends import (
    CLOSED,
    CREATED,
    DELETED,
    FOLDER,
    MODIFIED,
    MOVED_AWAY,
    TOUCHED,
    Backend,
    CheckedBackend,
    PollingBackend,
    WatchdogBackend,
    mounts,
)
from muckrack_hmr.watch.debounce import FORCE_AFTER, MAX_QUIET, Batch
from muckrack_hmr.watch.saves import OPEN_PATIENCE, SETTLE
from muckrack_hmr.watch.watcher import Watcher
from tests.conftest import Project, leases_tell
from tests.subprocesses import A_NEW, A_OLD

DEBOUNCE = 0.005


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeBackend(Backend):
    """Reports what the test emits; ``refuse``: out of watches, like inotify can be."""

    name = "fake"

    def __init__(self, *, reports_close: bool = True, refuse: bool = False) -> None:
        self.reports_close = reports_close
        self.refuse = refuse
        self.folders: list[str] = []
        self.rewatched: list[str] = []
        self.sink: Any = None
        self.stopped = False

    def start(self, sink: Any) -> None:
        self.sink = sink

    def watch(self, folder: str) -> None:
        if self.refuse:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")
        self.folders.append(folder)

    def rewatch(self, folder: str) -> None:
        self.rewatched.append(folder)

    def stop(self) -> None:
        self.stopped = True


class Rig:
    """A watcher on the project with a fake backend and clock, recording transactions."""

    def __init__(self, project: Project, hmr: Any, watcher: Watcher, backend: FakeBackend) -> None:
        self.project = project
        self.hmr = hmr
        self.watcher = watcher
        self.backend = backend
        self.clock: FakeClock = watcher.clock  # type: ignore[assignment]
        self.transactions: list[list[str]] = []
        self.results: list[Any] = []

    def path(self, relpath: str) -> str:
        """The path the backend reports: the watched (real) folder, then the name."""
        return os.path.join(os.path.realpath(self.project.root), relpath)

    def load(self, *names: str) -> list[Any]:
        modules = [importlib.import_module(name) for name in names]
        self.watcher.refresh()
        self.hmr.remember_sources()
        return modules

    def emit(self, relpath: str, *kinds: str) -> None:
        for kind in kinds:
            self.backend.sink(self.path(relpath), kind)

    def save(self, relpath: str, source: str, *kinds: str) -> None:
        """Write ``relpath`` in place and report it (modified then closed, by default)."""
        self.project.write(relpath, source)
        self.emit(relpath, *(kinds or (MODIFIED, CLOSED)))

    def step_after(self, seconds: float) -> bool:
        self.clock.advance(seconds)
        return self.watcher.step()

    def settle(self) -> None:
        """Move the clock until nothing is pending, judging each batch when it is due."""
        for _ in range(100):
            due = self.watcher.pipeline.batch.due_in(self.clock())
            if due is None:
                return
            self.clock.advance(due)
            self.watcher.step()
        raise AssertionError("the watcher never settled")


@pytest.fixture
def make_rig(project: Project, hmr: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    rigs: list[Rig] = []

    def make(**options: Any) -> Rig:
        backend = options.pop("backend", None) or FakeBackend()
        watcher = Watcher(hmr, debounce=DEBOUNCE, backend=backend, clock=FakeClock(), **options)
        rig = Rig(project, hmr, watcher, backend)
        original = hmr.reloader.reload_result

        def recording(names: Any, **options: Any) -> Any:
            names = list(names)
            rig.transactions.append(names)
            result = original(names, **options)
            rig.results.append(result)
            return result

        monkeypatch.setattr(hmr.reloader, "reload_result", recording)
        watcher.start(thread=False)
        rigs.append(rig)
        return rig

    try:
        yield make
    finally:
        for rig in rigs:
            rig.watcher.stop()


# -- the debounce ----------------------------------------------------------------


def test_a_save_is_applied_once_the_debounce_has_passed(make_rig: Any) -> None:
    rig = make_rig()
    rig.project.write("a.py", A_OLD)
    (a,) = rig.load("a")
    assert a.f() == "old"

    rig.save("a.py", A_NEW)

    assert not rig.step_after(DEBOUNCE * 0.8)  # still within the quiet time
    assert rig.transactions == []
    assert rig.step_after(DEBOUNCE * 0.4)
    assert rig.transactions == [["a"]]
    assert (a.f(), a.X) == ("new", 2)


def test_quiet_time_grows_with_the_burst_and_its_gaps() -> None:
    batch = Batch(DEBOUNCE, reports_close=False)
    batch.add("/p/a.py", MODIFIED, 0.0)
    assert batch.quiet() == pytest.approx(DEBOUNCE)
    for index in range(1, 16):
        batch.add(f"/p/m{index}.py", MODIFIED, 0.0001 * index)
    assert batch.quiet() == pytest.approx(DEBOUNCE * 5)  # 16 files: 1 + log2(16)
    batch.add("/p/late.py", MODIFIED, 0.0015 + 0.04)  # a 40 ms gap: the machine is busy
    assert batch.quiet() == pytest.approx(0.08)
    batch.add("/p/later.py", MODIFIED, 0.0415 + 0.2)
    assert batch.quiet() == pytest.approx(MAX_QUIET)  # capped
    slow = Batch(0.5, reports_close=False)
    slow.add("/p/a.py", MODIFIED, 0.0)
    slow.add("/p/b.py", MODIFIED, 0.0)
    assert slow.quiet() == pytest.approx(0.5)  # a debounce above the cap is kept


def test_a_burst_of_saves_is_one_transaction_in_dependency_order(make_rig: Any) -> None:
    rig = make_rig()
    count = 30
    rig.project.write("chain/m00.py", "V = 0\n")
    for index in range(1, count):
        rig.project.write(
            f"chain/m{index:02d}.py", f"from .m{index - 1:02d} import V as PREV\nV = PREV + 1\n"
        )
    rig.project.write(
        "chain/__init__.py", "".join(f"from . import m{index:02d}\n" for index in range(count))
    )
    (chain,) = rig.load("chain")
    assert chain.m29.V == 29

    # A checkout rewrites every file, the last one first.
    for index in reversed(range(1, count)):
        rig.save(
            f"chain/m{index:02d}.py", f"from .m{index - 1:02d} import V as PREV\nV = PREV + 2\n"
        )
        rig.clock.advance(0.002)  # gaps within the burst
    rig.save("chain/m00.py", "V = 1000\n")
    rig.settle()

    assert len(rig.transactions) == 1
    assert sorted(rig.transactions[0]) == [f"chain.m{index:02d}" for index in range(count)]
    # Dependencies first: each module ran once, after the one it imports.
    assert rig.results[0].reloaded == [f"chain.m{index:02d}" for index in range(count)]
    assert chain.m29.V == 1000 + 2 * 29


def test_a_file_of_the_burst_whose_event_is_late_joins_it(make_rig: Any) -> None:
    rig = make_rig()
    rig.project.write("a.py", A_OLD)
    rig.project.write("b.py", "import a\n\nY = a.X * 10\n")
    _, b = rig.load("a", "b")

    rig.project.write("b.py", "import a\n\nY = a.X * 100\n")  # its event is still on its way
    rig.save("a.py", A_NEW)
    rig.settle()

    assert len(rig.transactions) == 1
    assert sorted(rig.transactions[0]) == ["a", "b"]
    assert b.Y == 200
    rig.emit("b.py", MODIFIED, CLOSED)  # the late event: nothing left to do
    rig.settle()
    assert len(rig.transactions) == 1


# -- what counts as a change -------------------------------------------------------


def test_a_touch_or_the_same_content_reloads_nothing(make_rig: Any) -> None:
    rig = make_rig()
    rig.project.write("a.py", A_OLD)
    rig.load("a")

    os.utime(rig.path("a.py"))
    rig.emit("a.py", TOUCHED)
    rig.save("a.py", A_OLD)  # saved again, unchanged
    rig.settle()

    assert rig.transactions == []


def test_a_new_file_nobody_imports_is_ignored(make_rig: Any) -> None:
    """Not even looked at once the idle work has analyzed the modules, and none has an
    optional import (``try: import x`` / ``except ImportError``) that may want it."""
    rig = make_rig()
    rig.project.write("a.py", A_OLD)
    rig.load("a")
    rig.hmr.warm()

    rig.save("fresh.py", "raise SystemExit('never run')\n", CREATED, MODIFIED, CLOSED)

    assert rig.watcher.pipeline.batch.due_in(rig.clock()) is None  # not even pending
    rig.settle()
    assert rig.transactions == []


def test_excluded_modules_are_not_reloaded(make_rig: Any) -> None:
    rig = make_rig(exclude=["gen_*.py"])
    rig.project.write("gen_table.py", "ROWS = 1\n")
    rig.project.write("a.py", A_OLD)
    gen_table, _ = rig.load("gen_table", "a")

    rig.save("gen_table.py", "ROWS = 2\n")
    rig.save("a.py", A_NEW)
    rig.settle()

    assert rig.transactions == [["a"]]
    assert gen_table.ROWS == 1


# -- unfinished files -----------------------------------------------------------------


def test_a_truncated_file_is_never_applied(make_rig: Any) -> None:
    rig = make_rig()
    rig.project.write("a.py", A_OLD)
    (a,) = rig.load("a")

    rig.save("a.py", "")  # truncated (and even closed) ...
    assert rig.step_after(DEBOUNCE)  # judged: it waits
    assert rig.transactions == []
    rig.clock.advance(SETTLE / 2)
    rig.save("a.py", A_NEW)  # ... then the content arrives
    rig.settle()

    assert rig.transactions == [["a"]]
    assert (a.f(), a.X) == ("new", 2)


def test_a_truncated_file_judged_late_still_gets_its_time(
    make_rig: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # A loaded machine keeps the watcher's thread off its core: the truncation is
    # judged long after its event, yet the write that follows is waited for.
    rig = make_rig(backend=FakeBackend(reports_close=False))
    rig.project.write("a.py", A_OLD)
    (a,) = rig.load("a")

    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        rig.save("a.py", "", MODIFIED)
        assert rig.step_after(SETTLE * 5)  # the first look, 0.5 s late: it waits
        assert rig.transactions == []
        rig.clock.advance(SETTLE / 2)
        rig.save("a.py", A_NEW, MODIFIED)  # the rest of the write
        rig.settle()

    assert rig.transactions == [["a"]]
    assert (a.f(), a.X) == ("new", 2)
    assert not [r for r in caplog.records if "is empty" in r.getMessage()]

    # Judged late and still empty after its time: the old code stays, said once.
    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        rig.save("a.py", "", MODIFIED)
        assert rig.step_after(SETTLE * 5)
        assert rig.transactions == [["a"]]
        rig.settle()
    assert rig.transactions == [["a"]]
    assert a.f() == "new"
    assert len([r for r in caplog.records if "is empty" in r.getMessage()]) == 1
    assert rig.watcher.pipeline._first_looks == {}


def test_an_empty_save_that_stays_empty_keeps_the_old_code(
    make_rig: Any, caplog: pytest.LogCaptureFixture
) -> None:
    rig = make_rig()
    rig.project.write("a.py", A_OLD)
    (a,) = rig.load("a")

    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        rig.save("a.py", "\n")
        rig.settle()
        rig.save("a.py", "\n")  # saved again: said once
        rig.settle()

    assert rig.transactions == []
    assert a.f() == "old"
    warnings = [r.getMessage() for r in caplog.records if "is empty" in r.getMessage()]
    assert len(warnings) == 1
    assert "a keeps running its old code" in warnings[0]


def test_a_file_still_open_for_writing_is_waited_for(make_rig: Any) -> None:
    rig = make_rig()
    rig.project.write("a.py", A_OLD)
    (a,) = rig.load("a")

    rig.save("a.py", "X = 2\n", MODIFIED)  # parses, but the writer has not closed it
    assert rig.step_after(SETTLE * 3)
    assert rig.transactions == []
    due = rig.watcher.pipeline.batch.due_in(rig.clock())
    assert due == pytest.approx(OPEN_PATIENCE - SETTLE * 3)
    rig.save("a.py", A_NEW, MODIFIED, CLOSED)
    rig.settle()

    assert rig.transactions == [["a"]]
    assert (a.f(), a.X) == ("new", 2)


def test_a_file_a_process_holds_open_for_writing_is_never_applied_half_written(
    make_rig: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A slow writer (one open: a first part that parses, a long pause, the rest), seen
    by a backend that reports no close (polling): the first part was applied as a
    save.  The system tells the file is held open: it is waited for, past the burst's
    patience (said once), while another file's save in the same burst goes on, and
    the whole file applies at its close."""
    rig = make_rig(backend=FakeBackend(reports_close=False))
    if not leases_tell(rig.project.root):
        pytest.skip("this system cannot tell a file open for writing")
    path = rig.project.write("a.py", A_OLD)
    rig.project.write("b.py", "Y = 1\n")
    a, b = rig.load("a", "b")
    with open(path, "w") as writer, caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        writer.write("X = 2\n")  # parses: a module with no f
        writer.flush()
        rig.emit("a.py", MODIFIED)
        rig.save("b.py", "Y = 2\n", MODIFIED)
        for _ in range(round((FORCE_AFTER + 1.0) / 0.025)):  # looks every 25 ms, 3 s
            rig.step_after(0.025)
        assert rig.transactions == [["b"]]
        assert (a.X, a.f(), b.Y) == (1, "old", 2)
        writer.write(A_NEW.replace("X = 2\n", "", 1))
    rig.emit("a.py", MODIFIED)
    rig.settle()
    assert rig.transactions == [["b"], ["a"]]
    assert (a.X, a.f()) == (2, "new")
    assert [r.getMessage() for r in caplog.records] == [
        f"{rig.path('a.py')} is held open for writing; its save is applied once the "
        "writer closes it"
    ]


def test_a_writer_that_finishes_between_the_read_and_the_look_for_writers_is_judged_again(
    make_rig: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watcher read a slow writer's first part (it parses); the writer wrote the rest
    and closed the file before the watcher asked whether anyone writes it, and the
    first part was handed to the reload as the save (which read the file again only
    because it no longer held those bytes).  The file's figures changed since the
    read: it is judged again, and the whole file is handed over."""
    rig = make_rig(backend=FakeBackend(reports_close=False))
    path = rig.project.write("a.py", A_OLD)
    (a,) = rig.load("a")
    asked = saves.being_written
    handed: list[bytes] = []
    recording = rig.hmr.reloader.reload_result

    def handing(names: Any, **options: Any) -> Any:
        handed.extend((options.get("sources") or {}).values())
        return recording(names, **options)

    monkeypatch.setattr(rig.hmr.reloader, "reload_result", handing)
    writer = open(path, "w")  # noqa: SIM115 (closed by the watcher's look, or below)
    try:
        writer.write("X = 2\n")  # parses: a module with no f
        writer.flush()

        def the_rest_then_ask(filename: str) -> bool:
            if not writer.closed:  # its last part and its close, right after the read
                writer.write(A_NEW.replace("X = 2\n", "", 1))
                writer.close()
            return asked(filename)

        monkeypatch.setattr(saves, "being_written", the_rest_then_ask)
        rig.emit("a.py", MODIFIED)
        rig.settle()
    finally:
        writer.close()
    assert rig.transactions == [["a"]]
    assert handed == [A_NEW.encode()]
    assert (a.X, a.f()) == (2, "new")


def test_a_burst_that_hits_an_internal_error_is_judged_once_more(
    make_rig: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An error of the watcher's own while it judges a burst (CPython 3.11's parse failing
    with ``SystemError`` when another thread parsed at the same moment) dropped the
    burst: its saves were lost until saved again.  It is judged once more; a burst that
    fails twice is dropped, and the next save is judged as usual."""
    rig = make_rig()
    rig.project.write("a.py", A_OLD)
    (a,) = rig.load("a")
    judge = saves.SaveJudge.judge_module
    failures = [SystemError("AST constructor recursion depth mismatch (before=72, after=17)")]

    def flaky(self: Any, *args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return judge(self, *args, **kwargs)

    monkeypatch.setattr(saves.SaveJudge, "judge_module", flaky)
    with caplog.at_level(logging.ERROR, logger="muckrack_hmr"):
        rig.save("a.py", A_NEW)
        rig.settle()
    assert rig.transactions == [["a"]]
    assert a.f() == "new"
    assert ["internal error" in r.getMessage() for r in caplog.records] == [True]

    failures += [SystemError("again"), SystemError("and again")]
    rig.save("a.py", A_OLD)
    rig.settle()  # judged twice, failed twice: dropped
    assert rig.transactions == [["a"]]
    rig.save("a.py", A_OLD.replace("old", "older"))
    rig.settle()
    assert rig.transactions == [["a"], ["a"]]
    assert a.f() == "older"


def test_a_save_is_handled_with_prompt_switches_then_the_program_s_interval_is_back(
    make_rig: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each time the watcher's thread blocks, a thread of the program that computes keeps
    the interpreter for the switch interval before it hands it back: a save handled in a
    busy program went live 0.1-0.8 s after it was made.  From its first file event to
    its reload's end the interval is 1 ms; then the program's own again, unless the
    program set another meanwhile."""
    from muckrack_hmr.threads import PROMPT_SWITCH_INTERVAL

    program = 0.005
    sys.setswitchinterval(program)
    rig = make_rig()
    rig.project.write("a.py", A_OLD)
    (a,) = rig.load("a")
    seen: list[float] = []
    reload_result = rig.hmr.reloader.reload_result

    def observed(*args: Any, **options: Any) -> Any:
        seen.append(sys.getswitchinterval())
        return reload_result(*args, **options)

    monkeypatch.setattr(rig.hmr.reloader, "reload_result", observed)
    try:
        rig.save("a.py", A_NEW)
        assert sys.getswitchinterval() == pytest.approx(PROMPT_SWITCH_INTERVAL)  # at the event
        rig.settle()
        assert a.f() == "new"
        assert seen == [pytest.approx(PROMPT_SWITCH_INTERVAL)]
        assert sys.getswitchinterval() == pytest.approx(program)

        rig.save("a.py", A_OLD)
        sys.setswitchinterval(0.002)  # the program's own choice, meanwhile
        rig.settle()
        assert a.f() == "old"
        assert sys.getswitchinterval() == pytest.approx(0.002)
    finally:
        sys.setswitchinterval(program)


def test_a_burst_handed_over_as_the_first_workers_fork_goes_to_their_supervisor(
    make_rig: Any,
) -> None:
    """The pipeline handed a burst to the watcher as the program forked its first workers
    (a pool made): the fork's supervisor took the watcher's place, but this burst was
    applied in the parent alone, after the fork (which holds the engine's lock), and the
    workers kept the old code for good.  It goes to the supervisor now."""
    from muckrack_hmr.watch.bursts import ModuleSave, SettledSaves

    rig = make_rig()
    path = rig.project.write("a.py", A_OLD)
    (a,) = rig.load("a")
    path.write_text(A_NEW)
    saves = SettledSaves(
        first_event=0.0,
        names=("a",),
        modules=(ModuleSave("a", str(path), A_NEW.encode(), b""),),
    )
    handed: list[Any] = []

    class Supervisor:  # what processes.joining.supervise puts in the watcher's place
        def saves_settled(self, burst: Any) -> None:
            handed.append(burst)

    engine = rig.hmr.reloader._lock
    with engine:  # the fork holds it
        handing = threading.Thread(target=rig.watcher.saves_settled, args=(saves,))
        handing.start()
        handing.join(0.2)
        assert handing.is_alive()  # waits for the fork's end
        rig.watcher.pipeline.consumer = Supervisor()  # made before the fork
    handing.join(10)
    assert handed == [saves]
    assert rig.transactions == []  # not applied here alone
    assert a.f() == "old"


def test_a_backend_without_close_events_does_not_wait_for_them(make_rig: Any) -> None:
    rig = make_rig(backend=FakeBackend(reports_close=False))
    rig.project.write("a.py", A_OLD)
    rig.load("a")

    rig.save("a.py", A_NEW, MODIFIED)

    assert rig.step_after(DEBOUNCE)
    assert rig.transactions == [["a"]]


def test_a_file_that_does_not_parse_waits_then_is_reported_once_then_recovers(
    make_rig: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken save is reported once, however often its events come; saved again (the
    same bytes, a new save), it is tried again, as a user's Ctrl-S asks."""
    rig = make_rig()
    rig.project.write("a.py", A_OLD)
    (a,) = rig.load("a")

    with caplog.at_level(logging.INFO, logger="muckrack_hmr"):
        rig.save("a.py", "X = 3\n\n\ndef f(:\n")
        assert rig.step_after(DEBOUNCE)
        assert rig.transactions == []  # maybe the rest is on its way
        rig.settle()  # it is not: the error is the user's
        assert rig.transactions == [["a"]]
        assert "a" in rig.results[0].failed
        rig.emit("a.py", MODIFIED, CLOSED)  # another event of the same save
        rig.settle()
        assert len(rig.transactions) == 1
        os.utime(rig.project.root / "a.py", ns=(1, 1))  # the same bytes, saved again
        rig.emit("a.py", MODIFIED, CLOSED)
        rig.settle()
        assert len(rig.transactions) == 2
        rig.save("a.py", A_NEW)
        rig.settle()

    assert rig.transactions == [["a"], ["a"], ["a"]]
    assert (a.f(), a.X) == ("new", 2)
    messages = [record.getMessage() for record in caplog.records]
    assert sum(message.startswith("failed to reload a") for message in messages) == 2
    assert "a recovered" in messages


def test_reverting_a_broken_save_recovers_without_a_reload(
    make_rig: Any, caplog: pytest.LogCaptureFixture
) -> None:
    rig = make_rig()
    rig.project.write("a.py", A_OLD)
    rig.load("a")
    rig.save("a.py", "raise RuntimeError('boom')\n")
    rig.settle()
    assert "a" in rig.results[0].failed

    with caplog.at_level(logging.INFO, logger="muckrack_hmr"):
        rig.save("a.py", A_OLD)  # undo: the file is the code that runs again
        rig.settle()

    assert len(rig.transactions) == 1
    assert any("a recovered" in record.getMessage() for record in caplog.records)
    assert "a" not in rig.hmr.reloader.failing


def test_a_revert_that_recovers_is_reported_to_the_result_hooks(make_rig: Any) -> None:
    rig = make_rig()
    reported: list[tuple[list[str], list[str], list[str]]] = []
    rig.hmr.add_result_hook(
        lambda result: reported.append((result.reloaded, sorted(result.failed), result.recovered))
    )
    rig.project.write("a.py", A_OLD)
    rig.load("a")
    rig.save("a.py", "raise RuntimeError('boom')\n")
    rig.settle()
    assert reported == [([], ["a"], [])]
    rig.save("a.py", A_OLD)  # the undo reloads nothing, and says that a is fine again
    rig.settle()
    assert reported[1:] == [([], [], ["a"])]


def test_files_asked_for_are_reported_after_the_reload_and_reload_nothing(make_rig: Any) -> None:
    rig = make_rig()
    rig.project.write("a.py", A_OLD)
    rig.project.write("static/css/site.css", "h1 {}\n")
    rig.project.write("static/notes.txt", "not asked for\n")
    rig.load("a")
    heard: list[list[tuple[str, bytes | None]]] = []
    rig.watcher.watch_files(
        os.path.join(rig.project.root, "static"),
        [".css"],
        lambda files: heard.append([(save.path, save.source) for save in files]),
    )
    watched = os.path.join(os.path.realpath(rig.project.root), "static", "css")
    assert watched in rig.backend.folders  # the tree's folders, each watched

    rig.save("static/css/site.css", "h1 { color: red }\n")
    rig.save("static/notes.txt", "still not asked for\n")
    rig.settle()
    assert heard == [[(rig.path("static/css/site.css"), b"h1 { color: red }\n")]]
    assert rig.transactions == []  # nothing reloaded

    rig.save("a.py", A_NEW)
    rig.save("static/css/site.css", "h1 { color: blue }\n")
    rig.settle()
    assert rig.transactions == [["a"]]
    assert heard[-1] == [(rig.path("static/css/site.css"), b"h1 { color: blue }\n")]


def test_an_unreadable_file_keeps_the_old_code_with_one_warning(
    make_rig: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_rig()
    rig.project.write("a.py", A_OLD)
    (a,) = rig.load("a")
    path = rig.path("a.py")

    def refusing_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if file == path:
            raise PermissionError(13, "Permission denied", file)
        return open(file, *args, **kwargs)

    monkeypatch.setattr(saves, "open", refusing_open, raising=False)
    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        rig.save("a.py", A_NEW)
        assert rig.step_after(DEBOUNCE)
        assert rig.transactions == []  # maybe a writer still holds it (Windows): wait
        rig.settle()
        rig.emit("a.py", MODIFIED, CLOSED)
        rig.settle()

    assert rig.transactions == []
    assert a.f() == "old"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"cannot read {path} ([Errno 13] Permission denied: {path!r}); a keeps its old code"
    ]
    monkeypatch.delattr(saves, "open")  # readable again
    rig.emit("a.py", MODIFIED, CLOSED)
    rig.settle()
    assert rig.transactions == [["a"]]
    assert a.f() == "new"


# -- rename saves, deletion -------------------------------------------------------------


@pytest.mark.parametrize("style", ["backup-rename", "temp-rename", "delete-recreate"])
def test_rename_and_recreate_saves_apply_once(
    make_rig: Any, caplog: pytest.LogCaptureFixture, style: str
) -> None:
    rig = make_rig()
    rig.project.write("a.py", A_OLD)
    (a,) = rig.load("a")
    path = Path(rig.path("a.py"))

    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        if style == "backup-rename":  # vim: a.py -> a.py~, then a new a.py
            os.replace(path, path.with_name("a.py~"))
            rig.emit("a.py", MOVED_AWAY)
            assert rig.step_after(DEBOUNCE)  # the file is missing: wait for it
            assert rig.transactions == []
            rig.clock.advance(SETTLE / 2)
            rig.save("a.py", A_NEW, CREATED, MODIFIED, CLOSED)
        elif style == "temp-rename":  # JetBrains, VS Code: write a.py.tmp, rename over a.py
            path.with_name("a.py.tmp").write_text(A_NEW)
            os.replace(path.with_name("a.py.tmp"), path)
            rig.backend.sink(str(path.with_name("a.py.tmp")), MOVED_AWAY)
            rig.emit("a.py", CREATED)  # renamed into place: complete, no close event follows
            assert rig.step_after(DEBOUNCE)  # applied at once, not after OPEN_PATIENCE
            assert rig.transactions == [["a"]]
        else:
            path.unlink()
            rig.emit("a.py", DELETED)
            rig.save("a.py", A_NEW, CREATED, MODIFIED, CLOSED)
        rig.settle()

    assert rig.transactions == [["a"]]
    assert (a.f(), a.X) == ("new", 2)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # no "deleted"


def test_a_deleted_module_warns_once_and_a_recreated_one_applies(
    make_rig: Any, caplog: pytest.LogCaptureFixture
) -> None:
    rig = make_rig()
    rig.project.write("a.py", A_OLD)
    (a,) = rig.load("a")

    with caplog.at_level(logging.INFO, logger="muckrack_hmr"):
        Path(rig.path("a.py")).unlink()
        rig.emit("a.py", DELETED)
        rig.settle()
        rig.emit("a.py", DELETED)
        rig.settle()
        assert a.f() == "old"
        assert rig.transactions == []
        rig.save("a.py", A_NEW, CREATED, MODIFIED, CLOSED)
        rig.settle()

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"{rig.path('a.py')} was deleted; a keeps running its old code"]
    assert rig.transactions == [["a"]]
    assert a.f() == "new"


def test_a_module_file_replaced_by_a_symlink_out_of_the_project_is_not_followed(
    make_rig: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = make_rig()
    rig.project.write("a.py", A_OLD)
    (a,) = rig.load("a")
    outside = tmp_path / "elsewhere" / "evil.py"
    outside.parent.mkdir()
    outside.write_text("def f():\n    return 'evil'\n")
    path = Path(rig.path("a.py"))
    path.unlink()
    try:
        path.symlink_to(outside)
    except (OSError, NotImplementedError) as exc:
        pytest.skip(f"cannot make symlinks here: {exc}")

    try:
        with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
            rig.emit("a.py", CREATED)
            rig.settle()
    finally:
        path.unlink()  # the project fixture would not see the module as its own any more
        sys.modules.pop("a", None)

    assert rig.transactions == []
    assert a.f() == "old"
    assert any("outside the project; not following it" in r.getMessage() for r in caplog.records)


# -- backends -----------------------------------------------------------------------------


class ManualPolling(PollingBackend):
    """The polling backend without its thread: the test calls poll_once."""

    def start(self, sink: Any) -> None:
        self._sink = sink


def test_a_backend_out_of_watches_falls_back_to_polling(
    make_rig: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline_module, "PollingBackend", ManualPolling)
    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        rig = make_rig(backend=FakeBackend(refuse=True))
    try:
        assert isinstance(rig.watcher.backend, ManualPolling)
        assert "inotify watch limit reached" in caplog.text
        assert "polling every" in caplog.text
        rig.project.write("a.py", A_OLD)
        (a,) = rig.load("a")
        rig.watcher.backend.poll_once()  # the baseline of the new folder
        rig.settle()

        rig.project.write("a.py", A_NEW)
        rig.watcher.backend.poll_once()
        rig.settle()

        assert rig.transactions == [["a"]]
        assert a.f() == "new"
    finally:
        rig.watcher.backend.stop()


def test_a_folder_made_again_is_watched_anew(make_rig: Any) -> None:
    rig = make_rig()
    rig.project.write("pkg/__init__.py", "")
    rig.project.write("pkg/mod.py", A_OLD)
    (mod,) = rig.load("pkg.mod")
    folder = Path(rig.path("pkg"))

    # A branch switch removes the folder and writes it again.
    moved = folder.with_name("pkg-old")
    folder.rename(moved)
    rig.project.write("pkg/__init__.py", "")
    rig.project.write("pkg/mod.py", A_NEW)
    rig.watcher.pipeline.check_folders()
    rig.settle()

    assert rig.backend.rewatched == [str(folder)]
    assert rig.transactions == [["pkg.mod"]]
    assert mod.f() == "new"


def test_a_folder_made_again_with_the_old_inode_is_watched_anew(make_rig: Any) -> None:
    """``rm -rf pkg`` and a generator writing it again: the system may give the new folder
    the old one's inode, and the folder's look found it unchanged, so it was not watched
    anew (its watch went with the old folder): every later save in it was lost.  The
    folder's own event (made in a watched folder) is what says it is new."""
    rig = make_rig()
    rig.project.write("pkg/__init__.py", "")
    rig.project.write("pkg/mod.py", A_OLD)
    (mod,) = rig.load("pkg.mod")
    folder = Path(rig.path("pkg"))
    inode = folder.stat().st_ino

    rig.project.write("pkg/mod.py", A_NEW)  # (as the generator writes it again)
    rig.emit("pkg", FOLDER)
    assert folder.stat().st_ino == inode  # the folder's look alone sees nothing new
    rig.watcher.pipeline.check_folders()  # (what the pipeline's thread does at the event)
    rig.settle()

    assert rig.backend.rewatched == [str(folder)]
    assert rig.transactions == [["pkg.mod"]]
    assert mod.f() == "new"


def test_choose_backend_follows_the_options_and_the_environment() -> None:
    backend, why = backends.choose_backend("auto", poll_interval=0.5, environ={})
    assert isinstance(backend, PollingBackend)
    assert backend.interval == 0.5
    assert why == "--poll"
    backend, why = backends.choose_backend("watchdog", environ={"MUCKRACK_HMR_FORCE_POLLING": "1"})
    assert isinstance(backend, PollingBackend)
    assert "MUCKRACK_HMR_FORCE_POLLING" in why
    backend, _ = backends.choose_backend("auto", environ={"MUCKRACK_HMR_FORCE_POLLING": "0"})
    # The default: the OS's events, checked against a listing once a second; on
    # Linux, inotify asked directly (one descriptor and one thread for all folders).
    assert isinstance(backend, CheckedBackend)
    expected = backends.InotifyBackend if sys.platform.startswith("linux") else WatchdogBackend
    assert isinstance(backend.primary, expected)
    backend, _ = backends.choose_backend("watchdog", environ={})
    assert isinstance(backend, backends.WatchdogBackend)
    backend, _ = backends.choose_backend("watchfiles", environ={})
    assert isinstance(backend, backends.WatchfilesBackend)
    with pytest.raises(ValueError, match="unknown backend"):
        backends.choose_backend("fsevents", environ={})


def test_wsl_polls_only_for_a_project_on_a_windows_drive() -> None:
    mounts = (
        "/dev/sdc / ext4 rw,relatime 0 0\n"
        "C:\\134 /mnt/c 9p rw,noatime,aname=drvfs 0 0\n"
        "drvfs /mnt/d drvfs rw 0 0\n"
    )
    wsl = "5.15.153.1-microsoft-standard-WSL2"
    assert backends.windows_drive_mounts(mounts) == ["/mnt/c", "/mnt/d"]
    assert backends.needs_polling_on_wsl(["/mnt/c/Users/me/app"], wsl, mounts)
    assert not backends.needs_polling_on_wsl(["/home/me/app"], wsl, mounts)
    assert not backends.needs_polling_on_wsl(["/mnt/c/app"], "6.1.0-18-amd64", mounts)


def test_the_polling_backend_reports_creates_changes_and_deletes(tmp_path: Path) -> None:
    events: list[tuple[str, str]] = []
    backend = PollingBackend(interval=60)  # driven by poll_once, not its thread
    backend._sink = lambda path, kind: events.append((os.path.basename(path), kind))
    (tmp_path / "a.py").write_text("A = 1\n")
    (tmp_path / "b.py").write_text("B = 1\n")
    backend.watch(str(tmp_path))

    backend.poll_once()
    assert events == []
    (tmp_path / "a.py").write_text("A = 22\n")
    (tmp_path / "b.py").unlink()
    (tmp_path / "c.py").write_text("C = 1\n")
    backend.poll_once()

    assert sorted(events) == [("a.py", MODIFIED), ("b.py", DELETED), ("c.py", CREATED)]

    # A new folder is reported as one (pytest --hmr then looks inside); files in a
    # folder that is not watched are not, and a folder that goes says nothing.
    events.clear()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "test_d.py").write_text("D = 1\n")
    backend.poll_once()
    assert events == [("sub", FOLDER)]
    events.clear()
    (tmp_path / "sub" / "test_d.py").unlink()
    (tmp_path / "sub").rmdir()
    backend.poll_once()
    assert events == []


class _Silent(Backend):
    """A file system that accepts watches and delivers no event (a bind mount, say)."""

    name = "silent"
    reports_close = True

    def __init__(self) -> None:
        self.watched: list[str] = []
        self.stopped = False

    def start(self, sink: Any) -> None:
        pass

    def watch(self, folder: str) -> None:
        self.watched.append(folder)

    def stop(self) -> None:
        self.stopped = True


def _remote(folder: str) -> bool:
    """A folder on a file system written from elsewhere too (a bind mount, a network
    drive): its events may be missing, so they are checked."""
    return False


def _next(seen: queue.Queue[tuple[str, str]], timeout: float = 10.0) -> tuple[str, str]:
    try:
        return seen.get(timeout=timeout)
    except queue.Empty:
        pytest.fail(f"nothing reported within {timeout} s")


def test_where_file_events_never_come_polling_takes_over(tmp_path: Path) -> None:
    seen: queue.Queue[tuple[str, str]] = queue.Queue()
    switched: list[str] = []
    silent = _Silent()
    backend = CheckedBackend(
        silent, check=0.05, interval=0.02, on_switch=switched.append, trusted=_remote
    )
    assert backend.reports_close
    (tmp_path / "a.py").write_text("A = 1\n")
    backend.start(lambda path, kind: seen.put((os.path.basename(path), kind)))
    try:
        backend.watch(str(tmp_path))
        assert silent.watched == [str(tmp_path)]
        deadline = time.monotonic() + 10
        while not backend._listing._folders and time.monotonic() < deadline:
            time.sleep(0.01)  # the checker lists the new folder on its own thread
        # A file that is not a source changes with no event where events do come
        # (written through mmap, say): not a reason to stop the OS's events.
        (tmp_path / "db.sqlite3-shm").write_bytes(b"\0" * 8)
        judged = backend.rounds + 3
        while backend.rounds < judged and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not backend.switched
        (tmp_path / "a.py").write_text("A = 22\n")
        assert _next(seen) == ("a.py", MODIFIED)  # the save the OS never reported
        assert backend.switched
        assert silent.stopped
        assert not backend.reports_close
        assert len(switched) == 1
        assert "silent reported no event for" in switched[0]
        assert "a.py" in switched[0]
        # From now on, the listing reports every change, at the polling pace.
        (tmp_path / "b.py").write_text("B = 1\n")
        assert _next(seen) == ("b.py", CREATED)
        assert backend.describe().startswith("polling every 0.02 s")
    finally:
        backend.stop()


def test_a_save_before_the_first_listing_of_a_silent_folder_is_not_lost(tmp_path: Path) -> None:
    """The checker lists a newly watched folder on its own thread, at its next round: a
    save made after the watch and before that listing is in the listing's baseline.  Its
    time says it came after the watch, so the OS's silence about it is found all the same
    (pytest --hmr watches its folders, then the first save may come a moment later)."""
    seen: queue.Queue[tuple[str, str]] = queue.Queue()
    switched: list[str] = []
    silent = _Silent()
    backend = CheckedBackend(
        silent, check=0.3, interval=0.02, on_switch=switched.append, trusted=_remote
    )
    (tmp_path / "a.py").write_text("A = 1\n")
    (tmp_path / "b.py").write_text("B = 1\n")
    backend.start(lambda path, kind: seen.put((os.path.basename(path), kind)))
    try:
        backend.watch(str(tmp_path))
        # The save comes a few file-system clock ticks after the watch (the scenario,
        # not a synchronisation): well before the checker's first round, at 0.3 s.
        threading.Event().wait(0.03)
        (tmp_path / "a.py").write_text("A = 22\n")
        assert not backend._listing._folders  # not listed yet: the baseline will hold it
        assert _next(seen) == ("a.py", MODIFIED)
        assert backend.switched
        assert "a.py" in switched[0]
        assert seen.empty()  # b.py did not change since the watch
    finally:
        backend.stop()


def test_where_file_events_come_the_check_stays_silent(tmp_path: Path) -> None:
    seen: queue.Queue[tuple[str, str]] = queue.Queue()
    switched: list[str] = []
    # Rounds of 0.25 s: an event the OS reports is waited for 0.5-0.75 s.  (With 0.05 s,
    # a loaded CI machine's watchdog thread reported one late, and the check switched.)
    check = 0.25
    backend = CheckedBackend(
        WatchdogBackend(), check=check, on_switch=switched.append, trusted=_remote
    )
    (tmp_path / "a.py").write_text("A = 0\n")
    backend.start(lambda path, kind: seen.put((os.path.basename(path), kind)))
    try:
        backend.watch(str(tmp_path))
        for value in range(1, 4):
            (tmp_path / "a.py").write_text(f"A = {value}\n")
            assert _next(seen)[0] == "a.py"
            # Two checking rounds: a change the OS reported is not reported again.
            deadline = time.monotonic() + 2 * check
            while time.monotonic() < deadline:
                try:
                    path, _ = seen.get(timeout=max(deadline - time.monotonic(), 0.001))
                except queue.Empty:
                    break
                assert path == "a.py"  # the OS's own later events of the same save
        # Every save judged: the rounds that judge the last one are over.
        judged = backend.rounds + 3
        deadline = time.monotonic() + 10
        while backend.rounds < judged and time.monotonic() < deadline:
            time.sleep(0.01)
        assert backend.rounds >= judged
        assert not backend.switched
        assert switched == []
    finally:
        backend.stop()


MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:26 / /dev/shm rw,nosuid,nodev shared:3 - tmpfs tmpfs rw
41 22 0:40 / /home/dev/My\\040Code rw,relatime - fuse.sshfs dev@box:/code rw
42 41 0:41 / /home/dev/My\\040Code/local rw - overlay overlay rw,lowerdir=/a
43 22 0:42 / /mnt/share rw - nfs4 server:/share rw,vers=4.2
"""


def test_the_mount_table_tells_which_folders_every_write_reaches() -> None:
    table = mounts.parse_mountinfo(MOUNTINFO)
    assert mounts.file_system_of("/home/dev/My Code/app", table) == "fuse.sshfs"
    assert mounts.file_system_of("/home/dev/My Code/local/app", table) == "overlay"
    assert mounts.file_system_of("/home/dev/My Codex", table) == "ext4"  # a prefix, no mount
    assert mounts.file_system_of("/mnt/share/x", table) == "nfs4"
    assert mounts.file_system_of("/dev/shm", table) == "tmpfs"
    local = {"ext4", "overlay", "tmpfs"}
    remote = {"fuse.sshfs", "nfs4", "9p", "virtiofs", "cifs", "vboxsf", "drvfs", "fuse.grpcfuse"}
    assert local <= mounts.LOCAL_TYPES
    assert not remote & mounts.LOCAL_TYPES


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux's mount table")
def test_on_a_local_disk_nothing_is_listed_while_the_program_rests(tmp_path: Path) -> None:
    """Every write to a local file system is an event: no listing, no checker thread (the
    listing was a stat of every watched file, every second: 7% of a core at 5,000 modules)."""
    kind = mounts.file_system_of(str(tmp_path))
    if kind is None:  # a chroot: the mount table shows no mount above its root
        pytest.skip("the mount table does not cover the temporary folder here")
    assert mounts.events_are_local(str(tmp_path)), kind
    seen: queue.Queue[tuple[str, str]] = queue.Queue()
    threads = threading.active_count()
    backend = CheckedBackend(backends.InotifyBackend(), check=0.05)
    backend.start(lambda path, kind: seen.put((os.path.basename(path), kind)))
    try:
        backend.watch(str(tmp_path))
        assert backend.checked == set()
        assert backend.describe() == "inotify"
        assert threading.active_count() == threads + 1  # inotify's reader alone
        (tmp_path / "a.py").write_text("A = 1\n")
        assert _next(seen)[0] == "a.py"
    finally:
        backend.stop()


def test_a_switch_to_polling_polls_the_trusted_folders_too(tmp_path: Path) -> None:
    """Events never came in a checked folder: the OS's events stop everywhere, and the
    trusted folders are polled with the others (a save there is not lost)."""
    remote, local = tmp_path / "remote", tmp_path / "local"
    remote.mkdir()
    local.mkdir()
    seen: queue.Queue[tuple[str, str]] = queue.Queue()
    silent = _Silent()
    backend = CheckedBackend(
        silent, check=0.05, interval=0.02, trusted=lambda folder: folder == str(local)
    )
    backend.start(lambda path, kind: seen.put((os.path.basename(path), kind)))
    try:
        backend.watch(str(remote))
        backend.watch(str(local))
        assert backend.checked == {str(remote)}
        deadline = time.monotonic() + 10
        while not backend._listing._folders and time.monotonic() < deadline:
            time.sleep(0.01)  # the checker lists the new folder on its own thread
        (remote / "a.py").write_text("A = 1\n")
        assert _next(seen) == ("a.py", CREATED)  # the save the OS never reported
        assert backend.switched
        saved = local / "b.py"
        saved.write_text("B = 1\n")
        # The file system's coarse clock stamps a save made just after the switch up
        # to a tick before it (here, for sure: 30 ms): it is reported all the same.
        stamp = time.time_ns() - 30_000_000
        os.utime(saved, ns=(stamp, stamp))
        # Polled now, though it was trusted: found by its time, or as new if the
        # folder's first listing came before the save.
        assert _next(seen) in {("b.py", MODIFIED), ("b.py", CREATED)}
        assert backend.checked == {str(remote), str(local)}
    finally:
        backend.stop()


def test_watchdog_reports_a_new_folder(tmp_path: Path) -> None:
    seen: queue.Queue[tuple[str, str]] = queue.Queue()
    backend = WatchdogBackend()
    backend.start(lambda path, kind: seen.put((path, kind)))
    try:
        backend.watch(str(tmp_path))
        (tmp_path / "sub").mkdir()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                path, kind = seen.get(timeout=0.5)
            except queue.Empty:
                continue
            if kind == FOLDER:
                assert path == str(tmp_path / "sub")
                break
        else:
            pytest.fail("no folder event within 10 s")
    finally:
        backend.stop()


# -- the safe point -----------------------------------------------------------------------


def test_a_reload_waits_while_another_thread_holds_the_import_lock(
    make_rig: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_rig()
    rig.project.write("a.py", A_OLD)
    rig.load("a")
    answers = [True, True, True, False]
    seen: list[bool] = []

    def lock_held() -> bool:
        answer = answers.pop(0) if answers else False
        seen.append(answer)
        if not answer:
            assert rig.transactions == []  # nothing ran while the lock was held
        return answer

    monkeypatch.setattr(safepoint._imp, "lock_held", lock_held)
    rig.save("a.py", A_NEW)
    rig.settle()

    assert seen[:4] == [True, True, True, False]
    assert rig.transactions == [["a"]]


def test_a_frame_read_as_garbage_is_taken_for_an_import_in_progress() -> None:
    """On CPython 3.11, another thread's frame read while that thread ran on had a dict
    for its ``f_code``: the pre-fork hook raised ``AttributeError`` and did not hold the
    engine for that fork.  Such a frame counts as an import in progress (look again)."""

    class Stale:
        f_code: object = {"not": "code"}
        f_back = None

    top = types.SimpleNamespace(f_code=sys._getframe().f_code, f_back=Stale())
    assert safepoint.import_frame(top) is top  # type: ignore[arg-type]
    assert safepoint.import_frame(sys._getframe()) is None


def test_another_thread_in_the_middle_of_an_import_is_seen(make_rig: Any) -> None:
    rig = make_rig()
    release = threading.Event()
    entered = threading.Event()
    sys.modules["hmr_test_gate"] = type(sys)("hmr_test_gate")
    sys.modules["hmr_test_gate"].release = release  # type: ignore[attr-defined]
    sys.modules["hmr_test_gate"].entered = entered  # type: ignore[attr-defined]
    rig.project.write(
        "slow_import.py",
        "import hmr_test_gate\nhmr_test_gate.entered.set()\nhmr_test_gate.release.wait(30)\n",
    )
    thread = threading.Thread(target=importlib.import_module, args=("slow_import",))
    try:
        assert rig.watcher._safe_point.other_thread_importing() is None
        thread.start()
        assert entered.wait(15)
        ident, _ = rig.watcher._safe_point.other_thread_importing() or (None, None)
        assert ident == thread.ident
    finally:
        release.set()
        thread.join(15)
        sys.modules.pop("hmr_test_gate", None)
    assert rig.watcher._safe_point.other_thread_importing() is None


# -- data files ---------------------------------------------------------------------------

UTIL = """\
import json
import os


def load(name):
    with open(os.path.join(os.path.dirname(__file__), name)) as handle:
        return json.load(handle)
"""


def test_a_data_file_read_at_import_reloads_the_module_that_read_it(make_rig: Any) -> None:
    rig = make_rig(watch_data=True)
    rig.project.write("config.json", '{"value": 1}')
    rig.project.write("notes.json", '{"value": 1}')
    rig.project.write("util.py", UTIL)
    rig.project.write("settings.py", "import util\n\nVALUE = util.load('config.json')['value']\n")
    util, settings = rig.load("util", "settings")
    assert settings.VALUE == 1
    assert util.load("notes.json") == {"value": 1}  # read at run time: not credited
    rig.watcher.refresh()
    assert rig.watcher.data is not None
    # Credited to the module whose import read it, not to the helper that opened it.
    assert rig.watcher.data.owners == {rig.path("config.json"): {"settings"}}

    os.utime(rig.path("config.json"))
    rig.emit("config.json", TOUCHED)
    rig.settle()
    assert rig.transactions == []
    rig.project.write("config.json", '{"value": 2}')
    rig.emit("config.json", MODIFIED, CLOSED)
    rig.settle()

    assert rig.transactions == [["settings"]]
    assert settings.VALUE == 2


def test_data_files_are_not_followed_by_default(make_rig: Any) -> None:
    rig = make_rig()
    rig.project.write("config.json", '{"value": 1}')
    rig.project.write("util.py", UTIL)
    rig.project.write("settings.py", "import util\n\nVALUE = util.load('config.json')['value']\n")
    rig.load("util", "settings")

    assert rig.watcher.data is None
    rig.project.write("config.json", '{"value": 2}')
    rig.backend.sink(rig.path("config.json"), MODIFIED)
    rig.settle()
    assert rig.transactions == []


def test_include_globs_follow_matching_data_files_only(make_rig: Any) -> None:
    rig = make_rig(include=["*.dat"])
    rig.project.write("table.dat", "1")
    rig.project.write("config.json", '{"value": 1}')
    rig.project.write(
        "reader.py",
        "import json\n"
        "with open(__file__.replace('reader.py', 'table.dat')) as handle:\n"
        "    TABLE = int(handle.read())\n"
        "with open(__file__.replace('reader.py', 'config.json')) as handle:\n"
        "    VALUE = json.load(handle)['value']\n",
    )
    (reader,) = rig.load("reader")
    rig.watcher.refresh()
    assert rig.watcher.data is not None
    assert set(rig.watcher.data.owners) == {rig.path("table.dat")}

    rig.project.write("table.dat", "2")
    rig.emit("table.dat", MODIFIED, CLOSED)
    rig.settle()

    assert rig.transactions == [["reader"]]
    assert reader.TABLE == 2


def _blocked_signals(native_id: int) -> set[int]:
    """The signals a thread of this process blocks, from /proc (Linux)."""
    with open(f"/proc/self/task/{native_id}/status") as status:
        for line in status:
            if line.startswith("SigBlk:"):
                mask = int(line.split()[1], 16)
                return {number for number in range(1, 65) if mask >> (number - 1) & 1}
    raise AssertionError("no SigBlk line")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/task")
@pytest.mark.parametrize("backend", ["auto", "watchdog", "polling"])
def test_the_watchers_threads_leave_signals_to_the_main_thread(
    project: Project, hmr: Any, backend: str
) -> None:
    # Python handles signals in the main thread only: a Ctrl-C the kernel
    # handed to a thread of ours could go unnoticed.
    project.write("a.py", A_OLD)
    project.write("sub/b.py", "Y = 1\n")
    sys.path.insert(0, str(project.root / "sub"))
    try:
        importlib.import_module("a")
        before = {thread.native_id for thread in threading.enumerate()}
        main_mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        assert signal.SIGINT not in main_mask
        hmr.watch(backend=backend)
        assert hmr.watcher.started.wait(timeout=10)  # file events start on the watcher's thread
        importlib.import_module("b")  # a module in another folder: watched from our thread
        hmr.watcher.refresh()  # from the main thread too, as the watcher's idle time does
        ours = [thread for thread in threading.enumerate() if thread.native_id not in before]
        assert any(thread.name == "muckrack-hmr-watcher" for thread in ours)
        if backend == "watchdog":
            assert len(ours) >= 3  # the observer and an emitter per watched folder
        for thread in ours:
            if thread.native_id is None or not thread.is_alive():
                continue
            blocked = _blocked_signals(thread.native_id)
            assert {signal.SIGINT, signal.SIGTERM} <= blocked, thread.name
        assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == main_mask
    finally:
        sys.path.remove(str(project.root / "sub"))
        sys.modules.pop("b", None)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/task")
def test_a_reload_asked_in_the_main_thread_starts_no_thread_that_takes_signals(
    project: Project, hmr: Any
) -> None:
    # The first reload starts the watchdog's thread where it runs: here, the main
    # thread, whose mask takes every signal; the thread inherited it.
    project.write("a.py", A_OLD)
    module = importlib.import_module("a")
    assert module.f() == "old"
    before = {thread.native_id for thread in threading.enumerate()}
    main_mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    assert signal.SIGINT not in main_mask

    project.write("a.py", A_NEW)
    ran, _ = hmr.reload_module("a")

    assert ran == ["a"]
    assert module.f() == "new"
    (watchdog,) = (
        thread
        for thread in threading.enumerate()
        if thread.native_id not in before and thread.name == "muckrack-hmr-watchdog"
    )
    assert watchdog.native_id is not None
    assert {signal.SIGINT, signal.SIGTERM} <= _blocked_signals(watchdog.native_id)
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == main_mask


_IDLE_SCENARIO = """
import threading, time
from muckrack_hmr.watch import watcher as watcher_module

activity = watcher_module._Activity()
looks = []
ready = threading.Event()
baseline = threading.Event()

def look():  # from a thread of its own, as the watcher's
    activity.quiet()  # the first look sets the baseline
    baseline.set()
    for _ in range(2):
        ready.wait(timeout=10)
        ready.clear()
        looks.append(activity.quiet())

watcher_thread = threading.Thread(target=look)
watcher_thread.start()
assert baseline.wait(timeout=10)
# Busy: the main thread computes for 50 ms of CPU at least, and until it has had
# well over the quiet share of a core since the baseline (on a loaded machine
# 50 ms of CPU may take far longer than 50 ms), then lets the look happen.
wall, cpu = time.monotonic(), time.process_time()
deadline = wall + 10
while True:
    used, elapsed = time.process_time() - cpu, time.monotonic() - wall
    if used >= 0.05 and used > 1.2 * watcher_module._QUIET * elapsed:
        break
    if time.monotonic() > deadline:
        raise SystemExit(3)  # the machine never gave this process that share of a core
ready.set()
# Resting: the main thread waits (on the look itself) until the next look is done.
deadline = time.monotonic() + 10
while len(looks) < 1 and time.monotonic() < deadline:
    threading.Event().wait(0.001)
threading.Event().wait(0.05)  # a rest of 50 ms is the scenario, not synchronisation
ready.set()
watcher_thread.join(timeout=10)
print(looks)
"""


def test_idle_work_waits_while_the_programs_threads_are_busy() -> None:
    """The watcher's background work (indexing, compressing, analyzing) runs while the
    program rests (what a first edit needs also in slices while it computes: see
    test_watcher.py's test of a program that never rests): a thread computing counts
    as busy, one sleeping does not.

    In a process of its own: threads that earlier tests left behind in this one
    (a worker's) would count as the program's."""
    done = subprocess.run(
        [sys.executable, "-c", _IDLE_SCENARIO], capture_output=True, text=True, timeout=60
    )
    if done.returncode == 3:
        pytest.skip("the machine is too loaded to give a thread a quarter of a core")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[False, True]"


def test_a_same_size_save_between_the_import_and_the_first_look_is_applied(
    make_rig: Any,
) -> None:
    """Saved in the same tick of the file system's clock as the import, with the same size,
    before the watcher looked at the file: its time and size say nothing, its content does."""
    rig = make_rig()
    path = rig.project.write("a.py", A_OLD)
    a = importlib.import_module("a")
    stat = os.stat(path)
    same_size = A_OLD.replace('"old"', '"OLD"')
    assert len(same_size) == len(A_OLD)
    path.write_text(same_size)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    rig.watcher.refresh()  # the watcher's first look at the module
    rig.settle()
    assert rig.transactions == [["a"]]
    assert a.f() == "OLD"


def test_a_save_before_the_first_look_at_a_module_not_kept_at_import_waits_for_no_close(
    make_rig: Any,
) -> None:
    """A module whose source its loader did not keep (a pre-fork server's app, imported
    in the workers only) is compared by content when the watcher first looks: saved in
    between, it was reported as a write in progress, and waited 2 s for a close that
    had come before the watch began."""
    rig = make_rig()
    path = rig.project.write("a.py", A_OLD)
    a = importlib.import_module("a")
    del rig.hmr.sources.import_stats["a"]  # not kept as its loader ran it
    path.write_text(A_OLD.replace('"old"', '"new"'))
    started = rig.clock()
    rig.watcher.refresh()  # the watcher's first look at the module
    rig.settle()
    assert rig.transactions == [["a"]]
    assert a.f() == "new"
    assert rig.clock() - started < saves.OPEN_PATIENCE / 2


class _Busy(idle_work.Activity):
    """A program that never rests (its threads always use the CPU)."""

    def quiet(self) -> bool:
        return False


def test_a_program_that_never_rests_has_the_engine_ready_before_its_first_save(
    hmr: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine was imported and run once only while the program rested: one that
    computes from its start-up on made its first save import it, a blocking call per
    file (each a wait for the interpreter while the program's threads compute): 1.4 s
    with two busy threads, where later saves took 0.1-0.4 s.  Now its first idle step
    does it, busy or not; the rest of the idle work still waits for a rest."""
    from muckrack_hmr.reload import reloader as reloader_module

    warmed: list[str] = []
    real = reloader_module.Reloader.warm_up
    monkeypatch.setattr(
        reloader_module.Reloader,
        "warm_up",
        lambda self: (warmed.append(threading.current_thread().name), real(self))[1],
    )
    work = idle_work.IdleWork(hmr)
    assert work.step(_Busy(), lambda: False) is None  # busy: no slice of idle work...
    assert len(warmed) == 1  # ... but the engine is ready
    assert work.step(_Busy(), lambda: False) is None
    assert len(warmed) == 1  # once


def _one_iteration() -> Any:
    """An ``interrupted`` for IdleWork.step that lets one call of each kind of work run."""
    calls = iter([False])
    return lambda: next(calls, True)


@pytest.mark.parametrize("then", ["rests", "busy"])
def test_what_the_start_up_made_stays_out_of_collections_until_a_first_edit_has_its_index(
    project: Project, hmr: Any, then: str
) -> None:
    """At 5,000 modules, the start-up left a full collection due (0.2 s, more on the
    pure core of 3.11, where it ran in the watcher's thread) that came in the middle of
    the idle work's first slices: a save 1 s after the start-up then paid for the index
    of what import-time code calls itself (205 ms where a later edit takes 1 ms).  Now
    what the start-up made is frozen too once it is over, and thawed once the index is
    whole, or as soon as the program is seen busy (its collections then look at
    everything, as under python)."""
    names = [f"user{index}" for index in range(40)]
    project.write("core.py", "def helper(text):\n    return text + '!'\n")
    for name in names:
        project.write(f"{name}.py", "import core\n\ndef f():\n    return core.helper('x')\n")
    before = gc.get_freeze_count()
    collector.start_fresh()  # as the CLI does, just before the program runs
    try:
        for name in names:
            importlib.import_module(name)
        sources = hmr.reloader.sources
        assert sources.unindexed() > 0
        frozen_at_start = gc.get_freeze_count()
        idle_work.settle_in(_Resting(), threading.Event())  # the start-up is over
        held = gc.get_freeze_count()
        assert held > frozen_at_start  # the modules' objects too
        gate = collector.gate()
        assert gate is None or gate.held
        work = idle_work.IdleWork(hmr)
        if then == "busy":
            assert work.step(_Busy(), lambda: False) is None
            assert gc.get_freeze_count() <= before
            return
        steps = 0
        # (The index first, then the import statements into the graph.)
        while (sources.unindexed() or hmr.graph.pending) and steps < 100:
            assert gc.get_freeze_count() > held // 2  # not before the index is whole
            assert work.step(_Resting(), _one_iteration()) is True
            steps += 1
        assert sources.unindexed() == 0
        assert hmr.graph.pending == 0
        assert steps > 3  # (seen frozen over several steps)
        assert work.step(_Resting(), _one_iteration()) is True  # (nothing of it left)
        if gate is None:
            # 3.11 on the pure core: the full collection a thaw makes due would run in
            # this thread; it waits for the rest of the idle work (or a reload).
            assert gc.get_freeze_count() > held // 2
            while work.step(_Resting(), lambda: False) and steps < 200:
                steps += 1
        assert gc.get_freeze_count() <= before  # thawed with it
        assert gate is None or not gate.held
    finally:
        collector.thaw()


def test_the_index_of_what_import_time_code_calls_comes_before_the_import_graph(
    project: Project, hmr: Any
) -> None:
    """The idle work took the start-up's import statements into the graph first, then
    the index of what import-time code calls: at 5,000 modules on the pure core, the index
    was whole 1.2 s after the start-up, and a body edit made a second after it searched
    every module's source instead (25-45 ms, where a later one takes 1.5 ms).  A reload
    records the statements it needs itself; the index comes first now."""
    names = [f"user{index}" for index in range(40)]
    project.write("core.py", "def helper(text):\n    return text + '!'\n")
    for name in names:
        project.write(f"{name}.py", "import core\n\ndef f():\n    return core.helper('x')\n")
    for name in names:
        importlib.import_module(name)
    sources = hmr.reloader.sources
    waiting = hmr.graph.pending
    assert waiting > 0
    assert sources.unindexed() > 0
    work = idle_work.IdleWork(hmr)
    steps = 0
    while sources.unindexed() and steps < 100:
        work.step(_Resting(), _one_iteration())
        assert hmr.graph.pending == waiting  # not before the index is whole
        steps += 1
    assert sources.unindexed() == 0
    work.step(_Resting(), _one_iteration())
    assert hmr.graph.pending < waiting


def test_file_events_wait_while_the_program_imports_a_library(project: Project, hmr: Any) -> None:
    """A busy start-up that imports only library modules for a while (a big framework
    before the project's own code) is still a start-up: the file events, which cost as
    much as a few dozen imports, wait until imports pause for ``_IMPORTS_OVER``."""
    watcher = Watcher(hmr, debounce=DEBOUNCE, backend=FakeBackend())
    watcher._activity = _Busy()  # type: ignore[assignment]
    importing = threading.Event()
    done: list[float] = []

    def library_imports() -> None:
        # One module every 25 ms for 0.75 s: a quarter of the pause that ends a
        # start-up (a loaded machine's late wake-ups stay under it); none of them
        # is project code.
        importing.set()
        for index in range(30):
            sys.modules[f"_hmr_test_library_{index}"] = type(sys)(f"_hmr_test_library_{index}")
            time.sleep(0.025)
        done.append(time.monotonic())

    loader = threading.Thread(target=library_imports)
    try:
        loader.start()
        importing.wait(timeout=5)
        watcher._settle_in()
        settled = time.monotonic()
        loader.join(timeout=5)
        assert done, "the imports did not finish"
        # Settled only once the imports had paused: not while they went on.
        assert settled >= done[0] - 0.05
    finally:
        for index in range(30):
            sys.modules.pop(f"_hmr_test_library_{index}", None)


def test_a_small_program_busy_after_its_few_imports_gets_its_file_events_soon() -> None:
    """A script that imports two modules and then computes without rest: the pace of
    imports it showed (two, over the wait for the script to start) was taken for a
    slow start-up's, and the file events waited 20 times that, or the 1 s of the
    pace rule (a save made in its first moments went live 1.2 s later).  A pace needs
    enough imports to tell one; with few, imports that pause for _IMPORTS_OVER end it."""
    activity = _Busy()
    importing = threading.Event()
    last: list[float] = []

    def script() -> None:  # imports two modules 60 ms apart, then computes
        importing.set()
        for index in range(2):
            time.sleep(0.06)
            sys.modules[f"_hmr_test_few_{index}"] = type(sys)(f"_hmr_test_few_{index}")
        last.append(time.monotonic())

    thread = threading.Thread(target=script, daemon=True)
    try:
        thread.start()
        assert importing.wait(timeout=5)
        idle_work.settle_in(activity, threading.Event())
        settled = time.monotonic()
        thread.join(timeout=5)
        assert last, "the imports did not finish"
        # _IMPORTS_OVER after the last import, seen at a look thinned out to _BUSY_LOOK.
        assert settled - last[0] < idle_work._IMPORTS_OVER + idle_work._BUSY_LOOK + 0.15
    finally:
        for index in range(2):
            sys.modules.pop(f"_hmr_test_few_{index}", None)


class _BusyUntil(idle_work.Activity):
    """A program busy until ``until`` (monotonic), then resting; it counts the looks
    (looks that take the GIL: as the pure core's)."""

    def __init__(self, until: float) -> None:
        super().__init__()
        self.until = until
        self.busy_looks = 0
        self.quiet_looks = 0

    def quiet(self) -> bool:
        if time.monotonic() < self.until:
            self.busy_looks += 1
            return False
        self.quiet_looks += 1
        return True


def _settle_while_importing(activity: _BusyUntil, every: float) -> float:
    """Run ``settle_in`` while a thread imports a module every ``every`` seconds until
    ``activity.until``; how late after that the start-up was seen over (seconds)."""
    from muckrack_hmr.watch import idle

    importing = threading.Event()

    def imports() -> None:  # the imports go on while the program is busy
        importing.set()
        index = 0
        while time.monotonic() < activity.until:
            sys.modules[f"_hmr_test_busy_{index}"] = type(sys)(f"_hmr_test_busy_{index}")
            index += 1
            time.sleep(every)

    loader = threading.Thread(target=imports, daemon=True)
    try:
        loader.start()
        importing.wait(timeout=5)
        idle.settle_in(activity, threading.Event())
        late = time.monotonic() - activity.until
        loader.join(timeout=5)
    finally:
        for name in [name for name in sys.modules if name.startswith("_hmr_test_busy_")]:
            del sys.modules[name]
    return late


def test_a_busy_start_up_is_looked_at_less_and_less_often_and_its_end_seen_soon() -> None:
    """Each look at a start-up takes the interpreter from the importing thread (a
    switch it waits for on a loaded machine): while the program stays busy, the looks
    thin out, and once it rests its end is still seen within a fraction of a second."""
    from muckrack_hmr.watch import idle

    activity = _BusyUntil(time.monotonic() + 1.0)
    late = _settle_while_importing(activity, 0.05)
    # At a look every 20 ms, a second is 50 looks; doubling up to _BUSY_LOOK, about 10.
    assert activity.busy_looks <= 12, activity.busy_looks
    # The first look after the end covers well over _QUIET_FOR of rest: it is enough
    # (three looks of 20 ms in a row were asked for, 40 ms more for a save made then).
    assert activity.quiet_looks == 1, activity.quiet_looks
    # Seen within one long pause and the quiet looks that confirm it (and slack).
    assert late < idle._BUSY_LOOK + idle._QUIET_LOOKS * idle._QUIET_LOOK + 0.5, late


class _PartlyBusyUntil(_BusyUntil):
    """A program that uses half a core until ``until`` (it waits on I/O in between)."""

    def quiet(self) -> bool:
        busy = not super().quiet()
        self.used = 0.5 if busy else 0.0
        return not busy


def test_a_start_up_that_is_not_busy_all_the_time_is_looked_at_as_often_as_a_rest() -> None:
    """The looks thin out only while the program uses a whole core (importing without a
    pause), when a look would take the interpreter from it.  A start-up that waits in
    between (I/O), or whose imports are ending (the look's window covers their end),
    is looked at every _QUIET_LOOK: a save made as it ends waited for the next thinned-out
    look, up to _BUSY_LOOK later."""
    from muckrack_hmr.watch import idle

    activity = _PartlyBusyUntil(time.monotonic() + 0.5)
    late = _settle_while_importing(activity, 0.01)
    # A look every 20 ms (not 20, 40, 80, 160...): some 25 in half a second.
    assert activity.busy_looks >= 12, activity.busy_looks
    assert late < idle._QUIET_FOR + 3 * idle._QUIET_LOOK + 0.3, late


def test_the_end_of_a_busy_start_up_is_seen_within_a_few_looks_where_they_cost_nothing(
    core: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The looks that take the GIL thin out while a start-up stays busy, so its end
    was seen only at the next of them: a save made right after the imports waited
    for it (250 ms after a 0.4 s start-up).  The compiled core looks without the GIL
    between them, and sees the end within _QUIET_LOOKS looks; the twin, whose looks
    would take the GIL, at its next look."""
    monkeypatch.setattr(idle_work, "_BUSY_LOOK", 1.0)  # looks thinned out to 1 s
    activity = idle_work.Activity(core)
    busy_for = 0.8
    until = time.monotonic() + busy_for
    started = threading.Event()

    def start_up() -> None:  # on the CPU throughout, a new module every 50 ms
        started.set()
        index, next_module = 0, 0.0
        while (now := time.monotonic()) < until:
            if now >= next_module:
                sys.modules[f"_hmr_test_settle_{index}"] = type(sys)(f"_hmr_test_settle_{index}")
                index, next_module = index + 1, now + 0.05

    thread = threading.Thread(target=start_up, daemon=True)
    try:
        thread.start()
        assert started.wait(timeout=5)
        idle_work.settle_in(activity, threading.Event())
        late = time.monotonic() - until
        thread.join(timeout=5)
        if late < 0:
            # A machine loaded past its cores kept the start-up's thread off the CPU
            # for a while: it looked over before it was (the next test's concern).
            pytest.skip(f"the start-up looked over {-late:.2f} s early: a loaded machine")
        # The idle work's first look covers what followed the start-up, not its imports:
        # the look it counts from came after the start-up's end.  (Not a look taken now:
        # a thread another test left in this process may use the CPU meanwhile.)
        last = activity._last
        assert last is not None
        assert last[0] >= until - 0.005, (last, until)
    finally:
        for name in [name for name in sys.modules if name.startswith("_hmr_test_settle_")]:
            del sys.modules[name]
    quiet_seen = idle_work._QUIET_LOOKS * idle_work._QUIET_LOOK
    if core.WAITS_WITHOUT_GIL:
        # Doubling from 20 ms, the looks that take the GIL come at 0.02, 0.06,
        # 0.14, 0.3, 0.62 and 1.62 s: the next one is 0.8 s after the end.
        assert late < quiet_seen + 0.2, late
    else:
        assert late < idle_work._BUSY_LOOK + quiet_seen + 0.5, late


def test_wait_for_quiet_answers_as_the_programs_threads_use_the_cpu(core: ModuleType) -> None:
    """The core's wait: True once the other threads rested for ``needed`` seconds,
    False after ``longest`` seconds of a thread on the CPU."""
    started = time.monotonic()
    assert core.wait_for_quiet(5.0, 0.01, 0.2, 0.05) is True
    assert time.monotonic() - started < 4.0
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        # Tries: on a machine loaded past its cores the whole process may wait off
        # the CPU for 50 ms, and that looks like a rest.
        for _ in range(10):
            started = time.monotonic()
            answer = core.wait_for_quiet(0.3, 0.01, 0.2, 0.05)
            if answer is False:
                break
        assert answer is False
        assert time.monotonic() - started >= 0.3
    finally:
        stop.set()
        thread.join(timeout=5)


class _Steps:
    """The watcher's idle work: when it found the program resting, and nothing left."""

    def __init__(self) -> None:
        self.worked: list[float] = []
        self.done = threading.Event()
        self.used = 1.0  # (busy: a whole core)

    def step(self, activity: Any, interrupted: Any) -> bool | None:
        if not activity.quiet():
            return None
        self.worked.append(time.monotonic())
        self.done.set()
        return False


def test_idle_work_found_busy_is_looked_at_again_soon(hmr: Any) -> None:
    """A program busy at the watcher's first idle look (the last lines of its start-up,
    a collection) got its idle work only a second later (RESTING): a first save meanwhile
    paid for it, 100+ ms at 5,000 modules.  The next looks come sooner, doubling while
    the program stays busy."""
    watcher = Watcher(hmr, debounce=DEBOUNCE, backend=FakeBackend())
    busy_for = 0.2
    activity = _BusyUntil(time.monotonic() + busy_for)
    steps = _Steps()
    watcher._activity = activity  # type: ignore[assignment]
    watcher._work = steps  # type: ignore[assignment]
    watcher._settle_in = lambda: None  # type: ignore[method-assign]
    try:
        watcher.start()
        assert steps.done.wait(timeout=10), "the idle work never ran"
    finally:
        watcher.stop()
    assert activity.busy_looks >= 1
    # Looks at 5, 25, 65, 145, 305 ms...: the rest is seen within one pause (and slack).
    late = steps.worked[0] - activity.until
    assert late < 0.5, late


def test_the_pipeline_is_made_with_short_waits_for_the_interpreter(hmr: Any) -> None:
    """Making the save pipeline once the start-up is over imports its modules, a read of
    a file each: a program computing in two threads held each read's return 5 ms and
    more, and the file events began 0.5 s after the start-up's end (a save made then
    waited for them).  The short switch interval of a save is on from the start-up's end
    until the events are, and the program's own after."""
    from muckrack_hmr.threads import PROMPT_SWITCH_INTERVAL

    watcher = Watcher(hmr, debounce=DEBOUNCE, backend=FakeBackend())
    watcher._settle_in = lambda: None  # type: ignore[method-assign]
    make = watcher._make_pipeline
    seen: list[float] = []

    def make_pipeline() -> Any:
        seen.append(sys.getswitchinterval())
        return make()

    watcher._make_pipeline = make_pipeline  # type: ignore[method-assign]
    before = sys.getswitchinterval()
    try:
        watcher.start()
        assert watcher.started.wait(timeout=10), "the file events never started"
    finally:
        watcher.stop()
    assert seen == [pytest.approx(PROMPT_SWITCH_INTERVAL, rel=0.01)]
    assert sys.getswitchinterval() == before


class _StartUp:
    """A program's start-up, in place of the watcher's wait for it: over when the test
    says, or when the watcher is stopped (or hurried)."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.waiting = threading.Event()
        self.over = threading.Event()

    def __call__(self) -> None:
        self.waiting.set()
        deadline = time.monotonic() + 10
        while not (self.over.is_set() or self.watcher._hurried.is_set()):
            assert time.monotonic() < deadline, "the start-up never ended"
            self.over.wait(0.01)


@pytest.mark.parametrize("asked_before", [False, True], ids=["after", "asked-before"])
def test_the_save_pipeline_is_made_once_the_start_up_is_over(hmr: Any, asked_before: bool) -> None:
    """The watcher imports and makes its save pipeline on its own thread once the
    program's start-up is over: importing it cost every start-up 2 ms.  One asked for
    meanwhile (a notebook's first cell, a fork) is made at once, and the watcher's
    thread runs that one."""
    backend = FakeBackend()
    watcher = Watcher(hmr, debounce=DEBOUNCE, backend=backend)
    start_up = _StartUp(watcher)
    watcher._settle_in = start_up  # type: ignore[method-assign]
    try:
        watcher.start()
        assert start_up.waiting.wait(timeout=10)
        assert watcher._pipeline is None
        assert watcher.backend is None  # (asking does not make it)
        asked = watcher.pipeline if asked_before else None
        assert backend.sink is None  # no file events yet
        start_up.over.set()
        assert watcher.started.wait(timeout=10), "the file events never started"
        assert backend.sink is not None
        pipeline = watcher.pipeline
        assert asked is None or asked is pipeline
        assert pipeline._thread is watcher._thread
        assert watcher.backend is backend
    finally:
        watcher.stop()
    assert backend.stopped
    assert watcher._thread is not None
    assert not watcher._thread.is_alive()


def test_a_watcher_stopped_during_the_start_up_makes_no_pipeline(hmr: Any) -> None:
    backend = FakeBackend()
    watcher = Watcher(hmr, debounce=DEBOUNCE, backend=backend)
    start_up = _StartUp(watcher)
    watcher._settle_in = start_up  # type: ignore[method-assign]
    watcher.start()
    assert start_up.waiting.wait(timeout=10)
    watcher.stop()
    assert watcher._thread is not None
    assert not watcher._thread.is_alive()
    assert watcher._pipeline is None
    assert backend.sink is None
    assert not watcher.started.is_set()


def test_without_watching_a_program_busy_after_its_start_up_is_looked_at_rarely(
    hmr: Any,
) -> None:
    """The idle work of a program that watches no files waits while the program is busy,
    looking again less and less often (up to once a second, as the watcher does): at 50
    looks a second, each one taking the interpreter from the program's thread."""
    from muckrack_hmr.watch import idle

    activity = _BusyUntil(time.monotonic() + 3600)
    worker = idle.IdleWorker(hmr)
    worker._activity = activity  # type: ignore[assignment]
    started = time.monotonic()
    worker.start()
    try:
        # The start-up ends once no module was imported for _IMPORTS_OVER; then
        # the worker looks at the busy program while this test waits.
        time.sleep(2.5)  # the span over which the looks are counted
    finally:
        worker.stop()
        worker._thread.join(timeout=5)
    elapsed = time.monotonic() - started
    assert not worker.done.is_set()  # never idle: nothing was done
    # At a look every 20 ms, about 110 looks; doubling up to a second, about a dozen.
    assert activity.busy_looks <= 20, (activity.busy_looks, elapsed)


class _Resting(idle_work.Activity):
    """A program that rests (its threads use no CPU)."""

    def quiet(self) -> bool:
        return True


def test_the_idle_steps_record_the_imports_in_the_graph(make_rig: Any) -> None:
    """The graph's bookkeeping of the imports, left out of start-up, is done while the
    program rests, in steps: the first edit does not pay for it."""
    rig = make_rig()
    rig.project.write("base.py", "X = 1\n")
    for index in range(40):
        rig.project.write(f"m{index}.py", "import base\nfrom base import X\n")
    rig.load(*[f"m{index}" for index in range(40)])
    graph = rig.hmr.tracker.graph
    assert graph.pending >= 80
    rig.watcher._activity = _Resting()
    for _ in range(100):
        if not rig.watcher.idle():
            break
    assert graph.pending == 0
    assert len(graph.dependents_of("base")) == 40


def test_a_look_that_found_the_program_partly_busy_is_followed_soon() -> None:
    """A look after a long pause that found the program busy for part of it (its start-up
    ended meanwhile: 46 % of a core over 0.64 s) is followed by one within _BUSY_LOOK,
    not a second later: the idle work began a second late, and a save in that second
    paid for it (100+ ms with a million objects and 1,000 modules).  A program using
    a whole core is looked at less and less often, up to RESTING, as before."""
    from muckrack_hmr.watch import idle

    assert idle.next_pause(None, 0.64, 0.46) == idle._BUSY_LOOK
    assert idle.next_pause(None, 0.64, 0.98) == idle.RESTING
    assert idle.next_pause(None, 0.04, 0.98) == 0.08
    assert idle.next_pause(None, 0.04, 0.3) == 0.08
    assert idle.next_pause(True, 0.64, 0.3) == idle.IDLE_PAUSE
