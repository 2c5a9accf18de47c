"""What each project module ran, and what it uses of the modules it imports.

The reloader compares an edit with the source a module last ran (kept here,
compressed), and finds the dependents a change can reach through an index of
which module uses which imported name.  Both are filled in the background by
the watcher (``remember_all`` right after imports, ``warm`` a few modules at a
time), or by ``HMR.remember_sources()`` and ``HMR.warm()``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from .analysis import ModuleSummary, summarize
from .incremental import Consumption, consumption_of

__all__ = ["SourceStore", "read_source"]

# Parsed modules kept for the next reload: the last sources of the modules being edited.
_SUMMARY_CACHE_SIZE = 16


def read_source(module: ModuleType) -> tuple[str, bytes]:
    filename = getattr(module, "__file__", None)
    if not isinstance(filename, str):
        raise ImportError(f"{module.__name__} has no source file", name=module.__name__)
    with open(filename, "rb") as handle:
        return filename, handle.read()


def _resolve_reference(
    imports: dict[str, tuple[str, str | None]], reference: str
) -> tuple[str, str] | None:
    """``reference`` (``X`` or ``a.b.X``, as the module writes it) as (module, name)."""
    local, _, rest = reference.partition(".")
    bound = imports.get(local)
    if bound is None:
        return None
    module, attr = bound
    parts = rest.split(".") if rest else []
    if attr is not None:
        parts.insert(0, attr)
    # Walk down the submodules the reference goes through.
    while parts and isinstance(sys.modules.get(f"{module}.{parts[0]}"), ModuleType):
        module = f"{module}.{parts.pop(0)}"
    if not parts:
        return None  # the module itself: its identity does not change
    return sys.intern(module), sys.intern(parts[0])


class SourceStore:
    """The sources project modules last ran, and the index of what they use."""

    def __init__(self, project: Any) -> None:
        self.project = project
        # module -> its source as it last ran, compressed: what an edit is compared with.
        self._kept: dict[str, bytes] = {}
        self._remembered = 0  # how many entries of project.loaded were looked at
        self._summaries: OrderedDict[tuple[str, bytes], ModuleSummary] = OrderedDict()
        self._consumptions: dict[str, Consumption] = {}
        #: (module, name) -> modules whose code uses module.name: the dependents
        #: a change can reach, found without looking at the others.
        self.consumers: dict[tuple[str, str], set[str]] = {}
        self._keys: dict[tuple[str, str], tuple[str, str]] = {}  # one tuple per key

    def __contains__(self, name: object) -> bool:
        return name in self._kept

    def analyzed(self, name: str) -> bool:
        """Is ``name`` in the index of what modules use?"""
        return name in self._consumptions

    def remember_all(self, untrusted: Iterable[str] = ()) -> int:
        """Keep the source of every project module still as it was imported; how many new.

        An edit is compared with this copy to find what changed.  A module
        saved after its import and before this call has no copy: its first
        reload re-executes it whole.  ``untrusted`` modules (the ones being
        reloaded) are never copied: their file may already hold the edit, and
        a same-size save within one clock tick passes the stat check.
        """
        skip = set(untrusted)
        loaded = getattr(self.project, "loaded", None)
        if loaded is None:
            return 0
        entries = list(loaded.items())[self._remembered :]
        self._remembered += len(entries)
        added = 0
        for path, (name, baseline) in entries:
            if name == "__main__" or name in self._kept or baseline is None or name in skip:
                continue
            try:
                stat = os.stat(path)
                if (stat.st_mtime_ns, stat.st_size) != baseline:
                    continue  # saved since its import: not the code that runs
                with open(path, "rb") as handle:
                    source = handle.read()
                # A save may have begun between the stat and the read.
                stat = os.stat(path)
                if (stat.st_mtime_ns, stat.st_size) != baseline:
                    continue
                self.remember(name, source)
                added += 1
            except OSError:
                continue
        return added

    def remember(self, name: str, source: bytes, summary: ModuleSummary | None = None) -> None:
        """``source`` is what ``name`` runs now; ``summary``, if given, is it parsed."""
        self._kept[name] = zlib.compress(source, 1)
        self._forget_consumption(name)
        if summary is not None:
            self._index(name, consumption_of(summary))

    def ran(self, name: str) -> bytes | None:
        """The source ``name`` last ran, if it was kept."""
        kept = self._kept.get(name)
        return None if kept is None else zlib.decompress(kept)

    def summary(self, filename: str, source: bytes, package: str | None) -> ModuleSummary:
        """``source`` parsed; the last few are kept (an edit compares two of them)."""
        key = (filename, hashlib.blake2b(source, digest_size=16).digest())
        summary = self._summaries.get(key)
        if summary is None:
            summary = summarize(source, filename, package)
            self._summaries[key] = summary
            if len(self._summaries) > _SUMMARY_CACHE_SIZE:
                self._summaries.popitem(last=False)
        else:
            self._summaries.move_to_end(key)
        return summary

    def consumption(self, name: str) -> Consumption | None:
        """What ``name`` takes from its imports, as of the source it last ran."""
        found = self._consumptions.get(name)
        if found is not None:
            return found
        remembered = self._kept.get(name)
        module = sys.modules.get(name)
        if remembered is None or module is None:
            return None
        filename = getattr(module, "__file__", None)
        if not isinstance(filename, str):
            return None
        try:
            # Not through the summary cache: parsed trees are large, and only
            # the small consumption is kept for every module.
            summary = summarize(
                zlib.decompress(remembered), filename, module.__dict__.get("__package__")
            )
        except (SyntaxError, ValueError):
            return None
        found = consumption_of(summary)
        self._index(name, found)
        return found

    def _index(self, name: str, consumption: Consumption) -> None:
        self._consumptions[name] = consumption
        for key in self._keys_of(consumption):
            self.consumers.setdefault(key, set()).add(name)

    def _forget_consumption(self, name: str) -> None:
        consumption = self._consumptions.pop(name, None)
        if consumption is None:
            return
        for key in self._keys_of(consumption):
            users = self.consumers.get(key)
            if users is not None:
                users.discard(name)
                if not users:
                    del self.consumers[key]

    def _keys_of(self, consumption: Consumption) -> set[tuple[str, str]]:
        """The (module, name) pairs a module's code uses."""
        keys = set()
        for reference in consumption.references():
            key = _resolve_reference(consumption.imports, reference)
            if key is not None:
                keys.add(self._keys.setdefault(key, key))
        return keys

    def warm(self, limit: int | None = None) -> int:
        """Analyze remembered modules not analyzed yet (at most ``limit``); how many."""
        done = 0
        for name in list(self._kept):
            if limit is not None and done >= limit:
                break
            if name not in self._consumptions and self.consumption(name) is not None:
                done += 1
        return done
