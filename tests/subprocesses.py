"""Running ``python -m muckrack.hmr`` in real subprocesses, for the end-to-end tests.

:class:`Child` reads a running child's output line by line with deadlines, so
no test sleeps to synchronise or waits without a bound.  The fixtures that
use it (``proj``, ``spawn``) live in ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import random
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NoReturn

import pytest

# The longest a test waits for one line of output from a child.  (15 s was too short
# on a loaded CI machine: 16 children of one run, importing Django or FastAPI under
# the pure core, printed nothing for 15 s, and the run failed; 1.5 s here.)
DEADLINE = 30.0

# The servers the tests start listen on ports below the system's ephemeral range
# (32768-60999 on Linux), a block of them for each xdist worker.  A port taken from that
# range (a bind to port 0, closed, then bound by the server a moment later) could be
# handed meanwhile to a Jupyter kernel of a parallel test (jupyter_client binds to 0
# too): a request then met the kernel's ZMQ greeting (``BadStatusLine: \\xff\\0...``).
_PORT_BLOCK = 500
_PORT_BASE = 20000
# Where in the block the next port is looked for (a random start: another session may
# use the block).
_next_port = itertools.count(random.randrange(_PORT_BLOCK))


def free_port() -> int:
    """A port free on 127.0.0.1 right now, in this worker's block (the server binds it a
    moment later)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:]
    block = _PORT_BASE + (int(worker) % 24 if worker.isdigit() else 0) * _PORT_BLOCK
    for _ in range(_PORT_BLOCK):
        port = block + next(_next_port) % _PORT_BLOCK
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {block}-{block + _PORT_BLOCK - 1}")


# One-shot runs.
RUN_TIMEOUT = 60


def write(path: Path, source: str) -> Path:
    """Write ``source`` (dedented) to ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def save_atomically(path: Path, source: str) -> None:
    """Save like editors that write a temporary file and rename it over the original."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(textwrap.dedent(source), encoding="utf-8")
    os.replace(tmp, path)


# A module that makes the OS's file events go nowhere in the child that imports it:
# the OS's watches are set up as usual, and it never reports a change, as on a
# Docker bind mount from a macOS or Windows host, or a network drive.  The fake
# of test_watcher_logic's _Silent backend, for a real process.
SILENT_FILE_EVENTS = """\
from muckrack_hmr.watch.backends import inotify as _inotify
from muckrack_hmr.watch.backends import mounts as _mounts
from muckrack_hmr.watch.backends import watchdog as _watchdog

# A bind mount: written from the host too, so its events are checked.
_mounts.events_are_local = lambda folder: False


def _silenced(backend):
    start = backend.start

    def start_silently(self, sink):
        start(self, lambda path, kind: None)

    backend.start = start_silently


_silenced(_inotify.InotifyBackend)
_silenced(_watchdog.WatchdogBackend)
"""


def run_python(
    args: list[str], *, cwd: Path, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Plain ``python *args``, to completion: the behaviour to match (``stdin``: what its
    standard input holds; else none)."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        **({"stdin": subprocess.DEVNULL} if stdin is None else {"input": stdin}),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=RUN_TIMEOUT,
        check=False,
    )


