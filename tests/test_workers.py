"""End-to-end tests of worker processes: pools under ``python -m muckrack.hmr`` reload in place.

A script keeps a pool of four workers alive and, for each line on its
stdin, runs one task per worker (a barrier makes each of the four tasks
wait for the others, so four different workers answer) and prints every
worker's answer and PID.  The tests save the module the tasks call and wait
for the CLI's line for the save, then ask again: every worker, with its PID
unchanged, runs the new code.  Both cores (``core_env``), every start method.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .subprocesses import (
    DEADLINE,
    Child,
    Reaper,
    contains,
    free_port,
    left_behind,
    save_atomically,
    write,
)

WORKERS = 4

SCRIPT = """\
import concurrent.futures
import json
import multiprocessing
import os
import select
import sys

import work

_barrier = None


def _init(barrier):
    global _barrier
    _barrier = barrier


def task(_):
    _barrier.wait(timeout=20)
    return [work.answer(), os.getpid()]


def make(kind, ctx):
    barrier = ctx.Barrier(4)
    if kind == "executor":
        return concurrent.futures.ProcessPoolExecutor(
            4, mp_context=ctx, initializer=_init, initargs=(barrier,)
        )
    return ctx.Pool(4, initializer=_init, initargs=(barrier,))


def say(line):
    sys.stdout.write(line + "\\n")  # one write: the hook below writes from another thread


def ask(pool):
    say(json.dumps(sorted(pool.map(task, range(4)))))


if __name__ == "__main__":
    from muckrack_hmr.processes.supervisor import add_spread_hook

    add_spread_hook(
        lambda spread: say(f"spread {spread.seq} {sum(o.did_something for o in spread.outcomes)}")
    )
    kind = sys.argv[1]
    ctx = multiprocessing.get_context("spawn" if kind == "executor" else kind)
    pool = make(kind, ctx)
    say(f"ready {os.getpid()}")
    while True:
        # A look at stdin every 0.2 s, not a read that blocks: a SIGINT the kernel hands
        # to one of the pool's threads leaves a main thread blocked in a read unwoken
        # (under python as under us), and the Ctrl-C below went unanswered.
        if not select.select([sys.stdin], [], [], 0.2)[0]:
            continue
        line = sys.stdin.readline()
        if not line:
            break
        if line.strip() == "new pool":
            fresh = make(kind, ctx)
            ask(fresh)
            fresh.shutdown() if kind == "executor" else fresh.terminate()
        else:
            ask(pool)
"""

WORK = """\
def answer():
    return {value!r}
"""

# Fails where it runs in a worker, runs in the supervising process.
WORK_ONLY_PARENT = """\
import multiprocessing

assert multiprocessing.parent_process() is None, "not in a worker"


def answer():
    return {value!r}
"""

KINDS = [
    "fork",
    "spawn",
    "forkserver",
    "executor",
]


def reloaded(processes: int) -> Callable[[str], bool]:
    """The CLI's line for a save of ``work`` applied in ``processes`` processes."""
    pattern = re.compile(rf"^hmr: reloaded work in {processes} processes .* ms \(slowest\)$")

    def predicate(line: str) -> bool:
        return bool(pattern.match(line))

    predicate.__name__ = pattern.pattern
    return predicate


def forkserver_preloads_main() -> bool:
    """Does this Python's forkserver import the program's ``__main__`` before it forks?"""
    import inspect
    from multiprocessing import forkserver

    # 3.10-3.13 ask get_preparation_data() for a "main_path" it never returns.
    return "init_main_from_path" in inspect.getsource(forkserver.ForkServer.ensure_running)


def answers(child: Child, request: str = "ask") -> list[tuple[str, int]]:
    """Every worker's (answer, pid), one per worker."""
    child.send(request)
    line = child.expect(lambda text: text.startswith("[["))
    found = [(str(value), int(pid)) for value, pid in json.loads(line)]
    assert len({pid for _, pid in found}) == WORKERS, found
    return found


def start(proj: Path, kind: str, spawn: Callable[..., Child]) -> Child:
    write(proj / "work.py", WORK.format(value="old"))
    write(proj / "main.py", SCRIPT)
    child: Child = spawn(["-v", "main.py", kind], cwd=proj, stdin=True)
    child.expect("ready")
    child.expect(lambda line: line.startswith("hmr: tracking ") and "work" in line, stream="err")
    return child


