"""Everyday edits of a running program, end to end: what a user does between two requests.

Each test starts ``python -m muckrack.hmr`` in a child process on both cores
(a real server on 127.0.0.1, or a plain script driven through its standard
input), edits real files and waits with a deadline for what the edit must
change: the reload's log line, an HTTP response, the program's reply.  The
edits are the common ones: a view gains a line (every definition below it
moves), a comment goes away above a view, a decorator's wrapper changes, a
module is saved while the program is still starting.  What must hold after
each: the new code runs, no reload failure is logged, the framework's routing
table holds each route once, the process is the same, and module state the
edit did not touch (a counter) keeps its value.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import httpbin
import pytest

from .subprocesses import DEADLINE, Child, starts, write
from .test_frameworks import Spawn, free_port, poll

# -- what a reload must not log, and waiting for its outcome ------------------------------

# The lines of a reload that did not apply whole (a module failed, was left
# alone, or a class change was refused), and of a request that raised.
FAILURE_MARKS = (
    "hmr: failed to reload ",
    "hmr: left ",
    "hmr: kept the old ",
    "Traceback (most recent call last)",
)


def fail(child: Child, message: str) -> NoReturn:
    pytest.fail(f"{message}\n--- stderr (tail) ---\n{child.stderr_text()[-4000:]}")


def assert_no_failure(child: Child) -> None:
    failures = [line for line in child.seen["err"] if line.startswith(FAILURE_MARKS)]
    if failures:
        fail(child, f"a reload failure was logged: {failures[0]}")


def outcome_of(module: str) -> Callable[[str], bool]:
    """The one line that ends a reload of ``module``: it applied, or it failed."""

    def predicate(line: str) -> bool:
        return line.startswith((f"hmr: reloaded {module} ", f"hmr: failed to reload {module} "))

    predicate.__name__ = f"the outcome of reloading {module}"
    return predicate


def edit(child: Child, path: Path, source: str, module: str) -> None:
    """Save ``path``, wait for the reload of ``module`` to end, and require that it applied."""
    write(path, source)
    child.expect(outcome_of(module), stream="err")
    assert_no_failure(child)


def tracked(child: Child, *modules: str) -> None:
    """Wait (under ``-v``) until the watcher tracks ``modules``.

    It keeps a module's source as it ran right after, on its own thread: the
    server tests then make a request or two before their first save.  A save
    before that is the race the script tests below are about, not what the
    server tests pin.
    """
    waiting = set(modules)

    def predicate(line: str) -> bool:
        if line.startswith("hmr: tracking "):
            waiting.difference_update(line.removeprefix("hmr: tracking ").split(", "))
        return not waiting

    predicate.__name__ = f"the watcher tracking {', '.join(modules)}"
    child.expect(predicate, stream="err")


def serves(child: Child, port: int, path: str, text: str) -> None:
    """Wait until GET ``path`` answers ``text``."""
    poll(child, port, lambda body: body == text, path=path, parse=str)


def routing(child: Child, port: int) -> dict[str, Any]:
    """The server's process ID and how many routes its app holds (the ``/count`` route)."""
    facts: dict[str, Any] = poll(child, port, lambda got: True, path="/count")
    return facts


# -- Flask: views that move -------------------------------------------------------------

# The script the CLI runs: it adds /count to the app and serves it.  It is
# __main__, never reloaded, so /count stays as it is whatever the edits do.
FLASK_SERVER = """\
import os
import sys

{setup}


@app.route("/count")
def count():
    return {{"pid": os.getpid(), "rules": len(list(app.url_map.iter_rules()))}}


app.run(host="127.0.0.1", port=int(sys.argv[1]))
"""

FLASK_SETUP = {
    "app": "from views import app",
    "blueprint": """\
from flask import Flask

from views import bp

app = Flask(__name__)
app.register_blueprint(bp)""",
}

FLASK_HEADER = {
    "app": "from flask import Flask\n\napp = Flask(__name__)",
    "blueprint": 'from flask import Blueprint\n\nbp = Blueprint("bp", __name__)',
}

