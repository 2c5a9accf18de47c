"""Classes that must not be made a second time: the models an ORM has mapped.

An edited ``class`` statement that changes more than method bodies runs again:
it makes a new class, which is patched into the live one (see :mod:`.patching`).
For a class that SQLAlchemy has mapped, a second class is not harmless.
SQLAlchemy registers it by name, then refuses it ("Table 'items' is already
defined for this MetaData instance"), and from then on every query that names
the model fails ("Multiple classes found for path 'Item'"): the failed edit
would be half applied, for good.

So the class statement of a mapped class never runs again.  An edit that only
adds, changes or removes methods (properties, class- and staticmethods,
hybrids included) defines those alone, in a class of the same name, and sets
them on the live class, through the ORM's own ``setattr``.  Every other edit of
it (a column, the table's name or arguments, its bases, a class attribute)
is refused, before it runs: it needs the mapper made again, and maybe a
migration.
"""

from __future__ import annotations

import ast
import types
from collections.abc import Callable

from .analysis import ModuleSummary, Statement
from .body_edits import StatementError, compile_one
from .patching import PatchReport, patch_function_now
from .refusals import Refusal

__all__ = ["SQLALCHEMY_MODEL", "is_kept", "kept_class_edit"]

#: A model SQLAlchemy mapped changed more than its methods.
SQLALCHEMY_MODEL = "sqlalchemy model"

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)
_MISSING = object()


# What SQLAlchemy puts in a class it mapped, and in a declarative base (whose class
# statement run again would make a second registry and MetaData for the same tables).
_ORM_MARKS = ("_sa_class_manager", "_sa_registry")


def is_kept(cls: object) -> bool:
    """Is ``cls`` a class whose statement must not run again (SQLAlchemy mapped it, or
    it is a declarative base)?"""
    return isinstance(cls, type) and any(mark in cls.__dict__ for mark in _ORM_MARKS)


def kept_class_edit(
    statement: Statement,
    old: ModuleSummary,
    namespace: dict[str, object],
    filename: str,
    flags: int,
    *,
    edited: bool,
    values: set[str],
) -> tuple[PatchReport, Callable[[], None]] | None:
    """For a kept class whose statement would run again: its edit applied to the live
    class (what was done, and its undo), or refused (the report says why).

    None when the class is not a kept one: its statement runs again as any other.
    """
    node = statement.node
    if not isinstance(node, ast.ClassDef):
        return None
    cls = namespace.get(node.name)
    module = namespace.get("__name__")
    if (
        not is_kept(cls)
        or not isinstance(module, str)
        or getattr(cls, "__module__", None) != module
    ):
        return None
    assert isinstance(cls, type)
    previous = next(
        (
            each.node
            for each in old.statements
            if isinstance(each.node, ast.ClassDef) and each.node.name == node.name
        ),
        None,
    )
    qualified = f"{module}.{cls.__qualname__}"
    changed = _changed_attributes(previous, node) if edited else []
    if not changed:
        # What makes the mapping (bases, columns...) reads a name that changed?
        read = _reads([*node.bases, *node.keywords, *node.decorator_list, *_attributes(node)])
        if read & values:
            changed = [f"read {', '.join(sorted(read & values))}, which changed"]
    if changed:
        return _refused(
            module,
            f"{qualified} {', '.join(changed)}",
            "its mapping is made once; a migration may be needed",
        )
    assert previous is not None
    return _apply_methods(
        previous,
        node,
        cls,
        module=module,
        namespace=namespace,
        filename=filename,
        flags=flags,
        values=values,
    )


def _reads(nodes: list[ast.AST]) -> set[str]:
    """The names these nodes read (``hybrid_property`` in ``@hybrid_property``)."""
    return {
        each.id
        for node in nodes
        for each in ast.walk(node)
        if isinstance(each, ast.Name) and isinstance(each.ctx, ast.Load)
    }


def _nothing() -> None:
    pass


def _refused(module: str, what: str, fix: str) -> tuple[PatchReport, Callable[[], None]]:
    """The edit of a model, refused before anything of it applied (no undo)."""
    return PatchReport(refused=[Refusal(SQLALCHEMY_MODEL, module, what, fix)]), _nothing


