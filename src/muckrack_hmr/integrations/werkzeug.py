"""werkzeug (Flask's development server) under HMR: its reloader serves in this process.

``app.run(debug=True)`` and ``flask run --reload`` turn werkzeug's reloader
on: it re-runs the program in a child process that never loads the import
hooks, and restarts it on every save.  Under HMR the server runs right here
instead, as with ``use_reloader=False``; Flask's debugger (its PIN said as the
reloader's child says it), and its template auto-reload in debug mode, are untouched.
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
    _say_debugger_pin(main_func)
    with contextlib.suppress(KeyboardInterrupt):  # as werkzeug's reloader does
        main_func()


def _say_debugger_pin(main_func: Callable[[], object]) -> None:
    """The debugger's PIN, which its console asks for, as werkzeug says it: its reloader's
    child process does (``WERKZEUG_RUN_MAIN``), and here no child runs, so it went
    unsaid.  ``main_func`` is the server's ``serve_forever``."""
    app = getattr(getattr(main_func, "__self__", None), "app", None)
    try:
        from werkzeug._internal import _log
        from werkzeug.debug import DebuggedApplication
    except ImportError:  # (another werkzeug's internals)
        return
    if not isinstance(app, DebuggedApplication) or not getattr(app, "pin_logging", True):
        return
    if "_pin" in vars(app) and app.pin is None:
        return  # pin_security=False: werkzeug says nothing either
    _log("warning", " * Debugger is active!")
    if app.pin is None:
        _log("warning", " * Debugger PIN disabled. DEBUGGER UNSECURED!")
    else:
        _log("info", " * Debugger PIN: %s", app.pin)


setattr(run_in_place, _MARK, True)
