"""aiohttp under HMR: the app a server runs stays the one made at start-up.

* A statement that makes a new ``web.Application`` where one that started was
  bound (``app = web.Application(client_max_size=MAX_BODY)``, run again because
  the statement or ``MAX_BODY`` was edited) is refused, and says so: the server
  runs the app made at start-up, with the routes, middlewares and state its
  start-up set up (``app["db"]``), and nothing would serve the new one (its
  handlers would read the new app's state, which has none of it).
* A ``web.RouteTableDef`` route whose ``def`` ran again (its signature or its
  decorator edited) takes its earlier entry's place in the table: it was added
  again, and an app made from the table later (a factory, a test's fixture)
  refused the duplicate.
* aiohttp freezes an app's router as the app starts: a route an edit adds to it
  (``app.router.add_get("/c2", c)``, a new ``@routes.get`` of a table a started app
  took its routes from, a table route whose path or method changed) cannot be
  served until a restart.  Such an edit is refused, and says so (``aiohttp
  route``), where it raised "Cannot register a resource into frozen router" (and
  failed every later save of the module) or was silently not served.  So is an edit
  that takes a table route away from such an app (its ``def`` deleted, or its
  ``@routes.get`` line): the frozen router would serve the old handler on.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import weakref
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING

from . import _reloading
from ._imports import loaded_class, when_imported, wrap_method

if TYPE_CHECKING:
    from ..api import HMR

__all__ = [
    "AIOHTTP_APP",
    "AIOHTTP_ROUTE",
    "check_served_routes",
    "check_started_apps",
    "enable",
    "remember_served_routes",
    "remember_started_apps",
]

_MARK = "__muckrack_hmr__"

#: The refusal of a statement that made a new app in place of one that started.
AIOHTTP_APP = "aiohttp app"
#: ... and of a route added to (or moved in) the frozen router of an app that started.
AIOHTTP_ROUTE = "aiohttp route"
_ROUTE_FIX = "aiohttp froze the app's routes as it started"

# module -> its top-level names bound to apps that started, before its reload.
_started: dict[str, dict[str, object]] = {}
# module -> (table entries, entry, the name of its handler's def) of the tables started
# apps took their routes from, whose handler a top-level def of the module made.
_served: dict[str, list[tuple[list[object], object, str]]] = {}


def enable(hmr: HMR) -> None:
    """Refuse apps made again in place of started ones; keep route tables whole."""
    _reloading.enable(hmr)
    when_imported("aiohttp.web_routedef", _wrap_route_table)
    when_imported("aiohttp.web_urldispatcher", _wrap_router)
    hmr.add_pre_reload_hook(remember_started_apps)
    hmr.add_refusal_check(functools.partial(check_started_apps, hmr))
    hmr.add_pre_reload_hook(remember_served_routes)
    hmr.add_refusal_check(functools.partial(check_served_routes, hmr))


def remember_started_apps(name: str) -> None:
    """Note ``name``'s top-level names bound to apps that started (a pre-reload hook)."""
    _started.pop(name, None)
    module = sys.modules.get(name)
    app_class = loaded_class("aiohttp.web_app", "Application")
    if module is None or app_class is None:
        return
    held = {
        key: value
        for key, value in module.__dict__.copy().items()
        if issubclass(type(value), app_class) and getattr(value, "frozen", False)
    }
    if held:
        _started[name] = held


def check_started_apps(hmr: HMR, name: str) -> None:
    """Refuse the edit of ``name`` if its new code bound a new app where one that started
    was (a refusal check)."""
    for key, _now in _reloading.replaced(name, _started.pop(name, None)):
        hmr.refuse(
            AIOHTTP_APP,
            f"{name}.{key} is a new aiohttp Application",
            "the server runs the app made at start-up, with the routes, middlewares "
            "and state its start-up set up",
            module=name,
        )


def remember_served_routes(name: str) -> None:
    """Note the table routes of started apps whose handler a top-level def of ``name``
    made, before its reload (a pre-reload hook)."""
    _served.pop(name, None)
    served = [
        (items, item, defined)
        for table, routers in list(_taken_by.items())
        if isinstance(items := getattr(table, "_items", None), list)
        for item in list(items)
        if (defined := _reloading.defined_at_top(getattr(item, "handler", None), name))
        and _serves(routers, getattr(item, "handler", None))
    ]
    if served:
        _served[name] = served


def _serves(routers: list[object], handler: object) -> bool:
    """Does the frozen router of a started app among ``routers`` route to ``handler``?"""
    for router in routers:
        if getattr(router, "frozen", False):
            with contextlib.suppress(Exception):  # (aiohttp's own: a router's routes)
                if any(route.handler is handler for route in router.routes()):  # type: ignore[attr-defined]
                    return True
    return False


