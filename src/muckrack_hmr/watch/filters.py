"""``--include`` / ``--exclude`` globs: which files the watcher looks at."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Sequence

__all__ = ["PathFilter"]


def _split(pattern: str) -> list[str]:
    return [part for part in pattern.replace("\\", "/").split("/") if part and part != "."]


class PathFilter:
    """Globs matched against a file's path relative to the root that holds it.

    A pattern matches from the right, one path component per pattern part
    (``*.json``, ``templates/*.html``), and matches a file when it matches the
    file or any folder it lies in (``migrations`` matches everything under a
    ``migrations`` folder).  ``*`` never crosses a ``/``.  A pattern that starts
    with ``/`` is matched against the whole path instead.
    """

    def __init__(
        self,
        roots: Iterable[str],
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
    ) -> None:
        self.roots = [root.rstrip(os.sep) + os.sep for root in roots]
        self.include = list(include)
        self.exclude = list(exclude)
        self._include = [_split(pattern) for pattern in self.include]
        self._exclude = [_split(pattern) for pattern in self.exclude]

    def _parts(self, path: str) -> list[str] | None:
        """``path``'s components below the (longest) root that holds it."""
        best: str | None = None
        for root in self.roots:
            if path.startswith(root) and (best is None or len(root) > len(best)):
                best = root
        if best is None:
            return None
        return _split(path[len(best) :])

    def _matches(self, path: str, patterns: list[str], split: list[list[str]]) -> bool:
        if not patterns:
            return False
        parts = self._parts(path)
        for pattern, pattern_parts in zip(patterns, split, strict=True):
            if pattern.startswith("/"):
                if fnmatch.fnmatch(path, pattern):
                    return True
                continue
            if parts is None or not pattern_parts:
                continue
            width = len(pattern_parts)
            # The file itself, then each folder it lies in.
            for end in range(len(parts), width - 1, -1):
                tail = parts[end - width : end]
                if all(
                    fnmatch.fnmatch(part, want)
                    for part, want in zip(tail, pattern_parts, strict=True)
                ):
                    return True
        return False

    def excluded(self, path: str) -> bool:
        """Does an ``--exclude`` glob match ``path`` (or a folder it lies in)?"""
        return self._matches(path, self.exclude, self._exclude)

    def included(self, path: str) -> bool:
        """Does an ``--include`` glob match ``path`` (or a folder it lies in)?"""
        return self._matches(path, self.include, self._include)
