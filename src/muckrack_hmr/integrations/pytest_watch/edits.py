"""What an edit of a module changed, in the terms that tests are selected by.

Two sources of one module are compared statement by statement, scope by
scope (the module, then each class body), without positions: a definition
that only moved is no change.  The result is:

* the qualified names of the functions whose ``def`` changed (body,
  decorators, defaults or annotations): tests that executed one of them are
  affected, and so are those that executed a function nested in one;
* the names whose value changed: names bound by a changed statement that is
  not a ``def`` (``LIMIT = 5``, ``from x import y``, a class attribute), and
  the names of definitions added or removed.  Tests that executed code
  mentioning one of them are affected.

Anything else (a changed expression statement, a class whose bases or
decorators changed, a source that does not parse) cannot be put in these
terms: :func:`changed_definitions` returns None, and the caller selects
by imports instead.  :func:`changed_statements` does the same from the
engine's parse of the two sources (shared with the reload).
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Sequence
from typing import Any

__all__ = ["Edit", "changed_definitions", "changed_statements", "consumed_names"]

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_DEFINITIONS = (*_FUNCTIONS, ast.ClassDef)


class Edit:
    """The functions (qualified names) and the names an edit of one module changed."""

    __slots__ = ("names", "namespace", "qualnames")

    def __init__(self) -> None:
        self.qualnames: set[str] = set()
        self.names: set[str] = set()
        #: names came or went: code that lists a namespace (``vars(m)``) sees it too
        self.namespace = False

    def __bool__(self) -> bool:
        return bool(self.qualnames or self.names)

    def __repr__(self) -> str:
        return f"Edit(qualnames={sorted(self.qualnames)}, names={sorted(self.names)})"


class _Doubt(Exception):
    """The edit cannot be told in functions and names."""


def changed_definitions(old: bytes, new: bytes) -> Edit | None:
    """What changed from ``old`` to ``new`` (module sources), or None when it cannot be told."""
    try:
        old_tree = ast.parse(old)
        new_tree = ast.parse(new)
    except (SyntaxError, ValueError):
        return None
    return _edit(old_tree.body, new_tree.body, {})


def changed_statements(old: Sequence[Any], new: Sequence[Any]) -> Edit | None:
    """:func:`changed_definitions` of two parsed sources, as the engine summarizes them.

    ``old`` and ``new`` are the top-level statements (``node``, ``text``)
    that the reload parses anyway: a statement whose text did not change is
    the same without comparing its tree.
    """
    texts = {id(statement.node): statement.text for statement in (*old, *new)}
    return _edit([s.node for s in old], [s.node for s in new], texts)


def _edit(old: list[ast.stmt], new: list[ast.stmt], texts: dict[int, str]) -> Edit | None:
    edit = Edit()
    try:
        _compare(old, new, "", edit, texts)
    except _Doubt:
        return None
    return edit


def _dump(node: ast.AST) -> str:
    return ast.dump(node)  # without positions: moving a statement is no change


def _definitions(body: list[ast.stmt]) -> dict[str, list[ast.stmt]]:
    """The ``def`` and ``class`` statements of a scope by name, in order (``@overload``
    stubs and their implementation, a property's getter and setter: one name, several)."""
    found: dict[str, list[ast.stmt]] = {}
    for statement in body:
        if isinstance(statement, _DEFINITIONS):
            found.setdefault(statement.name, []).append(statement)
    return found


def _compare(
    old: list[ast.stmt], new: list[ast.stmt], prefix: str, edit: Edit, texts: dict[int, str]
) -> None:
    """Compare one scope; ``texts``: the source text of statements, where known."""

    def same(before: ast.stmt, after: ast.stmt) -> bool:
        text = texts.get(id(before))
        if text is not None and text == texts.get(id(after)):
            return True
        return _dump(before) == _dump(after)

    old_defs, new_defs = _definitions(old), _definitions(new)
    for name in old_defs.keys() | new_defs.keys():
        befores, afters = old_defs.get(name, []), new_defs.get(name, [])
        if len(befores) != len(afters) or any(
            type(before) is not type(after) for before, after in zip(befores, afters, strict=True)
        ):
            # Added or removed (or one of several): code that names it may now fail, or work.
            edit.names.add(name)
            edit.qualnames.add(prefix + name)
            edit.namespace = True
            continue
        # Several of a name (``@overload`` stubs, a property's setter) are told apart by
        # their order: one whose body changed is an edit of that name's code.
        for before, after in zip(befores, afters, strict=True):
            if same(before, after):
                continue
            if isinstance(after, ast.ClassDef):
                assert isinstance(before, ast.ClassDef)
                if len(befores) > 1 or _header(before) != _header(after):
                    raise _Doubt  # new bases or decorators: the class is made anew
                _compare(before.body, after.body, f"{prefix}{name}.", edit, {})
            else:
                assert isinstance(before, _FUNCTIONS)
                assert isinstance(after, _FUNCTIONS)
                if _decorators(before) != _decorators(after):
                    raise _Doubt  # a decorator runs again: it may register, wrap, replace
                # The body, the defaults, the annotations: what executed it is affected.
                edit.qualnames.add(prefix + name)
    kept_before = [s for s in old if not isinstance(s, _DEFINITIONS)]
    kept_after = [s for s in new if not isinstance(s, _DEFINITIONS)]
    if len(kept_before) == len(kept_after) and all(map(same, kept_before, kept_after)):
        return
    others_before = [_dump(s) for s in kept_before]
    others_after = [_dump(s) for s in kept_after]
    if others_before == others_after:
        return
    gone = Counter(others_before) - Counter(others_after)
    came = Counter(others_after) - Counter(others_before)
    if not gone and not came:
        raise _Doubt  # the same statements in another order
    changed = [s for s in old if _dump(s) in gone] + [s for s in new if _dump(s) in came]
    if not prefix and any(map(_makes_a_container, changed)):
        # ``KEYWORDS = {...}`` edited: the live dict takes the new items (see the engine's
        # refill_containers), and what holds it (a lexer a test built once) reads them
        # in code that names it not: the tests are told by their imports.
        raise _Doubt
    exported = [_exported(s) for s in changed]
    if len(changed) == 2 and None not in exported:
        # ``__all__`` edited: the names that came or went (a star import of
        # the module now binds them, or no longer does).
        was, now = exported
        assert was is not None
        assert now is not None
        edit.names.update(was ^ now)
        edit.namespace = True
        return
    bound_before = [_bound_names(s) for s in old if _dump(s) in gone]
    bound_after = [_bound_names(s) for s in new if _dump(s) in came]
    for names in (*bound_before, *bound_after):
        edit.names.update(names)
    if set().union(*bound_before) != set().union(*bound_after):
        edit.namespace = True


_CONTAINERS = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)


