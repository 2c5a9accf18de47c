"""The callbacks of ``__hmr__`` (pre-reload, post-reload, error handlers, a module's
dispose callbacks, its data and kept values) and the cascades.

Apart from the engine: the program's handle (``builtins.__hmr__``) holds them
from the first moment, and the engine is imported only when a reload needs it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import location_of

if TYPE_CHECKING:
    from .reload.reloader import ReloadResult

__all__ = ["CASCADES", "Disposer", "ErrorHandler", "Hook", "Hooks", "ResultHook"]

log = logging.getLogger(__name__)

CASCADES = ("auto", "always", "never")

Hook = Callable[[str], object]
ErrorHandler = Callable[[str, BaseException], object]
#: ``fn(data)``: a module's dispose callback, given the module's ``__hmr__.data``.
Disposer = Callable[[dict[str, object]], object]
#: ``fn(result)``: called once a reload is over, with everything it did.
ResultHook = Callable[["ReloadResult"], object]


class Hooks:
    """The callbacks of ``__hmr__``: pre-reload, post-reload and error handlers."""

    def __init__(self) -> None:
        self.pre_reload: list[Hook] = []
        self.post_reload: list[Hook] = []
        self.error_handlers: list[ErrorHandler] = []
        #: called once per reload (not per module), after it, with its result
        self.result_hooks: list[ResultHook] = []
        #: ``fn(module_name)`` after a module's new code ran, before it is kept: an
        #: integration's say on whether it can apply (it calls ``HMR.refuse``).
        self.checks: list[Hook] = []
        #: module -> its dispose callbacks, in the order registered
        self.disposers: dict[str, list[Disposer]] = {}
        #: module -> what its dispose callbacks hand over to its next version
        self.data: dict[str, dict[str, object]] = {}
        #: module -> its values kept across reloads (``__hmr__.keep``)
        self.kept: dict[str, dict[str, object]] = {}

    def dispose(self, name: str) -> bool:
        """Run the dispose callbacks of ``name``, last registered first; whether it had any.

        They are forgotten as they run: the code that runs next registers its
        own.  One that raises is logged and reported, and the others still run.
        """
        callbacks = self.disposers.pop(name, None)
        if not callbacks:
            return False
        data = self.data.setdefault(name, {})
        for callback in reversed(callbacks):
            try:
                callback(data)
            except Exception as exc:
                self._log_raised("dispose", callback, name, exc)
        return True

    def report_error(self, name: str, exc: BaseException) -> None:
        """Pass ``exc`` to every error handler; a handler that raises is logged."""
        for handler in list(self.error_handlers):
            try:
                handler(name, exc)
            except Exception:
                log.exception("error handler %r raised", handler)

    def report_result(self, result: ReloadResult) -> None:
        """Pass a finished reload's result to every result hook; one that raises is logged."""
        for hook in list(self.result_hooks):
            try:
                hook(result)
            except Exception:
                log.exception("result hook %r raised", hook)

    def run(self, hooks: list[Hook], name: str, kind: str) -> None:
        """Run ``hooks`` for ``name``; one that raises is logged and reported."""
        for hook in list(hooks):
            try:
                hook(name)
            except Exception as exc:
                self._log_raised(kind, hook, name, exc)

    def _log_raised(self, kind: str, hook: object, name: str, exc: Exception) -> None:
        log.error(
            "%s hook %s raised for %s (%s): %s: %s",
            kind,
            getattr(hook, "__qualname__", repr(hook)),
            name,
            location_of(exc),
            type(exc).__name__,
            exc,
        )
        self.report_error(name, exc)
