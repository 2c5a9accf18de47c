"""What kind of object a module's namespace holds, told without asking the object.

A namespace may hold a lazy proxy (a context-local, Django's settings) whose
``__class__`` raises outside its context, or sets something up: ``isinstance``
asks it when the type does not match.  These checks look at the type alone.
"""

from __future__ import annotations

import functools
from typing import TypeGuard, TypeVar

__all__ = ["CACHE_WRAPPER", "is_a"]

_T = TypeVar("_T")

#: The type of what ``functools.lru_cache`` (and ``cache``) returns.
CACHE_WRAPPER = type(functools.lru_cache(maxsize=None)(lambda: None))


def is_a(value: object, kind: type[_T]) -> TypeGuard[_T]:
    """``isinstance`` by the value's type alone, never its ``__class__``."""
    return issubclass(type(value), kind)
