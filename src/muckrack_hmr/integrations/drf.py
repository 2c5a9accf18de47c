"""Django REST framework: a router's ``register`` that a reload runs again.

``router.register("posts", PostViewSet)`` runs again when the viewset's class statement
ran again (a serializer edit made the viewset's ``serializer_class`` change, an
``@action`` added).  DRF refuses a basename registered already (``ImproperlyConfigured:
Router with basename "post" is already registered``): the reload of the URLconf failed,
and so did each later save of it, until a restart.  In a reload, the entry of the same
basename (its prefix edited, or not) takes the new one's place instead (put back if the
reload fails); a new registration is added, and routed.

The router's URL patterns are made again at once, into the list ``router.urls`` gave
before (``include(router.urls)`` in ``urlpatterns``, which does not run again, holds that
list), and in the lists of the URLconf that hold its old patterns (``urlpatterns = [...] +
router.urls``, ``urlpatterns += router.urls``): an ``@action`` added is routed, as after a
restart.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING

from . import _reloading
from ._imports import when_imported, wrap_method

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..api import HMR

__all__ = ["enable"]

_MARK = "_muckrack_hmr_drf"


def enable(hmr: HMR) -> None:
    """Let a reload register a router's viewset again in place of the earlier entry."""
    _reloading.enable(hmr)
    when_imported("rest_framework.routers", _wrap_register)


def _wrap_register(routers: ModuleType) -> None:
    def make(original: Callable[..., object]) -> Callable[..., object]:
        def register(
            self: object, prefix: str, viewset: object, basename: str | None = None
        ) -> object:
            registry = getattr(self, "registry", None)
            if _reloading.current() is None or not isinstance(registry, list):
                return original(self, prefix, viewset, basename)
            return _register_again(self, registry, original, (prefix, viewset, basename))

        return register

    wrap_method(routers.BaseRouter, "register", make, _MARK)


def _register_again(
    router: object,
    registry: list[object],
    original: Callable[..., object],
    arguments: tuple[str, object, str | None],
) -> object:
    """``original`` register (of ``arguments``: prefix, viewset, basename) in a reload:
    an entry of the same basename goes first, and the new one takes its place (a new
    one is added); the URL patterns are made again in place."""
    prefix, viewset, basename = arguments
    if basename is None:
        basename = router.get_default_basename(viewset)  # type: ignore[attr-defined]
    # (DRF refuses a basename twice: one registered already is this one, edited.)
    place = next(
        (
            at
            for at, entry in enumerate(registry)
            if isinstance(entry, tuple) and len(entry) == 3 and entry[2] == basename
        ),
        None,
    )
    before = list(registry)
    urls = router.__dict__.get("_urls")
    if place is None and not isinstance(urls, list):
        return original(router, prefix, viewset, basename)  # (no pattern made yet)
    holders: list[tuple[list[object], list[object]]] = []  # (a list, what it held)

    def put_back() -> None:
        registry[:] = before
        for holder, held in holders:
            holder[:] = held
        if isinstance(urls, list):
            router.__dict__["_urls"] = urls

    _reloading.on_failure(put_back)
    if place is not None:
        del registry[place]
    try:
        made = original(router, prefix, viewset, basename)
    except BaseException:
        put_back()
        raise
    if place is not None:
        registry.insert(place, registry.pop())
    if isinstance(urls, list):
        old = {id(pattern) for pattern in urls}
        fresh = list(router.get_urls())  # type: ignore[attr-defined]
        # The list include(router.urls) holds, and the module's lists that took its old
        # patterns (``[...] + router.urls``): the new patterns in the old ones' place.
        namespace = getattr(sys.modules.get(_reloading.current() or ""), "__dict__", {})
        lists = [urls, *(v for v in namespace.values() if type(v) is list and v is not urls)]
        for holder in lists:
            if any(id(item) in old for item in holder):
                holders.append((holder, list(holder)))
                holder[:] = _in_place_of(holder, old, fresh)
        router.__dict__["_urls"] = urls
    return made


def _in_place_of(items: list[object], old: set[int], fresh: list[object]) -> list[object]:
    """``items`` with ``fresh`` where its first item of ``old`` was, and no other of those."""
    made: list[object] = []
    for item in items:
        if id(item) not in old:
            made.append(item)
        elif fresh:
            made.extend(fresh)
            fresh = []
    return made
