"""How a process joins the channel: at the fork, or on a spawned child's command line.

* ``fork`` (pools, pre-fork servers, the forkserver's children): before each
  fork, the locks the engine's threads take are taken by the forking thread,
  so that the child inherits none held by a thread that is not there (a
  reload in progress finishes first); in the child, the watcher (its threads
  are gone) is dropped, the copies of the parent's sockets are closed, and
  the child connects with the number of the last save its inherited modules
  reflect.
* ``spawn`` and ``forkserver`` (a fresh interpreter, :mod:`multiprocessing`
  and everything built on it: ``concurrent.futures``, uvicorn's workers):
  the command line multiprocessing starts it with is given a prologue that
  installs the import hooks and connects before the child imports anything,
  so the modules it imports, from disk, are the current ones, and every
  later save reaches it.

A process that the program starts itself with ``python -c`` or
``subprocess`` is a program of its own: it does not join.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from types import FrameType, ModuleType
from typing import TYPE_CHECKING

from ..threads import OURS, all_threads
from ..watch.safepoint import import_frame
from .channel import describe
from .hub import Hub
from .member import Member
from .outcomes import CAPTURE

if TYPE_CHECKING:
    from ..api import HMR

__all__ = ["after_fork_in_child", "after_fork_in_parent", "before_fork", "join"]

log = logging.getLogger(__name__)

# How long a fork waits for a reload in progress (or the import hook's bookkeeping).
_FORK_PATIENCE = 5.0
# multiprocessing's command lines for a spawned child and for the forkserver: found
# anywhere in the ``-c`` code (3.14's forkserver line starts with ``import sys; ``).
_JOINING_COMMANDS = (
    "from multiprocessing.spawn import spawn_main",
    "from multiprocessing.forkserver import main",
)

#: this process's end of the channel: the hub (supervising process) or a member
_node: Hub | Member | None = None
_hmr: HMR | None = None
_held: list[_Held] = []
_closes_at_exit = False

# Python 3.12+ warns at a fork in a process with threads (they may hold locks the child
# needs).  The watcher's alone are no reason for it: python, which has none, says nothing.
_FORK_WARNING = r"This process \(pid=\d+\) is multi-threaded, use of fork\(\) may lead"
# The filter that leaves that warning out, while it is in ``warnings.filters``.
_quiet: list[tuple[object, ...]] = []


def _quiet_the_fork_warning() -> None:
    """Leave out the interpreter's warning of the fork that comes when the program has no
    thread but the forking one (``threading.enumerate`` leaves ours out).

    The filter stays until the next fork decides again: 3.13 warns after the fork
    hooks have run, and it concerns nothing but a fork.
    """
    _loud_again()
    if len(threading.enumerate()) > 1:
        return  # (threads of the program's own: python warns too)
    warnings.filterwarnings("ignore", message=_FORK_WARNING, category=DeprecationWarning)
    _quiet.append(warnings.filters[0])


def _loud_again() -> None:
    """Take the filter of :func:`_quiet_the_fork_warning` out, if it is in."""
    while _quiet:
        entry = _quiet.pop()
        with contextlib.suppress(ValueError):  # (the program reset the filters)
            warnings.filters.remove(entry)  # type: ignore[attr-defined]
        mutated = getattr(warnings, "_filters_mutated", None)
        if callable(mutated):
            mutated()  # (the interpreter's cache of what the filters decided)


class _Held:
    """A lock a fork holds (``threading.Lock`` and ``RLock`` objects)."""

    def __init__(self, lock: threading.RLock | threading.Lock | None = None) -> None:
        self.lock = lock

    def acquire(self, timeout: float) -> bool:
        return self.lock is not None and self.lock.acquire(timeout=timeout)

    def release(self) -> None:
        if self.lock is not None:
            with contextlib.suppress(RuntimeError):
                self.lock.release()


def supervise(hmr: HMR) -> Hub | Member:
    """This process's end of the channel; in the supervising process, made at its first child.

    The supervisor takes the watcher's place as the save pipeline's consumer.
    """
    global _node, _hmr
    if _node is None:
        from .supervisor import Supervisor

        _hmr = hmr
        hub = Hub()
        _node = hub
        atexit.register(hub.close)
        watcher = hmr.watcher
        if watcher is not None:
            watcher.pipeline.consumer = Supervisor(hmr, watcher, hub)
        log.debug("workers join the reloads at %s", describe(hub.address))
    return _node


def _close_at_exit() -> None:
    """Have this process's exit wait for a save its member is applying (once; a fork
    child inherits it, for the member it makes)."""
    global _closes_at_exit
    if not _closes_at_exit:
        _closes_at_exit = True
        atexit.register(_close_member)


def _close_member() -> None:
    if isinstance(_node, Member):
        _node.close()


# -- fork -------------------------------------------------------------------------


def before_fork(hmr: HMR | None = None) -> None:
    """Before a fork (``os.register_at_fork``): the channel exists, no engine lock is held."""
    hmr = hmr or _hmr
    if hmr is None:
        return
    _quiet_the_fork_warning()
    try:
        supervise(hmr)
    except OSError as exc:
        log.warning("worker processes will not hot-reload: %s", exc)
    # The engine being made on another thread (the watcher's first idle step, at
    # start-up, when pre-fork servers fork) is waited for: a child would inherit
    # that lock held by a thread it does not have, and never make its own.
    making = _Held(hmr._making_reloader)
    if making.acquire(_FORK_PATIENCE):
        _held.append(making)
    hold_engine(hmr)


def hold_engine(hmr: HMR) -> None:
    """Take the engine's and the import hook's locks for a fork (``after_fork_*`` let go)."""
    if hmr._reloader is not None:
        # A thread of ours inside a reload makes the fork wait for its end; a
        # lock the forking thread itself holds (an RLock) is taken again.
        _hold(_Held(hmr._reloader._lock), _FORK_PATIENCE)
    # With the engine's lock held, our threads start no reload's imports.  One
    # of ours may be importing all the same (the watcher choosing its backend,
    # at start-up): that import needs the import hook's lock, so it is let end
    # before the fork takes that lock.
    deadline = time.monotonic() + _FORK_PATIENCE
    tracker = _Held(hmr.tracker.lock)
    while True:
        _let_our_imports_end(deadline)
        if not tracker.acquire(max(0.0, deadline - time.monotonic())):
            log.debug("forking while the import hook's lock is held by another thread")
            return
        if not _ours_importing() or time.monotonic() >= deadline:
            _held.append(tracker)
            return
        tracker.release()  # one of ours began another import meanwhile


def _hold(lock: _Held, timeout: float) -> None:
    if lock.acquire(timeout):
        _held.append(lock)
    else:
        log.debug("forking while a reload runs in another thread")


def _let_our_imports_end(deadline: float) -> None:
    """Wait (until ``deadline`` at most) while a thread of ours imports a module.

    A thread in the middle of an import holds that module's import lock; the
    child would inherit the lock held by a thread it does not have, and hang
    at its first import of that module (a pre-fork server forks its workers at
    start-up, while the watcher imports what it needs).
    """
    while _ours_importing() and time.monotonic() < deadline:
        time.sleep(0.001)


def _ours_importing() -> bool:
    ours = {
        thread.ident
        for thread in all_threads()
        if thread.name.startswith(OURS)
        and thread is not threading.current_thread()
        and thread.ident is not None
    }
    if not ours:
        return False
    frames = sys._current_frames()
    return any(import_frame(frames.get(ident)) is not None for ident in ours)


def after_fork_in_parent() -> None:
    """After a fork, in the parent: let the engine go on (the interpreter warned already)."""
    while _held:
        _held.pop().release()


def after_fork_in_child() -> None:
    """After a fork, in the child: a member of its own, with what it inherited."""
    global _node
    after_fork_in_parent()  # the forking thread is this process's thread: it releases
    _loud_again()  # (no warning comes in the child)
    _spare_stdin(sys._getframe(1))
    node, hmr = _node, _hmr
    if node is None or hmr is None:
        return
    address, applied = node.address, node.applied
    node.forget_in_child()
    CAPTURE.reset()
    # The watcher's threads are not in this process: the supervisor watches for all.
    # (Nor is the idle work's thread: the member starts its own.)
    hmr.watcher = None
    hmr._idle_worker = None
    try:
        _node = Member(hmr, address, applied)
        _close_at_exit()
    except OSError as exc:
        _node = None
        log.debug("process %d cannot join the reloads: %s", os.getpid(), exc)


# The stdin of multiprocessing's fork children, set aside (see _spare_stdin).
_stranded: list[object] = []


def _spare_stdin(frame: FrameType | None) -> None:
    """In a worker that multiprocessing forks: a stdin of its own, on the null device.

    The worker's first step closes ``sys.stdin`` (``util._close_stdin``).  When the
    fork came while another thread of the parent was reading stdin (a program's
    ``for line in sys.stdin``, as a pool's worker-handler thread replaces a worker
    that ended: ``maxtasksperchild``), the child inherited the lock of stdin's
    buffer held by a thread it does not have, and that close waited forever: the
    pool's next task never ran.  Plain python has the same race; the time a fork
    takes here made it the rule.  The inherited object is kept, never closed (its
    finalizer would wait on the same lock); the worker reads no stdin anyway.
    """
    while frame is not None:
        code = frame.f_code
        if code.co_name == "_launch" and code.co_filename.endswith("popen_fork.py"):
            break
        frame = frame.f_back
    else:
        return
    if sys.stdin is None:
        return
    _stranded.append(sys.stdin)
    try:
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 (the worker's stdin)
    except OSError:
        # multiprocessing then skips it
        sys.stdin = None


# -- spawn and forkserver ------------------------------------------------------------


def patch_spawning(util: ModuleType, hmr: HMR) -> None:
    """Give multiprocessing's spawned children (and its forkserver) our prologue."""
    global _hmr
    _hmr = _hmr or hmr
    original: Callable[[str, Sequence[str], Sequence[int]], int] = util.spawnv_passfds
    if getattr(original, "_muckrack_hmr", False):
        return

    def spawnv_passfds(path: str, args: Sequence[str], passfds: Sequence[int]) -> int:
        return original(path, with_prologue(list(args)), passfds)

    spawnv_passfds._muckrack_hmr = True  # type: ignore[attr-defined]
    setattr(util, "spawnv_passfds", spawnv_passfds)  # noqa: B010 (a module object)


