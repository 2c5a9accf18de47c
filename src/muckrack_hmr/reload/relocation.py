"""Definitions that only moved: their code takes the new line numbers in place.

Lines added or removed above a definition (or inside the function before it)
move it without changing it.  Running it again would run its decorators a
second time: Flask refuses a route once the app has served a request, FastAPI
registers the route twice.  So a moved definition does not run again; the
live function objects (and the methods of a live class) get their code
objects back with the new first line, which moves every line of the code, and
of the functions nested in it, by the same amount.  Tracebacks, ``inspect``
and debuggers then point at the right lines.

A definition whose own lines changed without changing its code (a comment or
a blank line added inside it, a call split over two lines) did not move as a
whole: the statement is compiled alone, nothing of it run, and each live
function takes the line table of its new code (:func:`align_exactly`).
"""

from __future__ import annotations

import ast
import functools
import types
import weakref
from collections.abc import Callable, Iterator

__all__ = [
    "align_class",
    "align_exactly",
    "align_function",
    "earlier_versions",
    "first_line",
    "shift_code",
]

_FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef)

#: How a function object is given new code: the patching layer's setter, so
#: that every object made from the same definition follows.
SetCode = Callable[[types.FunctionType, types.CodeType], None]


def _assign(function: types.FunctionType, code: types.CodeType) -> None:
    function.__code__ = code


def first_line(node: ast.stmt) -> int:
    """Where a statement starts: its first decorator, as ``co_firstlineno`` counts."""
    decorators: list[ast.expr] = getattr(node, "decorator_list", [])
    return min([node.lineno, *(decorator.lineno for decorator in decorators)])


# Nested code moved -> the earlier versions of it (oldest first).  A closure made
# before a move (``add = make_adder(5)``, the wrapper a decorator returned) keeps
# the nested code it was made with: the next edit of that nested code reaches it
# through these (see earlier_versions).  An entry goes with the moved code (its
# function edited again, or gone).
_EARLIER: weakref.WeakKeyDictionary[types.CodeType, tuple[types.CodeType, ...]] = (
    weakref.WeakKeyDictionary()
)
# The most versions kept for one nested code (the first, what import-time closures
# hold, stays).
_MOST_EARLIER = 16


def _keep_earlier(code: types.CodeType, moved: types.CodeType) -> None:
    """``moved`` stands for the nested ``code`` now: closures made from it follow edits."""
    versions = (*_EARLIER.pop(code, ()), code)
    if len(versions) > _MOST_EARLIER:
        versions = (versions[0], *versions[-_MOST_EARLIER + 1 :])
    _EARLIER[moved] = versions


def shift_code(code: types.CodeType, delta: int) -> types.CodeType:
    """``code`` and the code nested in it, ``delta`` lines further down."""
    if delta == 0:
        return code
    return _shift(code, delta, nested=False)


def _shift(code: types.CodeType, delta: int, *, nested: bool) -> types.CodeType:
    consts = tuple(
        _shift(const, delta, nested=True)
        if isinstance(const, types.CodeType) and const.co_filename == code.co_filename
        else const
        for const in code.co_consts
    )
    moved = code.replace(co_firstlineno=code.co_firstlineno + delta, co_consts=consts)
    if nested:
        _keep_earlier(code, moved)
    return moved


def earlier_versions(code: types.CodeType) -> tuple[types.CodeType, ...]:
    """The nested code ``code`` was before moves (none when it never moved)."""
    return _EARLIER.get(code, ())


def _functions_in(member: object) -> Iterator[types.FunctionType]:
    """The plain functions a class member holds (methods, accessors, wrapped functions)."""
    if isinstance(member, staticmethod | classmethod):
        member = member.__func__
    if isinstance(member, property):
        for accessor in (member.fget, member.fset, member.fdel):
            yield from _functions_in(accessor)
        return
    if isinstance(member, functools.cached_property):
        member = member.func
    seen = 0
    while member is not None and seen < 8:
        if isinstance(member, types.FunctionType):
            yield member
        member = getattr(member, "__wrapped__", None)
        seen += 1


def class_functions(cls: type, filename: str) -> list[types.FunctionType]:
    """The functions of ``cls`` and of the classes nested in it compiled from ``filename``
    (methods, accessors, what decorators wrapped)."""
    found: list[types.FunctionType] = []
    seen: set[int] = set()
    pending = [cls]
    while pending:
        current = pending.pop()
        prefix = current.__qualname__ + "."
        for member in list(current.__dict__.values()):
            if (
                isinstance(member, type)
                and member.__qualname__.startswith(prefix)
                and "." not in member.__qualname__[len(prefix) :]
            ):
                pending.append(member)
                continue
            for function in _functions_in(member):
                if (
                    id(function) not in seen
                    and function.__code__.co_filename == filename
                    and function.__qualname__.startswith(prefix)
                ):
                    seen.add(id(function))
                    found.append(function)
    return found


def align_function(
    function: types.FunctionType, node: ast.stmt, set_code: SetCode = _assign
) -> bool:
    """Give ``function`` (defined by ``node``, as it now stands) its new line numbers."""
    delta = first_line(node) - function.__code__.co_firstlineno
    if delta == 0:
        return False
    set_code(function, shift_code(function.__code__, delta))
    return True