@pytest.mark.parametrize("kind", KINDS)
def test_every_worker_runs_the_new_code_in_place(
    proj: Path, kind: str, spawn: Callable[..., Child], reap: Reaper
) -> None:
    child = start(proj, kind, spawn)
    before = answers(child)
    assert {value for value, _ in before} == {"old"}
    pids = {pid for _, pid in before}
    reap.watch(child, pids)

    save_atomically(proj / "work.py", WORK.format(value="new"))
    # The supervising process and its four workers: one line for the five.  A forkserver
    # that preloads __main__ (3.14+; 3.10-3.13 look its path up under the wrong key)
    # imported work too: it reloads, so that what it forks later runs the current code.
    processes = WORKERS + 2 if kind == "forkserver" and forkserver_preloads_main() else WORKERS + 1
    child.expect(reloaded(processes), stream="err")
    child.expect(f"spread 1 {processes}")  # the hooks of the supervising process
    after = answers(child)
    assert {value for value, _ in after} == {"new"}
    assert {pid for _, pid in after} == pids  # in place: the same processes

    # A syntax error: reported once, for every process, and the code that runs stays.
    save_atomically(proj / "work.py", "def answer(:\n    return 'broken'\n")
    error = child.expect("failed to reload work", stream="err")
    assert f"in all {processes} processes" in error
    for pid in pids:
        assert str(pid) in error
    assert {value for value, _ in answers(child)} == {"new"}

    # Saved back as it runs: every process is fine again, and says so at once (only
    # this one was: the workers said it at the next save, "in 4 processes of 5").
    save_atomically(proj / "work.py", WORK.format(value="new"))
    recovered = child.expect(contains("work recovered"), stream="err")
    assert "back to the code that runs" in recovered
    assert f"(in all {processes} processes" in recovered
    save_atomically(proj / "work.py", WORK.format(value="newer"))
    child.expect(reloaded(processes), stream="err")
    assert sum("failed to reload work" in line for line in child.seen["err"]) == 1
    assert sum("work recovered" in line for line in child.seen["err"]) == 1
    # A pool made after the save runs the current code (fork: inherited; spawn: from disk).
    fresh = answers(child, "new pool")
    reap.watch(child, (pid for _, pid in fresh))
    assert {value for value, _ in fresh} == {"newer"}
    assert not pids & {pid for _, pid in fresh}
    assert {value for value, _ in answers(child)} == {"newer"}

    # Ctrl-C: the program stops as it would without us, and no worker is left.
    child.proc.send_signal(signal.SIGINT)
    assert child.wait() == -signal.SIGINT  # as python: by the signal
    assert left_behind(pids) == []


def test_processes_that_disagree_are_named(
    proj: Path, spawn: Callable[..., Child], reap: Reaper
) -> None:
    child = start(proj, "fork", spawn)
    pids = {pid for _, pid in answers(child)}
    reap.watch(child, pids)
    save_atomically(proj / "work.py", WORK_ONLY_PARENT.format(value="new"))
    disagree = child.expect("the processes disagree", stream="err")
    assert f"failed in {WORKERS} processes" in disagree
    assert "applied in 1 process" in disagree
    for pid in pids:
        assert str(pid) in disagree
    error = next(line for line in child.seen["err"] if "failed to reload work" in line)
    assert f"(in {WORKERS} processes of {WORKERS + 1}" in error
    assert "AssertionError: not in a worker" in error
    # Each worker keeps its old module whole (per-module atomicity).
    assert {value for value, _ in answers(child)} == {"old"}


