"""What kind of object a module's namespace holds, told without asking the object.

A namespace may hold a lazy proxy (a context-local, Django's settings) whose
``__class__`` raises outside its context, or sets something up: ``isinstance``
asks it when the type does not match.  These checks look at the type alone.
"""

from __future__ import annotations

import functools
import types
from typing import TypeGuard, TypeVar

__all__ = ["CACHE_WRAPPER", "is_a", "takes_code", "why_not_taken"]

_T = TypeVar("_T")

#: The type of what ``functools.lru_cache`` (and ``cache``) returns.
CACHE_WRAPPER = type(functools.lru_cache(maxsize=None)(lambda: None))


def is_a(value: object, kind: type[_T]) -> TypeGuard[_T]:
    """``isinstance`` by the value's type alone, never its ``__class__``."""
    return issubclass(type(value), kind)


# What a function's code makes of a call: a result, a generator, a coroutine or an async
# generator.  A function object keeps its kind: Python 3.13 deprecates giving it the code
# of another, and frameworks told the kinds apart when they registered it.  (The flags
# are inspect's CO_* values, the same in every CPython: this module is imported at
# start-up, and inspect, with ast, costs a small script a few milliseconds there.)
_GENERATOR, _COROUTINE, _ASYNC_GENERATOR = 0x20, 0x80, 0x200
_KIND = _GENERATOR | _COROUTINE | _ASYNC_GENERATOR


def takes_code(code: types.CodeType, new: types.CodeType) -> bool:
    """Can a function running ``code`` run ``new`` in its place: the same free variables
    (its closure's cells), and the same kind (``def`` that became ``async def``, or
    gained a ``yield``: no)."""
    return code.co_freevars == new.co_freevars and (code.co_flags & _KIND) == (new.co_flags & _KIND)


_KIND_NAMES = {
    0: "a plain function",
    _GENERATOR: "a generator function",
    _COROUTINE: "a coroutine function",
    _ASYNC_GENERATOR: "an async generator function",
}


def why_not_taken(code: types.CodeType, new: types.CodeType) -> str:
    """Why a function running ``code`` cannot run ``new`` (see takes_code), for the user."""
    kind = new.co_flags & _KIND
    if kind != code.co_flags & _KIND:
        return f"it became {_KIND_NAMES.get(kind, 'another kind of function')}"
    return "its closure changed: other free variables, or a decorator added or removed"
