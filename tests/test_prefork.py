"""End-to-end tests of pre-fork servers and job queues under ``python -m muckrack.hmr``.

gunicorn forks its workers from its arbiter (the CLI's process), Celery's
prefork pool (billiard) forks its children from the worker's main process:
both join the reloads through the fork hooks.  An HTTP client (gunicorn) or
the tasks' results (Celery) must show every worker PID running the new code,
in place, after a save; a worker the server forks again later runs the
current code; Ctrl-C and SIGTERM end the tree as they do without us.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from .subprocesses import (
    DEADLINE,
    Child,
    Reaper,
    contains,
    descendants,
    left_behind,
    run_python,
    save_atomically,
    write,
)
from .test_workers import free_port, served_by_every_worker

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pre-fork servers: Unix only")

# -- gunicorn ----------------------------------------------------------------------------

WSGI_APP = """\
import json
import os


def app(environ, start_response):
    body = json.dumps({{"pid": os.getpid(), "value": value()}}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def value():
    return {value!r}
"""

STARLETTE_APP = """\
import os

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def root(request):
    return JSONResponse({{"pid": os.getpid(), "value": value()}})


def value():
    return {value!r}


app = Starlette(routes=[Route("/", root)])
"""

# (gunicorn's options, the app, the signal that stops it, its exit code without us: 0 for
# both signals, measured with gunicorn 27).  A Ctrl-C reaches the whole process group.
GUNICORN_KINDS = {
    "sync": ([], WSGI_APP, signal.SIGINT),
    # The arbiter imports the app; its workers inherit it: they catch up at their fork.
    "sync-preload": (["--preload"], WSGI_APP, signal.SIGTERM),
    # gunicorn's own --reload (a restart of the worker) is turned off: the PIDs stay.
    "gthread-reload": (["--threads", "2", "--reload"], WSGI_APP, signal.SIGTERM),
    "uvicorn-worker": (["-k", "uvicorn_worker.UvicornWorker"], STARLETTE_APP, signal.SIGINT),
}


def get(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        answer: dict[str, object] = json.loads(response.read())
    return answer


def gunicorn_command(port: int, options: list[str]) -> list[str]:
    import gunicorn.config

    command = ["-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", *options, "app:app"]
    if hasattr(gunicorn.config, "ControlSocketDisable"):
        # gunicorn 24+ listens on ~/.gunicorn/gunicorn.ctl by default: one per machine.
        command.insert(2, "--no-control-socket")
    return command


@pytest.mark.parametrize("kind", list(GUNICORN_KINDS))
def test_gunicorn_workers_reload_in_place(
    proj: Path, kind: str, spawn: Callable[..., Child], reap: Reaper
) -> None:
    pytest.importorskip("gunicorn", reason="gunicorn is not installed")
    options, source, stop = GUNICORN_KINDS[kind]
    if kind == "uvicorn-worker":
        pytest.importorskip("uvicorn_worker", reason="uvicorn-worker is not installed")
    write(proj / "app.py", source.format(value="old"))
    port = free_port()
    child = spawn(gunicorn_command(port, options), cwd=proj, new_session=True)
    pids = served_by_every_worker(child, port, "old", 2)
    reap.watch(child, pids)
    assert child.proc.pid not in pids
    if "--reload" in options:
        assert any("gunicorn's --reload is off" in text for text in child.seen["err"])
    # With --preload the arbiter (the CLI's process) imported the app too.
    processes = 3 if "--preload" in options else 2
    line = re.compile(rf"^hmr: reloaded app in {processes} processes .* ms \(slowest\)$").match

    save_atomically(proj / "app.py", source.format(value="new"))
    child.expect(line, stream="err")
    assert served_by_every_worker(child, port, "new", 2) == pids

    # A syntax error: reported once for all, and every worker serves the code it had.
    save_atomically(proj / "app.py", "def value(:\n    return 'broken'\n")
    error = child.expect("failed to reload app", stream="err")
    assert f"in all {processes} processes" in error
    assert served_by_every_worker(child, port, "new", 2) == pids

    save_atomically(proj / "app.py", source.format(value="newer"))
    child.expect(line, stream="err")
    # A worker that dies is forked again by gunicorn: it comes up with the current code.
    killed = min(pids)
    os.kill(killed, signal.SIGKILL)
    deadline = time.monotonic() + DEADLINE
    replacement = 0
    while not replacement and time.monotonic() < deadline:
        try:
            answer = get(port)
        except OSError:
            time.sleep(0.05)  # between the worker's death and its successor: with a deadline
            continue
        assert answer["value"] == "newer", answer
        if answer["pid"] not in pids:
            replacement = int(str(answer["pid"]))
    assert replacement, "gunicorn did not fork a new worker"
    workers = (pids - {killed}) | {replacement}
    reap.watch(child, workers)
    # ... and it joined the reloads: the next save reaches it in place.
    save_atomically(proj / "app.py", source.format(value="newest"))
    child.expect(line, stream="err")
    assert served_by_every_worker(child, port, "newest", 2) == workers

    if stop == signal.SIGINT:
        child.interrupt()
    else:
        child.proc.send_signal(stop)
    assert child.wait() == 0  # gunicorn's own exit code for both signals
    assert left_behind(pids | workers) == []
    assert sum("failed to reload app" in text for text in child.seen["err"]) == 1


def test_a_gunicorn_worker_that_fails_to_boot_on_a_save_leaves_gunicorn_serving(
    proj: Path, spawn: Callable[..., Child], reap: Reaper
) -> None:
    """A worker gunicorn forks while the saved app does not compile (one that died, or
    reached --max-requests) fails to boot, and gunicorn stopped as a whole: a broken save
    took the server down.  It goes on now with the workers it has, forks none until the
    next save, and that save boots the missing one with the code it brings."""
    pytest.importorskip("gunicorn", reason="gunicorn is not installed")
    write(proj / "app.py", WSGI_APP.format(value="old"))
    port = free_port()
    child = spawn(gunicorn_command(port, []), cwd=proj, new_session=True)
    pids = served_by_every_worker(child, port, "old", 2)
    reap.watch(child, pids)
    save_atomically(proj / "app.py", "def value(:\n    return 'broken'\n")
    child.expect("failed to reload app", stream="err")
    killed, survivor = sorted(pids)
    os.kill(killed, signal.SIGKILL)
    line = child.expect(
        contains("a gunicorn worker failed to boot on the saved code"), stream="err"
    )
    assert line.endswith(
        "gunicorn goes on with 1 worker and forks the missing ones at the next save"
    )
    assert child.proc.poll() is None, child.stderr_text()
    assert get(port) == {"pid": survivor, "value": "old"}

    save_atomically(proj / "app.py", WSGI_APP.format(value="new"))
    workers = served_by_every_worker(child, port, "new", 2)
    reap.watch(child, workers)
    assert survivor in workers
    assert killed not in workers
    child.proc.send_signal(signal.SIGTERM)
    assert child.wait() == 0
    assert left_behind(pids | workers) == []


# The second worker gunicorn forks waits, before it loads the app, for the test's word.
HELD_SECOND_WORKER = """\
import os
import time


def post_fork(server, worker):
    if worker.age == 2:
        deadline = time.monotonic() + 60
        while not os.path.exists("go") and time.monotonic() < deadline:
            time.sleep(0.01)
"""


def test_a_gunicorn_worker_booting_as_a_broken_save_comes_leaves_gunicorn_serving(
    proj: Path, spawn: Callable[..., Child], reap: Reaper
) -> None:
    """A worker still booting as the first save came (broken) imported it at once and
    failed, and gunicorn stopped as a whole: the failure was reaped before the save's
    burst settled (1 start in 8 in a trial), so no save had come yet.  Its burst is
    waited for now (here a long quiet time makes the window wide)."""
    pytest.importorskip("gunicorn", reason="gunicorn is not installed")
    write(proj / "app.py", WSGI_APP.format(value="old"))
    write(proj / "gunicorn.conf.py", HELD_SECOND_WORKER)
    port = free_port()
    command = gunicorn_command(port, [])
    command[2:2] = ["-c", "gunicorn.conf.py"]
    child = spawn(["-v", "--debounce", "1000", *command], cwd=proj, new_session=True)
    # (The first worker loaded it, and told the arbiter: its folder is watched.)
    child.expect(lambda line: line.startswith("hmr: tracking") and "app" in line, stream="err")
    first = served_by_every_worker(child, port, "old", 1)
    reap.watch(child, first)

    save_atomically(proj / "app.py", "def value(:\n    return 'broken'\n")
    (proj / "go").touch()  # the second worker boots on the broken file, and fails

    line = child.expect(
        contains("a gunicorn worker failed to boot on the saved code"), stream="err"
    )
    assert line.endswith(
        "gunicorn goes on with 1 worker and forks the missing ones at the next save"
    )
    assert child.proc.poll() is None, child.stderr_text()
    (survivor,) = first
    assert get(port) == {"pid": survivor, "value": "old"}

    save_atomically(proj / "app.py", WSGI_APP.format(value="new"))
    workers = served_by_every_worker(child, port, "new", 2)
    reap.watch(child, workers)
    assert survivor in workers
    child.proc.send_signal(signal.SIGTERM)
    assert child.wait() == 0
    assert left_behind(first | workers) == []


def test_gunicorn_workers_serve_on_past_max_requests_while_the_saved_code_is_broken(
    proj: Path, spawn: Callable[..., Child], reap: Reaper
) -> None:
    """``--max-requests``, then a save that does not compile: each worker retired at its
    limit and none was forked in its place (it would fail to boot): after as many requests
    gunicorn had no worker, and every request waited.  The workers now serve on with the
    code that runs until a save loads; then they retire at the limit again, and gunicorn
    forks new ones on the code that save brought."""
    pytest.importorskip("gunicorn", reason="gunicorn is not installed")
    write(proj / "app.py", WSGI_APP.format(value="old"))
    port = free_port()
    # (Room for the requests that find both workers first: none retires before the save.)
    options = ["--max-requests", "30", "--max-requests-jitter", "0"]
    # Workers retire and are forked all along: one forked as gunicorn handles SIGTERM may
    # miss it (gunicorn's own race) and is stopped at the graceful timeout, 30 s by default.
    options += ["--graceful-timeout", "5"]
    child = spawn(gunicorn_command(port, options), cwd=proj, new_session=True)
    pids = served_by_every_worker(child, port, "old", 2)
    reap.watch(child, pids)
    save_atomically(proj / "app.py", "def value(:\n    return 'broken'\n")
    child.expect("failed to reload app", stream="err")
    # The workers now: on a loaded machine the requests that found both took more than
    # 30, and one retired (its successor booted on the old code) before the save.
    workers = set(descendants(child.proc.pid))
    reap.watch(child, workers)
    # Past the limit of both: every answer from the workers that run the old code.
    answers = [get(port) for _ in range(80)]
    assert {answer["value"] for answer in answers} == {"old"}
    assert {answer["pid"] for answer in answers} <= workers
    assert child.proc.poll() is None, child.stderr_text()

    save_atomically(proj / "app.py", WSGI_APP.format(value="new"))
    # The limit is back: the workers retire, and their successors boot on the new code.
    deadline = time.monotonic() + DEADLINE
    fresh: set[int] = set()
    while time.monotonic() < deadline and len(fresh) < 2:
        answer = get(port)
        if answer["value"] == "new" and answer["pid"] not in workers:
            fresh.add(int(str(answer["pid"])))
    assert len(fresh) == 2, fresh
    reap.watch(child, fresh)
    child.proc.send_signal(signal.SIGTERM)
    assert child.wait() == 0
    assert left_behind(pids | workers | fresh) == []


DJANGO_WSGI = """\
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
application = get_wsgi_application()
"""


def pages_by_worker(port: int, text: str, workers: int) -> set[int]:
    """GET /page (a new connection each time) until ``workers`` PIDs rendered ``text``."""
    seen: set[int] = set()
    last: object = "no response"
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/page", timeout=5) as response:
                last = response.read().decode().strip()
        except OSError as exc:
            last = exc
            time.sleep(0.05)  # nothing listens yet: polling the port, with a deadline
            continue
        rendered, _, pid = str(last).partition(", pid ")
        if rendered == text:
            seen.add(int(pid))
            if len(seen) == workers:
                return seen
    pytest.fail(f"not every worker rendered {text!r}: {sorted(seen)}; last: {last!r}")


@pytest.mark.parametrize("options", [[], ["--preload"]], ids=["sync", "preload"])
def test_a_django_template_saved_reaches_every_gunicorn_worker(
    proj: Path, spawn: Callable[..., Child], reap: Reaper, options: list[str]
) -> None:
    """Each worker resets Django's template loaders when a template is saved, as
    ``runserver`` does.  Before, the file signals that do it ran under ``runserver``
    only: a worker that had rendered the page kept serving the old one until a ``.py``
    save (40 of 40 answers in 5 s)."""
    pytest.importorskip("gunicorn", reason="gunicorn is not installed")
    from .test_frameworks import django_project

    django_project(proj)
    write(proj / "mysite" / "wsgi.py", DJANGO_WSGI)
    port = free_port()
    command = gunicorn_command(port, options)
    command[command.index("app:app")] = "mysite.wsgi:application"
    child = spawn(["-v", *command], cwd=proj, new_session=True)
    # Listening first: on a loaded machine the start-up alone may take seconds, and a
    # gunicorn that stopped says why here.
    child.expect(contains("Listening at: "), stream="err")
    pids = pages_by_worker(port, "template one", 2)  # (each worker rendered it)
    reap.watch(child, pids)
    # Each worker watches the template folder (and the arbiter, which made the handler
    # with --preload): a save before that is the race a restart has too.
    watching = f"hmr: watching {os.path.realpath(proj / 'templates')} for Django"
    for _ in range(2 + len(options)):
        child.expect(watching, stream="err")
    write(proj / "templates" / "page.html", "template two, pid {{ pid }}\n")
    assert pages_by_worker(port, "template two", 2) == pids
    child.proc.send_signal(signal.SIGTERM)
    assert child.wait() == 0
    assert left_behind(pids) == []


# -- Celery's prefork pool (billiard), kombu's filesystem broker: no server ----------------

CELERY_PROJ = """\
import os

from celery import Celery

HERE = os.path.dirname(os.path.abspath(__file__))
app = Celery("proj", include=["tasks"])
app.conf.update(
    broker_url="filesystem://",
    broker_transport_options={
        "data_folder_in": os.path.join(HERE, "broker"),
        "data_folder_out": os.path.join(HERE, "broker"),
        "polling_interval": 0.05,
    },
    result_backend="file://" + os.path.join(HERE, "results"),
    broker_connection_retry_on_startup=True,
)
"""

CELERY_TASKS = """\
import os
import time

import work
from proj import app


@app.task
def which():
    time.sleep(0.2)  # the batch's other task goes to the other child
    return [os.getpid(), work.version()]
"""

CELERY_WORK = """\
def version():
    return {value!r}
"""

# Sends a batch of tasks, prints their results: a plain Python, no HMR.
CELERY_CLIENT = """\
import json
import os
import sys
import time

from proj import HERE, app
from tasks import which

# kombu's filesystem transport writes a message in place, and the worker, which
# reads the folder without a lock, may take it half-written and stop on it
# ("Unrecoverable error: JSONDecodeError"): the batch is written apart, then
# each message moved in whole.
STAGING = os.path.join(HERE, "staging")
options = dict(app.conf.broker_transport_options, data_folder_out=STAGING)
app.conf.broker_transport_options = options
batch = [which.delay() for _ in range(int(sys.argv[1]))]
written = sorted(os.listdir(STAGING))
assert len(written) == len(batch), written
for name in written:
    os.rename(os.path.join(STAGING, name), os.path.join(HERE, "broker", name))


def result_of(result):
    # Long enough for a machine loaded by a whole test run (the filesystem broker
    # polls); the test's own deadline bounds the wait for every child's answer.
    deadline = time.monotonic() + 30
    while True:
        try:
            return result.get(timeout=max(deadline - time.monotonic(), 0.1))
        except ValueError:
            # The file:// backend writes a result in place too: one read while
            # its child writes it is read again.
            if time.monotonic() > deadline:
                raise


print(json.dumps([result_of(result) for result in batch]))
"""


def pool_answers(
    proj: Path, env: dict[str, str], version: str, children: int, worker: Child
) -> set[int]:
    """Batches of tasks until ``children`` PIDs answered ``version``: their PIDs.

    A failed batch fails the test with the worker's own output (its log says
    which child took what, and what it did with our reload).
    """
    seen: set[int] = set()
    deadline = time.monotonic() + 3 * DEADLINE
    while time.monotonic() < deadline:
        result = run_python(["client.py", "4"], cwd=proj, env=env)
        if result.returncode != 0:
            worker.dump_stacks()
            worker.fail(f"the client failed: {result.stderr[-1500:]}")
        answers = json.loads(result.stdout.splitlines()[-1])
        assert {found for _, found in answers} == {version}, answers
        seen.update(pid for pid, _ in answers)
        if len(seen) >= children:
            return seen
    pytest.fail(f"not every pool child answered {version!r}: {sorted(seen)}")


def celery_project(proj: Path) -> None:
    """The Celery app, its tasks, the module they call, and the two clients (skips the
    test where Celery is not installed)."""
    pytest.importorskip("celery", reason="celery is not installed")
    write(proj / "proj.py", CELERY_PROJ)
    write(proj / "tasks.py", CELERY_TASKS)
    write(proj / "work.py", CELERY_WORK.format(value="old"))
    write(proj / "client.py", CELERY_CLIENT)
    write(proj / "send.py", CELERY_SEND)
    for folder in ("broker", "staging", "results"):
        (proj / folder).mkdir()


def test_celery_prefork_children_reload_in_place(
    proj: Path, spawn: Callable[..., Child], core_env: dict[str, str], reap: Reaper
) -> None:
    celery_project(proj)
    child = spawn(
        [
            "-v",
            "-m",
            "celery",
            "-A",
            "proj",
            "worker",
            "--pool",
            "prefork",
            "-c",
            "2",
            "-l",
            "info",
        ],
        cwd=proj,
        new_session=True,
    )
    child.expect(re.compile(r"celery@\S+ ready").search, stream="err")
    pids = pool_answers(proj, core_env, "old", 2, child)
    reap.watch(child, pids)
    assert len(pids) == 2
    assert child.proc.pid not in pids

    save_atomically(proj / "work.py", CELERY_WORK.format(value="new"))
    # The worker's main process imported the tasks too: it and its two children.
    child.expect(re.compile(r"^hmr: reloaded work in 3 processes").match, stream="err")
    assert pool_answers(proj, core_env, "new", 2, child) == pids  # in place: the same children

    child.proc.send_signal(signal.SIGTERM)
    assert child.wait(timeout=3 * DEADLINE) == 0  # celery's warm shutdown, as without us
    assert left_behind(pids) == []


# Sends one task by name, prints its result (or the error it raised): a plain Python.
CELERY_SEND = """\
import json
import os
import sys

