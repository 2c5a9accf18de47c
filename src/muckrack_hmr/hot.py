"""``from muckrack_hmr import hot``: a module's say in its own reload, with or without HMR.

Under HMR (the CLI, ``%load_ext muckrack_hmr``, :func:`muckrack_hmr.install`)
each function is ``__hmr__``'s, for the calling module.  Without it, the same
code runs unchanged: ``on_dispose`` registers nothing (nothing is ever
reloaded), ``data`` is an empty dict, and ``keep`` calls its factory.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from .api import HMR
    from .hooks import Disposer

__all__ = ["discard", "keep", "on_dispose"]  # and ``data``, from __getattr__

T = TypeVar("T")


def _hmr() -> HMR | None:
    found = getattr(builtins, "__hmr__", None)
    return found if hasattr(found, "on_dispose") else None


def on_dispose(callback: Disposer) -> None:
    """``__hmr__.on_dispose(callback)``; without HMR, nothing."""
    hmr = _hmr()
    if hmr is not None:
        hmr.on_dispose(callback)


def keep(name: str, factory: Callable[[], T]) -> T:
    """``__hmr__.keep(name, factory)``; without HMR, ``factory()``."""
    hmr = _hmr()
    return factory() if hmr is None else hmr.keep(name, factory)


def discard(name: str) -> None:
    """``__hmr__.discard(name)``; without HMR, nothing."""
    hmr = _hmr()
    if hmr is not None:
        hmr.discard(name)


def __getattr__(name: str) -> dict[str, object]:
    # ``hot.data``: the calling module's, looked up on each use.
    if name == "data":
        hmr = _hmr()
        return {} if hmr is None else hmr.data
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