def align_class(cls: type, node: ast.ClassDef, filename: str, set_code: SetCode = _assign) -> int:
    """Give the methods of the live ``cls`` the line numbers of ``node``; how many moved.

    Methods are paired with the definitions of ``node`` by name, in order (a
    property's getter and setter share one; of a name defined more often than the
    class holds functions of it, its last definitions), and only functions compiled
    from ``filename`` are touched: a method that a decorator of another
    module wrapped keeps that module's lines.
    """
    moved = 0
    firstlineno = cls.__dict__.get("__firstlineno__")
    if isinstance(firstlineno, int) and firstlineno != first_line(node):
        type.__setattr__(cls, "__firstlineno__", first_line(node))  # 3.13+: inspect reads it
    definitions: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
    for child in node.body:
        if isinstance(child, _FUNCTION_NODES):
            definitions.setdefault(child.name, []).append(child)
        elif isinstance(child, ast.ClassDef):
            inner = cls.__dict__.get(child.name)
            if isinstance(inner, type) and inner.__qualname__ == f"{cls.__qualname__}.{child.name}":
                moved += align_class(inner, child, filename, set_code)
    live: dict[str, list[types.FunctionType]] = {}
    seen: set[int] = set()
    prefix = cls.__qualname__ + "."
    for member in list(cls.__dict__.values()):
        for function in _functions_in(member):
            code = function.__code__
            if (
                id(function) not in seen
                and code.co_filename == filename
                and code.co_name in definitions
                and function.__qualname__.startswith(prefix)
            ):
                seen.add(id(function))
                live.setdefault(code.co_name, []).append(function)
    for name, functions in live.items():
        nodes = definitions[name]
        if len(functions) > len(nodes):
            continue  # cannot tell which is which: leave them
        # Fewer: the name was bound again below (``@overload`` stubs, then the
        # implementation): the class keeps what its last definitions made.
        nodes = nodes[len(nodes) - len(functions) :]
        functions.sort(key=lambda function: function.__code__.co_firstlineno)
        for function, definition in zip(functions, nodes, strict=True):
            moved += align_function(function, definition, set_code)
    return moved


# -- a definition whose lines changed inside it ---------------------------------------------


def _path(qualname: str) -> tuple[str, ...]:
    """A function's qualified name as the names of the code objects it is nested in."""
    return tuple(part for part in qualname.split(".") if part != "<locals>")


def _compiled_by_path(
    node: ast.stmt, filename: str, flags: int
) -> dict[tuple[str, ...], list[types.CodeType]]:
    """The code objects that compiling ``node`` alone makes (nothing of it runs), by the
    names of the code they are nested in, in the order they appear."""
    module = compile(
        ast.Module(body=[node], type_ignores=[]), filename, "exec", flags=flags, dont_inherit=True
    )
    found: dict[tuple[str, ...], list[types.CodeType]] = {}
    pending: list[tuple[types.CodeType, tuple[str, ...]]] = [(module, ())]
    while pending:
        code, path = pending.pop(0)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                name = const.co_name
                # (3.12+: a generic function's type parameters have code of their own.)
                inner = path if name.startswith("<generic parameters of ") else (*path, name)
                found.setdefault(inner, []).append(const)
                pending.append((const, inner))
    return found


def _lines_of(live: types.CodeType, fresh: types.CodeType) -> types.CodeType | None:
    """``live`` with the line numbers and positions of ``fresh``, when both are the same
    code (the same instructions, names and constants, nested code alike); else None."""
    if (
        live.co_code != fresh.co_code
        or live.co_names != fresh.co_names
        or live.co_varnames != fresh.co_varnames
        or live.co_freevars != fresh.co_freevars
        or live.co_cellvars != fresh.co_cellvars
        or len(live.co_consts) != len(fresh.co_consts)
    ):
        return None
    consts = []
    for old, new in zip(live.co_consts, fresh.co_consts, strict=True):
        if isinstance(old, types.CodeType) and isinstance(new, types.CodeType):
            moved = _lines_of(old, new)
            if moved is None:
                return None
            if moved is not old:
                _keep_earlier(old, moved)
            consts.append(moved)
        elif type(old) is type(new) and (old is new or old == new):
            consts.append(old)
        else:
            return None
    if (
        live.co_firstlineno == fresh.co_firstlineno
        and live.co_linetable == fresh.co_linetable
        and all(old is new for old, new in zip(live.co_consts, consts, strict=True))
    ):
        return live
    return live.replace(
        co_firstlineno=fresh.co_firstlineno,
        co_linetable=fresh.co_linetable,
        co_consts=tuple(consts),
    )


def align_exactly(
    functions: list[types.FunctionType],
    node: ast.stmt,
    filename: str,
    flags: int,
    set_code: SetCode = _assign,
) -> list[types.FunctionType]:
    """Give ``functions`` (made by the statement ``node``, as it now stands) the lines of
    their code compiled anew; the functions whose code did not fit (compiled otherwise
    than alone: the caller moves them as a whole).

    Functions are paired with the new code by qualified name, in the order of their
    first lines (``@overload`` stubs and a property's accessors share one).
    """
    try:
        compiled = _compiled_by_path(node, filename, flags)
    except (SyntaxError, ValueError):
        return functions
    by_path: dict[tuple[str, ...], list[types.FunctionType]] = {}
    for function in functions:
        by_path.setdefault(_path(function.__qualname__), []).append(function)
    left = []
    for path, group in by_path.items():
        fresh = compiled.get(path, [])
        if len(group) > len(fresh):
            left.extend(group)
            continue
        # Fewer: the name was bound again below (the class keeps its last ones).
        fresh = fresh[len(fresh) - len(group) :]
        group.sort(key=lambda function: function.__code__.co_firstlineno)
        for function, code in zip(group, fresh, strict=True):
            moved = _lines_of(function.__code__, code)
            if moved is None:
                left.append(function)
            elif moved is not function.__code__:
                set_code(function, moved)
    return left
