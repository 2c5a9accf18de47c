"""gunicorn under HMR: its ``--reload`` is turned off; its workers reload in place instead.

gunicorn forks its workers from its arbiter, the CLI's process: they join the
reloads through the fork hooks (:mod:`muckrack_hmr.processes`), with nothing
to adjust.  Its own ``--reload`` would start a file watcher in every worker
and end the worker (and its state) on each save, next to our reload in
place: under HMR it is turned off.  Without it, a worker that gunicorn forks
while the app does not compile fails to boot and gunicorn stops, as it does
without us.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING

from ._imports import when_imported

if TYPE_CHECKING:
    from ..api import HMR

__all__ = ["enable"]

log = logging.getLogger(__name__)

_MARK = "__muckrack_hmr__"


def enable(hmr: HMR) -> None:
    """Adjust gunicorn's arbiter when it is imported."""
    del hmr  # the workers join through the fork hooks: nothing here needs it
    when_imported("gunicorn.arbiter", _adjust_arbiter)


def _adjust_arbiter(arbiter_module: ModuleType) -> None:
    arbiter_class = arbiter_module.Arbiter
    original: Callable[[object, object], None] = arbiter_class.setup
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def setup(self: object, app: object) -> None:
        # The arbiter reads the application's settings here (and again on SIGHUP).
        cfg = getattr(app, "cfg", None)
        if cfg is not None and getattr(cfg, "reload", False):
            log.info("gunicorn's --reload is off; its workers reload saved modules in place")
            cfg.set("reload", False)
        original(self, app)

    setattr(setup, _MARK, True)
    arbiter_class.setup = setup
