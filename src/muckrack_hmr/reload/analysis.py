"""What each top-level statement of a module binds, reads and calls at import time.

The reloader uses this to re-run only what an edit touched:

* a statement whose text changed (or that is new) runs again;
* a statement that reads a name whose value changed, or calls a function
  whose behaviour changed, runs again, inside the module and across modules
  (``from a import LIMIT`` then ``X = LIMIT * 2``; ``TABLE = a.build()``);
* everything else keeps its state and does not run again.

Function bodies do not run at import time: what a function reads and calls
only matters when an import-time statement calls that function.
"""

from __future__ import annotations

import ast
import copy
import functools
import importlib.util
import io
import re
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass, field

from .relocation import first_line

__all__ = [
    "Frame",
    "ModuleSummary",
    "Statement",
    "changed_bodies",
    "changed_members",
    "class_bodies",
    "class_bodies_of",
    "class_methods",
    "dotted_name",
    "framed_alike",
    "method_texts",
    "optional_imports",
    "results_called",
    "same_code",
    "same_shape",
    "static_imports",
    "summarize",
    "summarize_before",
    "text_of",
]

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


@dataclass(frozen=True)
class Statement:
    """One top-level statement of a module."""

    node: ast.stmt
    text: str
    """Its source text, with its position on its lines: equal text means equal code."""
    binds: frozenset[str]
    reads: frozenset[str]
    """Names (and ``name.attr``) loaded while the statement runs at import time."""
    calls: frozenset[str]
    """Names (and ``name.attr``) called while it runs (calls, decorators)."""
    body_reads: frozenset[str]
    """For a definition: names (and ``name.attr``) its function bodies load when called."""
    body_calls: frozenset[str]

    @functools.cached_property
    def fingerprint(self) -> str:
        """``ast.dump`` without positions: equal code (moved or reformatted) gives equal ones.

        Computed when first asked for: statements are matched by their text
        first, and only the few left over by their fingerprint.
        """
        return ast.dump(self.node)

    @functools.cached_property
    def shape(self) -> str:
        """For a class: the fingerprint with method bodies left out (its structure)."""
        return _shape(self.node)

    @functools.cached_property
    def frame(self) -> Frame | None:
        """For a definition: its text with the function bodies cut out (see :class:`Frame`)."""
        return _frame(self)


@dataclass(frozen=True)
class Frame:
    """A definition's source text with its function bodies cut out, and those bodies.

    For a function, its own body; for a class, the bodies of its methods (and
    of the methods of classes nested in it).  Two definitions with equal
    frame texts differ at most in those bodies, so comparing them costs only
    the bodies whose text changed.  Cheap: it is cut from the text by the
    nodes' positions, without walking the bodies.
    """

    text: str
    functions: tuple[ast.FunctionDef | ast.AsyncFunctionDef, ...]
    bodies: tuple[str, ...]


def _frame(statement: Statement) -> Frame | None:
    node = statement.node
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return None
    segment = statement.text.split(":", 2)[2]
    if not segment.isascii():
        return None  # positions count UTF-8 bytes: cut only where they are characters
    first = first_line(node)
    starts = [0]
    for line in segment.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def offset(lineno: int, col: int) -> int:
        return starts[lineno - first] + col

    functions = _outer_functions(node)
    pieces, bodies, done = [], [], 0
    for function in functions:
        head, tail = function.body[0], function.body[-1]
        start = offset(head.lineno, head.col_offset)
        end = offset(tail.end_lineno or tail.lineno, tail.end_col_offset or 0)
        pieces.append(segment[done:start])
        bodies.append(segment[start:end])
        done = end
    pieces.append(segment[done:])
    return Frame("\0".join(pieces), tuple(functions), tuple(bodies))


