"""``atexit`` under HMR: a handler registered again by a reload is registered once.

``@atexit.register`` above a ``def`` whose signature or decorators an edit changed
runs again, and hands ``atexit`` the live function a second time (see
:mod:`muckrack_hmr.reload.live_defs`): ``atexit`` keeps every registration, and the
handler ran twice at exit (a file closed or flushed twice).  So does a top-level
``atexit.register(bye)`` that a reload runs again.  While a thread applies a reload,
a function it registers goes out of ``atexit`` first: one registration, the newest.
Outside a reload, ``atexit.register`` is as it was.  Nothing of the engine is
imported at start-up for it.
"""

from __future__ import annotations

import atexit
import functools
import sys
from collections.abc import Callable

__all__ = ["enable"]

_MARK = "__muckrack_hmr__"
# The engine's module that says whether this thread applies new code (once loaded).
_ENGINE = "muckrack_hmr.reload.reloader"


def enable() -> None:
    """Wrap ``atexit.register`` (once)."""
    original: Callable[..., object] = atexit.register
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def register(func: Callable[..., object], *args: object, **kwargs: object) -> object:
        # (The engine's module may be half imported: an import it makes registers one.)
        applying = getattr(sys.modules.get(_ENGINE), "applying", None)
        if applying is not None and applying():
            atexit.unregister(func)  # (registered by the run this reload replaces)
        return original(func, *args, **kwargs)

    setattr(register, _MARK, True)
    atexit.register = register  # type: ignore[assignment]
