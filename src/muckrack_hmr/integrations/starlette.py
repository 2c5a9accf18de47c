"""Starlette under HMR: the app the server holds takes the routes of each edit.

A plain Starlette app is declared in one statement,
``app = Starlette(routes=[Route("/", home), WebSocketRoute("/ws", chat)])``
(or from a ``routes`` list declared before it).  Adding, editing or removing
one route edits that statement, so the reload runs it again and binds ``app``
to a new app, while the server keeps calling the one it loaded at start-up.
So after the module's reload the live app adopts the new one's routes (its
router's list, in place), and its middleware, exception handlers and debug
flag when they changed (Starlette then builds its middleware stack again at
the next request, as at the first); ``app`` is bound to the live app again,
so its importers and the server go on sharing one object.

Statements that add to a router (``app.add_route``, ``app.mount``,
``app.router.routes.append``, FastAPI's ``@app.websocket``) add again when
they run again.  A route a reload added that stands for an earlier one (the
same kind, path and methods, or made from the same ``def``) takes the
earlier one's place; the routes of a ``def`` the edit removed go; if the
module's reload fails, every router's routes are put back.  FastAPI apps
are Starlette apps: the same applies to them.
"""

from __future__ import annotations

import contextlib
import linecache
import logging
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType, ModuleType
from typing import TYPE_CHECKING, cast

from . import _reloading
from ._imports import loaded_class, when_imported, wrap_method

if TYPE_CHECKING:
    from typing import Protocol

    from ..api import HMR

    # Starlette's objects, as far as this module uses them.
    class _Router(Protocol):
        routes: list[object]

    class _App(Protocol):
        router: _Router
        user_middleware: list[object]
        exception_handlers: dict[object, object]
        middleware_stack: object
        debug: bool
        state: object


__all__ = ["enable", "follow_routes", "note_routes"]

log = logging.getLogger(__name__)

_MARK = "__muckrack_hmr__"

# By id: a Router compares by its routes, so it is not hashable.
_routers: weakref.WeakValueDictionary[int, _Router] = weakref.WeakValueDictionary()


@dataclass(frozen=True)
class _Before:
    """What a module's reload may change, noted just before it: the apps its
    namespace binds, every router's routes, and the routes of its top-level defs."""

    apps: dict[str, object]  # Starlette apps
    routes: dict[int, tuple[_Router, list[object]]]
    defs: list[tuple[_Router, object, str]]


_before: dict[str, _Before] = {}
# The apps a middleware or an exception handler was added to by a call (a decorator).
_declaring: weakref.WeakSet[_App] = weakref.WeakSet()


def enable(hmr: HMR) -> None:
    """Remember Starlette's routers as they are made; follow each reload's routes."""
    when_imported("starlette.routing", _wrap_router)
    when_imported("fastapi.routing", lambda routing: _wrap_event_handlers(routing.APIRouter))
    when_imported("starlette.applications", _wrap_app)
    _reloading.enable(hmr)
    hmr.add_pre_reload_hook(note_routes)
    hmr.add_post_reload_hook(follow_routes)


def _wrap_router(routing: ModuleType) -> None:
    def make(original: Callable[..., object]) -> Callable[..., object]:
        def __init__(self: _Router, *args: object, **kwargs: object) -> None:
            original(self, *args, **kwargs)
            _routers[id(self)] = self

        return __init__

    wrap_method(routing.Router, "__init__", make, _MARK)
    _wrap_event_handlers(routing.Router)


def _wrap_event_handlers(router_class: type) -> None:
    """``add_event_handler`` of a router class that has its own (Starlette's, FastAPI's)."""
    if "add_event_handler" not in vars(router_class):
        return

    def handlers(original: Callable[..., object]) -> Callable[..., object]:
        def add_event_handler(self: _Router, event_type: str, func: object) -> None:
            # (``@app.on_event("startup")``, FastAPI's too.)  In a reload, a handler whose
            # def ran again (its signature edited) takes its earlier entry's place: it
            # was added again, and ran twice at the next startup or shutdown.
            listed = getattr(self, "on_startup" if event_type == "startup" else "on_shutdown", None)
            if _reloading.current() is None or not isinstance(listed, list):
                original(self, event_type, func)
                return
            earlier = [at for at, held in enumerate(listed) if _reloading.made_again(held, func)]
            if not earlier:
                original(self, event_type, func)
                return
            saved = list(listed)
            _reloading.on_failure(lambda: listed.__setitem__(slice(None), saved))
            listed[earlier[0]] = func
            for at in reversed(earlier[1:]):
                del listed[at]

        return add_event_handler

    wrap_method(router_class, "add_event_handler", handlers, _MARK)