def _outer_functions(node: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """The functions defined in ``node``, in source order, not looking inside functions."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return [node]
    found = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.stmt | ast.excepthandler | ast.match_case):
            found.extend(_outer_functions(child))
    return found


def _body_dump(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    return [ast.dump(statement) for statement in function.body]


def changed_bodies(old: Frame, new: Frame) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """The functions of ``new`` whose bodies differ from ``old``'s as trees (equal frames).

    Only the bodies whose text changed are compared as trees: a body that
    was only reformatted does not count.
    """
    return [
        after
        for text, new_text, before, after in zip(
            old.bodies, new.bodies, old.functions, new.functions, strict=True
        )
        if text != new_text and _body_dump(before) != _body_dump(after)
    ]


def framed_alike(a: Statement, b: Statement) -> tuple[Frame, Frame] | None:
    """Both frames, when they can be cut and their texts are equal."""
    old, new = a.frame, b.frame
    if old is None or new is None or old.text != new.text:
        return None
    return old, new


def same_code(a: Statement, b: Statement) -> bool:
    """Do two statements hold the same code (as ``ast.dump`` sees it, positions aside)?

    By text when it is equal; for definitions whose frames are equal, by the
    bodies whose text changed; else by the whole trees.
    """
    if a.text == b.text:
        return True
    if type(a.node) is not type(b.node) or getattr(a.node, "name", None) != getattr(
        b.node, "name", None
    ):
        return False
    framed = framed_alike(a, b)
    if framed is not None:
        return not changed_bodies(*framed)
    return a.fingerprint == b.fingerprint


def same_shape(a: Statement, b: Statement) -> bool:
    """Do two class statements have the same structure (method bodies aside)?"""
    return framed_alike(a, b) is not None or a.shape == b.shape


# Methods that make or set up instances and subclasses: how a class is built and
# used to build is part of its structure (the other methods are its behaviour).
_BUILDING = frozenset(
    {
        "__init__",
        "__new__",
        "__post_init__",
        "__init_subclass__",
        "__set_name__",
        "__class_getitem__",
    }
)
# Decorators of methods that make nothing but the class's own attribute.
_PLAIN_DECORATORS = frozenset(
    {
        "property",
        "setter",
        "getter",
        "deleter",
        "classmethod",
        "staticmethod",
        "cached_property",
        "override",
        "overload",
    }
)


def _plain_member(node: ast.stmt) -> str | None:
    """The attribute a class-body statement binds when that is all it does: a method
    (not one that builds instances or subclasses, nor one a decorator registers or
    marks, such as ``@abstractmethod``), or ``NAME = value`` (not a field: annotated;
    nor a ``__dunder__`` a framework reads)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        if node.name in _BUILDING:
            return None
        for decorator in node.decorator_list:
            if isinstance(decorator, ast.Call):
                return None
            last = decorator.attr if isinstance(decorator, ast.Attribute) else None
            if isinstance(decorator, ast.Name):
                last = decorator.id
            if last not in _PLAIN_DECORATORS:
                return None
        return node.name
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        if isinstance(target, ast.Name) and not (
            target.id.startswith("__") and target.id.endswith("__")
        ):
            return target.id
    return None


def changed_members(a: Statement, b: Statement) -> set[str] | None:
    """The attributes that differ between two statements of one plain class, when the
    class differs in nothing else; None when it does.

    A method added or removed, or ``NAME = value`` added, removed or changed
    (or reading one that did), is a member; a method whose body or signature
    changed is none (it is patched in place).  Bases, keywords, decorators,
    fields, nested classes and the methods that build instances are the
    class's structure.
    """
    if same_shape(a, b):
        return set()
    before, after = _members(a.node), _members(b.node)
    if before is None or after is None or before[0] != after[0]:
        return None
    old, new = before[1], after[1]
    changed = {name for name in old.keys() | new.keys() if old.get(name) != new.get(name)}
    reads = after[2]
    while True:
        more = {name for name, read in reads.items() if name not in changed and read & changed}
        if not more:
            return changed
        changed |= more


def _members(node: ast.stmt) -> tuple[str, dict[str, str], dict[str, set[str]]] | None:
    """A class statement's structure (see changed_members), its plain members (each
    name to what binds it: a method's header, an attribute's value), and the names
    each attribute's value reads."""
    if not isinstance(node, ast.ClassDef):
        return None
    members: dict[str, str] = {}
    reads: dict[str, set[str]] = {}
    kept: list[ast.stmt] = []
    for child in node.body:
        if isinstance(child, ast.Pass) or (
            isinstance(child, ast.Expr) and isinstance(child.value, ast.Constant)
        ):
            continue  # ``pass``, ``...``, the docstring
        name = _plain_member(child)
        if name is None:
            kept.append(child)
            continue
        if isinstance(child, ast.Assign):
            bound = ast.dump(child.value)
            reads.setdefault(name, set()).update(
                each.id for each in ast.walk(child.value) if isinstance(each, ast.Name)
            )
        else:
            bound = "def"  # (a property's getter and setter: twice)
        members[name] = members[name] + "\0" + bound if name in members else bound
    outline = copy.copy(node)  # the same fields on every Python (``type_params``...)
    outline.body = kept or [ast.Pass()]
    tree = ast.parse(ast.unparse(outline)).body[0]  # a copy: bodies are cut below
    for each in ast.walk(tree):
        if isinstance(each, ast.FunctionDef | ast.AsyncFunctionDef):
            each.body = [ast.Pass()]
    return ast.dump(tree), members, reads


@dataclass
class ModuleSummary:
    """A module's top-level statements, and what its imports bind."""

    statements: list[Statement]
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    """Local name -> (module, attribute), or (module, None) for the module itself;
    ``"*module"`` -> (module, "*") for ``from module import *``."""


class _Collector(ast.NodeVisitor):
    """Collects import-time reads and calls, and call-time ones of nested bodies."""

    def __init__(self) -> None:
        self.reads: set[str] = set()
        self.calls: set[str] = set()
        self.body_reads: set[str] = set()
        self.body_calls: set[str] = set()
        self.binds: set[str] = set()
        self.depth = 0  # > 0 inside a function body

    def _read(self, name: str) -> None:
        (self.body_reads if self.depth else self.reads).add(name)

    def _call(self, name: str) -> None:
        (self.body_calls if self.depth else self.calls).add(name)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._read(node.id)
        elif not self.depth:
            self.binds.add(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain = dotted_name(node)
        if chain is not None and isinstance(node.ctx, ast.Load):
            # ``a.b.c`` reads a, a.b and a.b.c: a change to any of them counts.
            parts = chain.split(".")
            for end in range(2, len(parts) + 1):
                self._read(".".join(parts[:end]))
            self._read(parts[0])
            return
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        # ``V += x`` reads ``V`` (``INSTALLED += [...]`` below ``from .base import *``
        # runs again when base's list changed); ``a.b += x`` reads ``a.b``.
        target = node.target
        if isinstance(target, ast.Name):
            self._read(target.id)
        elif isinstance(target, ast.Attribute):
            chain = dotted_name(target)
            if chain is not None:
                parts = chain.split(".")
                for end in range(1, len(parts) + 1):
                    self._read(".".join(parts[:end]))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        self._callee(node.func)
        self.generic_visit(node)

    def _callee(self, func: ast.expr) -> None:
        chain = dotted_name(func)
        if chain is not None:
            self._call(chain)

    def _definition_header(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        # Decorators, defaults and annotations are evaluated when the def runs.
        for decorator in node.decorator_list:
            self._callee(decorator)
            self.visit(decorator)
        self.visit(node.args)
        if node.returns is not None:
            self.visit(node.returns)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._function(node)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if not self.depth:
            self.binds.add(node.name)
        self._definition_header(node)
        self.depth += 1
        for statement in node.body:
            self.visit(statement)
        self.depth -= 1

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.visit(node.args)
        self.depth += 1
        self.visit(node.body)
        self.depth -= 1

    def visit_arguments(self, node: ast.arguments) -> None:
        for default in [*node.defaults, *node.kw_defaults]:
            if default is not None:
                self.visit(default)
        for arg in [*node.posonlyargs, *node.args, *node.kwonlyargs, node.vararg, node.kwarg]:
            if arg is not None and arg.annotation is not None:
                self.visit(arg.annotation)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if not self.depth:
            self.binds.add(node.name)
        for decorator in node.decorator_list:
            self._callee(decorator)
            self.visit(decorator)
        for base in node.bases:
            self.visit(base)
        for keyword in node.keywords:
            self.visit(keyword)
        # A class body runs at import time; the class's own names are local
        # to it, so they are not module bindings.
        binds = self.binds
        self.binds = set()
        for statement in node.body:
            self.visit(statement)
        self.binds = binds

    def visit_Import(self, node: ast.Import) -> None:
        if not self.depth:
            for alias in node.names:
                self.binds.add(alias.asname or alias.name.partition(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if not self.depth:
            for alias in node.names:
                if alias.name != "*":
                    self.binds.add(alias.asname or alias.name)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name and not self.depth:
            self.binds.add(node.name)
        self.generic_visit(node)


def results_called(node: ast.stmt) -> dict[str, int]:
    """What a top-level statement calls and then calls what that returned, at once, and
    how many times over: ``register`` in ``@register("tag")`` (the decorator it returns
    is called on the def: 1), ``three`` in ``@three(1)(2)`` (2), ``factory`` in
    ``factory(1)(2)`` (1).  Function bodies are not looked into; a class body's
    statements (its methods' decorators) run at import, and are."""
    found: dict[str, int] = {}

    def note(call: ast.Call, applied: int) -> None:
        layers = 1
        func = call.func
        while isinstance(func, ast.Call):
            layers += 1
            func = func.func
        name = dotted_name(func)
        if name and layers - 1 + applied > 0:
            found[name] = max(found.get(name, 0), layers - 1 + applied)

    pending: list[ast.AST] = [node]
    while pending:
        each = pending.pop()
        if isinstance(each, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for decorator in each.decorator_list:
                if isinstance(decorator, ast.Call):
                    note(decorator, 1)  # (what it returns is applied to the def)
            pending.extend(each.decorator_list)
            if isinstance(each, ast.ClassDef):
                pending.extend(each.bases)
                pending.extend(each.body)
            continue
        if isinstance(each, ast.Lambda):
            continue
        if isinstance(each, ast.Call) and isinstance(each.func, ast.Call):
            note(each, 0)
        pending.extend(ast.iter_child_nodes(each))
    return found


def dotted_name(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of attributes on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _shape(node: ast.stmt) -> str:
    """The structure of a class: its text with every method body left out."""
    if not isinstance(node, ast.ClassDef):
        return ""
    copy = ast.parse(ast.unparse(node)).body[0]
    for child in ast.walk(copy):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            child.body = [ast.Pass()]
    return ast.dump(copy)


def _imports(tree: ast.Module, package: str | None) -> dict[str, tuple[str, str | None]]:
    found: dict[str, tuple[str, str | None]] = {}
    pending: list[ast.AST] = list(tree.body)
    while pending:
        child = pending.pop(0)
        if isinstance(child, (*_FUNCTIONS, ast.ClassDef)):
            continue  # imports in a body bind local names
        if isinstance(child, ast.Import):
            for alias in child.names:
                if alias.asname:
                    found[alias.asname] = (alias.name, None)
                else:
                    top = alias.name.partition(".")[0]
                    found[top] = (top, None)
        elif isinstance(child, ast.ImportFrom):
            source = _absolute(child, package)
            if source is not None:
                for alias in child.names:
                    if alias.name != "*":
                        found[alias.asname or alias.name] = (source, alias.name)
                    else:
                        # Which names it binds is known once ``source`` runs
                        # (see incremental.bindings_of); no name can clash.
                        found["*" + source] = (source, "*")
        else:
            pending.extend(
                node
                for node in ast.iter_child_nodes(child)
                if isinstance(node, ast.stmt | ast.excepthandler | ast.match_case)
            )
    return found


def static_imports(
    statements: Iterable[Statement], package: str | None
) -> tuple[set[str], set[tuple[str, str]]]:
    """What the import statements among ``statements`` import, at any depth.

    The modules (``import a.b`` imports ``a`` and ``a.b``; ``from a import b``
    imports ``a``, and ``a.b`` when that is a submodule) and the
    ``(module, name)`` pairs that ``from module import name`` binds.
    """
    modules: set[str] = set()
    names: set[tuple[str, str]] = set()
    for statement in statements:
        for node in ast.walk(statement.node):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    modules.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(node, package)
                if source is None:
                    continue
                modules.add(source)
                for alias in node.names:
                    modules.add(f"{source}.{alias.name}")
                    names.add((source, alias.name))
    return modules, names


def class_bodies(summary: ModuleSummary) -> dict[str, frozenset[str]]:
    """The names each class statement of the module binds in its own body, by the class's
    qualified name (``Outer.Inner`` too): what else a class holds was set on it from
    outside (a related model's reverse accessor, a registry's mark)."""
    found: dict[str, frozenset[str]] = {}
    for statement in summary.statements:
        if isinstance(statement.node, ast.ClassDef):
            found.update(class_bodies_of(statement.node))
    return found


def class_bodies_of(node: ast.ClassDef, prefix: str = "") -> dict[str, frozenset[str]]:
    """:func:`class_bodies` of one class statement (and the classes in its body)."""
    found: dict[str, frozenset[str]] = {}
    pending = [(prefix, node)]
    while pending:
        outer, each_class = pending.pop()
        qualname = outer + each_class.name
        names: set[str] = set()
        for each in each_class.body:
            if isinstance(each, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(each.name)
                if isinstance(each, ast.ClassDef):
                    pending.append((qualname + ".", each))
                continue
            for child in ast.walk(each):
                if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                    names.add(child.id)
                elif isinstance(child, ast.alias):
                    names.add((child.asname or child.name).partition(".")[0])
                elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    names.add(child.name)
        # ``__secret = 1`` is the class's ``_Post__secret``.
        mangled = "_" + each_class.name.lstrip("_")
        names.update(
            mangled + name
            for name in list(names)
            if name.startswith("__") and not name.endswith("__")
        )
        found[qualname] = frozenset(names)
    return found


# What ``except`` catches a failed import: ImportError, its subclass, or anything.
_CATCH_IMPORTS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


def optional_imports(statements: list[Statement], package: str | None) -> list[set[str]]:
    """For each of ``statements``, the modules it imports in a ``try`` whose ``except``
    catches a failed import (``try: from .local import *`` / ``except ImportError:``):
    a module missing as it ran, whose file may come later.  Names of what ``from pkg
    import x`` binds count too (``pkg.x`` may be a submodule)."""
    found: list[set[str]] = []
    for statement in statements:
        modules: set[str] = set()
        pending: list[ast.AST] = [statement.node]
        while pending:
            node = pending.pop()
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue  # (runs later, or is its own statement's business)
            if isinstance(node, ast.Try) and any(_catches_imports(h) for h in node.handlers):
                for inner in node.body:
                    for each in ast.walk(inner):
                        if isinstance(each, ast.Import):
                            modules.update(alias.name for alias in each.names)
                        elif isinstance(each, ast.ImportFrom):
                            source = _absolute(each, package)
                            if source is not None:
                                modules.add(source)
                                modules.update(
                                    f"{source}.{alias.name}"
                                    for alias in each.names
                                    if alias.name != "*"
                                )
            for field_name in ("body", "orelse", "handlers", "finalbody"):
                pending.extend(
                    child
                    for child in getattr(node, field_name, ())
                    if isinstance(child, ast.stmt | ast.excepthandler)
                )
        found.append(modules)
    return found


def _catches_imports(handler: ast.excepthandler) -> bool:
    caught = getattr(handler, "type", None)
    if caught is None:
        return True  # a bare ``except:``
    names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
    return any(
        (each.attr if isinstance(each, ast.Attribute) else getattr(each, "id", None))
        in _CATCH_IMPORTS
        for each in names
    )


def _absolute(node: ast.ImportFrom, package: str | None) -> str | None:
    """The module a ``from ... import`` names, relative levels resolved."""
    source = node.module or ""
    if not node.level:
        return source
    if not package:
        return None
    bits = package.rsplit(".", node.level - 1)
    if len(bits) < node.level:
        return None
    return f"{bits[0]}.{source}" if source else bits[0]


def text_of(source: bytes) -> str:
    """The text of a module's source, as its coding line (or UTF-8) says.

    Python compiles a file whose comments hold bytes that are no text of that
    encoding (a latin-1 ``é`` in a comment, no coding line): such bytes read as
    U+FFFD here, where decoding failed and the module could never be reloaded
    (a string holding one does not compile).
    """
    try:
        return importlib.util.decode_source(source)
    except UnicodeDecodeError as exc:
        try:
            ast.parse(source)  # as python reads the bytes
        except SyntaxError:
            raise exc from None  # in a string, say: no code (the reloader says where)
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
        text = source.decode(encoding, "replace")
        return text.replace("\r\n", "\n").replace("\r", "\n")


def class_methods(
    node: ast.ClassDef, prefix: str = ""
) -> dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]]:
    """The methods of a class statement and of the classes nested in it, by qualified name
    (``K.build``, ``Outer.Inner.make``; a name defined twice, a property's getter and
    setter: both)."""
    found: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
    owner = f"{prefix}{node.name}."
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            found.setdefault(owner + item.name, []).append(item)
        elif isinstance(item, ast.ClassDef):
            found.update(class_methods(item, owner))
    return found


def method_texts(statement: Statement) -> dict[str, str]:
    """The source text of each of :func:`class_methods` (a name defined twice: its texts
    together).  Equal text is equal code, wherever the method moved; taken from the
    statement's own text, in microseconds where comparing the trees of a big class took
    milliseconds."""
    node = statement.node
    assert isinstance(node, ast.ClassDef)
    lines = statement.text.split(":", 2)[2].splitlines(keepends=True)
    top = first_line(node)
    return {
        name: "".join(
            "".join(lines[first_line(each) - top : (each.end_lineno or each.lineno) - top + 1])
            for each in defs
        )
        for name, defs in class_methods(node).items()
    }


def _future_first(tree: ast.Module, filename: str, lines: list[str]) -> None:
    """Raise the compiler's SyntaxError for a ``from __future__`` import after other code:
    the parse alone lets it by, and the module's statements run one by one (``import os``
    saved above ``from __future__ import annotations`` was applied, where python fails)."""
    others = False
    for at, node in enumerate(tree.body):
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            if others:
                line = lines[node.lineno - 1] if node.lineno <= len(lines) else None
                raise SyntaxError(
                    "from __future__ imports must occur at the beginning of the file",
                    (filename, node.lineno, node.col_offset + 1, line),
                )
        elif not (
            at == 0
            and isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            others = True  # (a docstring first is no other code)


def summarize(
    source: bytes | str,
    filename: str,
    package: str | None,
    previous: ModuleSummary | None = None,
) -> ModuleSummary:
    """Parse ``source`` (raises SyntaxError) and describe its top-level statements.

    What a statement binds, reads and calls depends on its code alone: the
    statements of ``previous`` (the same module before an edit) with the
    same text are not analyzed again.
    """
    tree = ast.parse(source, filename)
    text = text_of(source) if isinstance(source, bytes) else source
    lines = text.splitlines(keepends=True)
    _future_first(tree, filename, lines)
    known = {} if previous is None else {s.text: s for s in previous.statements}
    statements = []
    for node in tree.body:
        first = first_line(node)
        segment = "".join(lines[first - 1 : node.end_lineno])
        key = f"{node.col_offset}:{node.end_col_offset}:{segment}"
        twin = known.get(key)
        if twin is not None:
            statements.append(
                Statement(
                    node,
                    key,
                    twin.binds,
                    twin.reads,
                    twin.calls,
                    twin.body_reads,
                    twin.body_calls,
                )
            )
            continue
        collector = _Collector()
        collector.visit(node)
        statements.append(
            Statement(
                node=node,
                text=key,
                binds=frozenset(collector.binds),
                reads=frozenset(collector.reads),
                calls=frozenset(collector.calls),
                body_reads=frozenset(collector.body_reads),
                body_calls=frozenset(collector.body_calls),
            )
        )
    return ModuleSummary(statements, _imports(tree, package))


# Line breaks that str.splitlines honours and the parser does not: with one
# of them in the text, lines would not be counted as ast counts them.
_ODD_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def summarize_before(
    source: bytes,
    filename: str,
    package: str | None,
    after: ModuleSummary,
    after_source: bytes,
) -> ModuleSummary:
    """:func:`summarize` of ``source``, the module before an edit that gave ``after_source``.

    The first edit of a module compares what ran (not parsed yet) with the
    edit (parsed already, to check it): only the lines that differ are
    parsed, with the statements around them.  A statement of the edited
    text ends before the first changed line when the next one starts there
    too (the text up to it is the same, so it is tokenized the same); one
    that starts after the last changed line is the same when the lines in
    between parse on their own (no bracket, string or line continuation
    open at their end) and nothing moved.  Anything else is parsed whole.
    """
    text = text_of(source)
    after_text = text_of(after_source)
    if _ODD_BREAKS.search(text) or _ODD_BREAKS.search(after_text):
        return summarize(source, filename, package, after)
    lines = text.splitlines(keepends=True)
    after_lines = after_text.splitlines(keepends=True)
    limit = min(len(lines), len(after_lines))
    same_head = 0  # lines equal from the top
    while same_head < limit and lines[same_head] == after_lines[same_head]:
        same_head += 1
    same_tail = 0  # lines equal from the bottom, not overlapping those
    while same_tail < limit - same_head and lines[-1 - same_tail] == after_lines[-1 - same_tail]:
        same_tail += 1
    statements = after.statements
    starts = [first_line(statement.node) for statement in statements]
    head = 0  # statements[:head] are the same, at the same lines
    while head + 1 < len(statements) and starts[head + 1] <= same_head:
        head += 1
    moved = len(lines) - len(after_lines)
    tail = len(statements)  # statements[tail:] too, when nothing moved
    if not moved:
        while tail > head and starts[tail - 1] > len(after_lines) - same_tail:
            tail -= 1
    first = statements[head - 1].node.end_lineno + 1 if head else 1  # type: ignore[operator]
    last = starts[tail] - 1 if tail < len(statements) else len(lines)
    middle: list[Statement] = []
    if last >= first:
        # Blank lines before the chunk: the parser numbers its lines as the file does.
        chunk = "\n" * (first - 1) + "".join(lines[first - 1 : last])
        try:
            middle = summarize(chunk, filename, package, after).statements
        except SyntaxError:
            # Not a whole run of statements on its own (a bracket opened
            # before, a string that goes on after): the module whole.
            return summarize(source, filename, package, after)
    kept = [*statements[:head], *middle, *statements[tail:]]
    tree = ast.Module(body=[statement.node for statement in kept], type_ignores=[])
    return ModuleSummary(kept, _imports(tree, package))
