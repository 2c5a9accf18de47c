"""Quart and Hypercorn under HMR: their reloaders serve in this process.

``app.run()`` (Quart's quick start) watches the files itself by default
(``use_reloader=True``) and, on a save, replaces the process with
``os.execv(python, argv)``: plain ``python``, without the import hooks, its
state gone, every later save a cold restart.  ``hypercorn --reload`` restarts
its worker the same way.  Under HMR both are turned off, as werkzeug's and
uvicorn's are: the server runs in the process that reloads.
"""

from __future__ import annotations

import functools
import inspect
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
    """Turn Quart's and Hypercorn's reloaders off when they are imported."""
    when_imported("quart.app", _quart_run_in_place)
    when_imported("hypercorn.run", _hypercorn_run_in_place)


def _quart_run_in_place(app_module: ModuleType) -> None:
    cls = getattr(app_module, "Quart", None)
    run = getattr(cls, "run", None)
    if cls is None or not callable(run) or getattr(run, _MARK, False):
        return
    signature = inspect.signature(run)
    if "use_reloader" not in signature.parameters:
        return

    @functools.wraps(run)
    def run_here(*args: object, **kwargs: object) -> object:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        if bound.arguments["use_reloader"]:
            log.info("Quart's reloader is off; saved modules are reloaded in this process")
            bound.arguments["use_reloader"] = False
        return run(*bound.args, **bound.kwargs)

    setattr(run_here, _MARK, True)
    cls.run = run_here


def _hypercorn_run_in_place(run_module: ModuleType) -> None:
    run: Callable[..., object] | None = getattr(run_module, "run", None)
    if run is None or getattr(run, _MARK, False):
        return

    @functools.wraps(run)
    def run_here(config: object, *args: object, **kwargs: object) -> object:
        if getattr(config, "use_reloader", False):
            log.info("Hypercorn's --reload is off; saved modules are reloaded in this process")
            config.use_reloader = False  # type: ignore[attr-defined]
        return run(config, *args, **kwargs)

    setattr(run_here, _MARK, True)
    setattr(run_module, "run", run_here)  # noqa: B010 (a module's attribute)