def run_hmr(args: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m muckrack.hmr *args``, to completion."""
    return run_python(["-m", "muckrack.hmr", *args], cwd=cwd, env=env)


def facts_of(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    """The JSON object a probe script printed as its last stdout line."""
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines, f"no output; stderr:\n{result.stderr}"
    facts: dict[str, object] = json.loads(lines[-1])
    return facts


def contains(text: str) -> Callable[[str], bool]:
    def predicate(line: str) -> bool:
        return text in line

    predicate.__name__ = repr(text)
    return predicate


def starts(prefix: str) -> Callable[[str], bool]:
    def predicate(line: str) -> bool:
        return line.startswith(prefix)

    predicate.__name__ = f"a line starting with {prefix!r}"
    return predicate


class Child:
    """A running ``python -u -m muckrack.hmr ...`` (or another ``command``) read line by line.

    One reader thread per stream feeds a queue; :meth:`expect` takes lines
    from it with a deadline, so a test never waits unboundedly.
    """

    def __init__(
        self,
        args: list[str],
        *,
        cwd: Path,
        env: dict[str, str],
        command: tuple[str, ...] = ("-u", "-m", "muckrack.hmr"),
        stdin: bool = False,
        new_session: bool = False,
    ) -> None:
        #: its own process group: a test's Ctrl-C reaches the whole tree (os.killpg), as a
        #: terminal's does
        self.new_session = new_session
        self.proc = subprocess.Popen(
            [sys.executable, *command, *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=new_session,
        )
        self.seen: dict[str, list[str]] = {"out": [], "err": []}
        self._queues: dict[str, queue.Queue[str | None]] = {
            "out": queue.Queue(),
            "err": queue.Queue(),
        }
        self._threads = [
            threading.Thread(target=self._pump, args=(name, stream), daemon=True)
            for name, stream in (("out", self.proc.stdout), ("err", self.proc.stderr))
        ]
        for thread in self._threads:
            thread.start()

    def _pump(self, name: str, stream: IO[str]) -> None:
        try:
            for raw in stream:
                line = raw.rstrip("\r\n")
                self.seen[name].append(line)
                self._queues[name].put(line)
        except (OSError, ValueError):
            pass  # the pipe was closed under us
        finally:
            self._queues[name].put(None)

    def expect(
        self, match: str | Callable[[str], bool], *, stream: str = "out", timeout: float = DEADLINE
    ) -> str:
        """Consume lines of ``stream`` until one matches; return it.

        ``match`` is a substring or a predicate.  Fails the test when the
        deadline passes or the stream ends first.
        """
        predicate = contains(match) if isinstance(match, str) else match
        what = getattr(predicate, "__name__", repr(predicate))
        deadline = time.monotonic() + timeout
        lines = self._queues[stream]
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.dump_stacks()
                self.fail(f"timed out after {timeout:.0f} s waiting for {what} on std{stream}")
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                lines.put(None)  # later calls see the end too
                self.fail(
                    f"std{stream} ended (exit code {self.proc.poll()}) before {what} appeared"
                )
            if predicate(line):
                return line

    def send(self, line: str) -> None:
        """Write ``line`` and a newline to the child's standard input (``stdin=True``)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait(self, timeout: float = DEADLINE) -> int:
        """Wait for the child to exit; its exit code.  Output is complete afterwards."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.dump_stacks()
            self.fail(f"the child did not exit within {timeout:.0f} s")
        for thread in self._threads:
            thread.join(timeout=timeout)
        return code

    def dump_stacks(self) -> None:
        """Make a hung child, and what it started, print where their threads are
        (faulthandler, see core_env): the child's end, as the test fails."""
        if sys.platform == "win32" or self.proc.poll() is not None:
            return
        with contextlib.suppress(OSError), open(f"/proc/{self.proc.pid}/status") as status:
            masks = [line.strip() for line in status if line.startswith(("Sig", "ShdPnd"))]
            self.seen["err"].append("signal masks: " + "; ".join(masks))
        # A server's workers or a pool's children first: each prints to the
        # stderr it inherited, before the child's death can take them along.
        for pid in descendants(self.proc.pid):
            self.seen["err"].append(f"--- the stacks of process {pid}, started by the child:")
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGABRT)
            deadline = time.monotonic() + 2
            while not gone(pid) and time.monotonic() < deadline:
                time.sleep(0.01)  # polling the process table, with a deadline
        self.proc.send_signal(signal.SIGABRT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)

    def stdout_text(self) -> str:
        return "\n".join(self.seen["out"])

    def stderr_text(self) -> str:
        return "\n".join(self.seen["err"])

    def fail(self, message: str) -> NoReturn:
        out = "\n".join(self.seen["out"][-20:])
        err = "\n".join(self.seen["err"][-300:])
        pytest.fail(f"{message}\n--- stdout (tail) ---\n{out}\n--- stderr (tail) ---\n{err}")

    def interrupt(self) -> None:
        """Ctrl-C in a terminal: SIGINT to the child's whole process group (``new_session``)."""
        assert self.new_session, "a Ctrl-C of the group needs Child(new_session=True)"
        os.killpg(self.proc.pid, signal.SIGINT)

    def close(self) -> None:
        """Kill the child and everything it started (its group too, if it has one); reap it.

        Never blocks: a process the child started that outlived it (a server's
        worker, a pool's child) holds copies of the output pipes, so it is
        killed too, and a pipe whose reader thread is still blocked on it is
        left open: closing it would wait for that thread's lock, without end.
        """
        family = descendants(self.proc.pid) if self.proc.poll() is None else []
        if self.proc.poll() is None:
            self.proc.kill()
        if self.new_session:
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in family:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        finally:
            for thread in self._threads:
                thread.join(timeout=5)
            pipes = {"in": self.proc.stdin, "out": self.proc.stdout, "err": self.proc.stderr}
            readers = dict(zip(("out", "err"), self._threads, strict=True))
            for name, pipe in pipes.items():
                reader = readers.get(name)
                if pipe is not None and (reader is None or not reader.is_alive()):
                    pipe.close()