FLASK_VIEWS = """\
{header}


@{owner}.route("/a")
def a():
    {a_body}
{notes}

@{owner}.route("/b")
def b():
    return "{b}"
"""

# Three versions of the views: /a gains a line (so /b moves down), then the
# notes above /b go (so /b moves up) and /b's body changes.
A_V1 = 'return "a v1"'
A_V2 = 'x = "a v2"\n    return x'
NOTES = "\n\n# /b answers with its version;\n# the second edit deletes these notes.\n"


def flask_views(kind: str, *, a_body: str = A_V1, notes: str = NOTES, b: str = "b v1") -> str:
    owner = "app" if kind == "app" else "bp"
    return FLASK_VIEWS.format(
        header=FLASK_HEADER[kind], owner=owner, a_body=a_body, notes=notes, b=b
    )


@pytest.mark.parametrize("kind", ["app", "blueprint"])
def test_flask_view_that_gains_a_line_keeps_one_rule_per_route(
    proj: Path, spawn: Spawn, kind: str
) -> None:
    """A Flask user edits one view so it is a line longer, then deletes a comment above the
    next view and edits it: each edit goes live, every route still serves, once."""
    write(proj / "views.py", flask_views(kind))
    write(proj / "server.py", FLASK_SERVER.format(setup=FLASK_SETUP[kind]))
    port = free_port()
    child = spawn(["-v", "server.py", str(port)], cwd=proj)
    tracked(child, "views")
    serves(child, port, "/a", "a v1")
    before = routing(child, port)
    assert before["pid"] == child.proc.pid

    edit(child, proj / "views.py", flask_views(kind, a_body=A_V2), "views")
    serves(child, port, "/a", "a v2")
    serves(child, port, "/b", "b v1")
    assert routing(child, port) == before

    edit(child, proj / "views.py", flask_views(kind, a_body=A_V2, notes="", b="b v2"), "views")
    serves(child, port, "/b", "b v2")
    serves(child, port, "/a", "a v2")
    assert routing(child, port) == before


# -- FastAPI under uvicorn ------------------------------------------------------------------

FASTAPI_APP = """\
import os

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

app = FastAPI()


@app.get("/a", response_class=PlainTextResponse)
def a():
    {a_body}
{notes}

@app.get("/b", response_class=PlainTextResponse)
def b():
    return "{b}"


@app.get("/count")
def count():
    return {{"pid": os.getpid(), "rules": len(app.routes)}}
"""


def fastapi_app(*, a_body: str = A_V1, notes: str = NOTES, b: str = "b v1") -> str:
    return FASTAPI_APP.format(a_body=a_body, notes=notes, b=b)


