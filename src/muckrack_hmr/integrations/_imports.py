"""Running a callback right after a named module has been imported (a post-import hook).

The integrations must adjust a framework module (Django's autoreloader, say)
only if and when the program imports it: importing a framework up front would
slow down, and change, every program that does not use it.  A finder placed
first on ``sys.meta_path`` asks the other finders for the module's spec and
wraps its loader, so that the callbacks run once the module has executed.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Only for the types: importing importlib.abc costs more than 10 ms at
    # start-up (it pulls in importlib.resources); the import system needs
    # no base classes, only the methods.
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec

__all__ = ["forget_all", "loaded_class", "when_imported", "wrap_method"]

log = logging.getLogger(__name__)

Callback = Callable[[ModuleType], object]


def _run(callbacks: list[Callback], module: ModuleType) -> None:
    for callback in callbacks:
        try:
            callback(module)
        except Exception:
            # An integration must never break the program's own import.
            log.exception(
                "the integration hook %s failed for %s",
                getattr(callback, "__qualname__", repr(callback)),
                module.__name__,
            )


class _NotifyingLoader:
    """Loads like the real loader, then runs the callbacks.

    The module keeps the real loader as ``__loader__`` and ``__spec__.loader``,
    so resource readers and introspection see no difference.
    """

    def __init__(self, loader: Loader, finder: _PostImportFinder) -> None:
        self.loader = loader
        self.finder = finder

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self.loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.loader
        spec = getattr(module, "__spec__", None)
        if spec is not None:
            spec.loader = self.loader
        self.loader.exec_module(module)
        self.finder.fire(module.__name__)


class _PostImportFinder:
    """Finds nothing itself: it marks the modules some callback waits for."""

    def __init__(self) -> None:
        self.callbacks: dict[str, list[Callback]] = {}
        self.lock = threading.Lock()
        self._looking_up = threading.local()

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname not in self.callbacks:
            return None
        busy: set[str] = self._looking_up.__dict__.setdefault("names", set())
        if fullname in busy:
            return None
        busy.add(fullname)
        try:
            spec = self._spec_from_the_others(fullname, path, target)
        finally:
            busy.discard(fullname)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            # A loader is anything with the methods (no base class needed).
            spec.loader = _NotifyingLoader(spec.loader, self)  # type: ignore[assignment]
        return spec

    def _spec_from_the_others(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None
    ) -> ModuleSpec | None:
        for finder in list(sys.meta_path):
            if finder is self:
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec: ModuleSpec | None = find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def fire(self, name: str) -> None:
        with self.lock:
            callbacks = self.callbacks.pop(name, [])
        module = sys.modules.get(name)
        if module is not None and callbacks:
            _run(callbacks, module)


_finder = _PostImportFinder()


def when_imported(name: str, callback: Callback) -> None:
    """Call ``callback(module)`` once ``name`` has been imported (now, if it already was).

    The callback runs once, in the importing thread, right after the module
    executed; an exception it raises is logged and does not reach the import.
    """
    module = sys.modules.get(name)
    if module is not None:
        _run([callback], module)
        return
    with _finder.lock:
        _finder.callbacks.setdefault(name, []).append(callback)
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)


def loaded_class(module: str, name: str) -> type | None:
    """The class ``module.name`` if ``module`` is imported already (nothing is imported)."""
    found = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) else None


def forget_all() -> None:
    """Drop every callback still waiting, and take the finder off ``sys.meta_path``."""
    with _finder.lock:
        _finder.callbacks.clear()
        if _finder in sys.meta_path:
            sys.meta_path.remove(_finder)


def wrap_method(
    cls: type,
    name: str,
    make: Callable[[Callable[..., object]], Callable[..., object]],
    mark: str,
) -> None:
    """Replace ``cls.name`` by ``make(original)``, once: a wrapper carries ``mark``.

    The integrations adjust a framework's classes when it is imported; a
    second activation (a second ``HMR``, a module imported again) finds the
    mark and leaves the wrapper as it is.
    """
    import functools

    original = getattr(cls, name)
    if getattr(original, mark, False):
        return
    wrapper = functools.wraps(original)(make(original))
    setattr(wrapper, mark, True)
    setattr(cls, name, wrapper)
