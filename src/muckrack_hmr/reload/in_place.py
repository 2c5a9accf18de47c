"""What top-level statements change in place, found in their code, and kept as it was
while they run again, so that a reload that fails puts it back.

The reloader restores a module's namespace when its new code fails: the names go
back.  But ``CONFIG["n"] = N``, ``SEEN.append(N)`` or ``core.REGISTRY.append(f)``,
run again before a later line raised, changed objects that the names still hold, and
a save said to change nothing left them half new.  So before such a statement runs
again, the containers it fills (lists, dicts, sets, deques, bytearrays) are copied,
and the module and class attributes it sets are noted; :meth:`Kept.put_back` returns
them to what they held.  A change made by a function the statement calls (a
``register(f)`` that appends) is not seen here.

Also what the engine reads of containers in code: the names a statement adds to (run
again, it would add again: see incremental's chain to the statement that made the
container), those a function of the module fills (a registry), and the refill of a
container made again into the live one (:func:`give_items`), and what a statement
run again changed in place (:class:`Touched`), which the assignments that derive from
it follow (see ``Changes.mutated``).
"""

from __future__ import annotations

import ast
import operator
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Mapping, Set
from types import ModuleType
from typing import cast

__all__ = [
    "FILLING",
    "REFILLED",
    "Kept",
    "Touched",
    "aliased",
    "changed_names",
    "filled_in_functions",
    "filled_names",
    "give_items",
]

#: Methods that add to a container: a statement calling one, run again, adds again (not
#: ``update`` or ``X[k] = v``, which set what they set again: the keys the program added
#: stay, as they would not if the container were made again).
FILLING = frozenset(("append", "extend", "insert", "add", "setdefault", "appendleft", "extendleft"))
# Methods that fill a container in any way (a function of the module that does fills a
# registry: see filled_in_functions).
_FILLS = FILLING | {"update", "__setitem__"}
# Methods that change a container in place, in any way.
_CHANGING = _FILLS | {
    "remove",
    "pop",
    "popitem",
    "popleft",
    "clear",
    "discard",
    "sort",
    "reverse",
    "rotate",
    "difference_update",
    "intersection_update",
    "symmetric_difference_update",
}
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
# The containers copied (exactly these types: a subclass's methods could do anything).
_KINDS = frozenset((list, bytearray, dict, OrderedDict, defaultdict, Counter, set, deque))
_MISSING = object()


def _top_level(node: ast.AST) -> list[ast.AST]:
    """The nodes of a top-level statement, not those in its functions or classes."""
    if isinstance(node, _SCOPES):
        return []
    found: list[ast.AST] = []
    pending = [node]
    while pending:
        each = pending.pop()
        found.append(each)
        pending.extend(
            child for child in ast.iter_child_nodes(each) if not isinstance(child, _SCOPES)
        )
    return found


def filled_names(node: ast.AST) -> set[str]:
    """The names whose container a top-level statement adds to (``X.append(v)``,
    ``X.add(v)``, ``X[k].append(v)``; also in a loop, under an ``if`` or a ``with``)."""
    return {
        held
        for each in _top_level(node)
        if isinstance(each, ast.Call)
        and isinstance(each.func, ast.Attribute)
        and each.func.attr in FILLING
        and (held := _container_name(each.func.value)) is not None
    }


def filled_in_functions(statements: list[ast.AST]) -> set[str]:
    """The names whose container a function (or a method, a lambda) of these statements
    fills: a registry (``def handler(f): HANDLERS.append(f)``), which what calls it (a
    decorated def, the program at run time) fills too."""
    found: set[str] = set()
    for statement in statements:
        for scope in ast.walk(statement):
            if not isinstance(scope, _SCOPES):
                continue
            for each in ast.walk(scope):
                if (
                    isinstance(each, ast.Call)
                    and isinstance(each.func, ast.Attribute)
                    and each.func.attr in _FILLS
                ):
                    held = _container_name(each.func.value)
                elif isinstance(each, ast.Subscript) and isinstance(each.ctx, ast.Store):
                    held = _container_name(each.value)
                else:
                    continue
                if held is not None:
                    found.add(held)
    return found


