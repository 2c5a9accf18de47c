"""gunicorn under HMR: its ``--reload`` is turned off; its workers reload in place instead.

gunicorn forks its workers from its arbiter, the CLI's process: they join the
reloads through the fork hooks (:mod:`muckrack_hmr.processes`), with nothing
to adjust.  Its own ``--reload`` would start a file watcher in every worker
and end the worker (and its state) on each save, next to our reload in
place: under HMR it is turned off.

A worker gunicorn forks while a saved file does not compile (one that died,
or reached ``--max-requests``) imports the app from the files and fails to
boot, and gunicorn then stops as a whole: a broken save took the server down.
Once a save has come (or is on its way: its file events wait for the burst to
settle; or a worker ended after it booted), such a failure leaves gunicorn
running instead: its other workers serve on with the code they run, and it
forks no worker until the next save, which boots the missing ones; a worker
forked before the last save that failed on the code before it is simply
replaced.  A worker that fails to boot before any of that (the app as it
started) stops gunicorn, as without us.

So that a broken save leaves workers to serve at all, a worker does not end at
``--max-requests`` while the saved code does not load in it (a reload failed):
it would not be replaced until the fix, and the last one to go left gunicorn
with none, every request waiting.  The fix's reload puts the limit back.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

from ._imports import when_imported

if TYPE_CHECKING:
    from ..api import HMR
    from ..watch.watcher import Watcher

__all__ = ["enable"]

log = logging.getLogger(__name__)

_MARK = "__muckrack_hmr__"
# How long a failed boot with no save settled yet waits for one that is on its way: while
# the watcher has file events waiting (the burst's quiet time, the judging), at most
# _SAVE_ON_ITS_WAY; else _EVENTS_UNREAD (events the watcher's thread has not read yet).
_SAVE_ON_ITS_WAY = 10.0
_EVENTS_UNREAD = 0.2


def enable(hmr: HMR) -> None:
    """Adjust gunicorn's arbiter and workers when they are imported."""
    when_imported("gunicorn.arbiter", functools.partial(_adjust_arbiter, hmr))
    when_imported("gunicorn.workers.base", functools.partial(_adjust_workers, hmr))


class _Worker(Protocol):
    """What is used of a gunicorn worker."""

    max_requests: int


class _Recycling:
    """This process's gunicorn worker, and its ``--max-requests`` while held off."""

    def __init__(self, hmr: HMR, worker: _Worker) -> None:
        self.hmr = hmr
        self.worker = worker
        self.limit: int | None = None  # the worker's own, while it is held off

    def follow(self, result: object) -> None:
        """A result hook (in the worker's process): hold the limit off while a module
        failed to load the saved code, and put it back once none does."""
        del result
        broken = bool(self.hmr.reloader.failing)
        if broken and self.limit is None:
            self.limit = self.worker.max_requests
            self.worker.max_requests = sys.maxsize
            log.debug("--max-requests held off while the saved code does not load")
        elif not broken and self.limit is not None:
            self.worker.max_requests, self.limit = self.limit, None


def _adjust_workers(hmr: HMR, base: ModuleType) -> None:
    worker_class = base.Worker
    original: Callable[[_Worker], None] = worker_class.init_process
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def init_process(self: _Worker) -> None:
        # In the worker's process, just forked (its loop runs in the original).
        hmr.add_result_hook(_Recycling(hmr, self).follow)
        original(self)

    setattr(init_process, _MARK, True)
    worker_class.init_process = init_process


class _Arbiter(Protocol):
    """What is used of gunicorn's ``Arbiter``."""

    WORKERS: dict[int, object]
    WORKER_BOOT_ERROR: int
    APP_LOAD_ERROR: int

    def wakeup(self) -> None: ...


class _Boots:
    """An arbiter's saves seen, and whether it holds its forks after a failed boot."""

    def __init__(self, arbiter: _Arbiter, watcher: Watcher) -> None:
        self.arbiter = arbiter
        self.watcher = watcher
        self.saves = 0
        self._settled = threading.Event()
        self.held = False
        # worker pid -> the saves seen when it was forked: a worker forked before the
        # last save that fails to boot failed on the code before it (the fix came since).
        self.born: dict[int, int] = {}
        # A worker ended that was no failed boot (``--max-requests``): the app booted as
        # it started, and a failure to boot now is the files' since (a save that has not
        # settled yet: forked in the moment between the write and the reload).
        self.ended = False
        # Said that no worker is left (while held): once until the next save.
        self.none_said = False

    def settled(self, saves: object) -> None:
        """A watcher's listener: a burst of saves settled (on the watcher's thread)."""
        del saves
        self.saves += 1
        self._settled.set()
        if self.held:
            self.held = False
            self.none_said = False
            self.arbiter.wakeup()  # its main loop forks the missing workers now

    def save_on_its_way(self) -> bool:
        """A worker failed to boot before any save settled: was it a save's (the file
        written, its burst not settled yet)?  Waits for the burst.  A worker still
        booting as the save came imported the broken file at once, and gunicorn
        stopped: the save settled a moment after the failure was reaped."""
        began = time.monotonic()
        while not self.saves:
            waited = time.monotonic() - began
            limit = _SAVE_ON_ITS_WAY if self.watcher.pipeline.pending() else _EVENTS_UNREAD
            if waited >= limit:
                return False
            self._settled.wait(min(limit - waited, _EVENTS_UNREAD))
        return True


