"""Bottle under HMR: a route whose ``def`` runs again, or goes, leaves no old rule behind.

``@app.route("/old")`` edited to ``@app.route("/new")`` runs the ``def`` again (its
decorator changed), and Bottle adds a route for ``/new``: ``/old`` was served on, by
the same function, and ``app.routes`` grew at each such edit (a signature edit added
the same rule twice).  A view renamed or deleted stayed routed too.  After a module's
reload, the routes its functions had before are dropped where the reload routed that
function again (its new rules take their place) or where the module no longer holds
the function (renamed, deleted), and the app's router is made again, in place, from
the routes left.  Routes a failed reload added are taken away again.
"""

from __future__ import annotations

import logging
import sys
import weakref
from collections.abc import Callable
from types import FunctionType, ModuleType
from typing import TYPE_CHECKING

from . import _reloading
from ._imports import when_imported, wrap_method

if TYPE_CHECKING:
    from ..api import HMR

__all__ = ["enable", "forget_old_routes", "remember_routes"]

log = logging.getLogger(__name__)

_MARK = "__muckrack_hmr__"

# The apps that took a route (Bottle's default app among them, for ``@bottle.route``).
_apps: weakref.WeakSet[object] = weakref.WeakSet()
# module -> (app, route) of the module's functions before its reload
_before: dict[str, list[tuple[object, object]]] = {}
# (app, route) added while a module's new code ran (on the reloading thread)
_added: list[tuple[object, object]] = []


def enable(hmr: HMR) -> None:
    """Let reloads change Bottle's routes (when Bottle is imported)."""
    _reloading.enable(hmr)
    when_imported("bottle", _wrap_add_route)
    hmr.add_pre_reload_hook(remember_routes)
    hmr.add_post_reload_hook(forget_old_routes)


def _wrap_add_route(bottle: ModuleType) -> None:
    cls = getattr(bottle, "Bottle", None)
    if not isinstance(cls, type):
        return

    def make(original: Callable[..., object]) -> Callable[..., object]:
        def add_route(self: object, route: object) -> object:
            made = original(self, route)
            try:
                _apps.add(self)
            except TypeError:  # (not weakly referable)
                return made
            if _reloading.current() is not None:
                _added.append((self, route))
                _reloading.on_failure(lambda: _take_away(self, [route]))
            return made

        return add_route

    wrap_method(cls, "add_route", make, _MARK)


def _module_of(route: object) -> str | None:
    callback = getattr(route, "callback", None)
    module = getattr(callback, "__module__", None)
    return module if isinstance(module, str) else None


def remember_routes(name: str) -> None:
    """Before the reload of ``name`` (a pre-reload hook): the routes of its functions."""
    _before[name] = [
        (app, route)
        for app in list(_apps)
        for route in list(getattr(app, "routes", ()))
        if _module_of(route) == name
    ]


def forget_old_routes(name: str) -> None:
    """After the reload of ``name`` (a post-reload hook): the old routes of a function it
    routed again, or no longer holds, are dropped."""
    before = _before.pop(name, [])
    added = [(app, route) for app, route in _added if _module_of(route) == name]
    _added[:] = [entry for entry in _added if _module_of(entry[1]) != name]
    if not before:
        return
    again = {id(getattr(route, "callback", None)) for _, route in added}
    namespace = getattr(sys.modules.get(name), "__dict__", {})
    stale: dict[int, tuple[object, list[object]]] = {}
    for app, route in before:
        callback = getattr(route, "callback", None)
        if id(callback) in again or _gone(callback, namespace):
            stale.setdefault(id(app), (app, []))[1].append(route)
    for app, routes in stale.values():
        fresh = [route for each, route in added if each is app]
        _rebuild(app, _in_place(getattr(app, "routes", []), routes, fresh))
        log.debug(
            "dropped %d old Bottle route(s) of %s: %s",
            len(routes),
            name,
            ", ".join(f"{getattr(r, 'method', '?')} {getattr(r, 'rule', '?')}" for r in routes),
        )


def _in_place(routes: list[object], stale: list[object], fresh: list[object]) -> list[object]:
    """``routes`` without ``stale``, the ``fresh`` routes of a function where its first
    stale one was: Bottle tries its dynamic rules in order (a signature edit moved
    ``/items/<item_id:int>`` after ``/items/<name>``, which answered in its place)."""
    gone = {id(route) for route in stale}
    by_callback: dict[int, list[object]] = {}
    for route in fresh:
        by_callback.setdefault(id(getattr(route, "callback", None)), []).append(route)
    placed: set[int] = set()
    order: list[object] = []
    for route in routes:
        callback = id(getattr(route, "callback", None))
        if id(route) in gone:
            if callback in by_callback and callback not in placed:
                placed.add(callback)
                order.extend(by_callback[callback])
            continue
        if callback in placed and any(route is each for each in by_callback[callback]):
            continue  # (put in its old one's place already)
        order.append(route)
    return order


def _gone(callback: object, namespace: dict[str, object]) -> bool:
    """Is ``callback`` a top-level function its module no longer holds (renamed, deleted)?"""
    if type(callback) is not FunctionType:
        return False
    own = callback.__qualname__
    if "." in own:
        return False  # a method, a closure: not the module's to hold
    held = namespace.get(callback.__name__)
    return held is not callback and getattr(held, "__wrapped__", None) is not callback


def _take_away(app: object, routes: list[object]) -> None:
    """Drop ``routes`` from ``app``, and make its router again from the routes left."""
    gone = {id(route) for route in routes}
    _rebuild(app, [route for route in getattr(app, "routes", []) if id(route) not in gone])


def _rebuild(app: object, kept: list[object]) -> None:
    """``app`` routes ``kept``, in that order: its router made again from them."""
    old = getattr(app, "router", None)
    if old is None:
        return
    router = type(old)(strict=getattr(old, "strict_order", False))
    # (Filters the program added: ``app.router.add_filter("slug", ...)``.)
    router.filters.update(getattr(old, "filters", {}))
    for route in kept:
        router.add(route.rule, route.method, route, name=route.name)  # type: ignore[attr-defined]
    # In place: an app sets each attribute once (its ``__setattr__`` refuses another).
    vars(old).update(vars(router))
    app.routes[:] = kept  # type: ignore[attr-defined]
