"""Typer: an app's commands follow the edits of the modules that declare them.

``@app.command()`` appends a ``CommandInfo`` to ``app.registered_commands``.  A
command's ``def`` that runs again (an option added to its signature, its
decorator's arguments changed) appended a second one for the same function:
Typer then saw two commands, and a one-command app became a group (``No such
command 'bob'``), or the help listed a command twice.  After a module's reload,
the commands of its functions are put in order in every app: of one
definition, the last registration stays, where the first one was; a function
the module no longer binds is dropped, as a fresh start has it.
"""

from __future__ import annotations

import functools
import sys
import types
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ._registrations import still_bound

if TYPE_CHECKING:
    from ..api import HMR

__all__ = ["enable", "tidy_commands"]

_MARK = "__muckrack_hmr__"


class _CommandInfo(Protocol):
    callback: Callable[..., object] | None


class _App(Protocol):
    """What is used here of ``typer.Typer``."""

    registered_commands: list[_CommandInfo]


# The apps a command was declared on (Typer keeps no list of them).
_APPS: weakref.WeakSet[_App] = weakref.WeakSet()


def enable(hmr: HMR) -> None:
    """Note the apps commands are declared on, and tidy them after each reload."""
    import typer.main

    app_class = typer.main.Typer
    command: Callable[..., Callable[..., object]] = app_class.command
    if not getattr(command, _MARK, False):

        @functools.wraps(command)
        def command_noted(self: _App, *args: object, **kwargs: object) -> Callable[..., object]:
            _APPS.add(self)
            return command(self, *args, **kwargs)

        setattr(command_noted, _MARK, True)
        app_class.command = command_noted  # type: ignore[method-assign, assignment]
    hmr.add_post_reload_hook(tidy_commands)


def tidy_commands(module_name: str) -> None:
    """Drop the commands ``module_name``'s earlier runs declared that its code no longer
    has, or declared again since (a post-reload hook)."""
    module = sys.modules.get(module_name)
    namespace = getattr(module, "__dict__", None)
    if not isinstance(namespace, dict):
        return
    for app in list(_APPS):
        infos = list(app.registered_commands)
        first: dict[str, int] = {}
        dropped: set[int] = set()
        for index, info in enumerate(infos):
            function = info.callback
            if not isinstance(function, types.FunctionType) or function.__module__ != module_name:
                continue
            if not still_bound(namespace, function):
                dropped.add(index)
                continue
            earlier = first.setdefault(function.__qualname__, index)
            if earlier != index:
                infos[earlier] = info  # the last declaration, where the first one was
                dropped.add(index)
        if dropped:
            app.registered_commands[:] = [
                info for index, info in enumerate(infos) if index not in dropped
            ]