def _wrap_app(applications: ModuleType) -> None:
    """In a reload, a middleware or an exception handler declared on an app that serves
    already takes effect: the app builds its middleware stack again at the next request.

    Starlette refuses ``add_middleware`` once the stack is built ("Cannot add
    middleware after an application has started"), and an exception handler
    added then never reaches the stack built before it.  A middleware whose
    ``def`` ran again (``@app.middleware("http")``) takes its earlier entry's
    place.  If the module's reload fails, the app is put back as it was.
    """

    def middleware(original: Callable[..., object]) -> Callable[..., object]:
        def add_middleware(
            self: _App, middleware_class: object, *args: object, **kw: object
        ) -> None:
            _declaring.add(self)
            if _reloading.current() is None:
                original(self, middleware_class, *args, **kw)
                return
            _keep_stack_for_undo(self)
            declared = self.user_middleware
            dispatch = kw.get("dispatch")
            # The entry its statement made before (it ran again): replaced where it was.
            earlier = [
                at
                for at, item in enumerate(declared)
                if getattr(item, "cls", None) is middleware_class
                and (
                    dispatch is None
                    or _reloading.made_again(getattr(item, "kwargs", {}).get("dispatch"), dispatch)
                )
            ]
            self.middleware_stack = None  # built again at the next request, with it
            original(self, middleware_class, *args, **kw)  # inserted first
            if earlier:
                made = declared.pop(0)
                declared[earlier[0]] = made
                for at in reversed(earlier[1:]):
                    del declared[at]

        return add_middleware

    def handler(original: Callable[..., object]) -> Callable[..., object]:
        def add_exception_handler(self: _App, key: object, function: object) -> None:
            _declaring.add(self)
            if _reloading.current() is None:
                original(self, key, function)
                return
            _keep_stack_for_undo(self)
            original(self, key, function)
            self.middleware_stack = None

        return add_exception_handler

    wrap_method(applications.Starlette, "add_middleware", middleware, _MARK)
    wrap_method(applications.Starlette, "add_exception_handler", handler, _MARK)


def _keep_stack_for_undo(app: _App) -> None:
    """Once per reload and app: its middleware and handlers, put back if the reload fails."""
    _reloading.kept(("stack", id(app)), lambda: _undo_stack(app))


def _undo_stack(app: _App) -> bool:
    middleware, handlers = list(app.user_middleware), dict(app.exception_handlers)
    stack = app.middleware_stack

    def undo() -> None:
        app.user_middleware[:] = middleware
        app.exception_handlers.clear()
        app.exception_handlers.update(handlers)
        app.middleware_stack = stack

    _reloading.on_failure(undo)
    return True


def note_routes(name: str) -> None:
    """Note what the reload of ``name`` may change, and how to undo it (a pre-reload hook)."""
    _before.pop(name, None)
    module = sys.modules.get(name)
    if module is None or not _routers:
        return
    namespace = module.__dict__
    app_class = loaded_class("starlette.applications", "Starlette")
    apps = {
        key: value
        for key, value in namespace.copy().items()
        if app_class is not None and isinstance(value, app_class)
    }
    # One entry per routes list: an adopted app's router shares the live one's.
    routers = list({id(router.routes): router for router in _routers.values()}.values())
    routes = {id(router): (router, list(router.routes)) for router in routers}
    defs = [
        (router, route, defined)
        for router in routers
        for route in router.routes
        if (defined := _reloading.defined_at_top(getattr(route, "endpoint", None), name))
        is not None
        and defined in namespace
    ]
    _before[name] = _Before(apps, routes, defs)

    def undo() -> None:
        _before.pop(name, None)  # no post-reload hook follows a failure
        for router, saved in routes.values():
            router.routes[:] = saved
            _changed(router)

    _reloading.on_failure(undo)


def follow_routes(name: str) -> None:
    """Give the live apps the routes the reload of ``name`` made (a post-reload hook)."""
    before = _before.pop(name, None)
    module = sys.modules.get(name)
    if before is None or module is None:
        return
    namespace = module.__dict__
    for key, live in before.apps.items():
        made = namespace.get(key)
        if made is not live and made is not None and type(made) is type(live):
            _adopt(cast("_App", live), cast("_App", made))  # both Starlette apps
            namespace[key] = live
    for router, saved in before.routes.values():
        _replace_earlier(router, saved)
    for router, route, defined in before.defs:
        if defined not in namespace:
            _remove(router, route, name)
    for router, _ in before.routes.values():
        _in_source_order(router, name)
    for app in list(_declaring):
        _forget_removed_setup(app, name, namespace)


