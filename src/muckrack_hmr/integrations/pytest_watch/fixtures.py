"""The fixture definitions of a running pytest session, as the watch loop needs them.

pytest keeps them in private structures of its ``FixtureManager`` whose shape
changed in pytest 9.1 (keyed by collection node instead of node id); this
module is the one place that knows both shapes.

A session-scoped fixture outlives a run (the loop never tears the session
node down between runs), so a module imported afresh must hand its cached
fixtures over or tear them down: :meth:`Fixtures.carry_over` keeps a cached
value when the fixture's code (and the code of the module's functions it
calls) is unchanged, and finishes it otherwise.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    import pytest
    from _pytest.fixtures import FixtureDef, SubRequest
    from _pytest.nodes import Node

    #: A fixture definition, whatever the value it makes.
    Definition = FixtureDef[object]

#: A dict of pytest's registry: ``name -> ...``, or ``key -> [FixtureDef]`` within it.
_Table = dict[object, object]

__all__ = ["Fixtures", "same_code"]


def _function_of(fixturedef: Definition) -> types.FunctionType | None:
    func = getattr(fixturedef, "func", None)
    func = getattr(func, "__func__", func)  # a method of a plugin class
    if not callable(func):
        return None
    try:
        func = inspect.unwrap(func)
    except (ValueError, TypeError):
        return None
    return func if isinstance(func, types.FunctionType) else None


def _normalized(code: types.CodeType) -> types.CodeType:
    """``code`` without its position in the file: moving a function is no change."""
    consts = tuple(_normalized(c) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_firstlineno=1, co_consts=consts, co_linetable=b"")


def same_code(
    old: types.FunctionType, new: types.FunctionType, old_globals: dict[str, object]
) -> bool:
    """Do ``old`` and ``new`` run the same code, including the module functions they call?"""
    seen: set[str] = set()
    pending = [(old, new)]
    while pending:
        a, b = pending.pop()
        if _normalized(a.__code__) != _normalized(b.__code__) or a.__defaults__ != b.__defaults__:
            return False
        for name in _global_names(a.__code__):
            if name in seen:
                continue
            seen.add(name)
            before, after = old_globals.get(name), b.__globals__.get(name)
            if isinstance(before, types.FunctionType) or isinstance(after, types.FunctionType):
                if not (
                    isinstance(before, types.FunctionType) and isinstance(after, types.FunctionType)
                ):
                    return False
                if before.__module__ == a.__module__:  # the module's own helpers
                    pending.append((before, after))
    return True


def _global_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _global_names(const)


class _Request:
    """What ``FixtureDef.finish`` needs of a request when pytest's own is gone."""

    def __init__(self, node: Node) -> None:
        self.node = node