def test_fastapi_routes_that_move_are_not_added_again(proj: Path, spawn: Spawn) -> None:
    """A FastAPI user under uvicorn makes the same two edits: the app must not collect a
    second copy of each route that moved."""
    write(proj / "app.py", fastapi_app())
    port = free_port()
    child = spawn(
        ["-v", "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)], cwd=proj
    )
    tracked(child, "app")
    serves(child, port, "/a", "a v1")
    before = routing(child, port)
    assert before["pid"] == child.proc.pid

    edit(child, proj / "app.py", fastapi_app(a_body=A_V2), "app")
    serves(child, port, "/a", "a v2")
    serves(child, port, "/b", "b v1")
    after_one = routing(child, port)

    edit(child, proj / "app.py", fastapi_app(a_body=A_V2, notes="", b="b v2"), "app")
    serves(child, port, "/b", "b v2")
    serves(child, port, "/a", "a v2")
    after_two = routing(child, port)
    assert [got["rules"] for got in (before, after_one, after_two)] == [before["rules"]] * 3
    assert after_one["pid"] == after_two["pid"] == before["pid"]


# -- a decorator's wrapper ------------------------------------------------------------------

WRAPPERS = """\
import functools


def gzip(f):
    @functools.wraps(f)
    def inner(*args, **kwargs):
        return "{left}" + f(*args, **kwargs) + "{right}"

    return inner
"""

DECORATED_VIEWS = """\
from flask import Flask

from wrappers import gzip

app = Flask(__name__)


@app.route("/a")
@gzip
def a():
    return "a"


@app.route("/b")
@gzip
def b():
    return "b"
"""


def test_decorator_wrapper_edit_reaches_the_views_it_wraps(proj: Path, spawn: Spawn) -> None:
    """A Flask user edits the wrapper of a home-made decorator that two views use: both
    views wrap the new way, and the app is not asked to register them again."""
    write(proj / "wrappers.py", WRAPPERS.format(left="[", right="]"))
    write(proj / "views.py", DECORATED_VIEWS)
    write(proj / "server.py", FLASK_SERVER.format(setup=FLASK_SETUP["app"]))
    port = free_port()
    child = spawn(["-v", "server.py", str(port)], cwd=proj)
    tracked(child, "views", "wrappers")
    serves(child, port, "/a", "[a]")
    before = routing(child, port)
    assert before["pid"] == child.proc.pid

    edit(child, proj / "wrappers.py", WRAPPERS.format(left="<", right=">"), "wrappers")
    serves(child, port, "/a", "<a>")
    serves(child, port, "/b", "<b>")
    assert routing(child, port) == before


# -- httpbin, a real Flask app ----------------------------------------------------------------


def test_httpbin_copied_into_the_project_takes_an_edit(proj: Path, spawn: Spawn) -> None:
    """A user works on a real Flask app of some size (httpbin's source, in the project):
    a comment added near the top of its big module moves every view, and a view's body
    edit goes live without the app registering its routes again."""
    shutil.copytree(
        Path(httpbin.__file__).parent,
        proj / "httpbin",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    write(proj / "server.py", FLASK_SERVER.format(setup="from httpbin.core import app"))
    port = free_port()
    child = spawn(["-v", "server.py", str(port)], cwd=proj)
    tracked(child, "httpbin.core")
    got = poll(child, port, lambda got: True, path="/get?probe=1")
    assert got["args"] == {"probe": "1"}
    before = routing(child, port)
    assert before["pid"] == child.proc.pid

    core = proj / "httpbin" / "core.py"
    source = core.read_text(encoding="utf-8")
    old_return = "return jsonify(uuid=str(uuid.uuid4()))"
    assert source.count(old_return) == 1
    source = source.replace(
        "\nimport base64\n", "\n\n# Edited while it serves.\nimport base64\n", 1
    ).replace(old_return, 'return jsonify(uuid=str(uuid.uuid4()), edited="yes")')
    edit(child, core, source, "httpbin.core")
    got = poll(child, port, lambda got: "edited" in got, path="/uuid")
    assert got["edited"] == "yes"
    assert routing(child, port) == before


# -- a plain script: state kept across edits, whenever they come -------------------------------

STATE = """\
COUNT = 0


def bump():
    global COUNT
    COUNT += 1
    return COUNT


def label():
    return "{label}"
"""

# One command a line on stdin, one JSON line back.  Imported eagerly, ``state``
# is bumped once at import; ``busy`` keeps the main thread in a CPU loop for
# half a second right after the import; ``lazy`` imports it on "load" only.
PROGRAM = """\
import json
import sys
import time


def load():
    import state

    return state


def reply(**facts):
    print(json.dumps(facts), flush=True)


if "lazy" not in sys.argv:
    import state

    state.bump()
    print("imported", flush=True)
    if "busy" in sys.argv:
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            pass

while line := sys.stdin.readline():
    command = line.strip()
    try:
        if command == "load":
            reply(count=load().bump())
        elif command == "show":
            reply(label=load().label(), count=load().bump())
        elif command == "mark":
            print("-- mark --", file=sys.stderr, flush=True)
            reply(marked=True)
        elif command in ("reload", "force"):
            options = {"force": True} if command == "force" else {}
            names, ms = __hmr__.reload_module("state", **options)
            reply(reloaded=names, ms=ms)
    except Exception as exc:
        reply(error=f"{type(exc).__name__}: {exc}")
"""


class Program:
    """The running PROGRAM; ``count`` is what ``state.COUNT`` must be if no state is lost."""

    def __init__(self, child: Child, count: int) -> None:
        self.child = child
        self.count = count

    def ask(self, command: str) -> dict[str, Any]:
        self.child.send(command)
        reply: dict[str, Any] = json.loads(self.child.expect(starts("{")))
        if "error" in reply:
            fail(self.child, f"{command!r} raised {reply['error']}")
        return reply

    def bumped(self, reply: dict[str, Any]) -> dict[str, Any]:
        """``reply`` to a command that bumped ``COUNT``; fails when it lost its value."""
        self.count += 1
        if reply["count"] != self.count:
            fail(
                self.child,
                f"state.COUNT is {reply['count'] - 1} after {self.count - 1} bumps: "
                "the module was executed again whole and its state was lost",
            )
        return reply

    def show(self) -> str:
        """The current label; fails when ``COUNT`` lost its value."""
        return str(self.bumped(self.ask("show"))["label"])

    def until_label(self, label: str) -> None:
        """Ask until ``label`` is live; fail at the deadline."""
        deadline = time.monotonic() + DEADLINE
        while (seen := self.show()) != label:
            if time.monotonic() > deadline:
                fail(self.child, f"the label is still {seen!r}, not {label!r}")
            time.sleep(0.01)  # pacing between questions; the deadline bounds the wait


def start_program(proj: Path, spawn: Spawn, *args: str, cli: tuple[str, ...] = ()) -> Child:
    write(proj / "state.py", STATE.format(label="v1"))
    write(proj / "main.py", PROGRAM)
    return spawn([*cli, "main.py", *args], cwd=proj, stdin=True)


# 0 to 200 ms after the import; one fixed seed per case, so a failure replays.
SEEDS = [0, 1, 2, 3]
# Those delays, and 1 ms.
DELAYS = [0.001, *(random.Random(seed).uniform(0.0, 0.2) for seed in SEEDS)]


@pytest.mark.parametrize("delay", DELAYS, ids=[f"{delay * 1000:.0f}ms" for delay in DELAYS])
@pytest.mark.parametrize("mode", ["idle", "busy", "no-watch"])
def test_edit_soon_after_the_import_keeps_module_state(
    proj: Path, spawn: Spawn, mode: str, delay: float
) -> None:
    """A user saves a module while the program is still starting (its imports just done,
    maybe still busy with start-up work), or reloads it by hand under ``--no-watch``: the
    edit goes live and the module's counter keeps counting."""
    cli = ("--no-watch",) if mode == "no-watch" else ()
    child = start_program(proj, spawn, *(["busy"] if mode == "busy" else []), cli=cli)
    program = Program(child, count=1)
    child.expect("imported")
    # The scenario's timing, not synchronisation: the save lands this long after the import.
    time.sleep(delay)
    write(proj / "state.py", STATE.format(label="v2"))

    if mode == "no-watch":
        assert program.ask("reload")["reloaded"] == ["state"]
    program.until_label("v2")
    assert program.show() == "v2"
    assert_no_failure(child)


def test_edit_right_after_a_lazy_import_keeps_module_state(proj: Path, spawn: Spawn) -> None:
    """A module first imported inside a function, at run time, is saved 10 ms later: the
    edit goes live and its counter keeps counting."""
    child = start_program(proj, spawn, "lazy")
    program = Program(child, count=0)
    program.bumped(program.ask("load"))
    time.sleep(0.01)  # the scenario's timing: the save lands 10 ms after the import
    write(proj / "state.py", STATE.format(label="v2"))

    program.until_label("v2")
    assert_no_failure(child)


def test_reload_request_after_the_watcher_applied_a_save_changes_nothing(
    proj: Path, spawn: Spawn
) -> None:
    """A program asks ``__hmr__.reload_module`` for a module the watcher already brought up
    to date (say from a hook of its own): nothing runs again and no state is lost; only
    ``force=True`` runs the module again whole."""
    child = start_program(proj, spawn)
    program = Program(child, count=1)
    child.expect("imported")
    write(proj / "state.py", STATE.format(label="v2"))
    program.until_label("v2")
    # The watcher's reload has ended (a request made during it would only be queued).
    child.expect(outcome_of("state"), stream="err")
    assert_no_failure(child)

    for _ in range(2):
        reply = program.ask("reload")
        assert reply["reloaded"] == []
        assert isinstance(reply["ms"], float)
        assert program.show() == "v2"

    assert program.ask("force")["reloaded"] == ["state"]
    program.count = 0  # run again whole: COUNT starts from 0
    assert program.show() == "v2"
    assert_no_failure(child)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_reload_request_racing_the_watcher_applies_the_save_once(
    proj: Path, spawn: Spawn, seed: int
) -> None:
    """A program's own ``reload_module`` call and the watcher take up the same save at
    the same moment: the edit is applied once, by whichever comes first, the other runs
    nothing, and no state is lost."""
    child = start_program(proj, spawn)
    program = Program(child, count=1)
    child.expect("imported")
    write(proj / "state.py", STATE.format(label="v2"))
    # The scenario's timing: the request lands 0-20 ms after the save.
    time.sleep(random.Random(seed).uniform(0.0, 0.02))
    reply = program.ask("reload")
    assert reply["reloaded"] in ([], ["state"])
    program.until_label("v2")
    # A later save, reloaded by the watcher: its line comes after the watcher has
    # looked at the first save, whoever applied it.
    write(proj / "state.py", STATE.format(label="v3"))
    program.until_label("v3")
    # A request waits for a reload in progress to end (its log line included),
    # and finds nothing to do; the mark then follows every reload line on stderr.
    assert program.ask("reload")["reloaded"] == []
    program.ask("mark")
    child.expect(lambda line: line == "-- mark --", stream="err")
    applied = [line for line in child.seen["err"] if line.startswith("hmr: reloaded state")]
    assert len(applied) == 2, child.stderr_text()
    assert_no_failure(child)


# -- the program's garbage is finalized in the program's threads ----------------------------

# Objects in a reference cycle whose finalizer records the thread it runs in (an SQLite
# connection's, say, must run in the thread that opened it).  ``garbage`` makes a few
# hundred and leaves them for the next collection; ``where`` collects in the main
# thread, then tells where each finalizer ran.
FINALIZED = """\
import gc
import json
import sys
import threading

import helper

ran = []


class Resource:
    def __init__(self):
        self.me = self

    def __del__(self):
        ran.append(threading.current_thread().name)


def reply(**facts):
    print(json.dumps(facts), flush=True)


for _ in range(300):
    Resource()
reply(ready=True)
while line := sys.stdin.readline():
    command = line.strip()
    if command == "garbage":
        for _ in range(300):
            Resource()
        reply(made=True)
    elif command == "where":
        gc.collect()
        reply(threads=sorted(set(ran)), finalized=len(ran), version=helper.VERSION)
"""


def test_the_program_s_garbage_is_finalized_in_its_own_threads(
    proj: Path, spawn: Spawn, core_name: str
) -> None:
    """Cyclic garbage the program leaves is collected by the collection that an
    allocation makes due, in the allocating thread.  The watcher's threads allocate
    while the program rests (the idle work after start-up, each reload): the
    program's finalizers ran there, and an in-memory SQLite database opened by the
    main thread was closed from the watcher's thread (its tables gone).  They run in
    the program's own thread, as under python, and none is lost."""
    if core_name == "py" and sys.version_info[:2] == (3, 11):
        pytest.skip("CPython 3.11 with the pure core: no collector callback (collector.gate)")
    write(proj / "helper.py", "VERSION = 1\n")
    write(proj / "main.py", FINALIZED)
    child = spawn(["-v", "main.py"], cwd=proj, stdin=True)
    child.expect(starts('{"ready"'))
    tracked(child, "helper")
    for version in (2, 3, 4):
        child.send("garbage")
        child.expect(starts('{"made"'))
        edit(child, proj / "helper.py", f"VERSION = {version}\n", "helper")
    child.send("where")
    facts = json.loads(child.expect(starts('{"threads"')))
    assert facts == {"threads": ["MainThread"], "finalized": 1200, "version": 4}, (
        child.stderr_text()[-3000:]
    )
    assert_no_failure(child)
