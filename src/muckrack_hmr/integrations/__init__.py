"""Opt-in integrations: web frameworks whose machinery fights in-place reloading, and
``pytest --hmr`` (in ``pytest_watch``, loaded by its pytest plugin only).

Restart reloaders (Django's ``runserver`` autoreloader, werkzeug's reloader
behind Flask's ``debug=True``, ``uvicorn --reload``, gunicorn's ``--reload``, Quart's
``app.run()`` and ``hypercorn --reload``) serve from a child
process that never loads the import hooks; under HMR they are turned off, so
that the server runs in the process that reloads.  Django's derived caches
(URL resolvers, compiled templates) are refreshed after each reload, and a
FastAPI route whose endpoint's parameters changed is made again in place.
Routes added, edited or removed in a reload change Flask's, FastAPI's,
Starlette's and Django's routing tables (``flask``, ``fastapi``, ``starlette``,
``django``; ``_reloading`` puts them back when the reload fails).  A Celery worker
serves the tasks a reload adds, and an edit of a task's options is refused
(``celery``).  An aiohttp app made again in place of the one that started is
refused, and a route table keeps one entry per route (``aiohttp``).  A responder
added to a routed Falcon resource is routed (``falcon``), and a Bottle route moved or
renamed leaves no old rule behind (``bottle``).  A Litestar app made again in place of
the one the server holds gives it what it declares (``litestar``).

The CLI calls :func:`activate`.  Nothing is imported up front: each
integration waits until the program imports its framework.  Programs that
call :func:`muckrack_hmr.install` themselves can call :func:`activate` too.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from .. import tracking
from ._imports import forget_all, when_imported

if TYPE_CHECKING:
    from ..api import HMR

__all__ = ["FRAMEWORKS", "activate", "deactivate"]

#: The package whose import enables each integration module.
FRAMEWORKS = {
    "django": "muckrack_hmr.integrations.django",
    "werkzeug": "muckrack_hmr.integrations.werkzeug",
    "flask": "muckrack_hmr.integrations.flask",
    "uvicorn": "muckrack_hmr.integrations.uvicorn",
    "fastapi": "muckrack_hmr.integrations.fastapi",
    "gunicorn": "muckrack_hmr.integrations.gunicorn",
    "starlette": "muckrack_hmr.integrations.starlette",
    "typer": "muckrack_hmr.integrations.typer",
    "celery": "muckrack_hmr.integrations.celery",
    "aiohttp": "muckrack_hmr.integrations.aiohttp",
    "rest_framework": "muckrack_hmr.integrations.drf",
    "quart": "muckrack_hmr.integrations.quart",
    "hypercorn": "muckrack_hmr.integrations.quart",
    "falcon": "muckrack_hmr.integrations.falcon",
    "bottle": "muckrack_hmr.integrations.bottle",
    "litestar": "muckrack_hmr.integrations.litestar",
}

_active: dict[str, HMR] = {}


def activate(hmr: HMR, *, browser: bool = False) -> None:
    """Enable each framework's integration when (and if) the program imports it.

    ``browser``: also make the development servers' pages follow the reloads
    (``--reload-browser``, see :mod:`.browser`).
    """
    if _active.get("hmr") is hmr:
        _enable_browser(hmr, browser)
        return
    deactivate()
    _active["hmr"] = hmr
    for package, integration in FRAMEWORKS.items():

        def enable(_module: ModuleType, integration: str = integration) -> None:
            # Not for an installation that is gone (uninstalled, replaced).
            if _active.get("hmr") is hmr and tracking.active() is hmr:
                importlib.import_module(integration).enable(hmr)

        when_imported(package, enable)
    # (Imported already, by python and by the CLI.)
    importlib.import_module("muckrack_hmr.integrations.exit_handlers").enable()
    _enable_browser(hmr, browser)


def _enable_browser(hmr: HMR, browser: bool) -> None:
    if browser:
        importlib.import_module("muckrack_hmr.integrations.browser").enable(hmr)


def deactivate() -> None:
    """Enable no further integration (those already enabled stay)."""
    _active.clear()
    forget_all()