from proj import HERE, app

STAGING = os.path.join(HERE, "staging")
options = dict(app.conf.broker_transport_options, data_folder_out=STAGING)
app.conf.broker_transport_options = options
result = app.send_task(sys.argv[1])
for name in sorted(os.listdir(STAGING)):  # moved in whole (see CELERY_CLIENT)
    os.rename(os.path.join(STAGING, name), os.path.join(HERE, "broker", name))
try:
    print(json.dumps(result.get(timeout=30)))
except Exception as exc:
    print(json.dumps(f"{type(exc).__name__}: {exc}"))
"""

CELERY_ADDED = """\


@app.task(max_retries={retries})
def added():
    return ["added", os.getpid()]
"""


@pytest.mark.parametrize("pool", ["prefork", "solo"])
def test_celery_a_task_added_is_served_and_a_task_s_options_changed_are_refused(
    proj: Path, spawn: Callable[..., Child], core_env: dict[str, str], reap: Reaper, pool: str
) -> None:
    """A task added to ``tasks.py`` while the worker runs: the worker's consumer knows
    the tasks it serves from start-up, and refused the new one ("Received unregistered
    task") while the line said "reloaded".  It serves it now.  A task whose options
    changed (``max_retries``, ``bind=True``...) is refused by name: Celery made it once,
    and dropped the new options without a word."""
    celery_project(proj)
    concurrency = ["-c", "2"] if pool == "prefork" else []
    child = spawn(
        ["-v", "-m", "celery", "-A", "proj", "worker", "--pool", pool, *concurrency, "-l", "info"],
        cwd=proj,
        new_session=True,
    )
    child.expect(re.compile(r"celery@\S+ ready").search, stream="err")

    def tracks_tasks(line: str) -> bool:
        return line.startswith("hmr: tracking ") and "tasks" in line

    if not any(tracks_tasks(line) for line in child.seen["err"]):  # (before or after "ready")
        child.expect(tracks_tasks, stream="err")

    def send(task: str) -> object:
        result = run_python(["send.py", task], cwd=proj, env=core_env)
        assert result.returncode == 0, result.stderr[-1500:]
        return json.loads(result.stdout.splitlines()[-1])

    assert send("tasks.which")[1] == "old"  # type: ignore[index]
    save_atomically(proj / "tasks.py", CELERY_TASKS + CELERY_ADDED.format(retries=3))
    child.expect(re.compile(r"^hmr: reloaded tasks").match, stream="err")
    added = send("tasks.added")
    assert isinstance(added, list)
    assert added[0] == "added"

    source = CELERY_TASKS + CELERY_ADDED.format(retries=7)
    save_atomically(proj / "tasks.py", source)
    refused = child.expect(lambda line: line.startswith("hmr: restart to apply"), stream="err")
    # (Where the decorator is applied: its line, the def's below it on 3.10.)
    line = source.splitlines().index("@app.task(max_retries=7)") + 1
    line += sys.version_info < (3, 11)
    assert refused.startswith(
        "hmr: restart to apply: tasks.added changed its task options at "
        f"{proj / 'tasks.py'}:{line} (celery task); Celery made the task once"
    ), refused
    child.proc.send_signal(signal.SIGTERM)
    assert child.wait(timeout=3 * DEADLINE) == 0