@contextlib.contextmanager
def as_from_a_terminal() -> Iterator[None]:
    """Children started inside take Ctrl-C (SIGINT) as from a terminal.  A shell's
    background job starts with SIGINT ignored, and a child inherits that (python then
    ignores Ctrl-C too); a handler set here is reset to the default in the child."""
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def descendants(pid: int) -> list[int]:
    """The PIDs of every living process that ``pid`` started, and that they started."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
            children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def gone(pid: int) -> bool:
    """Has ``pid`` exited (a zombie waiting for its parent counts as gone)?"""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def left_behind(pids: Iterable[int], timeout: float = DEADLINE) -> list[int]:
    """The PIDs of ``pids`` still running once all have exited or ``timeout`` has passed."""
    pids = sorted(pids)
    deadline = time.monotonic() + timeout
    while not all(gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the process table, with a deadline
    return [pid for pid in pids if not gone(pid)]


class Reaper:
    """The CLI children and worker PIDs of a test, killed after it in that order."""

    def __init__(self) -> None:
        self.pids: set[int] = set()
        self.children: list[Child] = []

    def watch(self, child: Child, pids: Iterable[int]) -> None:
        if child not in self.children:
            self.children.append(child)
        self.pids.update(pids)

    def kill(self) -> None:
        # The CLI first: a pool whose workers die makes new ones while its parent lives.
        for child in self.children:
            if child.proc.poll() is None:
                self.pids.update(descendants(child.proc.pid))
                child.proc.kill()
                child.proc.wait(timeout=DEADLINE)
            if child.new_session:
                with contextlib.suppress(OSError):
                    os.killpg(child.proc.pid, signal.SIGKILL)
        for pid in self.pids:
            if not gone(pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)


# A module before and after an edit: a constant and a function change.
A_OLD = """\
X = 1


def f():
    return "old"
"""

A_NEW = """\
X = 2


def f():
    return "new"
"""


# -- pytest --hmr children ------------------------------------------------------------

PLUGIN = ["-p", "muckrack.hmr.pytest_plugin"]
OUTCOME = re.compile(r"^(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b")
SUMMARY = re.compile(r"^=+ .*\b(passed|failed|errors?|no tests ran)\b.* in [\d.]+s.* =+$")


@dataclass
class Run:
    """The output of one run: from the line after the previous run to ``hmr: watching``."""

    lines: list[str] = field(default_factory=list)

    @property
    def outcomes(self) -> dict[str, str]:
        found = {}
        for line in self.lines:
            match = OUTCOME.match(line)
            if match:
                found[match.group(1)] = match.group(2)
        return found

    @property
    def summary(self) -> str:
        for line in self.lines:
            if SUMMARY.match(line):
                return line.strip("= ")
        return ""

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)


class Watch:
    """A running ``python -m pytest --hmr -v`` child."""

    def __init__(self, child: Child) -> None:
        self.child = child

    def run(self, timeout: float = DEADLINE) -> Run:
        """The next run's output, up to its ``hmr: watching`` line."""
        run = Run()

        def collect(line: str) -> bool:
            run.lines.append(line)
            return line.startswith("hmr: watching")

        collect.__name__ = "the 'hmr: watching' line ending a run"
        self.child.expect(collect, timeout=timeout)
        return run

    def expect(self, text: str) -> str:
        return self.child.expect(text)
