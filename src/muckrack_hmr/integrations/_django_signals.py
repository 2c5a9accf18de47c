"""Django's signal receivers follow the edits of the modules that connect them.

A receiver's ``def`` that runs again (its ``@receiver(...)`` changed, or its
module ran whole) connects the new function beside the one connected before,
and a receiver renamed or deleted stays connected: the engine keeps a removed
function alive, for an undo of the edit.  Each signal would then call a
receiver twice, or call code its file no longer has.  After a module's
reload, the receivers of its functions are put in order: of one definition,
the last connection stays (it has the new arguments); a function the module no
longer binds is disconnected.
"""

from __future__ import annotations

import functools
import sys
import threading
import types
import weakref
from collections.abc import Callable, MutableMapping
from typing import Protocol

from ._registrations import still_bound

__all__ = ["enable_for", "tidy_receivers"]

_MARK = "__muckrack_hmr__"


class _Signal(Protocol):
    """What is used here of ``django.dispatch.Signal``."""

    lock: threading.Lock
    # (lookup key, receiver or a weak reference to it[, is_async]) for each connection
    receivers: list[tuple[object, ...]]
    sender_receivers_cache: MutableMapping[object, object]


# The signals anything connected a receiver to (Django keeps no list of them).
_SIGNALS: weakref.WeakSet[_Signal] = weakref.WeakSet()


def enable_for(dispatcher: types.ModuleType) -> None:
    """Note every signal a receiver is connected to (``django.dispatch.dispatcher``)."""
    signal_class = dispatcher.Signal
    connect: Callable[..., object] = signal_class.connect
    if getattr(connect, _MARK, False):
        return

    @functools.wraps(connect)
    def connect_noted(self: _Signal, receiver: object, *args: object, **kwargs: object) -> object:
        _SIGNALS.add(self)
        return connect(self, receiver, *args, **kwargs)

    setattr(connect_noted, _MARK, True)
    signal_class.connect = connect_noted


def tidy_receivers(module_name: str) -> None:
    """Disconnect what ``module_name``'s earlier runs connected that its code no longer
    has, or connected again since (a post-reload hook)."""
    module = sys.modules.get(module_name)
    namespace = getattr(module, "__dict__", None)
    if not isinstance(namespace, dict) or not _SIGNALS:
        return
    for signal in list(_SIGNALS):
        with signal.lock:
            entries = list(signal.receivers)
            dropped: set[int] = set()
            last: dict[str, int] = {}
            for index, entry in enumerate(entries):
                function = _function_of(entry[1])
                if function is None or function.__module__ != module_name:
                    continue
                if not still_bound(namespace, function):
                    dropped.add(index)
                    continue
                earlier = last.get(function.__qualname__)
                if earlier is not None:
                    dropped.add(earlier)
                last[function.__qualname__] = index
            if dropped:
                signal.receivers = [e for i, e in enumerate(entries) if i not in dropped]
                signal.sender_receivers_cache.clear()


def _function_of(receiver: object) -> types.FunctionType | None:
    """The plain function a receiver entry holds (a weak or a strong reference)."""
    if isinstance(receiver, weakref.WeakMethod):
        return None
    if isinstance(receiver, weakref.ref):
        receiver = receiver()
    return receiver if isinstance(receiver, types.FunctionType) else None