def _forget_removed_setup(app: _App, name: str, namespace: dict[str, object]) -> None:
    """The middleware and exception handlers of ``app`` that a ``def`` of ``name`` which
    the edit removed made go (the app builds its stack again at the next request)."""

    def removed(function: object) -> bool:
        defined = _reloading.defined_at_top(function, name)
        return defined is not None and defined not in namespace

    middleware = app.user_middleware
    kept = [item for item in middleware if not removed(getattr(item, "kwargs", {}).get("dispatch"))]
    handlers = app.exception_handlers
    gone = [key for key, handler in handlers.items() if removed(handler)]
    if len(kept) == len(middleware) and not gone:
        return
    middleware[:] = kept
    for key in gone:
        del handlers[key]
    app.middleware_stack = None
    log.debug("%s: the middleware or handlers of defs removed from %s go", type(app).__name__, name)


def _adopt(live: _App, made: _App) -> None:
    """``live`` serves what ``made`` (the app its edited statement made now) declares."""
    routes = live.router.routes
    routes[:] = made.router.routes
    # Whatever holds the new app sees the same table.
    made.router.routes = routes
    _changed(live.router)
    rebuild = False
    if _middleware(live.user_middleware) != _middleware(made.user_middleware):
        live.user_middleware = made.user_middleware
        rebuild = True
    if not _same_handlers(live.exception_handlers, made.exception_handlers):
        live.exception_handlers = made.exception_handlers
        rebuild = True
    if live.debug != made.debug:
        live.debug = made.debug
        rebuild = True
    if hasattr(live, "openapi_schema"):
        live.openapi_schema = None  # FastAPI's, cached at the first request of /openapi.json
    if rebuild:
        # Starlette builds the stack at the first request; it does so again at the next.
        live.middleware_stack = None
    added = getattr(made.state, "_state", None)
    kept = getattr(live.state, "_state", None)
    if isinstance(added, dict) and isinstance(kept, dict):
        kept.update(added)  # ``app.state.x = ...`` statements that ran again
    log.debug("%s takes the routes of its edited declaration", type(live).__name__)


def _middleware(declared: list[object]) -> list[tuple[object, ...]]:
    """Each ``Middleware(cls, *args, **kwargs)`` as a tuple (they compare by identity)."""
    return [tuple(item) if hasattr(item, "__iter__") else (item,) for item in declared]


def _same_handlers(old: dict[object, object], new: dict[object, object]) -> bool:
    return old.keys() == new.keys() and all(_reloading.same_def(old[key], new[key]) for key in old)


def _key(route: object) -> tuple[object, ...]:
    """What a request is matched on: a route of the same key can only shadow another."""
    if getattr(route, "path", None) is None:
        # No path: FastAPI's entry for an included router (0.165 and later), which
        # stands for that router only (another include is another entry).
        return (type(route), id(getattr(route, "original_router", route)))
    methods = getattr(route, "methods", None)
    return (
        type(route),
        getattr(route, "path", None),
        getattr(route, "host", None),
        frozenset(methods) if methods is not None else None,
    )


def _replace_earlier(router: _Router, saved: list[object]) -> None:
    """Each route added in the reload that stands for an earlier one takes its place."""
    routes = router.routes
    earlier = {id(route) for route in saved}
    added = [route for route in routes if id(route) not in earlier]
    if not added or len(added) == len(routes):
        return  # nothing added, or a new table (an adopted app's)
    changed = False
    for new in added:
        old = [index for index, route in enumerate(routes) if id(route) in earlier]
        place = next((i for i in old if _key(routes[i]) == _key(new)), None)
        endpoint = getattr(new, "endpoint", None)
        module = getattr(endpoint, "__module__", "")
        if place is None and _reloading.defined_at_top(endpoint, module) is not None:
            # Moved (a new path, other methods) if its top-level def ran again with it (a
            # decorator: one route per def).  A def that did not run again may serve a
            # second route; a factory's endpoints share one def, a route per statement.
            place = next(
                (
                    i
                    for i in old
                    if type(routes[i]) is type(new)
                    and _reloading.made_again(getattr(routes[i], "endpoint", None), endpoint)
                ),
                None,
            )
        if place is None and getattr(new, "original_router", None) is not None:
            # ``app.include_router(items.router)`` run again for a router made again
            # (``APIRouter(prefix=...)`` edited): its entry takes the old router's.
            place = _included_before(routes, old, new)
        if place is None:
            continue
        target = routes[place]
        earlier.discard(id(target))
        del routes[next(i for i, route in enumerate(routes) if route is new)]
        routes[next(i for i, route in enumerate(routes) if route is target)] = new
        changed = True
        log.debug("route %s replaces its earlier declaration", getattr(new, "path", "?"))
    if changed:
        _changed(router)