def _changed_attributes(previous: ast.ClassDef | None, node: ast.ClassDef) -> list[str]:
    """What the edit changed besides methods, each with its verb (empty: only methods)."""
    if previous is None:
        return ["changed its definition"]
    changed = [
        f"changed its {part.replace('_list', 's')}"
        for part in ("bases", "keywords", "decorator_list")
        if [ast.dump(each) for each in getattr(previous, part)]
        != [ast.dump(each) for each in getattr(node, part)]
    ]
    before, after = _attributes(previous), _attributes(node)
    if [ast.dump(each) for each in before] == [ast.dump(each) for each in after]:
        return changed
    kept = {ast.dump(each) for each in before} & {ast.dump(each) for each in after}
    old = {name for each in before if ast.dump(each) not in kept for name in _targets(each)}
    new = {name for each in after if ast.dump(each) not in kept for name in _targets(each)}
    for verb, names in (("gained", new - old), ("lost", old - new), ("changed", old & new)):
        if names:
            changed.append(f"{verb} {', '.join(sorted(names))}")
    return changed or ["changed its class body"]


def _attributes(node: ast.ClassDef) -> list[ast.stmt]:
    """The statements of a class body other than its methods, its docstring and ``pass``."""
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return [each for each in body if not isinstance(each, (*_DEFS, ast.Pass))]


def _targets(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Assign):
        return [target.id for target in node.targets if isinstance(target, ast.Name)]
    if isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    if isinstance(node, ast.ClassDef):
        return [node.name]
    return []


def _groups(node: ast.ClassDef) -> dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]]:
    """The class's methods by name (a property and its setter share one), in order."""
    groups: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
    for child in node.body:
        if isinstance(child, _DEFS):
            groups.setdefault(child.name, []).append(child)
    return groups


def _apply_methods(
    previous: ast.ClassDef,
    node: ast.ClassDef,
    cls: type,
    *,
    module: str,
    namespace: dict[str, object],
    filename: str,
    flags: int,
    values: set[str],
) -> tuple[PatchReport, Callable[[], None]]:
    before, after = _groups(previous), _groups(node)
    dumps = {name: [ast.dump(each) for each in defs] for name, defs in before.items()}
    # Edited, new, or decorated by a name that changed (an import made anew).
    changed = [
        name
        for name, defs in after.items()
        if [ast.dump(each) for each in defs] != dumps.get(name)
        or _reads([decorator for each in defs for decorator in each.decorator_list]) & values
    ]
    removed = [name for name in before if name not in after]
    methods = [each for name in changed for each in after[name]]
    fresh = (
        _define_methods(node, methods, cls, namespace=namespace, filename=filename, flags=flags)
        if methods
        else {}  # only removed ones
    )
    hooks = sorted(
        name
        for name in [*changed, *removed]
        if _mapper_marks(fresh.get(name)) != _mapper_marks(cls.__dict__.get(name))
    )
    if hooks:
        # ``@validates``, ``@reconstructor``: the mapper read them as it mapped the class.
        what = f"{module}.{cls.__qualname__} changed its mapper hooks ({', '.join(hooks)})"
        return _refused(module, what, "its mapping is made once")
    report = PatchReport()
    undo: list[Callable[[], None]] = []
    try:
        for name in changed:
            value = fresh.get(name, _MISSING)
            if value is _MISSING:
                continue
            current = cls.__dict__.get(name, _MISSING)
            if isinstance(current, types.FunctionType) and isinstance(value, types.FunctionType):
                done = patch_function_now(module, current, value)
                if done is not None:
                    report.patched.extend(done[0].patched)
                    undo.append(done[1])
                    continue
            undo.append(_restorer(cls, name, current))
            setattr(cls, name, value)  # the ORM's own setattr, which may note it
        for name in removed:
            current = cls.__dict__.get(name, _MISSING)
            if current is not _MISSING:
                undo.append(_restorer(cls, name, current))
                delattr(cls, name)
    except Exception as exc:
        for action in reversed(undo):
            action()
        raise StatementError(f"patching class {cls.__name__} failed: {exc}") from exc
    if changed or removed:
        report.patched.append(f"{module}.{cls.__qualname__}")

    def revert() -> None:
        for action in reversed(undo):
            action()

    return report, revert


