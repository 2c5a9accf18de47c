"""Pointing ``from module import name`` bindings at the objects a reload made.

Functions and classes are patched in place and keep their identity; a name
now bound to another object (a constant, a container, a function that could
not be patched) is rebound in the importers that will not run again (the
script, or every importer with ``cascade="never"``).  Only a binding that still
holds the old object is touched: the program may have rebound the name since.
"""

from __future__ import annotations

import ast
import logging
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._core import DependencyGraph

__all__ = ["GONE", "bind_added_names", "from_import_aliases", "rebind_importers", "star_exports"]

log = logging.getLogger(__name__)

#: What a name held that was not bound (see rebind_importers).
GONE = object()

_alias_cache: dict[tuple[str, int, int], dict[tuple[str, str], list[str]]] = {}


def from_import_aliases(filename: str, package: str | None) -> dict[tuple[str, str], list[str]]:
    """Module-level ``from X import name as alias`` statements of a file.

    Maps ``(absolute X, name)`` to the aliases bound in the module namespace.
    Imports inside functions and classes bind local names and are skipped.
    """
    try:
        stat = os.stat(filename)
    except OSError:
        return {}
    key = (filename, stat.st_mtime_ns, stat.st_size)
    cached = _alias_cache.get(key)
    if cached is not None:
        return cached
    try:
        with open(filename, "rb") as handle:
            tree = ast.parse(handle.read(), filename)
    except (OSError, SyntaxError, ValueError):
        return {}
    aliases: dict[tuple[str, str], list[str]] = {}
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda
            ):
                continue
            if isinstance(child, ast.ImportFrom):
                source = child.module or ""
                if child.level:
                    if not package:
                        continue
                    bits = package.rsplit(".", child.level - 1)
                    if len(bits) < child.level:
                        continue
                    source = f"{bits[0]}.{source}" if source else bits[0]
                for alias in child.names:
                    aliases.setdefault((source, alias.name), []).append(alias.asname or alias.name)
            elif isinstance(child, ast.stmt | ast.excepthandler | ast.match_case):
                pending.append(child)
    _alias_cache[key] = aliases
    return aliases


def _warn_removed(importer: str, name: str, attr: str) -> None:
    log.warning("%s still refers to %s.%s, which the new code removed", importer, name, attr)


def rebind_importers(
    graph: DependencyGraph,
    name: str,
    old: dict[str, object],
    new: dict[str, object],
    *,
    skip: set[str],
    rebound: list[str],
) -> dict[str, dict[str, object]]:
    """Point ``from name import x`` bindings of modules not re-executed at the new ``x``.

    A ``from name import *`` is followed in every importer, the ones that run
    again included: running the statement again adds what ``name`` exports
    now, but would leave what it no longer exports.  Returns, for each of
    those that run again (``skip``), what the names rebound so held before:
    they changed in it, before its run (a package's ``from .core import *``,
    whose own importers follow it).
    """
    # Functions and classes patched in place kept their identity: only
    # names now bound to another object (or gone, or new) need rebinding.
    replaced = {key for key, value in old.items() if new.get(key, GONE) is not value}
    replaced.update(key for key in new if key not in old)
    starred: dict[str, dict[str, object]] = {}
    if not replaced:
        return starred
    for importer in graph.binders(name, replaced):
        bound = graph.bound_names(importer, name)
        module = sys.modules.get(importer)
        if module is None:
            continue
        namespace = module.__dict__
        if "*" in bound:
            before = _rebind_star(importer, namespace, name, old, new, rebound=rebound)
            if before and importer in skip:
                starred[importer] = before
        if importer in skip:
            continue  # re-executed in this transaction: it imports afresh
        filename = getattr(module, "__file__", None)
        aliases = (
            from_import_aliases(filename, namespace.get("__package__"))
            if isinstance(filename, str)
            else {}
        )
        for attr in bound:
            if attr == "*" or attr not in old or attr not in replaced:
                continue  # (one that holds what it held: nothing to point elsewhere)
            previous = old[attr]
            for alias in aliases.get((name, attr), [attr]):
                # Only a binding that still holds the old object is ours to
                # update; the program may have rebound the name since.
                if alias in namespace and namespace[alias] is previous:
                    if attr in new:
                        namespace[alias] = new[attr]
                        rebound.append(f"{importer}.{alias}")
                    else:
                        _warn_removed(importer, name, attr)
    return starred


def bind_added_names(
    graph: DependencyGraph,
    name: str,
    old: dict[str, object],
    new: dict[str, object],
    *,
    skip: set[str],
    rebound: list[str],
) -> None:
    """Names new to ``name``, and nothing else changed: the modules that take ``from
    name import *`` get them, as a fresh start would give them.

    The graph is read as it is: the caller records the star imports that wait
    to be (moments after start-up), not the whole start-up's imports.  ``skip``:
    modules whose edit failed (the graph has what their failed run imported, not
    their running code's imports); trying their edit again imports afresh.
    """
    for importer in graph.binders(name, (), settle=False):
        if importer in skip:
            continue
        module = sys.modules.get(importer)
        if module is not None:
            _rebind_star(importer, module.__dict__, name, old, new, rebound=rebound)


def star_exports(namespace: dict[str, object]) -> list[str]:
    """What ``from module import *`` binds, for a module with this namespace."""
    exported = namespace.get("__all__")
    if isinstance(exported, list | tuple | set | frozenset):
        return [attr for attr in exported if isinstance(attr, str) and attr in namespace]
    return [key for key in namespace if not key.startswith("_")]


def _rebind_star(
    importer: str,
    namespace: dict[str, object],
    name: str,
    old: dict[str, object],
    new: dict[str, object],
    *,
    rebound: list[str],
) -> dict[str, object]:
    """``from name import *``: the importer holds what ``name`` exports now.

    A name still bound to what ``name`` exported before is updated, or
    removed when ``name`` no longer exports it (as a fresh start would not
    have it).  A name the importer bound itself is left alone.  Returns what
    each name changed held before (``GONE``: it was not bound).
    """
    before: dict[str, object] = {}
    now = set(star_exports(new))
    for attr in star_exports(old):
        if attr not in namespace or namespace[attr] is not old[attr]:
            continue
        if attr not in now:
            before[attr] = namespace.pop(attr)
            log.info(
                "%s.%s removed: its `from %s import *` no longer brings it", importer, attr, name
            )
        elif new[attr] is not old[attr]:
            before[attr] = namespace[attr]
            namespace[attr] = new[attr]
            rebound.append(f"{importer}.{attr}")
    for attr in now:
        # Names the new code added to the export appear too.
        if attr not in namespace:
            before[attr] = GONE
            namespace[attr] = new[attr]
            rebound.append(f"{importer}.{attr}")
    return before