def test_a_program_that_makes_no_process_imports_nothing_of_it(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    write(proj / "work.py", WORK.format(value="old"))
    write(
        proj / "main.py",
        "import sys, work\nprint(sorted(m for m in sys.modules if 'processes' in m "
        "or m.startswith('multiprocessing')), flush=True)\n",
    )
    child = spawn(["main.py"], cwd=proj)
    assert child.expect(lambda line: line.startswith("[")) == "[]"
    assert child.wait() == 0
    assert os.path.exists(proj / "work.py")


# Workers that import what the supervising process does not: a helper that every
# user module calls in a function, and none at import time.
BOOKKEEPING = """\
import builtins
import multiprocessing
import sys
import threading

_barrier = None
_followed = []


def _init(barrier):
    global _barrier
    _barrier = barrier
    import core, user0, user1, user2, user3, user4, user5  # noqa: F401

    reloader = builtins.__hmr__.reloader
    follow = reloader._follow

    def spy(name, changes):
        _followed.append(name)
        return follow(name, changes)

    reloader._follow = spy


def task(_):
    import core

    _barrier.wait(timeout=20)
    hmr = builtins.__hmr__
    rested = hmr._idle_worker is not None and hmr._idle_worker.done.wait(20)
    return [core.helper(), rested, hmr.reloader.sources.unindexed(), list(_followed)]


if __name__ == "__main__":
    ctx = multiprocessing.get_context(sys.argv[1])
    pool = ctx.Pool(2, initializer=_init, initargs=(ctx.Barrier(2),))
    for line in sys.stdin:
        sys.stdout.write(f"answers {sorted(pool.map(task, range(2)))}\\n")
        sys.stdout.flush()
"""


@pytest.mark.parametrize("kind", ["fork", "spawn"])
def test_workers_do_their_bookkeeping_while_they_rest(
    proj: Path, kind: str, spawn: Callable[..., Child]
) -> None:
    """Each worker records its imports, keeps its sources and indexes what its
    import-time code calls while it rests, as the watcher does in the supervising
    process: its first save costs what a later one does.  Before, a worker did none of
    it (a helper edit's first reload took 1.4 s in each worker of a 1,000-module app,
    and every later one 180 ms: each walked every module that calls the helper)."""
    write(proj / "core.py", "def helper():\n    return 'old'\n")
    for index in range(6):
        write(
            proj / f"user{index}.py", "import core\n\n\ndef handle():\n    return core.helper()\n"
        )
    write(proj / "main.py", BOOKKEEPING)
    child: Child = spawn(["-v", "main.py", kind], cwd=proj, stdin=True)
    child.send("ask")
    # Both workers rested, and took in every module they imported.
    assert child.expect(lambda line: line.startswith("answers")) == (
        "answers [['old', True, 0, []], ['old', True, 0, []]]"
    )
    child.expect(lambda line: line.startswith("hmr: tracking ") and "core" in line, stream="err")

    save_atomically(proj / "core.py", "def helper():\n    return 'new'\n")
    child.expect(re.compile(r"^hmr: reloaded core in 2 processes").match, stream="err")
    child.send("ask")
    # No worker followed any module that calls the helper only in a function.
    assert child.expect(lambda line: line.startswith("answers")) == (
        "answers [['new', True, 0, []], ['new', True, 0, []]]"
    )


CHURN = """\
import multiprocessing
import sys


def task(_):
    import helper  # in the worker only, lazily

    return helper.answer()


if __name__ == "__main__":
    ctx = multiprocessing.get_context(sys.argv[1])
    # Each worker runs one task, and a fresh one takes its place.
    pool = ctx.Pool(1, maxtasksperchild=1)
    for line in sys.stdin:
        sys.stdout.write(f"answer {pool.apply(task, (0,))}\\n")
        sys.stdout.flush()
"""


@pytest.mark.parametrize("kind", ["fork", "spawn"])
def test_a_save_of_a_module_only_workers_that_came_and_went_loaded_says_so(
    proj: Path, kind: str, spawn: Callable[..., Child]
) -> None:
    """A pool whose workers churn (``maxtasksperchild``): when a save comes, no process
    may hold the module.  The next worker imports the new code; the save gets its line
    all the same (before: none)."""
    write(proj / "helper.py", WORK.format(value="old"))
    write(proj / "main.py", CHURN)
    child: Child = spawn(["-v", "main.py", kind], cwd=proj, stdin=True)
    child.send("go")
    child.expect("answer old")
    child.expect(lambda line: line.startswith("hmr: tracking ") and "helper" in line, stream="err")

    save_atomically(proj / "helper.py", WORK.format(value="new"))

    line = child.expect(
        lambda line: line.startswith(("hmr: saved helper", "hmr: reloaded helper")), stream="err"
    )
    if line.startswith("hmr: saved helper"):
        assert line == (
            "hmr: saved helper: no process has it loaded now; "
            "the next to import it gets the new code"
        )
    child.send("go")
    child.expect("answer new")

    # A save that does not compile: said so (before: "the next to import it gets the
    # new code", and that import then failed).
    save_atomically(proj / "helper.py", "def answer(:\n    return 1\n")
    line = child.expect(
        lambda line: line.startswith(("hmr: saved helper", "hmr: failed to reload helper")),
        stream="err",
    )
    if line.startswith("hmr: saved helper"):
        assert line.startswith(
            f"hmr: saved helper: it does not compile ({proj / 'helper.py'}:1: SyntaxError: "
        ), line
        assert line.endswith("no process has it loaded now, the next to import it fails")


@pytest.mark.parametrize("kind", ["fork", "spawn"])
def test_sigterm_leaves_no_worker_behind(
    proj: Path, kind: str, spawn: Callable[..., Child], reap: Reaper
) -> None:
    child = start(proj, kind, spawn)
    pids = {pid for _, pid in answers(child)}
    reap.watch(child, pids)
    child.proc.send_signal(signal.SIGTERM)
    assert child.wait() == -signal.SIGTERM  # as python's: no handler, killed by the signal
    assert left_behind(pids) == []


def test_a_process_that_joins_late_is_sent_what_it_missed(tmp_path: Path) -> None:
    """A fork child that connects after a save's broadcast gets it on its hello."""
    import socket

    from muckrack_hmr.processes.channel import Frames, receive, send
    from muckrack_hmr.processes.hub import Hub

    hub = Hub()
    try:
        early = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        early.connect(hub.address)
        send(early, {"op": "hello", "pid": 101, "seq": 0})
        deadline = time.monotonic() + DEADLINE
        while hub.pids != [101] and time.monotonic() < deadline:
            time.sleep(0.01)  # the hub's thread registers it
        seq, sent = hub.broadcast(["work"], [], {"work": b"def answer():\n    return 'new'\n"})
        assert (seq, sent) == (1, [101])
        hub.broadcast(["data_reader"], ["data_reader"], {})
        # Forked before save 1, connected after both saves: sent both, at once.
        late = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        late.settimeout(DEADLINE)
        late.connect(hub.address)
        send(late, {"op": "hello", "pid": 102, "seq": 0})
        frames = Frames()
        messages = receive(late, frames)
        assert messages is not None
        (catch_up,) = messages
        assert catch_up["catch_up"] is True
        assert catch_up["seq"] == 2
        assert catch_up["names"] == ["work", "data_reader"]
        assert catch_up["forced"] == ["data_reader"]
        assert catch_up["sources"] == {"work": b"def answer():\n    return 'new'\n"}
        # One that inherited save 2 already is sent nothing.
        current = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        current.connect(hub.address)
        send(current, {"op": "hello", "pid": 103, "seq": 2})
        while hub.pids != [101, 102, 103] and time.monotonic() < deadline:
            time.sleep(0.01)
        current.setblocking(False)
        with pytest.raises(BlockingIOError):
            current.recv(1)
        for sock in (early, late, current):
            sock.close()
    finally:
        hub.close()
    assert hub.folder is None or not os.path.exists(hub.folder)


# -- uvicorn --workers: spawned workers serving one socket -------------------------------

ASGI_APP = """\
import json
import os


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = json.dumps({{"pid": os.getpid(), "value": value()}}).encode()
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": body}})


def value():
    return {value!r}
"""


def served_by_every_worker(child: Child, port: int, value: str, workers: int) -> set[int]:
    """GET / (a new connection each time) until ``workers`` PIDs served ``value``: their PIDs."""
    import urllib.request

    seen: set[int] = set()
    last: object = "no response"
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        assert child.proc.poll() is None, child.stderr_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                last = json.loads(response.read())
        except OSError as exc:
            last = exc
            time.sleep(0.05)  # nothing listens yet: polling the port, with a deadline
            continue
        assert isinstance(last, dict)
        if last["value"] == value:
            seen.add(int(last["pid"]))
            if len(seen) == workers:
                return seen
    pytest.fail(f"not every worker served {value!r}: {sorted(seen)}; last: {last!r}")


@pytest.mark.parametrize("workers", [2, 4])
def test_uvicorn_workers_reload_in_place(
    proj: Path, spawn: Callable[..., Child], reap: Reaper, workers: int
) -> None:
    write(proj / "app.py", ASGI_APP.format(value="old"))
    port = free_port()
    server = ["-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)]
    child = spawn([*server, "--workers", str(workers)], cwd=proj)
    pids = served_by_every_worker(child, port, "old", workers)
    reap.watch(child, pids)
    assert child.proc.pid not in pids  # uvicorn's supervisor never imports the app

    save_atomically(proj / "app.py", ASGI_APP.format(value="new"))
    # The supervisor judged the save (a module only the workers imported) once.
    child.expect(re.compile(rf"^hmr: reloaded app in {workers} processes").match, stream="err")
    assert served_by_every_worker(child, port, "new", workers) == pids

    save_atomically(proj / "app.py", "async def app(scope, receive, send:\n    pass\n")
    error = child.expect("failed to reload app", stream="err")
    assert f"in all {workers} processes" in error
    assert served_by_every_worker(child, port, "new", workers) == pids

    # Saved back as it runs: every worker says it recovered (before: "no process has it
    # loaded now", as for a module no worker held).
    seen = len(child.seen["err"])
    save_atomically(proj / "app.py", ASGI_APP.format(value="new"))
    recovered = child.expect(lambda line: "app recovered" in line, stream="err")
    assert f"(in all {workers} processes" in recovered
    assert not any("no process has it loaded" in line for line in child.seen["err"][seen:])

    child.proc.send_signal(signal.SIGINT)
    assert child.wait() == 0  # as uvicorn's own exit on Ctrl-C
    assert left_behind(pids) == []
    assert not any("cannot reach" in line for line in child.seen["err"])


def test_a_save_that_undoes_an_edit_reaches_the_uvicorn_workers(
    proj: Path, spawn: Callable[..., Child], reap: Reaper
) -> None:
    """Saving a file back as the workers first imported it (an undo) reloads them.

    The supervising process, which never imports the app, kept the file's first
    content in its idle time as the code *it* ran: the undo then looked like no
    change, and the workers kept serving the edit.  (The same stale copy made a
    second event of one save look new: "no process has it loaded now" after the
    save had been applied.)"""
    write(proj / "app.py", ASGI_APP.format(value="old"))
    port = free_port()
    server = ["-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)]
    child = spawn(["-v", *server, "--workers", "2"], cwd=proj)
    pids = served_by_every_worker(child, port, "old", 2)
    reap.watch(child, pids)
    child.expect(lambda line: line.startswith("hmr: tracking ") and "app" in line, stream="err")

    for value in ("new", "old", "newer", "old"):
        seen = len(child.seen["err"])
        save_atomically(proj / "app.py", ASGI_APP.format(value=value))
        child.expect(re.compile(r"^hmr: reloaded app in 2 processes").match, stream="err")
        assert served_by_every_worker(child, port, value, 2) == pids
        assert not any("no process has it loaded" in line for line in child.seen["err"][seen:])


def test_an_edit_the_workers_refuse_is_said_and_restarts_the_server(
    proj: Path, spawn: Callable[..., Child], reap: Reaper
) -> None:
    """A module only the workers load, whose edit they refuse: each said "nothing to run",
    the CLI said no process had it loaded, and ``--restart-on-refused`` never restarted."""
    app = ASGI_APP.format(value="old") + "\n\nclass K:\n    pass\n"
    write(proj / "app.py", app)
    port = free_port()
    server = ["-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)]
    child = spawn(["--restart-on-refused", *server, "--workers", "2"], cwd=proj)
    pids = served_by_every_worker(child, port, "old", 2)
    reap.watch(child, pids)

    save_atomically(
        proj / "app.py", app.replace("class K:", "class K(dict):").replace("'old'", "'new'")
    )
    refused = child.expect("restart to apply: app.K changed its bases", stream="err")
    assert "in all 2 processes" in refused
    child.expect("restarting: class layout: app.K", stream="err")
    restarted = served_by_every_worker(child, port, "new", 2)
    reap.watch(child, restarted)
    assert not restarted & pids
    assert not any("no process has it loaded" in line for line in child.seen["err"])
    child.proc.send_signal(signal.SIGINT)
    assert child.wait() == 0


@pytest.mark.parametrize(
    ("code", "joins"),
    [
        (
            "from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=7)",
            True,
        ),
        ("from multiprocessing.forkserver import main; main(3, 4, ['__main__'], **{})", True),
        # 3.14 (gh-144503): the forkserver's line starts with an import of sys.
        (
            "import sys; from multiprocessing.forkserver import main; "
            "main(3, 4, ['__main__'], sys_argv=sys.argv[1:], **{})",
            True,
        ),
        ("from multiprocessing.resource_tracker import main;main(5)", False),
    ],
)
def test_which_multiprocessing_children_get_the_prologue(code: str, joins: bool) -> None:
    from muckrack_hmr.processes.joining import runs_program_code

    assert runs_program_code(code) is joins


def test_a_line_of_the_one_process_says_so() -> None:
    """A line that one process of one logged was said to come "in all 1 process"."""
    from muckrack_hmr.processes.outcomes import _once_each

    assert _once_each([(123, ((30, "slow"),))]) == [(30, "slow (in the one process: pid 123)")]
    assert _once_each([(2, ((30, "x"),)), (1, ((30, "x"),))]) == [
        (30, "x (in all 2 processes: pids 1, 2)")
    ]
    assert _once_each([(2, ((30, "x"),)), (1, ())]) == [(30, "x (in 1 process of 2: pid 2)")]
