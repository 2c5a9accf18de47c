"""FastAPI under HMR: a route whose endpoint's parameters changed is made again, in place.

FastAPI reads an endpoint's signature once, when the route is made: which
parameters come from the path, the query, the headers or the body, their types
and defaults, and the dependencies (``Depends``) with their own parameters.  A
reload patches the endpoint in place, so its body runs the new code at once;
an edited parameter (``item_id: int`` to ``item_id: str``, a new query
parameter, a dependency that takes a header) would still be validated the old
way.  So each route is remembered with the arguments it was made with and the
signatures it read; after a reload that touched one of its callables, a route
whose signatures changed is made again from the same arguments: the same route
object at the same place in its router, with the new parameters.  The cached
OpenAPI schema of every app is dropped, so ``/docs`` shows them too.
"""

from __future__ import annotations

import functools
import inspect
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from ._imports import when_imported

if TYPE_CHECKING:
    from typing import Protocol

    from ..api import HMR

    # FastAPI's objects, as far as this module uses them (read with getattr otherwise).
    class _Router(Protocol):
        routes: list[object]

    class _App(Protocol):
        openapi_schema: object


__all__ = ["enable", "refresh_routes"]

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


# id(route) -> how it was made; by id, as routes compare by value and are not hashable.
_routes: dict[int, _Made] = {}
_apps: weakref.WeakSet[_App] = weakref.WeakSet()
_make_route: list[Callable[..., None]] = []  # APIRoute.__init__ as FastAPI wrote it


def enable(hmr: HMR) -> None:
    """Remember FastAPI's routes as they are made; check them after each reload."""
    when_imported("fastapi.routing", _wrap_routes)
    when_imported("fastapi.routing", _wrap_router)
    when_imported("fastapi.applications", _wrap_apps)
    hmr.add_post_reload_hook(refresh_routes)


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

    @functools.wraps(original)
    def add_api_route(self: _Router, *args: object, **kwargs: object) -> None:
        before = len(self.routes)
        original(self, *args, **kwargs)
        try:
            _replace_earlier(self.routes, before)
        except Exception:  # never the program's own route
            log.debug("could not compare a FastAPI route", exc_info=True)

    setattr(add_api_route, _MARK, True)
    cls.add_api_route = add_api_route


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


def _same_def(old: object, new: object) -> bool:
    """Made by the same ``def`` (the same module and qualified name)?"""
    if old is new:
        return True
    names = ("__module__", "__qualname__")
    return all(
        isinstance(getattr(old, n, None), str) and getattr(old, n) == getattr(new, n, None)
        for n in names
    )


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
    """Make again, in place, each route whose callables from ``name`` changed signature
    (a post-reload hook)."""
    if not _make_route:
        return
    rebuilt = 0
    for made in list(_routes.values()):
        route = made.route()
        if route is None or not any(_module_of(call) == name for call in _callables(route)):
            continue
        if _signatures(route) == made.signatures:  # what FastAPI read is what it would read now
            continue
        _make_route[0](route, *made.args, **made.kwargs)
        made.signatures = _signatures(route)
        rebuilt += 1
        log.debug(
            "FastAPI route %s %s made again: its parameters changed",
            ",".join(sorted(getattr(route, "methods", None) or ())),
            getattr(route, "path", "?"),
        )
    if rebuilt:
        for app in list(_apps):
            app.openapi_schema = None
