"""The engine's lock over its reloads, as the channel's ends and the fork take it."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..api import HMR

__all__ = ["reload_lock"]


def reload_lock(hmr: HMR) -> contextlib.AbstractContextManager[bool]:
    """The engine's lock over its reloads (a fork waits for it: no half-applied save)."""
    return hmr.reloader._lock
