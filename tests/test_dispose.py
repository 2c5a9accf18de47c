"""``__hmr__.on_dispose``, ``data``, ``keep`` and ``discard``: a module's say in its reload.

On both cores (the ``hmr`` fixture), then in a real ``python -m muckrack.hmr``
process: a module that starts a thread at import, edited 20 times.
"""

from __future__ import annotations

import importlib
import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project
from tests.subprocesses import Child, write

# Modules append what happens to them here: the tests read it back.
EVENTS = "hmr_test_dispose_events"


@pytest.fixture
def events() -> Any:
    log: list[object] = []
    module = type(sys)(EVENTS)
    module.log = log  # type: ignore[attr-defined]
    sys.modules[EVENTS] = module
    yield log
    sys.modules.pop(EVENTS, None)


RESOURCE = f"""\
import {EVENTS}

SIZE = 1
{EVENTS}.log.append(("setup", SIZE, dict(__hmr__.data)))


def first(data):
    {EVENTS}.log.append(("dispose first", SIZE))
    data["handed"] = SIZE


def second(data):
    {EVENTS}.log.append(("dispose second", SIZE))


__hmr__.on_dispose(first)
__hmr__.on_dispose(second)


def f():
    return "old"
"""


def test_dispose_runs_last_first_then_the_module_runs_whole(
    project: Project, hmr: Any, events: list[object]
) -> None:
    path = project.write("res.py", RESOURCE)
    res = importlib.import_module("res")
    f = res.f
    assert events == [("setup", 1, {})]

    # An edit of f's body alone: without callbacks, only f's statement would run again.
    path.write_text(RESOURCE.replace('"old"', '"new"'))
    assert hmr.reload_module("res")[0] == ["res"]
    assert events[1:] == [
        ("dispose second", 1),
        ("dispose first", 1),
        ("setup", 1, {"handed": 1}),  # the setup ran again, with what the old version handed over
    ]
    assert f() == "new"  # functions keep their identity
    assert hmr.hooks.data["res"] == {"handed": 1}  # the module's own, not the caller's
    # The new version registered its own callbacks: they run at the next reload.
    path.write_text(RESOURCE.replace("SIZE = 1", "SIZE = 2"))
    hmr.reload_module("res")
    assert events[4:] == [("dispose second", 1), ("dispose first", 1), ("setup", 2, {"handed": 1})]


def test_a_module_without_callbacks_keeps_statement_level_reloads(
    project: Project, hmr: Any, events: list[object]
) -> None:
    source = f"import {EVENTS}\n{EVENTS}.log.append('setup')\n\n\ndef f():\n    return 1\n"
    path = project.write("plain.py", source)
    plain = importlib.import_module("plain")
    path.write_text(source.replace("return 1", "return 2"))
    hmr.reload_module("plain")
    assert plain.f() == 2
    assert events == ["setup"]


def test_a_dispose_callback_that_raises_is_reported_and_the_reload_goes_on(
    project: Project, hmr: Any, events: list[object], caplog: pytest.LogCaptureFixture
) -> None:
    source = textwrap.dedent(
        f"""\
        import {EVENTS}
        {EVENTS}.log.append("setup")

        def broken(data):
            raise RuntimeError("cannot stop")

        def fine(data):
            {EVENTS}.log.append("fine")

        __hmr__.on_dispose(fine)
        __hmr__.on_dispose(broken)
        VALUE = 1
        """
    )
    path = project.write("raising.py", source)
    mod = importlib.import_module("raising")
    errors: list[tuple[str, BaseException]] = []
    hmr.add_error_handler(lambda name, exc: errors.append((name, exc)))
    path.write_text(source.replace("VALUE = 1", "VALUE = 2"))
    with caplog.at_level(logging.ERROR, logger="muckrack_hmr"):
        assert hmr.reload_module("raising")[0] == ["raising"]
    assert mod.VALUE == 2
    assert events == ["setup", "fine", "setup"]
    assert [(name, str(exc)) for name, exc in errors] == [("raising", "cannot stop")]
    assert "dispose hook" in caplog.text


KEEPER = f"""\
import {EVENTS}

SIZE = 1


def make():
    {EVENTS}.log.append(("made", SIZE))
    return [SIZE]


pool = __hmr__.keep("pool", make)
"""