class Fixtures:
    """Find, drop, register and finish the fixture definitions of ``session``."""

    def __init__(self, session: pytest.Session) -> None:
        self.session = session
        self.manager = session._fixturemanager

    # -- the registry, in both of its shapes ----------------------------------------

    def _tables(self) -> Iterator[_Table]:
        """``name -> key -> [FixtureDef]`` (pytest >= 9.1) or ``name -> [FixtureDef]``."""
        for attr in ("_arg2node2fixturedefs", "_arg2nodeid2fixturedefs", "_arg2fixturedefs"):
            table = getattr(self.manager, attr, None)
            if isinstance(table, dict):
                yield table

    def _lists(self) -> Iterator[tuple[_Table, object, list[Definition]]]:
        """Every list of definitions, with the dict and key it lives under."""
        for table in self._tables():
            for name, entry in list(table.items()):
                if isinstance(entry, list):
                    yield table, name, entry
                elif isinstance(entry, dict):
                    for key, defs in list(entry.items()):
                        yield entry, key, defs

    def all(self) -> list[Definition]:
        """Every registered fixture definition."""
        return [fixturedef for _, _, defs in self._lists() for fixturedef in defs]

    def defined_in(self, namespace: dict[str, object]) -> list[Definition]:
        """The definitions whose function was defined in the module of ``namespace``."""
        return self.by_module().get(id(namespace), [])

    def by_module(self) -> dict[int, list[Definition]]:
        """``id(module namespace) -> definitions`` of every registered fixture, in one pass."""
        found: dict[int, list[Definition]] = {}
        for fixturedef in self.all():
            func = _function_of(fixturedef)
            if func is not None:
                found.setdefault(id(func.__globals__), []).append(fixturedef)
        return found

    def remove(self, doomed: list[Definition]) -> None:
        """Unregister ``doomed`` (and autouse names left without a definition)."""
        ids = {id(fixturedef) for fixturedef in doomed}
        if not ids:
            return
        names = {fixturedef.argname for fixturedef in doomed}
        for container, key, defs in list(self._lists()):
            defs[:] = [fixturedef for fixturedef in defs if id(fixturedef) not in ids]
            if not defs:
                del container[key]
        for table in self._tables():
            for name, entry in list(table.items()):
                if not entry:
                    del table[name]
        for attr in ("_node_autousenames", "_nodeid_autousenames"):
            autouse = getattr(self.manager, attr, None)
            if not isinstance(autouse, dict):
                continue
            # Only names of removed definitions go (the session's list also
            # holds the ini's usefixtures, which have no definition there).
            for key, listed in list(autouse.items()):
                listed[:] = [
                    name for name in listed if name not in names or self._defined_under(name, key)
                ]

    def _defined_under(self, name: str, key: object) -> bool:
        for table in self._tables():
            entry = table.get(name)
            if isinstance(entry, dict) and entry.get(key):
                return True
            if isinstance(entry, list) and any(
                getattr(fixturedef, "baseid", None) == key for fixturedef in entry
            ):
                return True
        return False

    def forget_nodes(self, nodes: list[Node]) -> None:
        """Drop what pytest keyed by collection nodes that are gone, or by their objects."""
        gone = {id(node) for node in nodes}
        seen = getattr(self.manager, "_holderobjseen", None)
        if isinstance(seen, set):
            # pytest < 9: the modules, classes and test case instances whose
            # fixtures it parsed, kept forever (and the old modules with them).
            objects = {id(node.__dict__.get("_obj")) for node in nodes}
            objects.discard(id(None))
            for holder in [h for h in seen if id(h) in objects or id(type(h)) in objects]:
                seen.discard(holder)
        autouse = getattr(self.manager, "_node_autousenames", None)
        if isinstance(autouse, dict):
            for key in [key for key in autouse if id(key) in gone]:
                del autouse[key]
        table = getattr(self.manager, "_arg2node2fixturedefs", None)
        if isinstance(table, dict):
            for name, entry in list(table.items()):
                for key in [key for key in entry if id(key) in gone]:
                    del entry[key]
                if not entry:
                    del table[name]

    def under_nodeids(self, nodes: list[Node]) -> list[Definition]:
        """The definitions pytest < 9.1 registered by the node id of one of ``nodes``.

        Those it makes for a test class's or module's ``setup_*`` (and
        unittest's ``setUpClass``) hold the class: collected again, the new
        node registers new ones, and the old ones are to go.
        """
        nodeids = {getattr(node, "nodeid", None) for node in nodes}
        nodeids.discard(None)
        return [d for d in self.all() if getattr(d, "baseid", None) in nodeids]

    def _replace(self, new: Definition, old: Definition) -> None:
        for _, _, defs in self._lists():
            for index, fixturedef in enumerate(defs):
                if fixturedef is new:
                    defs[index] = old

    def parse_conftest(
        self, module: types.ModuleType, directory: Path, node: pytest.Collector | None
    ) -> None:
        """Register the fixtures of a conftest just registered as a plugin.

        pytest >= 9.1 defers that to the collection of the conftest's folder,
        which is over: do it now, under the node pytest would have used.
        Older pytest parsed them at registration, by node id.
        """
        pending = getattr(self.manager, "_pending_conftests", None)
        if not isinstance(pending, dict):
            return
        pending.pop(directory, None)
        rootpath = self.session.config.rootpath
        if directory == rootpath or rootpath not in directory.parents:
            node = self.session
        if node is not None:
            self.manager.parsefactories(holder=module, node=node)

    # -- cached values ---------------------------------------------------------

    def finish(self, fixturedef: Definition) -> None:
        """Tear ``fixturedef``'s cached value down now (its finalizers run)."""
        if fixturedef.cached_result is None:
            return
        for _, (finalizers, _) in self.session._setupstate.stack.items():
            for finalizer in list(finalizers):
                if (
                    isinstance(finalizer, functools.partial)
                    and getattr(finalizer.func, "__self__", None) is fixturedef
                ):
                    finalizers.remove(finalizer)
                    finalizer()
                    return
        # What finish() reads of a request is its node.
        fixturedef.finish(request=cast("SubRequest", _Request(self.session)))

    def carry_over(
        self,
        old_defs: list[Definition],
        new_defs: list[Definition],
        old_globals: dict[str, object],
        keep: bool,
    ) -> tuple[list[str], list[str]]:
        """Hand the cached values of ``old_defs`` to the matching ``new_defs``, or finish them.

        A value is kept only when ``keep`` (the module was edited, not reached
        by a change of code it imports) and the definition is the same: name,
        scope, params and code.  Returns (kept, finished) fixture names.
        """
        kept: list[str] = []
        finished: list[str] = []
        by_name = {fixturedef.argname: fixturedef for fixturedef in new_defs}
        for old in old_defs:
            if old.cached_result is None:
                continue
            new = by_name.get(old.argname)
            if keep and new is not None and self._same(old, new, old_globals):
                # The old definition, with its value and finalizers, stays
                # registered; it runs the new function if it is set up again
                # (pytest declares ``func`` final: it never expects this).
                old.func = new.func  # type: ignore[misc]
                self._replace(new, old)
                kept.append(old.argname)
            else:
                self.finish(old)
                finished.append(old.argname)
        return kept, finished

    def changed(
        self, old_defs: list[Definition], new_defs: list[Definition], old_globals: dict[str, object]
    ) -> set[str]:
        """Fixture names whose definition is new, gone, or not the same as before."""
        old_by_name = {fixturedef.argname: fixturedef for fixturedef in old_defs}
        new_by_name = {fixturedef.argname: fixturedef for fixturedef in new_defs}
        return {
            name
            for name in old_by_name.keys() | new_by_name.keys()
            if name not in old_by_name
            or name not in new_by_name
            or not self._same(old_by_name[name], new_by_name[name], old_globals)
        }

    @staticmethod
    def _same(old: Definition, new: Definition, old_globals: dict[str, object]) -> bool:
        if (old.scope, old.params, old.ids, old.argnames) != (
            new.scope,
            new.params,
            new.ids,
            new.argnames,
        ):
            return False
        before, after = _function_of(old), _function_of(new)
        return before is not None and after is not None and same_code(before, after, old_globals)

    def cached(self, scope: str = "session") -> list[Definition]:
        """Definitions of ``scope`` that hold a value (or a setup error) now."""
        return [
            fixturedef
            for fixturedef in self.all()
            if fixturedef.scope == scope and fixturedef.cached_result is not None
        ]
