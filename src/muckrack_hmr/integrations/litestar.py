"""Litestar under HMR: the app the server holds takes what each edit declares.

A Litestar app is declared in one statement, ``app = Litestar(route_handlers=[index,
items], on_startup=[...])``.  A route handler added to the list, or one whose ``def``
ran again (a parameter added: Litestar reads a handler's signature once, as the app is
made), runs that statement again, which makes a new app: the server went on serving the
one it loaded at start-up, whose routes did not change (a new route answered 404, a new
query parameter was never read), and the save said it reloaded.

So after a module's reload, where a name that held a Litestar app holds a new one, the
live app takes the new one's whole make-up (its routes and their handlers, its router,
middleware and OpenAPI schema), but for its ``state``, which its start-up hooks filled
and which the program's requests share: the name is bound to the live app again, so its
importers and the server go on sharing one object.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from ._imports import loaded_class

if TYPE_CHECKING:
    from ..api import HMR

__all__ = ["adopt_new_apps", "enable", "note_apps"]

log = logging.getLogger(__name__)

# module -> {name: the Litestar app it held} before the module's reload
_before: dict[str, dict[str, object]] = {}
# What the live app keeps of its own: what its start-up set up, and its identity.
_KEPT = frozenset({"state", "__weakref__", "__dict__"})


def enable(hmr: HMR) -> None:
    """Let reloads give the live Litestar app what the edited statement declares."""
    hmr.add_pre_reload_hook(note_apps)
    hmr.add_post_reload_hook(adopt_new_apps)


def _app_class() -> type | None:
    return loaded_class("litestar.app", "Litestar")


def note_apps(name: str) -> None:
    """Before the reload of ``name`` (a pre-reload hook): its names that hold an app."""
    cls = _app_class()
    namespace = getattr(sys.modules.get(name), "__dict__", None)
    if cls is None or not isinstance(namespace, dict):
        return
    apps = {key: value for key, value in list(namespace.items()) if isinstance(value, cls)}
    if apps:
        _before[name] = apps


def adopt_new_apps(name: str) -> None:
    """After the reload of ``name`` (a post-reload hook): a new app in place of a live one
    gives it its make-up, and the name holds the live one again."""
    before = _before.pop(name, None)
    namespace = getattr(sys.modules.get(name), "__dict__", None)
    if before is None or not isinstance(namespace, dict):
        return
    for key, live in before.items():
        made = namespace.get(key)
        if made is live or made is None or type(made) is not type(live):
            continue
        _adopt(live, made)
        namespace[key] = live
        log.debug("Litestar app %s.%s takes what its statement declares now", name, key)


def _adopt(live: object, made: object) -> None:
    """``live`` takes each attribute of ``made`` but those of _KEPT (its slots)."""
    for cls in type(made).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            if slot in _KEPT:
                continue
            if slot.startswith("__") and not slot.endswith("__"):
                slot = f"_{cls.__name__.lstrip('_')}{slot}"  # (a private name, mangled)
            try:
                value = object.__getattribute__(made, slot)
            except AttributeError:
                continue
            object.__setattr__(live, slot, value)
    held = getattr(made, "__dict__", None)
    if isinstance(held, dict):  # (a subclass without slots of its own)
        own = object.__getattribute__(live, "__dict__")
        own.update({key: value for key, value in held.items() if key not in _KEPT})
