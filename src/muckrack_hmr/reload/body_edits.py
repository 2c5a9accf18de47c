"""Edits that only change bodies: the old functions get the new code in place.

When an edit changes only the body of a function (its decorators and
signature as before), or only method bodies of a class, nothing needs to run
again: the old function objects take the new code.  Decorators, the ``class``
statement and ``__init_subclass__`` do not run a second time, so a route or a
registration happens once.  The new code is compiled on its own, without
decorators (for a method: inside a class of the same name, so that private
names mangle alike).
"""

from __future__ import annotations

import ast
import copy
import gc
import types
from typing import TypeGuard, TypeVar

from .analysis import ModuleSummary, Statement, changed_bodies, framed_alike, same_shape
from .kinds import takes_code
from .relocation import first_line

__all__ = [
    "StatementError",
    "changes_only_closures",
    "closures_changed_at",
    "compile_one",
    "in_place_edit",
    "original_function",
]


class StatementError(Exception):
    """A statement raised while re-running; ``__cause__`` is the user's exception."""


def _header(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """A function definition without its body: kind, name, decorators, signature (its
    type parameters too, 3.12+)."""
    parts = [type(node).__name__, node.name, ast.dump(node.args)]
    parts += [ast.dump(decorator) for decorator in node.decorator_list]
    if node.returns is not None:
        parts.append(ast.dump(node.returns))
    parts += [ast.dump(param) for param in getattr(node, "type_params", ())]
    return "|".join(parts)


def _same_header(old: Statement, new: Statement) -> bool:
    """Same decorators and signature: by the text around the body, else by the trees."""
    if framed_alike(old, new) is not None:
        return True
    assert isinstance(old.node, ast.FunctionDef | ast.AsyncFunctionDef)
    assert isinstance(new.node, ast.FunctionDef | ast.AsyncFunctionDef)
    return _header(old.node) == _header(new.node)


def _bound_below(summary: ModuleSummary, statement: Statement, name: str) -> bool:
    """Does a statement below ``statement`` bind ``name`` too?"""
    at = next(index for index, each in enumerate(summary.statements) if each is statement)
    return any(name in each.binds for each in summary.statements[at + 1 :])


def _function_at(
    namespace: dict[str, object], name: str, filename: str, line: int
) -> types.FunctionType | None:
    """The function of the module ``namespace`` is the globals of, made by the ``def name``
    that began at ``line`` (its code's ``co_firstlineno``, kept as lines move): found among
    the objects that refer to the namespace, a walk of the heap (only for a name that
    several defs bind; the name holds one of them)."""
    found = None
    for referrer in gc.get_referrers(namespace):
        if type(referrer) is not types.FunctionType or referrer.__globals__ is not namespace:
            continue
        code = referrer.__code__
        if code.co_name == name and code.co_firstlineno == line and code.co_filename == filename:
            if found is not None and found is not referrer:
                return None  # (made twice by one def: a def in a loop)
            found = referrer
    return found


def original_function(value: object, name: str, filename: str) -> types.FunctionType | None:
    """The function a decorator wrapped, found through ``__wrapped__``, closure cells, or
    the attributes of the object it returned."""
    seen: set[int] = set()
    pending = [value]
    while pending:
        candidate = pending.pop()
        if id(candidate) in seen or len(seen) > 32:
            continue
        seen.add(id(candidate))
        if isinstance(candidate, types.FunctionType):
            code = candidate.__code__
            if code.co_name == name and code.co_filename == filename:
                return candidate
            for cell in candidate.__closure__ or ():
                try:
                    pending.append(cell.cell_contents)
                except ValueError:
                    continue
        else:
            pending.extend(_functions_held(candidate))
        wrapped = getattr(candidate, "__wrapped__", None)
        if wrapped is not None:
            pending.append(wrapped)
    return None


def _functions_held(holder: object) -> list[types.FunctionType]:
    """The functions an object a decorator returned holds in its own attributes (a route
    handler's ``fn``, a command's ``callback``), ``__slots__`` included."""
    if isinstance(holder, type | types.ModuleType):
        return []
    found = [
        value
        for value in getattr(holder, "__dict__", {}).values()
        if isinstance(value, types.FunctionType)
    ]
    for cls in type(holder).__mro__[:-1]:
        slots = cls.__dict__.get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            value = getattr(holder, slot, None) if isinstance(slot, str) else None
            if isinstance(value, types.FunctionType):
                found.append(value)
    return found


def _defs_named(summary: ModuleSummary, name: str) -> list[Statement]:
    """The top-level ``def`` statements of ``name``."""
    return [
        statement
        for statement in summary.statements
        if isinstance(statement.node, ast.FunctionDef | ast.AsyncFunctionDef)
        and statement.node.name == name
    ]


def same_last_def(summaries: tuple[ModuleSummary, ModuleSummary], name: str) -> bool:
    """Is the last ``def`` of ``name`` the same definition (decorators and signature)
    before and after the edit: the one whose function the name holds in both?"""
    before, after = _defs_named(summaries[0], name), _defs_named(summaries[1], name)
    return bool(before and after) and _same_header(before[-1], after[-1])


def _body_only_edit(
    statement: Statement,
    old: ModuleSummary,
    namespace: dict[str, object],
    filename: str,
    flags: int,
    *,
    several: frozenset[str],
) -> tuple[types.FunctionType, types.FunctionType] | None:
    """For a def whose body alone changed: (its old function, one with the new body).

    For a name several ``def`` statements bind, before or after the edit (``several``:
    ``@show.register`` implementations all named ``_``, two error handlers named
    ``handle``), the function the name holds is the last one's, and must not take
    another's body: the old def with this one's decorators and signature tells which
    function is its own, by the line where that began (see _function_at).
    """
    node = statement.node
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return None
    headers = [
        previous
        for previous in old.statements
        if isinstance(previous.node, ast.FunctionDef | ast.AsyncFunctionDef)
        and previous.node.name == node.name
        and _same_header(previous, statement)
    ]
    if not headers:
        return None
    if node.name in several:
        if len(headers) != 1 or not _bound_below(old, headers[0], node.name):
            # Two defs alike but for their bodies: which one is not known.  Or the last
            # def of the name (an ``@overload``'s implementation): it runs again, so
            # that the name ends with its value whatever ran again above it.
            return None
        target = _function_at(namespace, node.name, filename, first_line(headers[0].node))
    else:
        target = original_function(namespace.get(node.name), node.name, filename)
    if target is None:
        return None
    bare = _undecorated(node)
    fresh = _define_alone(bare, namespace, filename, flags)
    return (target, fresh) if _fits(fresh, target) else None


def _method_bodies_edit(
    statement: Statement,
    old: ModuleSummary,
    namespace: dict[str, object],
    filename: str,
    flags: int,
) -> list[tuple[types.FunctionType, types.FunctionType]] | None:
    """For a class whose method bodies alone changed: (old method, new method) pairs.

    The class statement then does not run again: its decorators and its bases'
    ``__init_subclass__`` see the class once.
    """
    node = statement.node
    if not isinstance(node, ast.ClassDef):
        return None
    previous = next(
        (
            candidate
            for candidate in old.statements
            if isinstance(candidate.node, ast.ClassDef)
            and candidate.node.name == node.name
            and same_shape(candidate, statement)
        ),
        None,
    )
    cls = namespace.get(node.name)
    if previous is None or not isinstance(cls, type):
        return None
    assert isinstance(previous.node, ast.ClassDef)
    methods = (ast.FunctionDef, ast.AsyncFunctionDef)
    old_methods = [m for m in previous.node.body if isinstance(m, methods)]
    new_methods = [m for m in node.body if isinstance(m, methods)]
    names = [m.name for m in new_methods]
    if names != [m.name for m in old_methods]:
        return None
    changed = _changed_methods(previous, statement, new_methods)
    if changed is None:
        # (Paired by place: a property's getter and setter share a name.)
        was = {id(new): old for old, new in zip(old_methods, new_methods, strict=True)}
        changed = [m for m in new_methods if ast.dump(m) != ast.dump(was[id(m)])]
        # Nothing but those method bodies may differ.
        rebuilt = copy.copy(node)
        rebuilt.body = [was[id(m)] if m in changed else m for m in node.body]
        if ast.dump(rebuilt) != ast.dump(previous.node):
            return None
    if not changed:
        return None
    last = {name: at for at, name in enumerate(names)}
    for method in changed:
        # A name several methods bind: the class holds the last (an ``@overload``
        # stub's implementation), or a property whose accessors they are.
        if last[method.name] != names.index(method.name) and not (
            _accessor(method) or last[method.name] == _place(new_methods, method)
        ):
            return None
    # Compiled in as few classes as the names allow (a property's getter and setter, both
    # edited, each in its own: one class holds one function of a name).
    batches: list[list[ast.FunctionDef | ast.AsyncFunctionDef]] = []
    for method in changed:
        batch = next((b for b in batches if all(m.name != method.name for m in b)), None)
        if batch is None:
            batches.append(batch := [])
        batch.append(method)
    made: dict[int, object] = {}
    for batch in batches:
        synthetic = copy.copy(node)  # same name: private names mangle alike
        synthetic.bases, synthetic.keywords, synthetic.decorator_list = [], [], []
        synthetic.body = [_undecorated(method) for method in batch]
        fresh_class = _define_alone(synthetic, namespace, filename, flags)
        if not isinstance(fresh_class, type):
            return None
        made.update((id(method), fresh_class.__dict__.get(method.name)) for method in batch)
    pairs = []
    for method in changed:
        member = cls.__dict__.get(method.name)
        if isinstance(member, staticmethod | classmethod):
            member = member.__func__
        elif isinstance(member, property):
            member = getattr(member, _accessor(method) or "fget")
        target = original_function(member, method.name, filename)
        fresh = made.get(id(method))
        if target is None or not _fits(fresh, target):
            return None
        pairs.append((target, fresh))
    return pairs


def _accessor(method: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """Which accessor of a property ``method`` is: ``fget`` (``@property``), ``fset``
    (``@name.setter``), ``fdel`` (``@name.deleter``); None for another method."""
    for decorator in method.decorator_list:
        if isinstance(decorator, ast.Name) and decorator.id == "property":
            return "fget"
        if (
            isinstance(decorator, ast.Attribute)
            and isinstance(decorator.value, ast.Name)
            and decorator.value.id == method.name
        ):
            return {"setter": "fset", "deleter": "fdel"}.get(decorator.attr)
    return None


def _place(methods: list[ast.FunctionDef | ast.AsyncFunctionDef], method: ast.stmt) -> int:
    return next(at for at, each in enumerate(methods) if each is method)


def _changed_methods(
    old: Statement, new: Statement, methods: list[ast.FunctionDef | ast.AsyncFunctionDef]
) -> list[ast.FunctionDef | ast.AsyncFunctionDef] | None:
    """The class's own methods whose bodies changed, when its frame text did not.

    An empty list when another body changed (a method of a nested class);
    None when the frames differ or cannot be cut: the caller compares trees.
    """
    framed = framed_alike(old, new)
    if framed is None:
        return None
    changed = changed_bodies(*framed)
    own = {id(method) for method in methods}
    return changed if all(id(function) in own for function in changed) else []


# Stands for each decorator of a definition compiled alone: the code keeps
# the first line a decorated definition has (its first decorator's), and no
# decorator runs.
_KEEP = "__muckrack_hmr_keep__"


def _undecorated(
    node: ast.FunctionDef | ast.AsyncFunctionDef,
) -> ast.FunctionDef | ast.AsyncFunctionDef:
    bare = copy.copy(node)  # shallow: the children are shared, not changed
    bare.decorator_list = [
        ast.copy_location(ast.Name(id=_KEEP, ctx=ast.Load()), decorator)
        for decorator in node.decorator_list
    ]
    return bare


def _define_alone(
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
    namespace: dict[str, object],
    filename: str,
    flags: int,
) -> object:
    """Run the definition ``node`` in a copy of the module namespace; what it defines.

    A copy: defaults and annotations evaluate as in the module, and the
    module itself is not touched.
    """
    scratch = dict(namespace)
    scratch[_KEEP] = _keep
    try:
        exec(compile_one(node, filename, flags), scratch)
    except BaseException as exc:
        raise StatementError(str(exc)) from exc
    return scratch.get(node.name)


_T = TypeVar("_T")


def _keep(function: _T) -> _T:
    return function


def _fits(fresh: object, target: types.FunctionType) -> TypeGuard[types.FunctionType]:
    """Can ``target`` take the code of ``fresh`` (see kinds.takes_code)?"""
    return isinstance(fresh, types.FunctionType) and takes_code(target.__code__, fresh.__code__)


def changes_only_closures(
    old: ast.FunctionDef | ast.AsyncFunctionDef,
    new: ast.FunctionDef | ast.AsyncFunctionDef,
    old_code: types.CodeType,
    new_code: types.CodeType,
) -> bool:
    """Does the edit change only what the closures a function returns run (a decorator's)?

    True when ``old`` and ``new`` differ only in the bodies of functions
    they define and hand back without calling them (``return inner``,
    ``inner.attr = ...``), with the same free variables.  Closures made
    before the edit are given the new code in place, so whoever called the
    function (the definitions it decorated) need not call it again.
    Compared as trees: a function compiled alone may use other opcodes.
    """
    old_nested, old_frame = _frame_of(old)
    new_nested, new_frame = _frame_of(new)
    if old_frame != new_frame or old_nested.keys() != new_nested.keys():
        return False
    changed = {name for name, body in new_nested.items() if body != old_nested[name]}
    if not changed:
        return False
    freevars = {
        const.co_name: const.co_freevars
        for const in old_code.co_consts
        if isinstance(const, types.CodeType)
    }
    for const in new_code.co_consts:
        if (
            isinstance(const, types.CodeType)
            and const.co_name in changed
            and freevars.get(const.co_name) != const.co_freevars
        ):
            return False
    return _only_handed_back(new, changed)


def closures_changed_at(
    old: ast.FunctionDef | ast.AsyncFunctionDef,
    new: ast.FunctionDef | ast.AsyncFunctionDef,
    old_code: types.CodeType,
    new_code: types.CodeType,
    *,
    deepest: int = 8,
) -> int:
    """How deep in the closures a function returns its edit lies: 0 when the function's
    own code changed, 1 when only the closures it returns did (see
    :func:`changes_only_closures`), 2 when only the closures *those* return did (a
    decorator factory's wrapper: ``def register(name): def outer(fn): def inner``), and
    so on.  ``@register("g")`` calls ``outer`` at import, one level down: with the edit
    two levels down, the definition need not run again."""
    if deepest <= 0 or not changes_only_closures(old, new, old_code, new_code):
        return 0
    old_defs = {each.name: each for each in old.body if isinstance(each, _DEFS)}
    new_defs = {each.name: each for each in new.body if isinstance(each, _DEFS)}
    if len(old_defs) != sum(isinstance(each, _DEFS) for each in old.body):
        return 1  # (a name defined twice: told apart by no name)
    old_codes = {c.co_name: c for c in old_code.co_consts if isinstance(c, types.CodeType)}
    new_codes = {c.co_name: c for c in new_code.co_consts if isinstance(c, types.CodeType)}
    below = deepest
    for name, now in new_defs.items():
        was, was_code, now_code = old_defs.get(name), old_codes.get(name), new_codes.get(name)
        if was is None or was_code is None or now_code is None:
            return 1
        if ast.dump(was) != ast.dump(now):
            below = min(
                below, closures_changed_at(was, now, was_code, now_code, deepest=deepest - 1)
            )
    return 1 + below


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _frame_of(function: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[dict[str, str], str]:
    """The bodies of the functions defined in ``function`` (by name), and the rest of it."""
    nested: dict[str, str] = {}
    frame = copy.copy(function)
    body: list[ast.stmt] = []
    for statement in function.body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            dump = ast.dump(ast.Module(body=statement.body, type_ignores=[]))
            # Defined twice: both bodies count.
            nested[statement.name] = nested.get(statement.name, "") + "\0" + dump
            blank = copy.copy(statement)
            blank.body = [ast.Pass()]
            statement = blank
        body.append(statement)
    frame.body = body
    frame.decorator_list = []
    return nested, ast.dump(frame)


def _only_handed_back(node: ast.FunctionDef | ast.AsyncFunctionDef, names: set[str]) -> bool:
    """Are ``names`` (functions defined in ``node``) never called while ``node`` runs?"""
    pending: list[tuple[ast.AST, ast.AST | None]] = [(child, None) for child in node.body]
    while pending:
        current, parent = pending.pop()
        if isinstance(current, ast.Name) and current.id in names:
            handed_back = isinstance(parent, ast.Return) or (
                isinstance(parent, ast.Attribute) and isinstance(parent.ctx, ast.Store)
            )
            if not handed_back:
                return False
        if isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            # A nested body runs later; its decorators and defaults run now.
            if not isinstance(current, ast.Lambda):
                pending.extend((decorator, current) for decorator in current.decorator_list)
            pending.append((current.args, current))
            continue
        pending.extend((child, current) for child in ast.iter_child_nodes(current))
    return True


def compile_one(node: ast.stmt, filename: str, flags: int) -> types.CodeType:
    code: types.CodeType = compile(
        ast.fix_missing_locations(ast.Module(body=[node], type_ignores=[])),
        filename,
        "exec",
        flags=flags,
        dont_inherit=True,
    )
    return code


def in_place_edit(
    statement: Statement,
    old: ModuleSummary,
    namespace: dict[str, object],
    filename: str,
    flags: int,
    *,
    several: frozenset[str],
) -> list[tuple[types.FunctionType, types.FunctionType]] | None:
    """The functions to give new bodies, when that is all the edit of ``statement`` does
    (``several``: the names several top-level ``def`` statements bind, before or after)."""
    if isinstance(statement.node, ast.ClassDef):
        return _method_bodies_edit(statement, old, namespace, filename, flags)
    pair = _body_only_edit(statement, old, namespace, filename, flags, several=several)
    return None if pair is None else [pair]