def test_keep_survives_its_statement_running_again(
    project: Project, hmr: Any, events: list[object]
) -> None:
    path = project.write("keeper.py", KEEPER)
    keeper = importlib.import_module("keeper")
    pool = keeper.pool
    # SIZE changes: the pool's statement, which reads it, runs again.
    path.write_text(KEEPER.replace("SIZE = 1", "SIZE = 2"))
    hmr.reload_module("keeper")
    assert keeper.SIZE == 2
    assert keeper.pool is pool
    assert events == [("made", 1)]

    # A forced reload drops what the module kept.
    hmr.reload_module("keeper", force=True)
    assert keeper.pool == [2]
    assert keeper.pool is not pool
    assert events == [("made", 1), ("made", 2)]

    # discard(name), from the module's own code.
    pool = keeper.pool
    path.write_text(
        KEEPER.replace("SIZE = 2", "SIZE = 3").replace("SIZE = 1", "SIZE = 3")
        + '\n__hmr__.discard("pool")\n'
    )
    hmr.reload_module("keeper")
    assert keeper.pool is pool  # kept until the discard, which ran after it
    hmr.reload_module("keeper", force=True)
    assert keeper.pool == [3]


THREADED = f"""\
import threading
import {EVENTS}

stop = threading.Event()
VERSION = 1


def work(stop=stop):
    stop.wait()


worker = threading.Thread(target=work, name="res-worker", daemon=True)
worker.start()
{EVENTS}.log.append(("started", VERSION))


def halt(data):
    stop.set()
    worker.join(5)
    data["stopped"] = data.get("stopped", 0) + 1


__hmr__.on_dispose(halt)
"""


def _workers() -> list[str]:
    import threading

    return [thread.name for thread in threading.enumerate() if thread.name == "res-worker"]


def test_a_failed_reload_after_dispose_sets_the_old_version_up_again(
    project: Project, hmr: Any, events: list[object]
) -> None:
    path = project.write("threaded.py", THREADED)
    mod = importlib.import_module("threaded")
    try:
        halt = mod.halt
        path.write_text(
            THREADED.replace("VERSION = 1", "VERSION = 2")
            + f'\n{EVENTS}.log.append("failing")\nraise ValueError("broken")\n'
        )
        assert hmr.reload_module("threaded")[0] == []
        # The old version runs, with its thread: the old setup ran again.
        assert mod.VERSION == 1
        assert mod.halt is halt
        assert mod.worker.is_alive()
        assert _workers() == ["res-worker"]
        assert events == [("started", 1), ("started", 2), "failing", ("started", 1)]
        assert hmr.hooks.data["threaded"]["stopped"] == 2  # the old one's and the failed one's

        path.write_text(THREADED.replace("VERSION = 1", "VERSION = 3"))
        assert hmr.reload_module("threaded")[0] == ["threaded"]
        assert mod.VERSION == 3
        assert _workers() == ["res-worker"]
    finally:
        hmr.hooks.dispose("threaded")


def test_the_shim_runs_the_same_code_without_hmr(tmp_path: Path) -> None:
    write(
        tmp_path / "shimmed.py",
        """\
        from muckrack_hmr import hot

        made = []
        hot.on_dispose(lambda data: made.append("disposed"))
        pool = hot.keep("pool", lambda: made.append("made") or "pool")
        hot.discard("pool")
        print(pool, made, hot.data)
        """,
    )
    result = subprocess.run(
        [sys.executable, "shimmed.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "pool ['made'] {}\n"


MAIN = """\
import threading
import time

import worker

print("ready", flush=True)
while True:
    time.sleep(0.05)
"""

WORKER = """\
import threading

from muckrack_hmr import hot

VERSION = 0
stop = threading.Event()
thread = threading.Thread(target=stop.wait, name="worker-thread", daemon=True)
thread.start()
hot.data["generations"] = hot.data.get("generations", 0) + 1
threads = sum(1 for t in threading.enumerate() if t.name == "worker-thread")
print(f"worker {VERSION} threads={threads} generation={hot.data['generations']}", flush=True)


def stop_thread(data):
    stop.set()
    thread.join(5)
    print(f"worker {VERSION} stopped", flush=True)


hot.on_dispose(stop_thread)
"""


def test_twenty_edits_leave_one_thread(proj: Path, spawn: Callable[..., Child]) -> None:
    write(proj / "main.py", MAIN)
    write(proj / "worker.py", WORKER)
    child = spawn(["main.py"], cwd=proj)
    child.expect("worker 0 threads=1 generation=1")
    child.expect("ready")
    for version in range(1, 21):
        write(proj / "worker.py", WORKER.replace("VERSION = 0", f"VERSION = {version}"))
        child.expect(f"worker {version - 1} stopped")
        child.expect(f"worker {version} threads=1 generation={version + 1}")
    # Its file deleted: what it started goes too.
    (proj / "worker.py").unlink()
    child.expect("worker 20 stopped")
