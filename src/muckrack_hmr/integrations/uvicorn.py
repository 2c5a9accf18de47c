"""uvicorn under HMR: ``--reload`` serves in this process; ``--workers N`` reload too.

``uvicorn --reload`` serves from a child process that never loads the import
hooks and restarts it on every save.  Under HMR the option is turned off (as
uvicorn itself does, it also means one worker), so that the server runs in
the process that reloads.  ``--workers N`` spawns N processes: under the CLI
(which watches) they join its reloads (:mod:`muckrack_hmr.processes`); a
program that installed HMR itself, with no watcher, is warned that they keep
the code they imported.
"""

from __future__ import annotations

import functools
import logging
from types import ModuleType
from typing import TYPE_CHECKING

from ._imports import when_imported

if TYPE_CHECKING:
    from typing import Protocol

    from ..api import HMR

    class _Config(Protocol):
        """uvicorn's ``Config``, as far as this module changes it."""

        reload: bool
        workers: int


__all__ = ["enable"]

log = logging.getLogger(__name__)

_MARK = "__muckrack_hmr__"


def enable(hmr: HMR) -> None:
    """Adjust uvicorn's ``Config`` when it is imported."""
    when_imported("uvicorn.config", functools.partial(_adjust_config, hmr=hmr))


def _adjust_config(config_module: ModuleType, hmr: HMR) -> None:
    config_class = config_module.Config
    original = config_class.__init__
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def __init__(self: _Config, *args: object, **kwargs: object) -> None:
        asked = bool(kwargs.get("reload"))
        if asked:
            # Off before uvicorn reads it: else it said "Will watch for changes in these
            # directories", and then we said it would not.  (Its folders and patterns
            # go too: without reloading, uvicorn warns that they do nothing.)
            kwargs["reload"] = False
            for option in ("reload_dirs", "reload_includes", "reload_excludes"):
                kwargs.pop(option, None)
        original(self, *args, **kwargs)
        if asked or getattr(self, "reload", False):
            log.info("uvicorn's --reload is off; saved modules are reloaded in this process")
            self.reload = False
            self.workers = 1  # uvicorn ignores --workers with --reload
        elif getattr(self, "workers", 1) > 1 and getattr(hmr, "watcher", None) is None:
            log.warning(
                "uvicorn starts %d worker processes that hot reloading cannot reach; "
                "run one worker to see your edits",
                self.workers,
            )

    setattr(__init__, _MARK, True)
    config_class.__init__ = __init__
