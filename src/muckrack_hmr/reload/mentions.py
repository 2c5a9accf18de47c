"""Which modules mention which attribute names: the first cut of a reload's reach.

A change of ``core.f`` can reach a module only through a name it bound with
``from core import f`` (the import graph records those) or through an
attribute access that spells ``.f`` in its source (``core.f()``,
``registry.f``, ``pkg.core.f``).  So the modules to look at, out of all that
import ``core``, are found in this index of the ``.name`` spellings of every
module's source, built from the text in a few microseconds a module (no
parsing).  It errs on the side of more: a ``.f`` in a string or a comment, or
another object's attribute ``f``, makes a module a candidate, and the
analysis of that module decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["Mentions", "attribute_names", "spelling_any"]

# ``.name`` with an identifier: ASCII, or any UTF-8 bytes (non-ASCII identifiers).
_ATTRIBUTE = re.compile(rb"\.[ \t]*([A-Za-z_\x80-\xff][A-Za-z0-9_\x80-\xff]*)")


def attribute_names(source: bytes) -> set[bytes]:
    """The names that follow a dot somewhere in ``source``."""
    return set(_ATTRIBUTE.findall(source))


def spelling_any(names: Iterable[str]) -> re.Pattern[bytes]:
    """A pattern that finds ``.name`` for one of ``names`` (what the index would say)."""
    alternatives = b"|".join(re.escape(name.encode("utf-8")) for name in sorted(names))
    return re.compile(rb"\.[ \t]*(?:" + alternatives + rb")(?![A-Za-z0-9_\x80-\xff])")


class Mentions:
    """attribute name -> the modules whose source spells ``.name``; and who is not indexed."""

    def __init__(self) -> None:
        # Lists of module names, appended to: a name every module spells
        # (``.register``) has thousands of users, added one module at a time.
        self._users: dict[bytes, list[str]] = {}
        #: Modules whose source is known but not indexed yet (indexed when
        #: the program is idle, or when a reload needs them).
        self.pending: set[str] = set()
        self._indexed: set[str] = set()

    def __contains__(self, module: object) -> bool:
        return module in self._indexed

    def users(self, names: Iterable[str]) -> set[str]:
        """The indexed modules that mention one of ``names`` after a dot."""
        found: set[str] = set()
        for name in names:
            found.update(self._users.get(name.encode("utf-8"), ()))
        return found

    def add(self, module: str, source: bytes, previous: bytes | None = None) -> None:
        """Index ``source`` as what ``module`` runs (``previous``: what it ran before)."""
        names = attribute_names(source)
        if module in self._indexed:
            if previous is None:
                self.forget(module)
            else:
                before = attribute_names(previous)
                self._drop(module, before - names)
                names -= before
        self._indexed.add(module)
        self.pending.discard(module)
        users = self._users
        for name in names:  # none of them lists ``module`` yet
            found = users.get(name)
            if found is None:
                users[name] = [module]
            else:
                found.append(module)

    def forget(self, module: str) -> None:
        """Take ``module`` out of the index (it runs another source now)."""
        if module in self._indexed:
            self._indexed.discard(module)
            self._drop(module, [name for name, found in self._users.items() if module in found])

    def _drop(self, module: str, names: Iterable[bytes]) -> None:
        users = self._users
        for name in names:
            found = users.get(name)
            if found is not None and module in found:
                found.remove(module)
                if not found:
                    del users[name]