def _included_before(routes: list[object], old: list[int], new: object) -> int | None:
    """The place of the earlier entry of an included router (FastAPI 0.165 and later)
    that ``new``'s router was made again from (its routes' endpoints are of the same
    defs), the same include's first (``prefix=`` as given then)."""
    router = getattr(new, "original_router", None)
    ends = [getattr(route, "endpoint", None) for route in getattr(router, "routes", ())]
    candidates = [
        index
        for index in old
        if type(routes[index]) is type(new)
        and (earlier := getattr(routes[index], "original_router", None)) is not router
        and any(
            _reloading.same_def(endpoint, end) for endpoint in _endpoints(earlier) for end in ends
        )
    ]
    for index in candidates:
        with contextlib.suppress(Exception):  # (what an include context holds compares)
            if getattr(routes[index], "include_context", None) == getattr(
                new, "include_context", None
            ):
                return index
    return candidates[0] if candidates else None


def _endpoints(router: object) -> list[object]:
    """The endpoints of a router's routes, and of those a reload moved out of it."""
    held = [getattr(route, "endpoint", None) for route in getattr(router, "routes", ())]
    moved = getattr(router, "__dict__", {}).get(_reloading.MOVED_ENDPOINTS, ())
    return [*held, *moved]


def _in_source_order(router: _Router, name: str) -> None:
    """Put the routes the decorated top-level defs of module ``name`` declare in the order
    of their defs, as a fresh start has them: a router serves the first route that
    matches.  A new route went last (a new ``/items/special`` written above
    ``/items/{item_id}`` was answered by it), and one whose def was moved above another
    (to be matched first) kept its place.  Each route out of order goes before the first
    of them declared below it; the routes of other files stay where they are."""
    routes = router.routes
    filename = getattr(sys.modules.get(name), "__file__", None)
    if not isinstance(filename, str):
        return
    declared = [
        (route, at[1])
        for route in routes
        if _reloading.defined_at_top(getattr(route, "endpoint", None), name) is not None
        and (at := _declared_at(route)) is not None
        and at[0] == filename
    ]
    if len(declared) < 2:
        return
    linecache.checkcache(filename)  # (the file as saved)
    lines = {
        id(route): line
        for route, line in declared
        # (not a def that a statement below registers)
        if linecache.getline(filename, line).lstrip().startswith("@")
    }
    moved = False
    for route in list(routes):
        line = lines.get(id(route))
        if line is None:
            continue
        index = next(i for i, other in enumerate(routes) if other is route)
        below = next(
            (
                i
                for i, other in enumerate(routes[:index])
                if (other_line := lines.get(id(other))) is not None and other_line > line
            ),
            None,
        )
        if below is None:
            continue
        del routes[index]
        routes.insert(below, route)
        moved = True
        log.debug("route %s goes where its def is", getattr(route, "path", "?"))
    if moved:
        _changed(router)


def _declared_at(route: object) -> tuple[str, int] | None:
    """The file and first line of the def of ``route``'s endpoint (what a decorator that
    kept ``__wrapped__`` wraps): None for an endpoint that is no function."""
    import inspect  # (imported already by Starlette)

    endpoint = getattr(route, "endpoint", None)
    if not callable(endpoint):
        return None
    try:
        function = inspect.unwrap(endpoint)
    except ValueError:
        return None  # (its __wrapped__ links make a loop)
    code = getattr(function, "__code__", None)
    if not isinstance(code, CodeType):
        return None
    return code.co_filename, code.co_firstlineno


def _remove(router: _Router, route: object, name: str) -> None:
    routes = router.routes
    for index, held in enumerate(routes):
        if held is route:
            del routes[index]
            _changed(router)
            path = getattr(route, "path", "?")
            log.debug("route %s removed: its def is gone from %s", path, name)
            return


def _changed(router: _Router) -> None:
    """FastAPI's routers cache what they include (websocket routes, Starlette's own
    routes and mounts are not in its OpenAPI schema)."""
    mark = getattr(router, "_mark_routes_changed", None)
    if callable(mark):
        mark()
