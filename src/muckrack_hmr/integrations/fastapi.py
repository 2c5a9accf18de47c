"""FastAPI under HMR: routes follow the edits of their defs, in place.

FastAPI reads an endpoint's signature once, when the route is made: which
parameters come from the path, the query, the headers or the body, their types
and defaults, and the dependencies (``Depends``) with their own parameters.  A
reload patches the endpoint in place, so its body runs the new code at once;
an edited parameter (``item_id: int`` to ``item_id: str``, a new query
parameter, a dependency that takes a header) would still be validated the old
way.  So each route is remembered with the arguments it was made with and the
signatures it read; after a reload that touched one of its callables, a route
whose signatures changed is made again from the same arguments: the same route
object at the same place in its router, with the new parameters.  So is a route
whose parameters or response hold a pydantic model rebuilt since it was made (a
model named by a string, ``items: list["Item"]``, whose schema held the old
``Item``'s: see reload.validated_models): FastAPI copied that schema as it made the
route.  The cached OpenAPI schema of every app is dropped, so ``/docs`` shows them too.

The routes themselves follow the edits: a route declared in a reload (also on
a router included into the app, which FastAPI reads live) serves at once; a
``def`` whose route decorator ran again (a new path, other methods) takes the
place of its old routes; after the reload, the routes of a ``def`` the edit
removed go.  If the module's reload fails, each router's routes are put back.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from ..reload import validated_models
from . import _reloading
from ._imports import when_imported

if TYPE_CHECKING:
    from typing import Protocol

    from ..api import HMR

    # FastAPI's objects, as far as this module uses them (read with getattr otherwise).
    class _Router(Protocol):
        routes: list[object]

    class _App(Protocol):
        openapi_schema: object


__all__ = ["enable", "forget_removed_routes", "refresh_routes", "remember_routes"]

log = logging.getLogger(__name__)

_MARK = "__muckrack_hmr__"
_UNREADABLE = object()  # a signature that could not be read (FastAPI fails on it too)


@dataclass
class _Made:
    """A route (weakly), the arguments it was made with, and the signatures it read."""

    route: weakref.ref[object]
    args: tuple[object, ...]
    kwargs: dict[str, object]
    signatures: tuple[object, ...]
    models: int
    """validated_models.generation() when it was made, or last found to hold none since."""


# id(route) -> how it was made; by id, as routes compare by value and are not hashable.
_routes: dict[int, _Made] = {}
_apps: weakref.WeakSet[_App] = weakref.WeakSet()
# By id: routers are not hashable.
_routers: weakref.WeakValueDictionary[int, _Router] = weakref.WeakValueDictionary()
_make_route: list[Callable[..., None]] = []  # APIRoute.__init__ as FastAPI wrote it


def enable(hmr: HMR) -> None:
    """Remember FastAPI's routes as they are made; check them after each reload."""
    when_imported("fastapi.routing", _wrap_routes)
    when_imported("fastapi.routing", _wrap_router)
    when_imported("fastapi.applications", _wrap_apps)
    _reloading.enable(hmr)
    hmr.add_pre_reload_hook(remember_routes)
    hmr.add_post_reload_hook(refresh_routes)
    hmr.add_post_reload_hook(forget_removed_routes)


