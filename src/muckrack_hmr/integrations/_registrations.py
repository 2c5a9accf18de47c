"""What the registration tidy-ups of the integrations share (Django's receivers, Typer's
commands): does a module still bind the function a registration holds?"""

from __future__ import annotations

import types

from ..reload.patching import twins_of

__all__ = ["still_bound"]


def still_bound(namespace: dict[str, object], function: types.FunctionType) -> bool:
    """Does the module of ``namespace`` still bind ``function`` (or the live one it was
    patched into)?  A nested function's cannot be told: it stays."""
    if "." in function.__qualname__:
        return True
    current = namespace.get(function.__name__)
    return current is function or (
        isinstance(current, types.FunctionType) and function in twins_of(current)
    )