def check_served_routes(hmr: HMR, name: str) -> None:
    """Refuse the edit of ``name`` if it took a route away from a started app: a def
    gone, or one that ran again and added no entry in its earlier one's place (a
    refusal check)."""
    module = sys.modules.get(name)
    namespace = vars(module) if module is not None else {}
    for items, item, defined in _served.pop(name, ()):
        if not any(each is item for each in items):
            continue  # its def ran again and its new entry took the place (_add_again)
        if defined in namespace and not _reloading.ran_again(
            defined, getattr(item, "handler", None)
        ):
            continue
        method, path = getattr(item, "method", "?"), getattr(item, "path", "?")
        # (Named ``module.def``: the line says where the def is, if it stays.)
        lost = f"{name}.{defined} lost its route {method} {path}"
        hmr.refuse(AIOHTTP_ROUTE, lost, _ROUTE_FIX, module=name)


# Each route table -> the routers that took its routes (``app.add_routes(routes)``).
# (A router is no weak reference's: held while its table lives, as its app holds it.)
_taken_by: weakref.WeakKeyDictionary[object, list[object]] = weakref.WeakKeyDictionary()


def _served_from(table: object) -> bool:
    """Did the router of an app that started take its routes from ``table``?"""
    return any(getattr(router, "frozen", False) for router in _taken_by.get(table, ()))


def _wrap_router(dispatcher: ModuleType) -> None:
    def register(original: Callable[..., object]) -> Callable[..., object]:
        def register_resource(self: object, resource: object) -> object:
            if not (getattr(self, "frozen", False) and _reloading.current() is not None):
                return original(self, resource)
            what = getattr(resource, "canonical", None) or repr(resource)
            if not _reloading.refuse(AIOHTTP_ROUTE, f"a route {what} added", _ROUTE_FIX):
                return original(self, resource)  # (raises, as without us)
            return None  # refused: nothing of the edit applies

        return register_resource

    def add(original: Callable[..., object]) -> Callable[..., object]:
        def add_routes(self: object, routes: object) -> object:
            with contextlib.suppress(TypeError):  # (a list of route defs: not followed)
                taken = _taken_by.setdefault(routes, [])
                if not any(router is self for router in taken):
                    taken.append(self)
            return original(self, routes)

        return add_routes

    wrap_method(dispatcher.UrlDispatcher, "register_resource", register, _MARK)
    wrap_method(dispatcher.UrlDispatcher, "add_routes", add, _MARK)


def _wrap_route_table(routedef: ModuleType) -> None:
    def make(original: Callable[..., object]) -> Callable[..., object]:
        def route(self: object, method: str, path: str, **kwargs: object) -> object:
            inner = original(self, method, path, **kwargs)
            if _reloading.current() is None or not callable(inner):
                return inner
            return functools.partial(_add_again, self, inner, method, path)

        return route

    wrap_method(routedef.RouteTableDef, "route", make, _MARK)


def _add_again(
    table: object, inner: Callable[[object], object], method: str, path: str, handler: object
) -> object:
    """``inner(handler)`` (which appends the route to ``table``) in a reload: the new entry
    takes the place of the one its ``def`` made before, if any."""
    items = getattr(table, "_items", None)
    if not isinstance(items, list):
        return inner(handler)
    before = list(items)
    made = inner(handler)
    if len(items) != len(before) + 1:
        return made
    # Entries this reload added already are not earlier ones (two decorators, one def).
    fresh: set[int] = _reloading.kept(("aiohttp-fresh", id(table)), set) or set()
    earlier = [
        at
        for at, item in enumerate(before)
        if id(item) not in fresh and _reloading.made_again(getattr(item, "handler", None), handler)
    ]
    new = items[-1]
    fresh.add(id(new))
    # A refused or failed edit leaves the table as it was (a refused new route too).
    _reloading.on_failure(lambda: items.__setitem__(slice(None), before))
    if not earlier:
        if _served_from(table):
            # A new route of a table a started app took its routes from: not served.
            _reloading.refuse(AIOHTTP_ROUTE, f"a route {method} {path} added", _ROUTE_FIX)
        return made
    # The entry of the same method and path first (a def under two decorators).
    place = next(
        (
            at
            for at in earlier
            if (getattr(before[at], "method", None), getattr(before[at], "path", None))
            == (method, path)
        ),
        earlier[0],
    )
    was = (getattr(before[place], "method", None), getattr(before[place], "path", None))
    if was != (method, path) and _served_from(table):
        # The started app serves the old path or method, and cannot take the new one.
        _reloading.refuse(
            AIOHTTP_ROUTE, f"the route {was[0]} {was[1]} is now {method} {path}", _ROUTE_FIX
        )
    items.pop()
    items[place] = new
    return made