def runs_program_code(code: str) -> bool:
    """Is ``code`` (a multiprocessing child's ``-c``) a spawned child's or the forkserver's?"""
    return any(command in code for command in _JOINING_COMMANDS)


def with_prologue(args: list[str]) -> list[str]:
    """``args`` of a multiprocessing child, its ``-c`` code preceded by our joining."""
    hmr = _hmr
    if hmr is None or "-c" not in args[:-1]:
        return args
    at = args.index("-c") + 1
    if not runs_program_code(args[at]):
        return args  # the resource tracker, say: it runs none of the program's code
    try:
        node = supervise(hmr)
    except OSError as exc:
        log.warning("worker processes will not hot-reload: %s", exc)
        return args
    seq = node.seq if isinstance(node, Hub) else node.applied
    logger = logging.getLogger("muckrack_hmr")
    settings = (node.address, list(hmr.project.roots), hmr.cascade, seq, logger.level)
    prologue = (
        "try:\n"
        "    from muckrack_hmr.processes.joining import join as _muckrack_hmr_join\n"
        "except ImportError:\n"
        "    pass\n"
        "else:\n"
        f"    _muckrack_hmr_join(*{settings!r})\n"
        "    del _muckrack_hmr_join\n"
    )
    return [*args[:at], prologue + args[at], *args[at + 1 :]]


def join(address: str, roots: list[str], cascade: str, seq: int, level: int) -> None:
    """First thing in a spawned child: the import hooks, and a member of the channel."""
    global _node, _hmr
    try:
        from .. import integrations, tracking
        from ..integrations._imports import when_imported

        logger = logging.getLogger("muckrack_hmr")
        if not logger.handlers or all(isinstance(h, logging.NullHandler) for h in logger.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("hmr: %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(level)
            logger.propagate = False
        hmr = tracking.install(roots)
        hmr.cascade = cascade
        integrations.activate(hmr)
        _hmr = hmr
        os.register_at_fork(
            before=before_fork,
            after_in_parent=after_fork_in_parent,
            after_in_child=after_fork_in_child,
        )
        when_imported("multiprocessing.util", lambda util: patch_spawning(util, hmr))
        _node = Member(hmr, address, seq)
        _close_at_exit()
    except Exception as exc:
        log.warning("this process (pid %d) will not hot-reload: %s", os.getpid(), exc)
