"""The callbacks of ``__hmr__`` (pre-reload, post-reload, error handlers) and the cascades.

Apart from the engine: the program's handle (``builtins.__hmr__``) holds them
from the first moment, and the engine is imported only when a reload needs it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .errors import location_of

__all__ = ["CASCADES", "ErrorHandler", "Hook", "Hooks"]

log = logging.getLogger(__name__)

CASCADES = ("auto", "always", "never")

Hook = Callable[[str], object]
ErrorHandler = Callable[[str, BaseException], object]


class Hooks:
    """The callbacks of ``__hmr__``: pre-reload, post-reload and error handlers."""

    def __init__(self) -> None:
        self.pre_reload: list[Hook] = []
        self.post_reload: list[Hook] = []
        self.error_handlers: list[ErrorHandler] = []

    def report_error(self, name: str, exc: BaseException) -> None:
        """Pass ``exc`` to every error handler; a handler that raises is logged."""
        for handler in list(self.error_handlers):
            try:
                handler(name, exc)
            except Exception:
                log.exception("error handler %r raised", handler)

    def run(self, hooks: list[Hook], name: str, kind: str) -> None:
        """Run ``hooks`` for ``name``; one that raises is logged and reported."""
        for hook in list(hooks):
            try:
                hook(name)
            except Exception as exc:
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