def _adjust_arbiter(hmr: HMR, arbiter_module: ModuleType) -> None:
    arbiter_class = arbiter_module.Arbiter
    original: Callable[[_Arbiter, object], None] = arbiter_class.setup
    if getattr(original, _MARK, False):
        return
    halt = arbiter_module.HaltServer
    reap_original: Callable[[_Arbiter], None] = arbiter_class.reap_workers
    spawn_original: Callable[[_Arbiter], None] = arbiter_class.spawn_workers
    fork_original: Callable[[_Arbiter], int] = arbiter_class.spawn_worker

    @functools.wraps(original)
    def setup(self: _Arbiter, app: object) -> None:
        # The arbiter reads the application's settings here (and again on SIGHUP).
        cfg = getattr(app, "cfg", None)
        if cfg is not None and getattr(cfg, "reload", False):
            log.info("gunicorn's --reload is off; its workers reload saved modules in place")
            cfg.set("reload", False)
        original(self, app)
        watcher = hmr.watcher
        if watcher is not None and not isinstance(vars(self).get(_MARK), _Boots):
            boots = _Boots(self, watcher)
            vars(self)[_MARK] = boots
            watcher.settling.append(boots.settled)

    @functools.wraps(reap_original)
    def reap_workers(self: _Arbiter) -> None:
        boots = vars(self).get(_MARK)
        while True:
            before = set(self.WORKERS)
            try:
                reap_original(self)
            except halt as exc:
                failed_boot = exc.exit_status in (self.WORKER_BOOT_ERROR, self.APP_LOAD_ERROR)
                if (
                    not isinstance(boots, _Boots)
                    or not failed_boot
                    or not (boots.saves or boots.ended or boots.save_on_its_way())
                ):
                    raise
                # (gunicorn popped the worker and stopped reaping: the others that
                # exited meanwhile are reaped on the next turn.)
                gone = before - set(self.WORKERS)
                born = [boots.born.pop(pid, 0) for pid in gone]
                if born and max(born) < boots.saves:
                    # Forked before the last save, on the code before it: the missing
                    # worker is forked on the saved code now, as usual.
                    continue
                if not boots.held:
                    boots.held = True
                    log.warning(
                        "a gunicorn worker failed to boot on the saved code (its error is "
                        "above); gunicorn goes on with %d worker%s and forks the missing "
                        "ones at the next save",
                        len(self.WORKERS),
                        "" if len(self.WORKERS) == 1 else "s",
                    )
                if not self.WORKERS and not boots.none_said:
                    # The workers it had ended meanwhile (``--max-requests``, a crash), and
                    # their replacements booted on the saved code too.
                    boots.none_said = True
                    log.warning(
                        "no gunicorn worker is left: requests wait until a save lets one "
                        "boot (fix the error above and save)"
                    )
            else:
                if isinstance(boots, _Boots) and before - set(self.WORKERS):
                    boots.ended = True
                return

    @functools.wraps(spawn_original)
    def spawn_workers(self: _Arbiter) -> None:
        boots = vars(self).get(_MARK)
        if isinstance(boots, _Boots) and boots.held:
            return  # a worker forked now would fail to boot again: until the next save
        spawn_original(self)

    @functools.wraps(fork_original)
    def spawn_worker(self: _Arbiter) -> int:
        boots = vars(self).get(_MARK)
        saves = boots.saves if isinstance(boots, _Boots) else 0
        pid = fork_original(self)  # (returns in the arbiter only)
        if isinstance(boots, _Boots):
            boots.born[pid] = saves  # the saves seen as it was forked
        return pid

    for function in (setup, reap_workers, spawn_workers, spawn_worker):
        setattr(function, _MARK, True)
    arbiter_class.setup = setup
    arbiter_class.reap_workers = reap_workers
    arbiter_class.spawn_workers = spawn_workers
    arbiter_class.spawn_worker = spawn_worker