def _wrap_routes(routing: ModuleType) -> None:
    cls = routing.APIRoute
    original = cls.__init__
    if getattr(original, _MARK, False):
        return
    _make_route.append(original)

    @functools.wraps(original)
    def __init__(self: object, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        try:
            _remember(self, args, kwargs)
        except Exception:  # never the program's own route
            log.debug("could not remember a FastAPI route", exc_info=True)

    setattr(__init__, _MARK, True)
    cls.__init__ = __init__


def _wrap_router(routing: ModuleType) -> None:
    cls = routing.APIRouter
    original = cls.add_api_route
    if getattr(original, _MARK, False):
        return
    original_init = cls.__init__

    @functools.wraps(original_init)
    def __init__(self: _Router, *args: object, **kwargs: object) -> None:
        original_init(self, *args, **kwargs)
        _routers[id(self)] = self

    @functools.wraps(original)
    def add_api_route(self: _Router, *args: object, **kwargs: object) -> None:
        earlier = _reloading.kept(("routes", id(self)), lambda: _keep_for_undo(self))
        before = len(self.routes)
        original(self, *args, **kwargs)
        try:
            if len(self.routes) == before + 1:
                _note_registration(self.routes[-1])
            if earlier is None:
                _replace_earlier(self.routes, before)
            else:
                _replace_in_reload(self, before, earlier)
        except Exception:  # never the program's own route
            log.debug("could not compare a FastAPI route", exc_info=True)

    setattr(add_api_route, _MARK, True)
    setattr(__init__, _MARK, True)
    cls.add_api_route = add_api_route
    cls.__init__ = __init__


def _keep_for_undo(router: _Router) -> frozenset[int]:
    """The router's routes before this reload changed them (by id), put back if it fails."""
    routes = router.routes
    saved = list(routes)

    def undo() -> None:
        routes[:] = saved
        _routes_changed(router)

    _reloading.on_failure(undo)
    return frozenset(id(route) for route in saved)


def _routes_changed(router: _Router) -> None:
    """Tell FastAPI (its routers included live cache their routes) and drop the schemas."""
    mark = getattr(router, "_mark_routes_changed", None)
    if callable(mark):
        mark()
    for app in list(_apps):
        app.openapi_schema = None


def _replace_in_reload(router: _Router, before: int, earlier: frozenset[int]) -> None:
    """The route just added by a def that ran again in this reload replaces the routes
    its old function had (at the place of the one with the same path and methods, or of
    the first): a new path or new methods leave no second route behind.  A factory's
    endpoint replaces only a route of the same path and methods."""
    routes = router.routes
    if len(routes) != before + 1:
        return
    new = routes[-1]
    endpoint = getattr(new, "endpoint", None)
    old = [
        index
        for index in range(before)
        if id(routes[index]) in earlier
        and _reloading.made_again(getattr(routes[index], "endpoint", None), endpoint)
    ]
    same_place = [
        index
        for index in old
        if getattr(routes[index], "path", None) == getattr(new, "path", None)
        and getattr(routes[index], "methods", None) == getattr(new, "methods", None)
    ]
    if _reloading.defined_at_top(endpoint, getattr(endpoint, "__module__", "")) is None:
        # A factory's endpoints share a def, each route made by its own statement.
        old = same_place
    if not old:
        return
    place = same_place[0] if same_place else old[0]
    for index in old:
        _routes.pop(id(routes[index]), None)
    routes[place] = new
    del routes[-1]
    for index in reversed(old):
        if index != place:
            del routes[index]
    _routes_changed(router)
    log.debug("FastAPI route %s made again", getattr(new, "path", None))


def _replace_earlier(routes: list[object], before: int) -> None:
    """A route just added for the same path, methods and ``def`` as an earlier one (its
    decorator ran again in a reload) takes the earlier one's place: not a second route
    behind the first, which would keep answering."""
    if len(routes) != before + 1:
        return
    new = routes[-1]
    for index in range(before):
        old = routes[index]
        if (
            type(old) is type(new)
            and getattr(old, "path", None) == getattr(new, "path", None)
            and getattr(old, "methods", None) == getattr(new, "methods", None)
            and _same_def(getattr(old, "endpoint", None), getattr(new, "endpoint", None))
        ):
            routes[index] = new
            del routes[-1]
            _routes.pop(id(old), None)
            for app in list(_apps):
                app.openapi_schema = None
            log.debug("FastAPI route %s replaced by its new definition", getattr(new, "path", None))
            return


_same_def = _reloading.same_def


def _wrap_apps(applications: ModuleType) -> None:
    cls = applications.FastAPI
    original = cls.__init__
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def __init__(self: _App, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        _apps.add(self)

    setattr(__init__, _MARK, True)
    cls.__init__ = __init__


def _remember(route: object, args: tuple[object, ...], kwargs: dict[str, object]) -> None:
    key = id(route)
    _routes[key] = _Made(
        weakref.ref(route, lambda _ref: _routes.pop(key, None)),
        args,
        kwargs,
        _signatures(route),
        validated_models.generation(),
    )


def _callables(route: object) -> list[Callable[..., object]]:
    """The endpoint and every dependency FastAPI resolved for ``route``, depth first."""
    found: list[Callable[..., object]] = []
    stack = [getattr(route, "dependant", None)]
    while stack:
        dependant = stack.pop()
        if dependant is None:
            continue
        call = getattr(dependant, "call", None)
        if call is not None:
            found.append(call)
        stack.extend(reversed(getattr(dependant, "dependencies", None) or []))
    return found


def _signature(call: Callable[..., object]) -> object:
    try:
        return inspect.signature(call)
    except Exception:  # an annotation that does not evaluate, a builtin...
        return _UNREADABLE


def _signatures(route: object) -> tuple[object, ...]:
    return tuple(_signature(call) for call in _callables(route))


def _module_of(call: Callable[..., object]) -> str | None:
    target = call if inspect.isroutine(call) or inspect.isclass(call) else type(call)
    module = getattr(inspect.unwrap(target), "__module__", None)
    return module if isinstance(module, str) else None


def refresh_routes(name: str) -> None:
    """Make again, in place, each route whose callables from ``name`` changed signature,
    or that holds a model rebuilt since it was made (a post-reload hook)."""
    if not _make_route:
        return
    rebuilt: set[int] = set()
    now = validated_models.generation()
    for made in list(_routes.values()):
        route = made.route()
        if route is None:
            continue
        callables = _callables(route)
        if any(_module_of(call) == name for call in callables):
            changed = _signatures(route) != made.signatures
        else:
            changed = False
        if not changed and made.models != now:
            changed = _holds_rebuilt(route, made.models)
            made.models = now
        if not changed:  # what FastAPI read is what it would read now
            continue
        _make_route[0](route, *made.args, **made.kwargs)
        made.signatures = _signatures(route)
        made.models = validated_models.generation()
        rebuilt.add(id(route))
        log.debug(
            "FastAPI route %s %s made again: its parameters changed",
            ",".join(sorted(getattr(route, "methods", None) or ())),
            getattr(route, "path", "?"),
        )
    if not rebuilt:
        return
    for app in list(_apps):
        app.openapi_schema = None
    # A router that holds one: FastAPI's routers that include it (0.165 and later) cache
    # what they serve of it until told.
    for router in list(_routers.values()):
        if any(id(route) in rebuilt for route in list(router.routes)):
            _routes_changed(router)


_PARAMETERS = ("path_params", "query_params", "header_params", "cookie_params", "body_params")


def _holds_rebuilt(route: object, since: int) -> bool:
    """Do the parameters or the response of ``route`` hold a model rebuilt since ``since``?"""
    models = validated_models.rebuilt_since(since)
    if not models:
        return False
    annotations: list[object] = [getattr(route, "response_model", None)]
    stack = [getattr(route, "dependant", None)]
    while stack:
        dependant = stack.pop()
        if dependant is None:
            continue
        for kind in _PARAMETERS:
            for field in getattr(dependant, kind, None) or ():
                annotations.append(getattr(getattr(field, "field_info", None), "annotation", None))
        stack.extend(getattr(dependant, "dependencies", None) or [])
    return any(validated_models.mentions(each, models) for each in annotations)


# -- routes whose def is gone --------------------------------------------------------------


@dataclass(frozen=True)
class _Held:
    """A route of a router, whose endpoint is the top-level def ``name`` of a module."""

    router: _Router
    route: object
    name: str


# module -> the routes of its top-level defs before its reload began
_before: dict[str, list[_Held]] = {}
# The routes a ``def``'s own decorator added (``@app.get``): not a statement after it
# (``router.add_api_route("/b", b)``).  By id: a route compares by value, unhashable.
_by_their_def: dict[int, weakref.ref[object]] = {}


def _by_its_def(route: object) -> bool:
    """Did ``route``'s def's own decorator add it (see _note_registration)?"""
    ref = _by_their_def.get(id(route))
    return ref is not None and ref() is route


def _note_registration(route: object) -> None:
    """``route`` was just added: by its def's decorator when the def has not bound its
    name to its endpoint yet, or when a reload runs the def again on the live function."""
    endpoint = getattr(route, "endpoint", None)
    name = getattr(endpoint, "__name__", None)
    module = sys.modules.get(getattr(endpoint, "__module__", None) or "")
    if module is None or not isinstance(name, str):
        return
    if vars(module).get(name) is not endpoint or _reloading.made_again(endpoint, endpoint):
        key = id(route)
        with contextlib.suppress(TypeError):  # (not weakly referable: not followed)
            _by_their_def[key] = weakref.ref(route, lambda _: _by_their_def.pop(key, None))


def remember_routes(name: str) -> None:
    """Note the routes of ``name``'s top-level defs, before its reload (a pre-reload hook)."""
    _before.pop(name, None)
    module = sys.modules.get(name)
    if module is None or not _routers:
        return
    namespace = module.__dict__
    held = [
        _Held(router, route, defined)
        for router in list(_routers.values())
        for route in list(router.routes)
        if (defined := _reloading.defined_at_top(getattr(route, "endpoint", None), name))
        is not None
        and defined in namespace
    ]
    if held:
        _before[name] = held


def forget_removed_routes(name: str) -> None:
    """Take out the routes of defs the reload of ``name`` removed (a post-reload hook)."""
    held = _before.pop(name, [])
    module = sys.modules.get(name)
    if module is None:
        return
    namespace = module.__dict__
    for gone in held:
        if gone.name in namespace and not (
            # Its def ran again and added it no more: the route decorator went (a route
            # its def's decorator made again took the old one's place already).
            _by_its_def(gone.route)
            and _reloading.ran_again(gone.name, getattr(gone.route, "endpoint", None))
        ):
            continue
        routes = gone.router.routes
        for index, route in enumerate(routes):
            if route is gone.route:
                del routes[index]
                with contextlib.suppress(Exception):  # (a router that takes no attribute)
                    moved = vars(gone.router).setdefault(_reloading.MOVED_ENDPOINTS, [])
                    moved.append(getattr(route, "endpoint", None))
                _routes.pop(id(route), None)
                _routes_changed(gone.router)
                log.debug(
                    "FastAPI route %s removed: its def is gone from %s, or its decorator",
                    getattr(route, "path", "?"),
                    name,
                )
                break
