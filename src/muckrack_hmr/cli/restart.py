"""``--restart-on-refused``: an edit that cannot apply in place restarts the program.

The CLI becomes a small parent process that runs the real one (the same
interpreter, command line, environment and folder) as its child, and starts
it again when the child says so.  Why a parent, and not ``os.execv`` of the
CLI in place:

* the old program is wholly gone, and the parent knows when (``waitpid``),
  before the new one binds its port: every socket, lock and file the program
  held is closed by the kernel, also one it leaked or made inheritable, which
  an ``exec`` keeps open (and the new server's bind then fails);
* the program ends the way it ends on Ctrl-C (servers shut down cleanly,
  their workers too), from its main thread; an ``exec`` from the watcher's
  thread would cut the other threads off mid-call, with no ``atexit``;
* it is what Django's ``runserver`` reloader does, with a PID that changes.

The child asks for a restart by writing a line to a file the parent named
(``restart <time of the decision>``), then interrupts itself.  The parent
passes its exit code and signals through unchanged: Ctrl-C and exit codes
behave as without the option.  The new child reports its cold start: from
the decision to its first ``listen()`` (a server), or to the end of its
start-up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING

from .. import collector
from ..threads import signals_to_main_thread

if TYPE_CHECKING:
    from ..api import HMR
    from ..reload.refusals import Refusal
    from ..reload.reloader import ReloadResult
    from ..watch.watcher import Watcher

__all__ = ["GRACE", "Restarter", "restarting", "supervise", "supervised"]

log = logging.getLogger("muckrack_hmr.cli.restart")

#: Where the child writes ``restart <time>``: a file the parent made.
CHANNEL = "MUCKRACK_HMR_RESTART_CHANNEL"
#: ``start <time.time()>`` of the parent's start, or ``restart <time>`` of the decision.
STARTED = "MUCKRACK_HMR_STARTED_AT"
#: Seconds a refused edit waits before the restart: reverted meanwhile, nothing restarts.
GRACE = 0.5
#: Seconds the program has to end after its interrupt before it is ended.
PATIENCE = 5.0
#: The child's exit code when it had to be ended (the parent restarts it anyway).
EXIT_RESTART = 3


# -- the parent: runs the program, starts it again when asked ----------------------------


def supervise() -> int:
    """Run this command line again as a child until it exits without asking for a restart."""
    command = [sys.executable, *sys.orig_argv[1:]]
    started = f"start {time.time()!r}"
    forwarder = _Forwarder()
    with tempfile.TemporaryDirectory(prefix="muckrack-hmr-") as folder:
        channel = os.path.join(folder, "restart")
        while True:
            env = dict(os.environ)
            env[CHANNEL] = channel
            env[STARTED] = started
            with forwarder.installed():
                child = subprocess.Popen(command, env=env)
                forwarder.child = child
                code = child.wait()
                forwarder.child = None
            try:
                with open(channel, encoding="utf-8") as handle:
                    message = handle.read().split()
                os.unlink(channel)
            except OSError:
                return _exit_status(code)
            if len(message) != 2 or message[0] != "restart":
                return _exit_status(code)
            started = f"restart {message[1]}"


# How often, and at most how long, a restarted program is looked at for its listening
# socket after its start-up is over (seconds).
_LISTEN_LOOK = 0.25
_LISTEN_PATIENCE = 10.0


class _Forwarder:
    """Passes the parent's signals on to the child (once: not what the terminal sent both)."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        names = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
        signals = [getattr(signal, name) for name in names if hasattr(signal, name)]
        previous = {each: signal.signal(each, self._handle) for each in signals}
        try:
            yield
        finally:
            for each, handler in previous.items():
                signal.signal(each, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        child = self.child
        if child is None or child.poll() is not None:
            return
        if signum in _TERMINAL_SIGNALS and _foreground_of_a_terminal():
            return  # Ctrl-C, Ctrl-\: the terminal sent it to the child too
        with contextlib.suppress(OSError):
            child.send_signal(signum)


_TERMINAL_SIGNALS = {
    getattr(signal, name) for name in ("SIGINT", "SIGQUIT") if hasattr(signal, name)
}


def _foreground_of_a_terminal() -> bool:
    """Is this process in the foreground group of its terminal (which signals the group)?"""
    if sys.platform == "win32":
        return True  # a console's Ctrl-C reaches every process attached to it
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            if os.isatty(fd):
                return os.tcgetpgrp(fd) == os.getpgrp()
    return False


def _exit_status(code: int) -> int:
    """The child's exit code as ours; a child killed by a signal kills us the same way."""
    if code >= 0:
        return code
    with contextlib.suppress(OSError, ValueError):
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return 128 - code


# -- the child: decides, and reports its cold start -------------------------------------

_restarting = threading.Event()


def restarting() -> bool:
    """Has this process decided to restart (its interrupt is ours, not the user's)?"""
    return _restarting.is_set()


def supervised(hmr: HMR, main_file: str | None) -> Restarter | None:
    """In a child of :func:`supervise`: the restarter, hooked to the watcher."""
    channel = os.environ.pop(CHANNEL, None)
    started = os.environ.pop(STARTED, None)
    watcher = hmr.watcher
    if channel is None or watcher is None:
        return None
    if sys.platform != "win32":
        with signals_to_main_thread():  # (started in the program's main thread)
            threading.Thread(
                target=collector.ours(_end_with_parent),
                args=(os.getppid(),),
                name="muckrack-hmr-parent",
                daemon=True,
            ).start()
    restarter = Restarter(hmr, channel, main_file)
    watcher.after_reload.append(restarter.reloaded)
    watcher.pipeline.script_refused.append(restarter.refused)
    watcher.pipeline.refused_elsewhere.append(restarter.refused)
    how, _, when = (started or "").partition(" ")
    with contextlib.suppress(ValueError):
        _ColdStart(float(when), how == "restart", restarter, watcher).start()
    return restarter


class Restarter:
    """Restarts the program a moment after a refused edit, unless it was reverted."""

    def __init__(self, hmr: HMR, channel: str, main_file: str | None) -> None:
        self.hmr = hmr
        self.channel = channel
        #: How long this process took to start (ms), once known.
        self.cold_start_ms: float | None = None
        self._lock = threading.Lock()
        # file -> the bytes that run (None: unknown), for each refused edit pending
        self._pending: dict[str, bytes | None] = {}
        self._refusals: list[Refusal] = []
        self._timer: threading.Timer | None = None
        self._script: tuple[str, bytes | None] | None = None
        if main_file is not None:
            self._script = (main_file, _read(main_file))

    def reloaded(self, result: ReloadResult) -> None:
        """After a reload: its refused edits start the countdown."""
        for refusal in result.refused:
            module = sys.modules.get(refusal.module)
            path = getattr(module, "__file__", None)
            if isinstance(path, str):
                self.refused(refusal, path, self.hmr.sources.ran(refusal.module))

    def refused(self, refusal: Refusal, path: str, running: bytes | None = None) -> None:
        """``refusal`` of the edit of ``path`` (whose code that runs is ``running``)."""
        if self._script is not None and path == self._script[0]:
            running = self._script[1]
        with self._lock:
            if _restarting.is_set():
                return
            self._pending.setdefault(path, running)
            self._refusals.append(refusal)
            if self._timer is None:
                self._timer = threading.Timer(GRACE, self._decide)
                self._timer.daemon = True
                self._timer.start()

    def _decide(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            refusals, self._refusals = self._refusals, []
            self._timer = None
            still = [path for path, running in pending.items() if _read(path) != running]
            if not still:
                names = ", ".join(os.path.basename(path) for path in pending)
                log.info("restart cancelled: %s holds the code that runs again", names)
                return
            _restarting.set()
        first = refusals[0]
        more = f" (and {len(refusals) - 1} more)" if len(refusals) > 1 else ""
        last = f"{self.cold_start_ms:.0f} ms" if self.cold_start_ms is not None else "unknown"
        log.warning(
            "restarting: %s: %s%s (cold start %s last time)", first.kind, first.what, more, last
        )
        self._stop(time.time())

    def _stop(self, decided: float) -> None:
        """Tell the parent, then end the program as Ctrl-C would (by force if it lingers)."""
        with open(self.channel, "w", encoding="utf-8") as handle:
            handle.write(f"restart {decided!r}\n")
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        threading.Timer(PATIENCE, _end_now).start()
        if sys.platform == "win32":
            import _thread

            _thread.interrupt_main()
        else:
            os.kill(os.getpid(), signal.SIGINT)


def _end_with_parent(parent: int) -> None:
    """The parent was killed (it never is before us otherwise): the program ends too.

    Its output pipes and its port would stay taken by a process nobody waits
    for.  Checked twice a second: a system call that costs nothing.
    """
    while os.getppid() == parent:
        time.sleep(0.5)
    log.warning("the CLI's process ended: ending the program")
    threading.Timer(PATIENCE, _end_now).start()
    os.kill(os.getpid(), signal.SIGTERM)


def _end_now() -> None:
    log.warning("the program did not end within %.0f s of its interrupt: ended", PATIENCE)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(EXIT_RESTART)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


class _ColdStart:
    """Measures this start: to the first ``listen()``, or to the end of the start-up."""

    def __init__(
        self, started: float, restarted: bool, restarter: Restarter, watcher: Watcher
    ) -> None:
        self.started = started
        self.restarted = restarted
        self.restarter = restarter
        self.watcher = watcher
        self._done = threading.Event()
        self._listen: Callable[..., None] = socket.socket.listen

    def start(self) -> None:
        original = self._listen
        cold = self

        def listen(sock: socket.socket, *args: int) -> None:
            original(sock, *args)
            with contextlib.suppress(OSError):
                address = sock.getsockname()
                if isinstance(address, tuple):
                    cold.report(f"listening on {address[0]}:{address[1]}")

        # Restored at its first call: the one start-up of this process is measured.
        socket.socket.listen = listen  # type: ignore[method-assign,assignment]
        with signals_to_main_thread():  # (started in the program's main thread)
            threading.Thread(
                target=collector.ours(self._start_up_over),
                name="muckrack-hmr-restart",
                daemon=True,
            ).start()

    def _start_up_over(self) -> None:
        # The watcher's file events start once the program's start-up is over;
        # a server listens then, or soon after.
        self.watcher.started.wait()
        over = time.time()
        # A server listens then, or soon after (Django's checks run after its imports):
        # while the program stays busy, up to _LISTEN_PATIENCE; a plain program's start
        # ended then.
        from ..watch.idle import Activity

        activity = Activity()
        activity.quiet()
        waited = 0.0
        while not self._done.wait(_LISTEN_LOOK):
            waited += _LISTEN_LOOK
            if (waited >= 1.0 and activity.quiet()) or waited >= _LISTEN_PATIENCE:
                self.report("start-up over", at=over)
                return

    def report(self, what: str, at: float | None = None) -> None:
        if self._done.is_set():
            return
        self._done.set()
        socket.socket.listen = self._listen  # type: ignore[method-assign]
        elapsed = ((time.time() if at is None else at) - self.started) * 1000.0
        self.restarter.cold_start_ms = elapsed
        if self.restarted:
            log.info("restarted in %.0f ms (from the decision to %s)", elapsed, what)
        else:
            log.info("started in %.0f ms (%s)", elapsed, what)