def _makes_a_container(statement: ast.stmt) -> bool:
    """``NAME = [...]`` (``{...}``, a comprehension), but not ``__all__``'s."""
    if isinstance(statement, ast.Assign):
        targets, value = statement.targets, statement.value
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        targets, value = [statement.target], statement.value
    else:
        return False
    return isinstance(value, _CONTAINERS) and not any(
        isinstance(target, ast.Name) and target.id.startswith("__") for target in targets
    )


def _exported(statement: ast.stmt) -> set[str] | None:
    """The names of ``__all__ = [...]`` (a literal of strings), or None for anything else."""
    if not (
        isinstance(statement, ast.Assign)
        and len(statement.targets) == 1
        and isinstance(statement.targets[0], ast.Name)
        and statement.targets[0].id == "__all__"
        and isinstance(statement.value, ast.List | ast.Tuple)
    ):
        return None
    names = set()
    for element in statement.value.elts:
        if not (isinstance(element, ast.Constant) and isinstance(element.value, str)):
            return None
        names.add(element.value)
    return names


def _header(node: ast.ClassDef) -> str:
    return _dump(
        ast.ClassDef(
            name=node.name,
            bases=node.bases,
            keywords=node.keywords,
            body=[],
            decorator_list=node.decorator_list,
        )
    )


def _decorators(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    return [_dump(decorator) for decorator in node.decorator_list]


def _bound_names(statement: ast.stmt) -> set[str]:
    """The names a changed statement binds; doubt when its effect is not a binding."""
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
        return set()  # a docstring, or a lone constant
    if isinstance(statement, ast.Assign | ast.AnnAssign | ast.AugAssign):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        if statement.value is not None and any(
            isinstance(node, ast.Call | ast.Await | ast.Yield | ast.YieldFrom | ast.NamedExpr)
            for node in ast.walk(statement.value)
        ):
            raise _Doubt  # a call may do more than give the value (register, connect...)
        names: set[str] = set()
        for target in targets:
            for node in ast.walk(target):
                if isinstance(node, ast.Name):
                    names.add(node.id)
                elif isinstance(node, ast.Attribute | ast.Subscript):
                    raise _Doubt  # it changes another object
        if "__all__" in names:
            raise _Doubt  # what a star import binds changed, in a way not told here
        return names
    if isinstance(statement, ast.Import | ast.ImportFrom):
        if any(alias.name == "*" for alias in statement.names):
            raise _Doubt
        return {
            alias.asname
            or (alias.name.partition(".")[0] if isinstance(statement, ast.Import) else alias.name)
            for alias in statement.names
        }
    if isinstance(statement, ast.Pass):
        return set()
    raise _Doubt


def consumed_names(source: bytes, names: set[str]) -> set[str] | None:
    """The names a dependent's top level binds from ``names``, when it ran again for them.

    The engine runs again the statements of a dependent that consumed a
    changed name at import (``from .prices import LIMIT``, ``DOUBLE = 2 *
    LIMIT``).  The names those statements bind changed in turn.  None when
    such a statement is not a plain binding (its effect cannot be told).
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    bound: set[str] = set()
    try:
        for statement in tree.body:
            mentioned = {
                node.id if isinstance(node, ast.Name) else node.attr
                for node in ast.walk(statement)
                if isinstance(node, ast.Name | ast.Attribute)
            }
            if isinstance(statement, ast.Import | ast.ImportFrom):
                mentioned.update(alias.name for alias in statement.names)
            if isinstance(statement, _DEFINITIONS) or mentioned.isdisjoint(names):
                continue  # a definition's body reads the name when it runs
            bound |= _bound_names(statement)
    except _Doubt:
        return None
    return bound
