"""Falcon under HMR: a responder added to a routed resource's class is routed.

``app.add_route("/things", things)`` maps each HTTP method to the resource's
responders (``on_get``, ``on_post``; ``on_get_item`` with ``suffix="item"``) as it
runs, once.  An edit that adds ``on_post`` to the class patches it into the live
class, and the instance the route holds has it: Falcon still answered 405, and a
responder taken away stayed routed (to a method the instance no longer has).  After
each reload, a route whose resource's responders changed is added again, with the
same template, resource and options: Falcon's router takes the new method map in
place of the old one.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING

from ._imports import when_imported, wrap_method

if TYPE_CHECKING:
    from ..api import HMR

__all__ = ["enable", "follow_responders"]

log = logging.getLogger(__name__)

_MARK = "__muckrack_hmr__"


class _Route:
    """One ``add_route`` call: what it was given, and the responders it found."""

    __slots__ = ("kwargs", "resource", "responders", "template")

    def __init__(
        self, template: str, resource: object, kwargs: dict[str, object], responders: frozenset[str]
    ) -> None:
        self.template = template
        self.resource = resource
        self.kwargs = kwargs
        self.responders = responders


# id(app) -> the app and its routes by template (a template added again: its last call).
# Falcon's apps take no weak reference (``__slots__``): the last ones made are held, a
# program's one or few, not every app a test suite makes (see _APPS_HELD).
_routes: collections.OrderedDict[int, tuple[object, dict[str, _Route]]] = collections.OrderedDict()
_APPS_HELD = 32
# The original ``add_route`` of each app class wrapped (falcon.App, falcon.asgi.App).
_originals: dict[type, Callable[..., object]] = {}


def enable(hmr: HMR) -> None:
    """Route the responders an edit adds to a routed resource (when Falcon is imported)."""
    when_imported("falcon.app", _wrap_add_route)
    hmr.add_post_reload_hook(follow_responders)


def _wrap_add_route(app_module: ModuleType) -> None:
    cls = getattr(app_module, "App", None)
    if not isinstance(cls, type):
        return

    def make(original: Callable[..., object]) -> Callable[..., object]:
        def add_route(self: object, uri_template: str, resource: object, **kwargs: object) -> None:
            original(self, uri_template, resource, **kwargs)
            held = _routes.get(id(self))
            if held is None or held[0] is not self:
                held = _routes[id(self)] = (self, {})
                while len(_routes) > _APPS_HELD:
                    _routes.popitem(last=False)
            held[1][uri_template] = _Route(
                uri_template, resource, dict(kwargs), _responders(resource, kwargs)
            )

        _originals[cls] = original
        return add_route

    wrap_method(cls, "add_route", make, _MARK)


def _responders(resource: object, kwargs: dict[str, object]) -> frozenset[str]:
    """The names of the responders ``resource`` has for a route with these options."""
    suffix = kwargs.get("suffix")
    ending = f"_{suffix}" if suffix else ""
    names: set[str] = set()
    for name in dir(type(resource)):
        if not name.startswith("on_"):
            continue
        if ending:
            if name.endswith(ending):
                names.add(name)
        elif name.count("_") == 1:  # ``on_get``, not ``on_get_item``
            names.add(name)
    return frozenset(names)


def follow_responders(name: str) -> None:
    """After the reload of ``name`` (a post-reload hook): each route whose resource has
    other responders now is added again, in place of its old method map."""
    for app, routes in list(_routes.values()):
        for route in list(routes.values()):
            now = _responders(route.resource, route.kwargs)
            if now == route.responders:
                continue
            add = _original_for(type(app))
            if add is None:
                continue
            try:
                add(app, route.template, route.resource, **route.kwargs)
            except Exception as exc:  # (the program's responders: it serves on as it was)
                log.warning(
                    "the route %s of a Falcon app was not made again with its new responders "
                    "(%s: %s); restart to apply",
                    route.template,
                    type(exc).__name__,
                    exc,
                )
                continue
            added = sorted(now - route.responders)
            gone = sorted(route.responders - now)
            route.responders = now
            log.info(
                "routed %s again:%s%s",
                route.template,
                f" {', '.join(added)} added" if added else "",
                f" {', '.join(gone)} gone" if gone else "",
            )


def _original_for(cls: type) -> Callable[..., object] | None:
    for klass in cls.__mro__:
        original = _originals.get(klass)
        if original is not None:
            return original
    return None
