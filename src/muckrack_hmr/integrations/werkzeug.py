"""werkzeug (Flask's development server) under HMR: its reloader serves in this process.

``app.run(debug=True)`` and ``flask run --reload`` turn werkzeug's reloader
on: it re-runs the program in a child process that never loads the import
hooks, and restarts it on every save.  Under HMR the server runs right here
instead, as with ``use_reloader=False``; Flask's debugger, and its template
auto-reload in debug mode, are untouched.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING

from ._imports import when_imported

if TYPE_CHECKING:
    from ..api import HMR

__all__ = ["enable", "run_in_place"]

log = logging.getLogger(__name__)

_MARK = "__muckrack_hmr__"


def enable(hmr: HMR) -> None:
    """Turn werkzeug's restarting reloader off when it is imported."""
    when_imported("werkzeug._reloader", _replace_restarter)


def _replace_restarter(reloader: ModuleType) -> None:
    if getattr(reloader.run_with_reloader, _MARK, False):
        return
    setattr(reloader, "run_with_reloader", run_in_place)  # noqa: B010 (a module's attribute)


def run_in_place(main_func: Callable[[], object], *args: object, **kwargs: object) -> None:
    """Stands in for ``werkzeug._reloader.run_with_reloader``: serve in this process."""
    log.info("werkzeug's reloader is off; saved modules are reloaded in this process")
    with contextlib.suppress(KeyboardInterrupt):  # as werkzeug's reloader does
        main_func()


setattr(run_in_place, _MARK, True)