def _container_name(node: ast.expr) -> str | None:
    """``X`` of ``X``, ``X[k]``, ``X[k][j]``: the name of the container filled."""
    while isinstance(node, ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _changed(node: ast.AST) -> tuple[list[ast.expr], list[ast.Attribute]]:
    """What a top-level statement changes in place: the containers (the expressions that
    name them) and the attributes it sets or deletes."""
    containers: list[ast.expr] = []
    attributes: list[ast.Attribute] = []
    for each in _top_level(node):
        if (
            isinstance(each, ast.Call)
            and isinstance(each.func, ast.Attribute)
            and each.func.attr in _CHANGING
        ):
            containers.append(each.func.value)
        elif isinstance(each, ast.Subscript) and isinstance(each.ctx, ast.Store | ast.Del):
            containers.append(each.value)
        elif isinstance(each, ast.Attribute) and isinstance(each.ctx, ast.Store | ast.Del):
            attributes.append(each)
    return containers, attributes


def changed_names(node: ast.AST) -> set[str]:
    """The names whose container a top-level statement changes in place in any way
    (``X[k] = v``, ``X.update(...)``, ``del X[k]``, ``X.pop()``, ``X["a"]["b"] = v``)."""
    return {
        held
        for expression in _changed(node)[0]
        if (held := _container_name(expression)) is not None
    }


class Touched:
    """What a statement about to run again may change in place, as it is: after the run,
    :meth:`changed` tells which of it the run changed (``DB`` of ``DB["port"] = 3``,
    ``APP.debug`` of ``APP.debug = True``), for what derives from it to follow."""

    def __init__(self, node: ast.AST, namespace: Mapping[str, object], bound: Set[str]) -> None:
        self._namespace = namespace
        self._items: list[tuple[str, object, object]] = []
        self._attributes: list[tuple[str, object, str, object]] = []
        for name in (changed_names(node) | filled_names(node)) - bound:
            held = namespace.get(name)
            if type(held) in REFILLED:
                self._items.append((name, held, _copy(held)))
        for target in _changed(node)[1]:
            if not isinstance(target.value, ast.Name) or target.value.id in bound:
                continue
            owner = namespace.get(target.value.id)
            if isinstance(owner, ModuleType | type) or _plain_instance(owner):
                self._attributes.append(
                    (
                        f"{target.value.id}.{target.attr}",
                        owner,
                        target.attr,
                        vars(owner).get(target.attr, _MISSING),
                    )
                )

    def changed(self) -> set[str]:
        """The names (containers) and ``name.attr`` spellings the run changed."""
        found = {
            name
            for name, held, copy in self._items
            if self._namespace.get(name) is held and not _same_items(held, copy)
        }
        found.update(
            spelled
            for spelled, owner, attr, value in self._attributes
            if vars(owner).get(attr, _MISSING) is not value
        )
        return found


def _copy(held: object) -> object:
    """The items of a container of REFILLED, as they are now."""
    if isinstance(held, dict):
        return dict(held)
    if isinstance(held, set):
        return set(held)
    return list(cast("list[object]", held))


def _same_items(held: object, copy: object) -> bool:
    """Does ``held`` hold the very objects of ``copy`` (see _copy)?"""
    try:
        if isinstance(held, dict) and isinstance(copy, dict):
            return len(held) == len(copy) and all(
                copy.get(key, _MISSING) is value for key, value in held.items()
            )
        if isinstance(held, set) and isinstance(copy, set):
            return held == copy
        if isinstance(copy, list):
            items = list(cast("list[object]", held))
            return len(items) == len(copy) and all(map(operator.is_, items, copy))
    except Exception:  # a key's ``__eq__`` raised: it may have changed
        return False
    return False


def _named(node: ast.expr, namespace: Mapping[str, object]) -> object:
    """The object ``X``, ``mod.X``, ``Cls.X``, ``obj.x`` or ``X["k"]`` names, looked up
    without running code (no descriptor, no ``__getattr__``, an item of a dict or list by
    a constant): _MISSING when it names nothing so."""
    if isinstance(node, ast.Name):
        return namespace.get(node.id, _MISSING)
    if isinstance(node, ast.Attribute):
        base = _named(node.value, namespace)
        if isinstance(base, ModuleType | type) or _plain_instance(base):
            return vars(base).get(node.attr, _MISSING)
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        base, key = _named(node.value, namespace), node.slice.value
        if type(base) is dict:
            return base.get(key, _MISSING)
        if type(base) is list and type(key) is int and -len(base) <= key < len(base):
            return base[key]
    return _MISSING


def _plain_instance(value: object) -> bool:
    """An instance whose attributes are its ``__dict__``'s (no ``__slots__`` only, no
    ``__setattr__`` of its own): set and put back as any."""
    kind = type(value)
    return (
        isinstance(getattr(value, "__dict__", None), dict)
        and not isinstance(value, ModuleType | type)
        and kind.__setattr__ is object.__setattr__
        and kind.__getattribute__ is object.__getattribute__
    )


class Kept:
    """The containers and attributes that statements run again changed, as they were."""

    def __init__(self) -> None:
        self._containers: dict[int, tuple[object, list[object] | dict[object, object]]] = {}
        self._attributes: dict[tuple[int, str], tuple[object, str, object]] = {}

    def before(self, node: ast.AST, namespace: Mapping[str, object]) -> None:
        """``node`` (a top-level statement) runs next in ``namespace``: keep what it may
        change in place, once a reload."""
        containers, attributes = _changed(node)
        for expression in containers:
            self.container(_named(expression, namespace))
        for target in attributes:
            owner = _named(target.value, namespace)
            key = (id(owner), target.attr)
            if (
                isinstance(owner, ModuleType | type) or _plain_instance(owner)
            ) and key not in self._attributes:
                self._attributes[key] = (
                    owner,
                    target.attr,
                    owner.__dict__.get(target.attr, _MISSING),
                )

    def container(self, held: object) -> None:
        """Keep the items of ``held`` if it is a container of ours, once."""
        if type(held) not in _KINDS or id(held) in self._containers:
            return
        if isinstance(held, dict):
            self._containers[id(held)] = (held, dict(held))
        elif isinstance(held, list | bytearray | set | deque):
            self._containers[id(held)] = (held, list(held))

    def put_back(self) -> None:
        """Return what was kept to what it held (the reload failed, or was refused)."""
        for held, copy in reversed(self._containers.values()):
            if isinstance(held, dict) and isinstance(copy, dict):
                held.clear()
                held.update(copy)
            elif isinstance(copy, list):
                if isinstance(held, list):
                    held[:] = copy
                elif isinstance(held, bytearray):
                    held[:] = bytes(cast("list[int]", copy))
                elif isinstance(held, set):
                    held.clear()
                    held.update(copy)
                elif isinstance(held, deque):
                    held.clear()
                    held.extend(copy)
        self._containers.clear()
        for owner, attr, value in reversed(self._attributes.values()):
            try:
                if value is _MISSING:
                    if attr in owner.__dict__:
                        delattr(owner, attr)
                else:
                    setattr(owner, attr, value)
            except (AttributeError, TypeError):  # a built-in type's, read-only
                pass
        self._attributes.clear()


#: The containers whose items one made again puts in the live one (see :func:`give_items`).
REFILLED = (list, dict, set, OrderedDict, defaultdict, deque)


def give_items(live: object, fresh: object, depth: int = 0) -> bool:
    """Give ``live`` the items of ``fresh`` (of its exact type); whether it took them.  A
    dict's value that is a container of the type of the live one's under the same key
    (``NESTED["sql"]``) is refilled in its turn, and stays."""
    if type(live) is not type(fresh):
        return False
    if isinstance(live, dict) and isinstance(fresh, dict):
        if depth < _REFILL_DEPTH:
            for key, value in fresh.items():
                held = live.get(key)
                if held is not None and held is not value and give_items(held, value, depth + 1):
                    fresh[key] = held
        live.clear()
        live.update(fresh)
        if isinstance(live, defaultdict) and isinstance(fresh, defaultdict):
            live.default_factory = fresh.default_factory
    elif isinstance(live, list) and isinstance(fresh, list):
        live[:] = fresh
    elif isinstance(live, set) and isinstance(fresh, set):
        live.clear()
        live.update(fresh)
    elif isinstance(live, deque) and isinstance(fresh, deque):
        if live.maxlen != fresh.maxlen:
            return False  # (its bound is fixed as it is made)
        live.clear()
        live.extend(fresh)
    else:
        return False
    return True


# How deep the dicts of a table are refilled (see _refill).
_REFILL_DEPTH = 8


def aliased(held: object, namespace: Mapping[str, object], name: str) -> bool:
    """Does another name of ``namespace`` than ``name`` hold ``held`` (``B = A``: B's
    container is A's, which an edit ``B = [9]`` must leave as it is)?"""
    return any(value is held and key != name for key, value in list(namespace.items()))