def _define_methods(
    node: ast.ClassDef,
    methods: list[ast.FunctionDef | ast.AsyncFunctionDef],
    cls: type,
    *,
    namespace: dict[str, object],
    filename: str,
    flags: int,
) -> dict[str, object]:
    """The methods defined alone, decorators and all, in a plain class of the same name
    (private names mangle alike); ``super()`` and ``__class__`` in them mean ``cls``.

    Their class body starts with the live class's members bound, as the class
    statement's does: a decorator may name one (``@name.inplace.setter`` on a
    method of another name, SQLAlchemy's way for a hybrid's setter).
    """
    members_name = "__hmr_members__"
    synthetic = ast.ClassDef(
        name=node.name,
        bases=[],
        keywords=[
            ast.keyword(arg="metaclass", value=ast.Name(id="__hmr_prepared__", ctx=ast.Load())),
            ast.keyword(arg="members", value=ast.Name(id=members_name, ctx=ast.Load())),
        ],
        body=list(methods),
        decorator_list=[],
    )
    if "type_params" in ast.ClassDef._fields:  # 3.12 and later
        setattr(synthetic, "type_params", [])  # noqa: B010 (not in 3.10's stubs)
    ast.copy_location(synthetic, node)
    ast.fix_missing_locations(synthetic)
    scratch = dict(namespace)
    scratch["__hmr_prepared__"] = _Prepared
    scratch[members_name] = {
        key: value
        for key, value in vars(cls).items()
        if not (key.startswith("__") and key.endswith("__"))
    }
    try:
        exec(compile_one(synthetic, filename, flags), scratch)
    except BaseException as exc:
        raise StatementError(str(exc)) from exc
    made = scratch[node.name]
    assert isinstance(made, type)
    members = {name: made.__dict__[name] for name in {m.name for m in methods}}
    for value in members.values():
        for function in _functions_of(value):
            for cell in function.__closure__ or ():
                try:
                    if cell.cell_contents is made:
                        cell.cell_contents = cls
                except ValueError:
                    continue
    return members


def _mapper_marks(value: object) -> list[tuple[str, str]]:
    """What SQLAlchemy's method decorators (``@validates``, ``@reconstructor``) noted
    on the functions of a member, for its mapper to find as it maps the class."""
    return sorted(
        (key, repr(mark))
        for function in _functions_of(value)
        for key, mark in vars(function).items()
        if key.startswith("__sa_")
    )


class _Prepared(type):
    """The metaclass of the class that defines methods alone: its body starts with the
    ``members`` given bound (see _define_methods)."""

    @classmethod
    def __prepare__(  # type: ignore[override]
        mcs, name: str, bases: tuple[type, ...], *, members: dict[str, object]
    ) -> dict[str, object]:
        return dict(members)

    def __new__(
        mcs, name: str, bases: tuple[type, ...], body: dict[str, object], **_: object
    ) -> _Prepared:
        return super().__new__(mcs, name, bases, body)

    def __init__(cls, name: str, bases: tuple[type, ...], body: dict[str, object], **_: object):
        super().__init__(name, bases, body)


def _functions_of(value: object) -> list[types.FunctionType]:
    found: list[types.FunctionType] = []
    pending = [value]
    seen: set[int] = set()
    while pending:
        each = pending.pop()
        if id(each) in seen or len(seen) > 16:
            continue
        seen.add(id(each))
        if isinstance(each, types.FunctionType):
            found.append(each)
        elif isinstance(each, property):
            pending.extend(part for part in (each.fget, each.fset, each.fdel) if part is not None)
        elif isinstance(each, staticmethod | classmethod):
            pending.append(each.__func__)
        for name in ("__wrapped__", "fget", "fset", "fdel", "__func__", "func", "expr"):
            inner = getattr(each, name, None) if not isinstance(each, types.FunctionType) else None
            if inner is not None:
                pending.append(inner)
    return found


def _restorer(cls: type, name: str, value: object) -> Callable[[], None]:
    def restore() -> None:
        if value is _MISSING:
            if name in cls.__dict__:
                delattr(cls, name)
        else:
            setattr(cls, name, value)

    return restore
