"""gunicorn under HMR: its ``--reload`` is turned off; its workers reload in place instead.

gunicorn forks its workers from its arbiter, the CLI's process: they join the
reloads through the fork hooks (:mod:`muckrack_hmr.processes`), with nothing
to adjust.  Its own ``--reload`` would start a file watcher in every worker
and end the worker (and its state) on each save, next to our reload in
place: under HMR it is turned off.

A worker gunicorn forks while a saved file does not compile (one that died,
or reached ``--max-requests``) imports the app from the files and fails to
boot, and gunicorn then stops as a whole: a broken save took the server down.
Once a save has come, such a failure leaves gunicorn running instead: its
other workers serve on with the code they run, and it forks no worker until
the next save, which boots the missing ones.  A worker that fails to boot
before any save (the app as it started) stops gunicorn, as without us.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

from ._imports import when_imported

if TYPE_CHECKING:
    from ..api import HMR

__all__ = ["enable"]

log = logging.getLogger(__name__)

_MARK = "__muckrack_hmr__"


def enable(hmr: HMR) -> None:
    """Adjust gunicorn's arbiter when it is imported."""
    when_imported("gunicorn.arbiter", functools.partial(_adjust_arbiter, hmr))


class _Arbiter(Protocol):
    """What is used of gunicorn's ``Arbiter``."""

    WORKERS: dict[int, object]
    WORKER_BOOT_ERROR: int
    APP_LOAD_ERROR: int

    def wakeup(self) -> None: ...


class _Boots:
    """An arbiter's saves seen, and whether it holds its forks after a failed boot."""

    def __init__(self, arbiter: _Arbiter) -> None:
        self.arbiter = arbiter
        self.saves = 0
        self.held = False

    def settled(self, saves: object) -> None:
        """A watcher's listener: a burst of saves settled (on the watcher's thread)."""
        del saves
        self.saves += 1
        if self.held:
            self.held = False
            self.arbiter.wakeup()  # its main loop forks the missing workers now


def _adjust_arbiter(hmr: HMR, arbiter_module: ModuleType) -> None:
    arbiter_class = arbiter_module.Arbiter
    original: Callable[[_Arbiter, object], None] = arbiter_class.setup
    if getattr(original, _MARK, False):
        return
    halt = arbiter_module.HaltServer
    reap_original: Callable[[_Arbiter], None] = arbiter_class.reap_workers
    spawn_original: Callable[[_Arbiter], None] = arbiter_class.spawn_workers

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
            boots = _Boots(self)
            vars(self)[_MARK] = boots
            watcher.settling.append(boots.settled)

    @functools.wraps(reap_original)
    def reap_workers(self: _Arbiter) -> None:
        boots = vars(self).get(_MARK)
        while True:
            try:
                reap_original(self)
                return
            except halt as exc:
                failed_boot = exc.exit_status in (self.WORKER_BOOT_ERROR, self.APP_LOAD_ERROR)
                if not isinstance(boots, _Boots) or not boots.saves or not failed_boot:
                    raise
                # (gunicorn popped the worker and stopped reaping: the others that
                # exited meanwhile are reaped on the next turn.)
                if not boots.held:
                    boots.held = True
                    log.warning(
                        "a gunicorn worker failed to boot on the saved code (its error is "
                        "above); gunicorn goes on with %d worker%s and forks the missing "
                        "ones at the next save",
                        len(self.WORKERS),
                        "" if len(self.WORKERS) == 1 else "s",
                    )

    @functools.wraps(spawn_original)
    def spawn_workers(self: _Arbiter) -> None:
        boots = vars(self).get(_MARK)
        if isinstance(boots, _Boots) and boots.held:
            return  # a worker forked now would fail to boot again: until the next save
        spawn_original(self)

    for function in (setup, reap_workers, spawn_workers):
        setattr(function, _MARK, True)
    arbiter_class.setup = setup
    arbiter_class.reap_workers = reap_workers
    arbiter_class.spawn_workers = spawn_workers
