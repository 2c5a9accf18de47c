"""Re-running only the top-level statements that an edit touched.

Given a module's statements before and after an edit (or the same statements
when only its imports changed), :func:`plan_and_run` runs, in source order,
exactly the statements that must run again:

* a statement whose text changed, or that is new;
* a statement that reads a name whose value changed, or calls a function
  whose behaviour changed (directly, or through the module's own functions
  it calls), in this module or in a module it imports;
* a ``from x import name`` whose source value changed (it rebinds).

A statement that only moved (same code, other lines) does not run again: what
it defined takes its new line numbers.  A call the edit removed
(:func:`removed_calls`) cannot be undone: the reloader says so.

It reports which names changed value (a new object) and which changed
behaviour (a function patched with new code, or that calls one), which is
what the module's dependents consume.
"""

from __future__ import annotations
import __future__

import abc
import ast
import bisect
import contextlib
import functools
import gc
import importlib.util
import inspect
import re
import sys
import types
import weakref
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from .analysis import (
    ModuleSummary,
    Statement,
    changed_members,
    class_bodies_of,
    class_methods,
    dotted_name,
    framed_alike,
    method_texts,
    results_called,
    same_code,
)
from .body_edits import (
    StatementError,
    closures_changed_at,
    compile_one,
    in_place_edit,
    original_function,
    same_last_def,
)
from .in_place import (
    REFILLED,
    Kept,
    Touched,
    aliased,
    changed_names,
    filled_in_functions,
    filled_names,
    give_items,
)
from .kept_classes import kept_class_edit
from .kinds import CACHE_WRAPPER, is_a
from .live_defs import (
    Holders,
    drop_entries_again,
    live_function,
    note_defs_again,
    note_run,
    run_on_live,
    start_module_run,
)
from .patching import BodyPatch, PatchReport, may_register, patch_class_now, set_code
from .rebinding import star_exports
from .relocation import (
    align_class,
    align_exactly,
    align_function,
    class_functions,
    first_line,
    shift_code,
)
from .running import read_by_running_code

__all__ = [
    "ChangeSet",
    "Changes",
    "Consumption",
    "StatementError",
    "bound_names",
    "consumption_of",
    "match_statements",
    "paused_in",
    "plan_and_run",
    "read_by_paused",
    "refill_containers",
    "removed_calls",
    "spelled_names",
    "translate_incoming",
    "translate_kept_classes",
    "undo_run",
]

_MISSING = object()
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_PLAIN_VALUES = (int, float, complex, str, bytes, bool, type(None), tuple, frozenset)


#: What marks, in ``Changes.rewrapped``, a function whose results' returned closures alone
#: changed (``register`` + RESULTS for ``def register(name): def outer(fn): def inner``),
#: once per level (+ RESULTS * 2: what those return returns only closures that changed).
RESULTS = "()"


@dataclass
class Changes:
    """What changed in one module during a reload."""

    values: set[str] = field(default_factory=set)
    """Names now bound to another object (constants, containers, refused patches...)."""
    behaviors: set[str] = field(default_factory=set)
    """Functions (patched in place) whose behaviour changed, directly or through calls."""
    rewrapped: set[str] = field(default_factory=set)
    """Of ``behaviors``: functions whose edit changed only the closures they return (a
    decorator's wrapper).  The closures are patched in place: whoever called them
    keeps what it got, and what it got behaves differently.  With ``name`` + RESULTS
    too when the closures it changed change, in turn, only those they return (a
    decorator factory's wrapper): ``@register("g")`` need not run again."""
    old: dict[str, object] = field(default_factory=dict)
    """The namespace before the reload (to rebind ``from module import name`` elsewhere)."""
    executed: int = 0
    """How many top-level statements ran (or function bodies were replaced)."""
    body_patches: list[BodyPatch] = field(default_factory=list)
    """Old functions given a new body (with their old code and docstring)."""
    live_patches: list[tuple[PatchReport, Callable[[], None]]] = field(default_factory=list)
    """Live classes and functions given their new definition as their statement ran,
    and the undo of each."""
    relocated: list[tuple[types.FunctionType, types.CodeType]] = field(default_factory=list)
    """(function given new line numbers, its old code): for the undo only."""
    kept: Kept = field(default_factory=Kept)
    """What the statements that ran changed in place, as it was: for the undo only."""
    refills: list[tuple[object, object]] = field(default_factory=list)
    """(live container, the new one made in its place): see :func:`refill_containers`."""
    applied: bool = False
    """Whether anything was done to the module (statements ran, or names were removed)."""
    removed: set[str] = field(default_factory=set)
    """Names the edit no longer binds, deleted from the namespace (``old`` has what
    they held)."""
    lingering: dict[str, object] = field(default_factory=dict)
    """Of those, the ones a call running in another thread may still read (it runs the
    old code to its end): left in the namespace for the reloader to delete once no
    running code reads them (see :func:`read_by_running_code`)."""
    paused: list[weakref.ref[object]] = field(default_factory=list)
    """The module's generators and coroutines paused as the names went (see
    :func:`paused_in`): the names they read linger while they may resume."""
    kept_classes: dict[str, frozenset[str]] = field(default_factory=dict)
    """Of ``values``: classes kept live whose edit only added, removed or changed plain
    members (methods, ``NAME = value``), each with those members.  A statement that
    only makes an instance of one (``player = Player()``) keeps its instance, whose
    class has the new members; what reads one of them (``player.SPEED``) follows."""
    added: set[str] = field(default_factory=set)
    """Names new to the module (not in ``values``: nothing could have read them, but
    a ``from module import *`` takes them, and a module that failed for want of
    one may now import)."""
    shared: frozenset[str] = frozenset()
    """Names several ``def`` statements bind (``@show.register`` implementations all
    named ``_``) whose last one, whose function the name holds, is another definition
    after the edit: the old function by that name is not the new one's to be patched
    by (``@overload`` stubs above an implementation are not: it is the same one)."""

    mutated: set[str] = field(default_factory=set)
    """Names bound to the same container as before, which statements that ran changed in
    place (``DB["port"] = 3``): what derives a value from one (``PORT = DB["port"]``)
    runs again; what adds to it or hands it on (``DB.setdefault(...)``, ``register(DB)``,
    ``from a import DB``) does not: it holds the same object, with its items."""

    def __bool__(self) -> bool:
        return bool(self.values or self.behaviors or self.mutated)


#: Equal tuples mapped to the one copy kept (see :func:`consumption_of`).
Interned = dict[tuple[object, ...], tuple[object, ...]]
_Tuple = TypeVar("_Tuple", bound=tuple[object, ...])

#: (local name, module, attribute or None): what one top-level import binds.
Binding = tuple[str, str, "str | None"]


@dataclass(frozen=True, slots=True)
class Consumption:
    """What a module's code takes from the project modules it imports: kept for all.

    Only names bound by imports of project modules count (``X`` for ``from a
    import X``, ``a.X`` for ``import a``): a change reaches a module through
    them.  Tuples of shared, interned strings, not sets or dicts: this is
    kept for every module of the program.
    """

    imports: tuple[Binding, ...]
    """The top-level imports of project modules, as (local, module, attribute)."""
    at_import: tuple[str, ...]
    """Imported names read or called while the module's top level runs."""
    bodies: tuple[Any, ...]  # flat (str, tuple[str, ...]) pairs, which a tuple type cannot say
    """Flat (function, names, function, names, ...): the imported names each body reads
    or calls, through the module's functions."""

    @property
    def from_binds(self) -> tuple[str, ...]:
        """Local names bound by ``from x import name`` (at the top level, in blocks too)."""
        return tuple(local for local, _, attr in self.imports if attr is not None)

    def references(self) -> set[str]:
        """Every imported name the module uses, at import time or in a function."""
        return set(self.at_import).union(self.from_binds, *self.bodies[1::2])

    def touched_by(self, values: set[str], behaviors: set[str]) -> bool:
        """Must some statement of the module run again for these incoming changes?"""
        return (
            not values.isdisjoint(self.at_import)
            or not behaviors.isdisjoint(self.at_import)
            or not values.isdisjoint(self.from_binds)
        )

    def behaviors_through(self, values: set[str], behaviors: set[str]) -> set[str]:
        """Functions of the module that compute something else after these changes."""
        changed = values | behaviors
        bodies = self.bodies
        return {
            bodies[index]
            for index in range(0, len(bodies), 2)
            if not changed.isdisjoint(bodies[index + 1])
        }


def bindings_of(imports: dict[str, tuple[str, str | None]]) -> list[Binding]:
    """A summary's imports as (local, module, attribute) triples; ``from module
    import *`` as ``from module import name`` of each name the module exports now."""
    found: list[Binding] = []
    for local, (module, attr) in imports.items():
        if attr != "*":
            found.append((local, module, attr))
            continue
        namespace = getattr(sys.modules.get(module), "__dict__", None)
        if isinstance(namespace, dict):
            found.extend((name, module, name) for name in star_exports(namespace))
    return found


def consumption_of(
    summary: ModuleSummary,
    is_project: Callable[[str], bool] = lambda name: True,
    shared: Interned | None = None,
) -> Consumption:
    """Boil a parsed module down to what it consumes from the project modules it imports.

    ``shared`` maps tuples to one equal copy: consumptions are kept for every
    module, and every module of an app spells its imports (and what its
    functions use) alike, so equal tuples are kept once.
    """
    table: Interned = {} if shared is None else shared

    def _share(items: _Tuple) -> _Tuple:
        return cast(_Tuple, table.setdefault(items, items)) if items else items

    intern = sys.intern
    imports: list[Binding] = []
    for local, module, attr in bindings_of(summary.imports):
        if is_project(module) or (attr is not None and is_project(f"{module}.{attr}")):
            imports.append(
                _share((intern(local), intern(module), None if attr is None else intern(attr)))
            )
    imported = {local for local, _, _ in imports}

    def keep(names: frozenset[str] | set[str]) -> tuple[str, ...]:
        kept: tuple[str, ...] = _share(
            tuple(sorted(intern(name) for name in names if name.partition(".")[0] in imported))
        )
        return kept

    expander = _Expander(summary)
    at_import: set[str] = set()
    for statement in summary.statements:
        reads, calls = expander.statement(statement)
        at_import |= reads | calls
    bodies: list[str | tuple[str, ...]] = []
    for name in expander.defs:
        body_reads, body_calls = expander.body(name)
        used = keep(body_reads | body_calls)
        if used:
            bodies += (intern(name), used)
    return Consumption(_share(tuple(imports)), keep(at_import), tuple(bodies))


def _own_name(module: str) -> str:
    """``module`` as the module it names calls itself, where ``sys.modules`` holds it
    under a second name too (``sys.modules["legacy"] = real``, a renamed module's shim:
    ``app.real``, whose changes a reload has under that name)."""
    found = sys.modules.get(module)
    if isinstance(found, types.ModuleType):
        own = found.__dict__.get("__name__")
        if own != module and isinstance(own, str) and sys.modules.get(own) is found:
            return own
    return module


class ChangeSet(dict[str, Changes]):
    """The changes of a reload by module, with the changed submodules of each package."""

    def __init__(self) -> None:
        super().__init__()
        self.below: dict[str, set[str]] = {}
        #: The modules in the order their changes were set (again, if set again).
        self.order: list[str] = []

    def __setitem__(self, name: str, change: Changes) -> None:
        super().__setitem__(name, change)
        self.order.append(name)
        parts = name.split(".")
        for end in range(1, len(parts)):
            self.below.setdefault(".".join(parts[:end]), set()).add(name)


def translate_incoming(
    imports: Iterable[Binding],
    changes: ChangeSet,
    referenced: Callable[[], Iterable[str]] | None = None,
) -> tuple[set[str], set[str], set[str], set[str]]:
    """Changes of imported modules, named as this module names them.

    ``from a import X`` makes ``X`` changed when ``a.X`` is; ``import a`` makes
    ``a.X`` changed.  Returns (values, behaviors, rewrapped, mutated).  With ``referenced``
    (what gives every name the module spells, ``pkg.sub.f``; asked only when a
    submodule of a package it imports changed), the
    submodules of an ``import pkg.sub`` that changed are looked up by what it
    spells, not walked: a change of a function that a thousand modules call
    follows through each of them, and each would walk the thousand.  The fourth set:
    the containers changed in place (:attr:`Changes.mutated`).
    """
    values: set[str] = set()
    behaviors: set[str] = set()
    rewrapped: set[str] = set()
    mutated: set[str] = set()
    spelled: list[str] | None = None
    for local, module, attr in imports:
        if module not in changes and module not in changes.below:
            module = _own_name(module)
        if attr is not None:
            submodule = f"{module}.{attr}"
            if isinstance(sys.modules.get(submodule), types.ModuleType):
                module, attr = submodule, None  # ``from pkg import sub``
        if attr is None:
            paths = [(local, module)]
            # ``import pkg.sub`` binds ``pkg``; the code says ``pkg.sub.X``.
            below = changes.below.get(module, ())
            if below and referenced is not None:
                if spelled is None:
                    spelled = sorted(referenced())
                below = _spelled_below(local, module, spelled, below)
            paths += [(local + changed[len(module) :], changed) for changed in below]
            for path, changed in paths:
                change = changes.get(changed)
                if change:
                    values.update(f"{path}.{name}" for name in change.values)
                    behaviors.update(f"{path}.{name}" for name in change.behaviors)
                    rewrapped.update(f"{path}.{name}" for name in change.rewrapped)
                    mutated.update(f"{path}.{name}" for name in change.mutated)
            continue
        found = changes.get(module)
        if found is None:
            continue
        if attr in found.values:
            values.add(local)
        if attr in found.mutated:
            mutated.add(local)
        if attr in found.behaviors:
            behaviors.add(local)
        # ``K.build`` (a method whose body changed): ``from a import K`` spells it so.
        dotted = attr + "."
        behaviors.update(
            local + name[len(attr) :] for name in found.behaviors if name.startswith(dotted)
        )
        if attr in found.rewrapped:
            rewrapped.add(local)
            rewrapped.update(
                local + name[len(attr) :]
                for name in found.rewrapped
                if name.startswith(attr + RESULTS)
            )
    return values, behaviors, rewrapped, mutated


def spelled_names(summary: ModuleSummary) -> set[str]:
    """Every name (and ``name.attr``) a module's code reads or calls, at import time
    or in its functions: what :func:`translate_incoming` needs to look at."""
    names: set[str] = set()
    for statement in summary.statements:
        names.update(statement.reads, statement.calls, statement.body_reads, statement.body_calls)
    return names


def translate_kept_classes(
    imports: Iterable[Binding], changes: ChangeSet
) -> dict[str, frozenset[str]]:
    """:attr:`Changes.kept_classes` of imported modules, named as this module names them
    (``Counter`` for ``from svc import Counter``, ``svc.Counter`` for ``import svc``)."""
    found: dict[str, frozenset[str]] = {}
    if not any(change.kept_classes for change in changes.values()):
        return found
    for local, module, attr in imports:
        if attr is not None and _holds_submodule(module, attr):
            # ``from pkg import res``: its classes are ``res.Counter``, as for ``import pkg.res``.
            module, attr = f"{module}.{attr}", None
        if attr is None:
            for name, change in changes.items():
                if change.kept_classes and (name == module or name.startswith(module + ".")):
                    path = local + name[len(module) :]
                    found.update({f"{path}.{cls}": m for cls, m in change.kept_classes.items()})
            continue
        exporter = changes.get(module)
        members = None if exporter is None else exporter.kept_classes.get(attr)
        if members is not None:
            found[local] = members
    return found


def _holds_submodule(package: str, attr: str) -> bool:
    """Does ``package`` hold its submodule ``attr`` under that name?"""
    namespace = getattr(sys.modules.get(package), "__dict__", None)
    held = namespace.get(attr) if isinstance(namespace, dict) else None
    return isinstance(held, types.ModuleType) and held is sys.modules.get(f"{package}.{attr}")


def _instance_kept(
    node: ast.stmt,
    used: tuple[frozenset[str] | set[str], frozenset[str] | set[str]],
    values: set[str],
    behaviors: set[str],
    kept: Mapping[str, frozenset[str]],
) -> set[str] | None:
    """For ``name = Cls(...)`` of a class of ``kept``, and nothing else that changed:
    ``name.member`` of each member that changed (what follows); else None."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        target = node.target
    else:
        return None
    value = node.value
    if not isinstance(target, ast.Name) or not isinstance(value, ast.Call):
        return None
    try:
        spelled = ast.unparse(value.func)
    except Exception:  # only a spelling was looked for
        return None
    members = kept.get(spelled)
    if members is None or not _changed_only_through([spelled], used, values, behaviors):
        return None
    return {f"{target.id}.{member}" for member in members}


def _changed_only_through(
    spellings: list[str],
    used: tuple[frozenset[str] | set[str], frozenset[str] | set[str]],
    values: set[str],
    behaviors: set[str],
) -> bool:
    """Is each changed name a statement ``used`` (reads, calls) one of ``spellings``, or
    a name one goes through (``game`` of ``game.Player``)?"""
    itself = {
        ".".join(parts[:end])
        for spelled in spellings
        for parts in [spelled.split(".")]
        for end in range(1, len(parts) + 1)
    }
    reads, calls = used
    return not ((set(reads) & values) - itself or (set(calls) & behaviors) - itself)


def _spelled(spelling: str, namespace: Mapping[str, object]) -> object:
    """What ``a.b.C`` names in ``namespace`` (None where a part is missing), read by type:
    never through a lazy module's or a proxy's attributes."""
    first, *rest = spelling.split(".")
    value = namespace.get(first)
    for part in rest:
        held = (
            object.__getattribute__(value, "__dict__")
            if isinstance(value, types.ModuleType)
            else None
        )
        value = held.get(part) if isinstance(held, dict) else None
    return value


# Members a class statement acts on as it makes the class (its base's hook, the
# attributes set on a subclass as it is made): a base that changed one makes its
# subclasses again.
_AT_CLASS_CREATION = frozenset(
    {"__init_subclass__", "__set_name__", "__slots__", "__class_getitem__", "__mro_entries__"}
)


def _subclass_kept(
    node: ast.stmt,
    used: tuple[frozenset[str] | set[str], frozenset[str] | set[str]],
    values: set[str],
    behaviors: set[str],
    kept: Mapping[str, frozenset[str]],
    *,
    namespace: Mapping[str, object],
) -> set[str] | None:
    """For ``class Sub(Base):`` whose base is a class of ``kept`` (it only gained, lost
    or changed plain members) made by ``type`` itself (an ABC's subclass takes its
    abstract methods as it is made), with no decorator, keyword or other changed
    input: ``Sub.member`` of each member that changed (what follows: the live
    subclass inherits the new members, and its instances keep their state); else
    None."""
    if not isinstance(node, ast.ClassDef) or node.keywords or node.decorator_list:
        return None
    try:
        bases = [ast.unparse(base) for base in node.bases]
    except Exception:  # only a spelling was looked for
        return None
    changed = [base for base in bases if base in kept]
    if not changed or not all(type(_spelled(base, namespace)) is type for base in changed):
        return None
    members: set[str] = set().union(*(kept[base] for base in changed))
    if members & _AT_CLASS_CREATION or not _changed_only_through(changed, used, values, behaviors):
        return None
    reads, calls = used
    if any(
        f"{base}.{member}" in reads or f"{base}.{member}" in calls
        for base in changed
        for member in members
    ):
        return None  # its body reads a changed member (``LIMIT = Base.SPEED * 2``)
    return {f"{node.name}.{member}" for member in members}


def _spelled_below(local: str, module: str, spelled: list[str], below: set[str]) -> set[str]:
    """The modules of ``below`` (changed, under ``module``, which the code calls
    ``local``) that a name of ``spelled`` (sorted) goes through (``local.sub.f``)."""
    found: set[str] = set()
    start = local + "."
    at = bisect.bisect_left(spelled, start)
    while at < len(spelled) and spelled[at].startswith(start):
        path = module
        for part in spelled[at][len(start) :].split("."):
            path += "." + part
            if path in below:
                found.add(path)
        at += 1
    return found


# Top-level statements whose blocks may define functions the module calls at import.
_BLOCKS = (ast.If, ast.Try, ast.With, *([ast.TryStar] if hasattr(ast, "TryStar") else []))


def _defs_within(node: ast.stmt) -> list[str]:
    """The functions a top-level ``if``, ``try`` or ``with`` block defines (in its
    branches and handlers, and the blocks within them; not in functions or classes)."""
    found: list[str] = []
    pending: list[ast.AST] = [node]
    while pending:
        for child in ast.iter_child_nodes(pending.pop()):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                found.append(child.name)
            elif isinstance(child, (*_BLOCKS, ast.excepthandler)):
                pending.append(child)
    return found


class _Expander:
    """What a statement reads and calls, through the module's own functions it calls."""

    def __init__(self, summary: ModuleSummary) -> None:
        self.defs: dict[str, Statement] = {}
        # Classes, for calls of their methods by the class (``K.build()``); an instance
        # made (``K()``) is kept when a method changes, and calls none of them here.
        self.classes: dict[str, Statement] = {}
        for statement in summary.statements:
            node = statement.node
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.defs[node.name] = statement
            elif (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Lambda)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                self.defs[node.targets[0].id] = statement  # ``L = lambda: f()``: its body
            elif isinstance(node, ast.ClassDef):
                self.classes[node.name] = statement
            elif isinstance(node, _BLOCKS):
                # ``if DEBUG: def f(): ...`` / ``try: def f(): ...``: what calling ``f``
                # reads and calls is the block's functions' (their sum: the statement
                # tells no more).
                for name in _defs_within(node):
                    self.defs.setdefault(name, statement)
        self.memo: dict[str, tuple[frozenset[str], frozenset[str]]] = {}

    def body(self, name: str) -> tuple[frozenset[str], frozenset[str]]:
        """Reads and calls of calling the module function ``name``, transitively."""
        done = self.memo.get(name)
        if done is not None:
            return done
        self.memo[name] = (frozenset(), frozenset())  # a recursive call adds nothing new
        statement = self.defs[name]
        reads, calls = set(statement.body_reads), set(statement.body_calls)
        for callee in list(calls):
            if callee in self.defs:
                more_reads, more_calls = self.body(callee)
                reads |= more_reads
                calls |= more_calls
        result = (frozenset(reads), frozenset(calls))
        self.memo[name] = result
        return result

    def statement(self, statement: Statement) -> tuple[set[str], set[str]]:
        reads, calls = set(statement.reads), set(statement.calls)
        node = statement.node
        if isinstance(node, ast.ClassDef) and not statement.calls.isdisjoint(
            item.name
            for item in node.body
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
        ):
            # A class body that calls a function it defines (``v = _make()``) runs it
            # now: what its methods read and call (their sum: the statement tells no
            # more), as for ``K.build()``.
            reads |= statement.body_reads
            calls |= statement.body_calls
        for callee in list(calls):
            if callee in self.defs and self.defs[callee] is not statement:
                more_reads, more_calls = self.body(callee)
                reads |= more_reads
                calls |= more_calls
            elif callee in self.defs and isinstance(statement.node, _BLOCKS):
                # ``if True: def build(): ...; X = build()``: a call in the block
                # that defines the function.
                reads |= statement.body_reads
                calls |= statement.body_calls
            elif "." in callee and self.classes:
                owner = self.classes.get(callee.partition(".")[0])
                if owner is not None and owner is not statement:
                    # ``K.build()``: what its methods call (and the module's
                    # functions they call); ``cls._part()`` there is ``K._part``.
                    reads |= owner.body_reads
                    calls |= owner.body_calls
                    klass = callee.partition(".")[0]
                    calls |= {
                        klass + name[name.index(".") :]
                        for name in owner.body_calls
                        if name.startswith(("cls.", "self."))
                    }
                    for inner in owner.body_calls & self.defs.keys():
                        more_reads, more_calls = self.body(inner)
                        reads |= more_reads
                        calls |= more_calls
        return reads, calls


def match_statements(
    old: ModuleSummary, new: ModuleSummary
) -> tuple[list[bool], list[Statement | None], set[str]]:
    """Which new statements are edited, the old place of those that only moved,
    and the names no longer bound."""
    if old is new:
        count = len(new.statements)
        return [False] * count, [None] * count, set()
    count = len(new.statements)
    edited: list[bool] = [True] * count
    moved: list[Statement | None] = [None] * count
    # Equal text is equal code: most statements match that way, cheaply.  The
    # few left over (edited, or only reformatted) are compared as trees.
    left_old: list[Statement] = []
    by_text: dict[str, list[Statement]] = {}
    for statement in old.statements:
        by_text.setdefault(statement.text, []).append(statement)
    left_new: list[int] = []
    for index, statement in enumerate(new.statements):
        twins = by_text.get(statement.text)
        if twins:
            _matched(index, statement, twins.pop(0), edited, moved)
        else:
            left_new.append(index)
    if left_new:
        # Same kind and name first: equal code needs both.
        by_kind: dict[tuple[type, str | None], list[Statement]] = {}
        for twins in by_text.values():
            left_old.extend(twins)
        for statement in sorted(left_old, key=lambda s: s.node.lineno):
            by_kind.setdefault(_kind(statement), []).append(statement)
        for index in left_new:
            statement = new.statements[index]
            twins = by_kind.get(_kind(statement), [])
            twin = next((twin for twin in twins if same_code(twin, statement)), None)
            if twin is not None:
                twins.remove(twin)
                _matched(index, statement, twin, edited, moved)
    still_bound = set().union(*(s.binds for s in new.statements)) if new.statements else set()
    was_bound = set().union(*(s.binds for s in old.statements)) if old.statements else set()
    return edited, moved, was_bound - still_bound


def _kind(statement: Statement) -> tuple[type, str | None]:
    return type(statement.node), getattr(statement.node, "name", None)


def removed_calls(
    old: ModuleSummary, new: ModuleSummary, made_again: Collection[str] = ()
) -> list[Statement]:
    """The top-level calls of ``old`` (``app.add_middleware(Timing)``, ``register(f)``) that
    ``new`` no longer makes, in source order.

    They ran when the module did, and nothing undoes a call: what they did (a
    middleware added, an entry registered) stays until a restart.  A call
    that only moved or was reformatted has its equal in ``new``.  One on a
    container of ``made_again`` (``DD["a"].append(1)``, where ``DD = defaultdict(list)``
    ran again) went with the items the container had.
    """
    if old is new:
        return []
    left: dict[str, list[Statement]] = {}
    for statement in new.statements:
        if _is_call(statement):
            left.setdefault(statement.fingerprint, []).append(statement)
    unmatched = []
    for statement in old.statements:
        if not _is_call(statement):
            continue
        same = left.get(statement.fingerprint)
        if same:
            same.pop()
        else:
            unmatched.append(statement)
    # An edited call (the same callee, other arguments: ``conf.update(a=1, b=2)``) is
    # not a removed one: it runs again.
    callees: dict[str, int] = {}
    for statements in left.values():
        for statement in statements:
            callee = _callee(statement)
            if callee is not None:
                callees[callee] = callees.get(callee, 0) + 1
    gone = []
    for statement in unmatched:
        callee = _callee(statement)
        if callee is not None and callees.get(callee, 0):
            callees[callee] -= 1
        elif _receiver(statement) not in made_again:
            gone.append(statement)
    return gone


def _receiver(statement: Statement) -> str | None:
    """The name a call statement's callee hangs from (``DD`` of ``DD["a"].append(1)``)."""
    node = statement.node
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
        return None
    func = node.value.func
    if not isinstance(func, ast.Attribute):
        return None  # ``register(f)``: no container of the module's
    target = func.value
    while isinstance(target, ast.Attribute | ast.Subscript):
        target = target.value
    return target.id if isinstance(target, ast.Name) else None


def _callee(statement: Statement) -> str | None:
    """What a call statement calls (``conf.update``), as a tree; None if it is no call."""
    node = statement.node
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        return ast.dump(node.value.func)
    return None


def _is_call(statement: Statement) -> bool:
    """Is it an expression statement that calls something (not a docstring, not ``...``)?"""
    node = statement.node
    return isinstance(node, ast.Expr) and any(
        isinstance(part, ast.Call) for part in ast.walk(node.value)
    )


def _matched(
    index: int,
    statement: Statement,
    previous: Statement,
    edited: list[bool],
    moved: list[Statement | None],
) -> None:
    edited[index] = False
    # Moved, or its lines changed inside it (the same code, other text): its
    # functions take their new lines.
    if previous.node.lineno != statement.node.lineno or previous.text != statement.text:
        moved[index] = previous


def _relocate(
    statement: Statement,
    previous: Statement,
    namespace: dict[str, object],
    filename: str,
    *,
    flags: int,
    assign: Callable[[types.FunctionType, types.CodeType], None],
) -> None:
    """A statement that only moved: what it defined takes the new line numbers in place.

    Moved whole (the same text), its code moves by as many lines.  Its lines
    changed inside it (a comment added in a function): the code compiled anew
    gives each function its lines (see relocation.align_exactly).
    """
    node = statement.node
    exact = previous.text != statement.text
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        function = original_function(namespace.get(node.name), node.name, filename)
        if function is not None and (
            not exact or align_exactly([function], node, filename, flags, assign)
        ):
            align_function(function, node, assign)
        return
    if isinstance(node, ast.ClassDef):
        cls = namespace.get(node.name)
        if isinstance(cls, type) and cls.__module__ == namespace.get("__name__"):
            if exact:
                align_exactly(class_functions(cls, filename), node, filename, flags, assign)
            # What did not fit moves as a whole (what fits has its lines: no move left).
            align_class(cls, node, filename, assign)
        return
    # Lambdas (``handler = lambda: ...``), the defs of an ``if`` or ``try`` block, made by
    # the statement where it stood.
    delta = node.lineno - previous.node.lineno
    start, end = first_line(previous.node), previous.node.end_lineno or previous.node.lineno
    made = []
    for name in statement.binds:
        value = namespace.get(name)
        if isinstance(value, types.FunctionType):
            code = value.__code__
            if code.co_filename == filename and start <= code.co_firstlineno <= end:
                made.append(value)
    if exact:
        made = align_exactly(made, node, filename, flags, assign)
    for function in made:
        assign(function, shift_code(function.__code__, delta))


def undo_run(changes: Changes) -> None:
    """A later statement failed (or the edit was refused): put back the classes and
    function bodies patched so far."""
    for _, undo in reversed(changes.live_patches):
        undo()
    changes.live_patches.clear()
    for patch in reversed(changes.body_patches):
        set_code(patch.function, patch.old_code, patch.old_doc)
    changes.body_patches.clear()
    for function, code in reversed(changes.relocated):
        set_code(function, code)
    changes.relocated.clear()
    changes.kept.put_back()


def _recording(changes: Changes) -> Callable[[types.FunctionType, types.CodeType], None]:
    """A code setter that the undo of a failed reload can take back."""

    def assign(function: types.FunctionType, code: types.CodeType) -> None:
        changes.relocated.append((function, function.__code__))
        set_code(function, code)

    return assign


def kept_class_values(
    was: ast.ClassDef,
    node: ast.ClassDef,
    values: set[str],
    behaviors: set[str],
    expander: _Expander | None = None,
) -> frozenset[str]:
    """The class attributes whose live values stay when the class statement ``was``
    runs again as ``node``: those bound only by assignments the edit left as they
    were (``items = []``, ``count = 0``), reading nothing that changed (``values``,
    functions whose ``behaviors`` changed, or a name of the class body bound by a
    statement the edit changed), as for the statements of a module.  With the
    module's ``expander``, what the module's functions it calls read counts too
    (``LIMIT = scale(3)``, ``scale`` reading a ``RATE`` that changed)."""
    before = {ast.dump(child) for child in was.body}
    unchanged = [ast.dump(child) in before for child in node.body]
    binders: dict[str, list[bool]] = {}
    for child, same in zip(node.body, unchanged, strict=True):
        for name in _stored_names(child):
            binders.setdefault(name, []).append(same)
    changed = {name for name, sames in binders.items() if not all(sames)}
    # ``core.BASE`` changed: what reads ``core`` may read it (no finer: conservative).
    touched = {value.partition(".")[0] for value in values | behaviors}
    for child, same in zip(node.body, unchanged, strict=True):
        if isinstance(child, _SCOPES):
            continue
        # ``items = []`` then ``for i in range(N): items.append(i)`` (or ``items += ...``):
        # filled on what changed, the attribute is what the new class body made.
        filled = filled_names(child) | _augmented(child) | changed_names(child)
        if filled and (
            not same
            or not (touched | changed).isdisjoint(
                each.id for each in ast.walk(child) if isinstance(each, ast.Name)
            )
        ):
            changed |= filled
    # The class body's own functions, which it may call (``v = _make()``).
    own = {
        child.name: child
        for child in node.body
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    kept: set[str] = set()
    for child, same in zip(node.body, unchanged, strict=True):
        if not same or not isinstance(child, ast.Assign | ast.AnnAssign) or child.value is None:
            continue
        reads = {each.id for each in ast.walk(child.value) if isinstance(each, ast.Name)}
        for name in [name for name in reads if name in own]:
            reads |= {each.id for each in ast.walk(own[name]) if isinstance(each, ast.Name)}
        if expander is not None:
            for name in [name for name in reads if name in expander.defs]:
                body_reads, body_calls = expander.body(name)
                reads |= body_reads | body_calls
        if reads & changed or reads & touched:
            continue
        targets = child.targets if isinstance(child, ast.Assign) else [child.target]
        kept.update(
            target.id
            for target in targets
            if isinstance(target, ast.Name) and target.id not in changed
        )
    return frozenset(kept)


def _stored_names(node: ast.stmt) -> set[str]:
    """Names a class-body statement may bind (more, never fewer): not the locals of
    the functions it defines."""
    names: set[str] = set()
    pending: list[ast.AST] = [node]
    while pending:
        each = pending.pop()
        if isinstance(each, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(each.name)
            pending.extend(each.decorator_list)
            continue
        if isinstance(each, ast.Lambda):
            continue
        if isinstance(each, ast.Name) and isinstance(each.ctx, ast.Store):
            names.add(each.id)
        elif isinstance(each, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).partition(".")[0] for alias in each.names)
        pending.extend(ast.iter_child_nodes(each))
    return names


def _adopt_class(
    namespace: dict[str, object],
    node: ast.ClassDef,
    before: dict[str, object],
    changes: Changes,
    kept: frozenset[str] = frozenset(),
    *,
    bodies: Callable[[], Mapping[str, frozenset[str]] | None] | None = None,
) -> None:
    """A class statement ran again: the live class takes the new definition now.

    The statements after it (``INSTANCE = C()``, ``DEFAULT = Color.RED``, a
    subclass) then see the class every reference holds, not a new one that
    the patch would leave behind.
    """
    name = node.name
    now, then = namespace.get(name), before.get(name)
    module = namespace.get("__name__")
    if not (
        isinstance(now, type)
        and isinstance(then, type)
        and now is not then
        and isinstance(module, str)
        and getattr(now, "__module__", None) == module
        and getattr(then, "__module__", None) == module
        and now.__qualname__ == then.__qualname__
    ):
        return
    try:
        registered = may_register(then, map(_last_name, node.decorator_list))
        changes.live_patches.append(
            patch_class_now(module, then, now, registered, kept, bodies=bodies)
        )
    except Exception as exc:
        undo_run(changes)
        raise StatementError(f"patching class {name} failed: {exc}") from exc
    namespace[name] = then
    if not node.decorator_list:
        _leave_the_bases(now)


class _Left:
    """The base of the classes made again and left for the live ones (see _leave_the_bases)."""


def _leave_the_bases(cls: type) -> None:
    """Take a class made again and left for the live one out of its bases'
    ``__subclasses__()``: until the garbage collector frees it (a class is a cycle),
    a plugin system that walks them found the class twice.

    Only a class nothing can have made an instance of as it was defined (no class
    decorator, such as Django's ``@admin.register``, no metaclass, no base's
    ``__init_subclass__``): an instance would lose its bases' methods.
    """
    if type(cls) is not type or cls.__bases__ == (_Left,) or type.__subclasses__(cls):
        return
    if any("__init_subclass__" in vars(base) for base in cls.__mro__[1:-1]):
        return
    # Not where its layout is no plain class's (``__slots__``, a C base): the collector's.
    with contextlib.suppress(TypeError):
        cls.__bases__ = (_Left,)


def _last_name(decorator: ast.expr) -> str:
    """``register`` for ``@register``, ``@reg.register`` or ``@register(...)``."""
    if isinstance(decorator, ast.Call):
        decorator = decorator.func
    if isinstance(decorator, ast.Attribute):
        return decorator.attr
    return decorator.id if isinstance(decorator, ast.Name) else ""


def run_all(
    namespace: dict[str, object],
    filename: str,
    summary: ModuleSummary,
    old: dict[str, object],
    bodies: Callable[[], Mapping[str, frozenset[str]] | None] | None = None,
) -> Changes:
    """Run every statement of ``summary`` in order; live classes take their new definitions.

    For a module re-executed whole (its previous source unknown): statement
    by statement rather than one ``exec``, so that a class statement is
    followed at once by the patch of the live class (``old`` is the namespace
    before) and the statements after it see that class.  Raises
    StatementError, with every class patch undone, when a statement fails.
    """
    changes = Changes(old=old)
    flags = _future_flags(summary)
    start_module_run()
    for statement in summary.statements:
        live = live_function(statement, (summary, summary), namespace, filename)
        if live is not None:
            _run_on_live(statement, live, namespace, filename, flags=flags, changes=changes)
        else:
            _run_statement(statement, namespace, filename, flags, changes)
        if isinstance(statement.node, ast.ClassDef):
            _adopt_class(namespace, statement.node, old, changes, bodies=bodies)
    return changes


def _binds(node: ast.AST, name: str) -> bool:
    """Does the top-level statement ``node`` bind ``name`` whenever it runs (not under an
    ``if``, a ``try`` or a loop)?"""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name == name
    if isinstance(node, ast.Assign):
        return any(isinstance(target, ast.Name) and target.id == name for target in node.targets)
    if isinstance(node, ast.AnnAssign):
        target = node.target
        return node.value is not None and isinstance(target, ast.Name) and target.id == name
    if isinstance(node, ast.Import):
        return any((alias.asname or alias.name.partition(".")[0]) == name for alias in node.names)
    if isinstance(node, ast.ImportFrom):
        return any((alias.asname or alias.name) == name for alias in node.names)
    return False


def _changed_keys(now: dict[str, object], before: dict[str, object] | None) -> list[str]:
    """The keys whose values differ (a value whose == raises, an array, counts)."""
    found = []
    for key, value in now.items():
        if before is None or key not in before:
            found.append(key)
            continue
        try:
            if before[key] is not value and bool(before[key] != value):
                found.append(key)
        except Exception:
            found.append(key)
    return found


def _defaults_differ(new: types.FunctionType, old: types.FunctionType) -> bool:
    """Did a ``def`` that ran again get other default values (``def f(a=compute())``)?"""
    try:
        return bool(
            new.__defaults__ != old.__defaults__ or new.__kwdefaults__ != old.__kwdefaults__
        )
    except Exception:  # a default whose == raises (an array): say it changed
        return True


def _augmented(node: ast.AST) -> set[str]:
    """The names a top-level statement adds to (``V += 1``, also under an ``if``, a loop
    or a ``with``: ``if DEBUG: urlpatterns += [...]``), not in functions or classes: a
    ``def`` whose body says ``global HITS; HITS += 1`` adds to nothing as it runs.  Also
    the names whose items it updates from their own value (``A[:] *= FACTOR``,
    ``DF["x"] = DF["x"] * FACTOR``): run again alone, it would scale what it scaled."""
    found: set[str] = set()
    if isinstance(node, _SCOPES):
        return found
    pending = [node]
    while pending:
        each = pending.pop()
        if isinstance(each, ast.AugAssign):
            if isinstance(each.target, ast.Name):
                found.add(each.target.id)
            elif isinstance(each.target, ast.Subscript) and (base := _base_name(each.target)):
                found.add(base)
        elif isinstance(each, ast.Assign):
            found.update(_updated_items(each))
        for child in ast.iter_child_nodes(each):
            if not isinstance(child, _SCOPES):
                pending.append(child)
    return found


def _base_name(node: ast.expr) -> str | None:
    """``A`` of ``A[:]``, ``DF["x"]``, ``T.cells[0]``."""
    while isinstance(node, ast.Subscript | ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _updated_items(node: ast.Assign) -> set[str]:
    """The names of ``X[k] = ... X[k] ...`` targets: items set from their own value."""
    found: set[str] = set()
    for target in node.targets:
        base = _base_name(target) if isinstance(target, ast.Subscript) else None
        if base is None:
            continue
        spelled = ast.unparse(target)
        if any(
            isinstance(each, ast.Subscript)
            and _base_name(each) == base
            and ast.unparse(each) == spelled
            for each in ast.walk(node.value)
        ):
            found.add(base)
    return found


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


# What makes a container (the statement a filled one is made again from).
_CONTAINER_DISPLAYS = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)
_CONTAINER_TYPES = frozenset(
    ("list", "dict", "set", "bytearray", "deque", "defaultdict", "OrderedDict", "Counter")
)


def _makes_container(node: ast.AST, name: str) -> bool:
    """Is ``node`` ``name = []`` (``{}``, ``set()``, ``deque()``, a comprehension...)?"""
    if isinstance(node, ast.Assign):
        if not any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return False
        value: ast.expr | None = node.value
    elif isinstance(node, ast.AnnAssign):
        if not (isinstance(node.target, ast.Name) and node.target.id == name):
            return False
        value = node.value
    else:
        return False
    if isinstance(value, _CONTAINER_DISPLAYS):
        return True
    if isinstance(value, ast.Call):
        func = value.func
        called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        # (``DEFAULTS.copy()``: a new container too.)
        return called in _CONTAINER_TYPES or (called == "copy" and not value.args)
    return False


def _refilled(then: object, now: object, nodes: list[ast.AST], name: str) -> bool:
    """Does ``now``, which one of ``nodes`` made (``name = [...]``, ``{...}``, a
    comprehension, ``dict(...)``), replace a live container ``then`` of its exact type?
    (Not ``__all__`` and the like: what they held before is read after the run.)"""
    kind = type(now)
    if kind is not type(then) or kind not in REFILLED or name.startswith("__"):
        return False
    return any(_makes_container(node, name) for node in nodes)


def refill_containers(changes: Changes, namespace: dict[str, object]) -> None:
    """The module's new code is in: each container a statement that ran made again
    (``TABLE = {...}`` edited, ``LOOP = []`` above a ``LOOP.append``) gives its items to
    the one it replaced, which the module's names hold again: what held it (a singleton
    built from it, a default argument, ``from kw import TABLE``, a thread that appends
    to it) reads the new items, and shares later changes with the module, as the
    functions it holds run their new code.  (Not before: the old one's items were what
    the patching of the module's functions paired with the new ones.)  What reads it at
    import follows, as for any value that changed."""
    if not changes.refills:
        return
    live_of = {id(fresh): live for live, fresh in changes.refills if give_items(live, fresh)}
    for key, value in list(namespace.items()):
        live = live_of.get(id(value))
        if live is not None:
            namespace[key] = live
    changes.refills.clear()


def _accumulated_from(
    statements: list[Statement], index: int, rebound: set[str], registries: Callable[[], set[str]]
) -> list[int]:
    """For a statement that adds to names (``name += ...``, ``name.append(...)``) and runs
    again: the statements above it that made those names' values, the last plain
    binding and the ones adding to it after that, to run first (none for a name this
    run bound already, or with no plain binding above; for a container filled by a
    method, none unless that binding made it: ``X = []``, not ``app = Flask()``)."""
    node = statements[index].node
    augmented = _augmented(node)
    filled = filled_names(node) - rebound
    if filled:
        # (A registry a function of the module fills, which a decorated def or the
        # program calls, is filled again as it is: they would not fill it again.)
        filled -= registries()
    names = (augmented - rebound) | filled
    chain: set[int] = set()
    for name in names:
        found: list[int] = []
        for at in range(index - 1, -1, -1):
            earlier = statements[at]
            if name not in earlier.binds and name not in earlier.reads:
                continue  # (an update reads what it updates: no walk of the statement)
            # (``X["port"] = 3`` or ``X.update(...)`` between: what the container held
            # there is what a fresh start has.)
            augments = (
                name in _augmented(earlier.node)
                or name in filled_names(earlier.node)
                or (name not in earlier.binds and name in changed_names(earlier.node))
            )
            if name not in earlier.binds and not augments:
                continue
            found.append(at)
            if name in earlier.binds and not augments:
                if name in augmented or _makes_container(earlier.node, name):
                    chain.update(found)
                break
    return sorted(chain)


def _bound_again_for_dels_removed(
    old: ModuleSummary, new: ModuleSummary, namespace: Mapping[str, object]
) -> set[int]:
    """The statements of ``new`` that last bind a name that a ``del`` of ``old``, which
    ``new`` no longer has, took away (``TMP = 5`` ... ``del TMP`` with the ``del``
    removed): they run again."""
    if old is new:
        return set()
    left = Counter(each.fingerprint for each in new.statements if isinstance(each.node, ast.Delete))
    gone: set[str] = set()
    for each in old.statements:
        if not isinstance(each.node, ast.Delete):
            continue
        if left[each.fingerprint]:
            left[each.fingerprint] -= 1
            continue
        gone.update(
            target.id
            for target in each.node.targets
            if isinstance(target, ast.Name) and target.id not in namespace
        )
    last: dict[str, int] = {}
    for index, each in enumerate(new.statements):
        for name in each.binds & gone:
            if isinstance(each.node, _BINDING_ONLY):
                last[name] = index
            else:
                # Deleted again below (gone in a fresh start too), or bound by a loop or
                # a block whose run again would do more (``for _i in ...: REG.append(_i)``).
                last.pop(name, None)
    return set(last.values())


# The statements whose run again binds, and does nothing else a fresh start would not.
_BINDING_ONLY = (
    ast.Assign,
    ast.AnnAssign,
    ast.Import,
    ast.ImportFrom,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
)


def _deleted_since(
    statements: list[Statement], index: int, namespace: Mapping[str, object]
) -> list[int]:
    """For a statement that runs again: the statements above it that bound the names it
    reads which a ``del`` took away since (``def _make(): ...``, ``MADE = _make()``,
    ``del _make``), to run first, as in a fresh start (the ``del`` runs again after)."""
    found: list[int] = []
    for name in {read.partition(".")[0] for read in statements[index].reads}:
        if name in namespace:
            continue
        for at in range(index - 1, -1, -1):
            node = statements[at].node
            if name in statements[at].binds and not isinstance(node, ast.Delete):
                found.append(at)
                break
    return found


def _note_defs_again(
    statement: Statement,
    old: ModuleSummary,
    new: ModuleSummary,
    several: frozenset[str],
    *,
    edited: bool,
    was: Statement | None,
) -> None:
    """A ``def`` runs again whose name another ``def`` binds too (``several``: two route
    handlers named ``handler``): which old functions of the name its run makes again, by
    the line each began at (see live_defs.made_by_a_def_again).  Edited, the old defs of
    the name that the new source no longer has as they were; else its own old place."""
    node = statement.node
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return
    name = node.name
    if name not in several:  # (one def of the name, in the old source and the new)
        return
    if edited:
        texts = {each.text for each in new.statements}
        lines = {
            first_line(each.node)
            for each in old.statements
            if _defines(each, name) and each.text not in texts
        }
    else:
        lines = {first_line((was or statement).node)}
    note_defs_again(name, lines)


def _defines(statement: Statement, name: str) -> bool:
    node = statement.node
    return isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name


def _appended_to(
    statement: Statement, namespace: Mapping[str, object]
) -> tuple[list[object], int] | None:
    """For ``REGISTRY.append(...)`` (``.extend``, ``.insert``; ``registry.HANDLERS``, a
    module's), the list, and its length before the statement runs again."""
    node = statement.node
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
        return None
    func = node.value.func
    if not (isinstance(func, ast.Attribute) and func.attr in ("append", "extend", "insert")):
        return None
    try:
        spelled = ast.unparse(func.value)
    except Exception:  # only a spelling was looked for
        return None
    if not all(part.isidentifier() for part in spelled.split(".")):
        return None
    held = _spelled(spelled, namespace)
    return (held, len(held)) if type(held) is list else None


def _registered_by(statement: Statement, namespace: Mapping[str, object]) -> list[object]:
    """The classes and functions a statement reads by name: what a registry takes."""
    found: dict[int, object] = {}
    for name in statement.reads:
        value = namespace.get(name.partition(".")[0])
        if isinstance(value, type) or type(value) is types.FunctionType:
            found[id(value)] = value
    return list(found.values())


def _run_statement(
    statement: Statement,
    namespace: dict[str, object],
    filename: str,
    flags: int,
    changes: Changes,
    *,
    again: bool = False,
) -> None:
    """Run one top-level statement; if it raises, undo this reload's patches (StatementError).
    ``again``: it runs again unchanged (for what it reads)."""
    node = statement.node
    if (
        again
        and isinstance(node, ast.Delete)
        and all(isinstance(t, ast.Name) for t in node.targets)
    ):
        # ``del _a, _b`` unchanged, run again (``_a``'s def ran again for a statement that
        # calls it): a name no statement bound again this time is gone already.
        for target in node.targets:
            namespace.pop(cast("ast.Name", target).id, None)
        return
    code = compile_one(node, filename, flags)
    changes.kept.before(node, namespace)
    try:
        exec(code, namespace)
    except BaseException as exc:
        undo_run(changes)
        raise StatementError(str(exc)) from exc


def _run_on_live(
    statement: Statement,
    live: types.FunctionType,
    namespace: dict[str, object],
    filename: str,
    *,
    flags: int,
    changes: Changes,
    edited: bool = False,
    holders: Holders | None = None,
) -> bool:
    """Run a decorated def, its decorators given ``live`` (see :mod:`.live_defs`)."""
    try:
        return run_on_live(
            statement,
            live,
            namespace,
            filename=filename,
            flags=flags,
            patched=changes.live_patches,
            edited=edited,
            holders=holders,
        )
    except StatementError:
        undo_run(changes)
        raise


# Calls through which a module can bind names its statements do not show.
_DYNAMIC_BINDERS = frozenset({"globals", "vars", "setattr", "exec", "locals"})


def bound_names(summary: ModuleSummary, package: str | None) -> set[str] | None:
    """Every name a run of ``summary`` may bind in its module, or None if it cannot be told.

    Names bound by assignments, definitions and imports at any depth of the
    top level, names declared ``global`` in functions, and the names a star
    import brings.  None when the module may bind names dynamically
    (``globals()``, ``setattr``, ``exec``, ``__dict__``) or star-imports a
    module that is not loaded.
    """
    bound: set[str] = set()
    for statement in summary.statements:
        bound |= statement.binds
        for node in ast.walk(statement.node):
            if isinstance(node, ast.Global):
                bound.update(node.names)
            elif _binds_dynamically(node):
                return None
            elif isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
                exported = _star_exports(node, package)
                if exported is None:
                    return None
                bound |= exported
    return bound


def _binds_dynamically(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr == "__dict__"
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _DYNAMIC_BINDERS
    )


def _star_exports(node: ast.ImportFrom, package: str | None) -> set[str] | None:
    relative = "." * node.level + (node.module or "")
    try:
        source = sys.modules.get(importlib.util.resolve_name(relative, package))
    except (ImportError, ValueError):
        return None
    if source is None:
        return None
    return set(star_exports(vars(source)))


def _future_flags(summary: ModuleSummary) -> int:
    flags = 0
    for statement in summary.statements:
        node = statement.node
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            for alias in node.names:
                feature = getattr(__future__, alias.name, None)
                if feature is not None:
                    flags |= feature.compiler_flag
    return flags


def _shared_def_names(summary: ModuleSummary) -> frozenset[str]:
    """The names several top-level ``def`` statements bind."""
    seen: set[str] = set()
    shared: set[str] = set()
    for statement in summary.statements:
        node = statement.node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            (shared if node.name in seen else seen).add(node.name)
    return frozenset(shared)


def _note_methods(
    statement: Statement, old: ModuleSummary, behaviors: set[str], methods: dict[str, bool]
) -> None:
    """The methods of an edited class statement whose code changed (``K.build``), as
    changed behaviours: ``W = K.build()`` runs again here, and where ``K`` is imported for
    a static or class method (``methods``: name -> called through the class)."""
    node = statement.node
    assert isinstance(node, ast.ClassDef)
    was = _class_statement(old, node.name)
    if was is not None and was.text == statement.text:
        return  # (run again for what it reads: no method of it changed)
    before = method_texts(was) if was is not None and isinstance(was.node, ast.ClassDef) else {}
    now = method_texts(statement)
    changed = {name for name, text in now.items() if before.get(name) != text}
    if not changed:
        return
    defs = class_methods(node)
    # A method that calls a changed one of its class (``cls._part()``, ``self.helper()``)
    # computes something else too.
    more = True
    while more:
        spelled = re.compile(
            r"\b(?:self|cls)\s*\.\s*(?:"
            + "|".join(sorted(re.escape(name.rpartition(".")[2]) for name in changed))
            + r")\b"
        )
        more = False
        for name, text in now.items():
            if name not in changed and spelled.search(text):
                changed.add(name)
                more = True
    for name in changed:
        behaviors.add(name)
        methods[name] = _by_class(defs.get(name, []))


def _by_class(defs: list[ast.FunctionDef | ast.AsyncFunctionDef]) -> bool:
    """Is the method a static or class method: one another module may call through the
    class at import time (``K.build()``)?  An instance's is called on an instance, which
    no other module's import makes of it (a limit)."""
    return any(
        (dotted_name(decorator) or "").rpartition(".")[2] in ("staticmethod", "classmethod")
        for method in defs
        for decorator in method.decorator_list
    )


def _inherit_methods(node: ast.ClassDef, behaviors: set[str], methods: dict[str, bool]) -> None:
    """``class Sub(K)``, where methods of ``K`` changed: ``Sub.build`` did too."""
    for base in node.bases:
        spelled = dotted_name(base)
        if spelled is None:
            continue
        prefix = spelled + "."
        for method, by_class in [each for each in methods.items() if each[0].startswith(prefix)]:
            inherited = f"{node.name}.{method[len(prefix) :]}"
            behaviors.add(inherited)
            methods[inherited] = by_class


def _methods_calling(summary: ModuleSummary, behaviors: set[str]) -> set[str]:
    """The static and class methods of the module's classes that name a function whose
    behaviour changed (``def build(cls): return _helper()``), or a value that changed
    (``return x * RATE``): ``from base import K; V = K.build()`` elsewhere calls the new
    code, or computes another result."""
    changed = {name for name in behaviors if "." not in name}
    dotted = behaviors - changed
    if not behaviors:
        return set()
    found: set[str] = set()
    for statement in summary.statements:
        if not isinstance(statement.node, ast.ClassDef):
            continue
        if statement.body_calls.isdisjoint(behaviors) and statement.body_reads.isdisjoint(
            behaviors
        ):
            continue  # (none of its methods names one)
        for name, defs in class_methods(statement.node).items():
            if not _by_class(defs):
                continue  # (an instance's, called by no other module at import: a limit)
            for each in (node for method in defs for node in ast.walk(method)):
                spelled = (
                    each.id
                    if isinstance(each, ast.Name)
                    else dotted_name(each)
                    if isinstance(each, ast.Attribute)
                    else None
                )
                if spelled is not None and (spelled in changed or spelled in dotted):
                    found.add(name)
                    break
    return found


def passed_methods(behaviors: set[str], namespace: dict[str, object]) -> set[str]:
    """Changed methods of a class the module holds from another (``from .base import K``
    in a package): its importers call them as ``pkg.K.build()``.  (Its own classes'
    methods are told by the edit: see _note_methods.)"""
    module = namespace.get("__name__")
    passed: set[str] = set()
    for name in behaviors:
        if name.count(".") != 1:
            continue
        held = namespace.get(name.partition(".")[0])
        if is_a(held, type) and getattr(held, "__module__", module) != module:
            passed.add(name)
    return passed


def _calls_changed_method(
    calls: set[str], methods: dict[str, bool], namespace: dict[str, object]
) -> bool:
    """Does one of ``calls`` (``Color.RED.label``, ``inst.compute``) call a changed method
    of the module's classes on an object the module holds (an enum member, an instance
    made above)?  Looked up through classes and modules only: an instance is asked
    nothing, its type alone tells."""
    changed = {method.rpartition(".")[2] for method in methods}
    module = namespace.get("__name__")
    for call in calls:
        head, _, rest = call.partition(".")
        *middle, attr = rest.split(".") if rest else [""]
        if attr not in changed:
            continue
        held = namespace.get(head, _MISSING)
        for part in middle:
            if not (is_a(held, type) or is_a(held, types.ModuleType)):  # (never __class__)
                held = _MISSING
                break
            held = vars(held).get(part, _MISSING)
        if held is _MISSING:
            continue
        kind = held if is_a(held, type) else type(held)
        if any(
            f"{owner.__qualname__}.{attr}" in methods
            for owner in kind.__mro__
            if owner.__module__ == module
        ):
            return True
    return False


def _caches_over(value: object, target: types.FunctionType) -> list[object]:
    """The ``lru_cache``/``cache`` wrappers of ``target`` in what a name holds: the name's
    value itself, or one that another decorator wrapped (``@logged`` over ``@lru_cache``),
    found through ``__wrapped__`` and closure cells.  They hold the old code's results."""
    found: list[object] = []
    seen: set[int] = set()
    pending = [value]
    while pending and len(seen) < 32:
        candidate = pending.pop()
        if candidate is target or id(candidate) in seen:
            continue
        seen.add(id(candidate))
        # (By its type: a wrapper may be a proxy whose ``__class__`` raises.)
        if type(candidate) is CACHE_WRAPPER:
            if _wraps(candidate, target):
                found.append(candidate)
            continue
        if isinstance(candidate, types.FunctionType):
            for cell in candidate.__closure__ or ():
                try:
                    pending.append(cell.cell_contents)
                except ValueError:
                    continue  # (an empty cell)
        try:
            wrapped = inspect.getattr_static(candidate, "__wrapped__", None)
        except Exception:
            wrapped = None
        if wrapped is not None:
            pending.append(wrapped)
    return found


def _derives(statement: Statement) -> bool:
    """Does the statement only bind values it computes (``PORT = DB["port"] * 10``,
    ``KEYS = sorted(S)``), changing nothing in place and importing nothing?"""
    node = statement.node
    return (
        isinstance(node, ast.Assign | ast.AnnAssign)
        and bool(statement.binds)
        and not (filled_names(node) or changed_names(node) or _augmented(node))
        and not any(isinstance(target, ast.Attribute) for target in _targets(node))
    )


def _targets(node: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return list(node.targets) if isinstance(node, ast.Assign) else [node.target]


def _clear_caches_called(
    calls: set[str],
    expander: _Expander,
    namespace: Mapping[str, object],
    changed: tuple[set[str], set[str]],
    cleared: set[str],
) -> None:
    """Empty the ``lru_cache`` of the module's functions a statement about to run calls
    (through others too) whose bodies read a value that changed (``changed``: values,
    behaviors), once a reload (``cleared``)."""
    values, behaviors = changed
    for callee in calls:
        if callee in cleared or callee not in expander.defs:
            continue
        held = namespace.get(callee)
        if type(held) is not CACHE_WRAPPER:
            continue
        reads, called = expander.body(callee)
        if not (reads.isdisjoint(values) and called.isdisjoint(behaviors)):
            cleared.add(callee)
            held.cache_clear()


def _wraps(cache: object, target: types.FunctionType) -> bool:
    """Does the cache wrapper ``cache`` call ``target`` (maybe through other wrappers)?"""
    inner: object = cache
    for _ in range(8):
        try:
            inner = inspect.getattr_static(inner, "__wrapped__", None)
        except Exception:
            return False
        if inner is target:
            return True
        if inner is None:
            return False
    return False


def _clear_method_caches(cls: type, functions: set[int]) -> None:
    """Empty the ``lru_cache`` of the class's methods whose function got new code."""
    for member in list(vars(cls).values()):
        # (By its type: a class attribute may be a proxy whose ``__class__`` raises.)
        wrapped = issubclass(type(member), staticmethod | classmethod)
        inner = member.__func__ if wrapped else member
        if type(inner) is CACHE_WRAPPER and id(getattr(inner, "__wrapped__", None)) in functions:
            inner.cache_clear()


def _clear_method_caches_reading(
    summary: ModuleSummary, namespace: dict[str, object], values: set[str]
) -> None:
    """Empty the ``lru_cache``/``cache`` of the methods of the module's classes whose body
    names a value that changed (``return x * RATE``, ``RATE`` edited here or in the
    module it is imported from): they hold results of the old value.  (A cached
    function is emptied as a function whose behaviour changed; a method kept results
    of the old value until the program restarted.)"""
    if not values:
        return
    for statement in summary.statements:
        node = statement.node
        if not isinstance(node, ast.ClassDef) or statement.body_reads.isdisjoint(values):
            continue  # (none of its methods names one)
        for qualified, defs in class_methods(node).items():
            owner: object = namespace.get(node.name)
            *inner_classes, attr = qualified.split(".")[1:]
            for name in inner_classes:
                owner = vars(owner).get(name) if is_a(owner, type) else None
            if not is_a(owner, type):
                continue
            member = vars(owner).get(attr)
            # (By its type: a class attribute may be a proxy whose ``__class__`` raises.)
            if issubclass(type(member), staticmethod | classmethod):
                member = getattr(member, "__func__", None)
            if type(member) is CACHE_WRAPPER and not _names_in(defs).isdisjoint(values):
                clear = getattr(member, "cache_clear", None)
                if callable(clear):
                    clear()


def _names_in(defs: list[ast.FunctionDef | ast.AsyncFunctionDef]) -> set[str]:
    """The names the bodies of ``defs`` read, and their dotted spellings (``conf.RATE``)."""
    names: set[str] = set()
    for each in (
        node for method in defs for statement in method.body for node in ast.walk(statement)
    ):
        if isinstance(each, ast.Name):
            names.add(each.id)
        elif isinstance(each, ast.Attribute) and (chain := dotted_name(each)) is not None:
            parts = chain.split(".")
            names.update(".".join(parts[:end]) for end in range(2, len(parts) + 1))
    return names


def _function_statement(
    summary: ModuleSummary, name: str
) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    for statement in summary.statements:
        node = statement.node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return node
    return None


def _class_statement(summary: ModuleSummary, name: str) -> Statement | None:
    for statement in summary.statements:
        if isinstance(statement.node, ast.ClassDef) and statement.node.name == name:
            return statement
    return None


# Code that a call pauses in, on no thread's stack (a generator, a coroutine).
_PAUSABLE = (
    inspect.CO_GENERATOR
    | inspect.CO_COROUTINE
    | inspect.CO_ASYNC_GENERATOR
    | inspect.CO_ITERABLE_COROUTINE
)


def paused_in(namespace: dict[str, object]) -> list[object]:
    """The generators, coroutines and async generators of the module's code paused now.

    A request awaiting I/O, a ``for row in rows()`` between two rows: they run
    no thread's code, and when they resume they read the module's names, as a
    call running in a thread does.  Found with one walk of the heap, made only
    when an edit removes names: from the module's generator and coroutine
    functions (its own and its classes' methods; those objects hold their
    function), or, before 3.11, from the frames that hold its namespace.
    """
    if sys.version_info >= (3, 11):
        functions = [
            function
            for function in _functions_in(namespace)
            if function.__code__.co_flags & _PAUSABLE
        ]
        if not functions:
            return []
        candidates = gc.get_referrers(*functions)
    else:
        frames = [each for each in gc.get_referrers(namespace) if type(each) is types.FrameType]
        if not frames:
            return []
        candidates = gc.get_referrers(*frames)
    found = []
    for each in candidates:
        if type(each) in _PAUSED_KINDS:
            frame = _frame_of(each)
            if frame is not None and frame.f_globals is namespace:
                found.append(each)
    return found


_PAUSED_KINDS = (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)


def _frame_of(paused: object) -> types.FrameType | None:
    """The frame a generator or coroutine resumes in (None once it finished)."""
    for attribute in ("gi_frame", "cr_frame", "ag_frame"):
        frame = getattr(paused, attribute, None)
        if frame is not None:
            return cast(types.FrameType, frame)
    return None


def read_by_paused(paused: Iterable[weakref.ref[object]]) -> set[str] | None:
    """The global names the paused generators and coroutines still alive may read when
    they resume; None when none is left."""
    names: set[str] = set()
    left = False
    for ref in paused:
        each = ref()
        frame = None if each is None else _frame_of(each)
        if frame is not None:
            left = True
            names.update(frame.f_code.co_names)
    return names if left else None


def _functions_in(namespace: dict[str, object]) -> Iterable[types.FunctionType]:
    """The module's functions: its own and its classes' (methods, static and class ones).

    By their types alone: a namespace may hold a proxy whose attribute lookups raise
    (``flask.current_app`` outside a request)."""
    for value in list(namespace.values()):
        if type(value) is types.FunctionType:
            if value.__globals__ is namespace:
                yield value
        elif is_a(value, type) and vars(value).get("__module__") == namespace.get("__name__"):
            for member in list(vars(value).values()):
                if type(member) in (staticmethod, classmethod):
                    member = member.__func__
                if type(member) is types.FunctionType and member.__globals__ is namespace:
                    yield member


def _one_definition(then: object, now: object) -> bool:
    """Are two functions or classes one definition run twice (the live one takes the new
    one's code), or anything else (True: not a function or class)?"""
    if not isinstance(then, types.FunctionType | type) or not isinstance(
        now, types.FunctionType | type
    ):
        return True
    return (getattr(then, "__module__", None), getattr(then, "__qualname__", None)) == (
        getattr(now, "__module__", None),
        getattr(now, "__qualname__", None),
    )


# Metaclasses whose classes' plain attributes are only attributes (an Enum's are its
# members, a model's its fields).
_PLAIN_METACLASSES = (type, abc.ABCMeta)


def _changed_members(
    old: ModuleSummary, new: ModuleSummary, name: str, cls: type
) -> set[str] | None:
    """The members of the class ``name`` whose edit its users may see (see
    :func:`.analysis.changed_members`); None when its structure changed."""
    before, after = _class_statement(old, name), _class_statement(new, name)
    if before is None or after is None:
        return set() if before is after else None
    members = changed_members(before, after)
    if members and type(cls) not in _PLAIN_METACLASSES:
        return None
    return members


def plan_and_run(
    namespace: dict[str, object],
    filename: str,
    summaries: tuple[ModuleSummary, ModuleSummary],
    incoming: tuple[set[str], set[str], set[str], set[str]],
    before_first: Callable[[], None],
    *,
    classes_kept: Mapping[str, frozenset[str]] | None = None,
    again: Collection[int] = (),
    gone: Mapping[str, object] | None = None,
) -> Changes:
    """Run what must run again in ``namespace``; the caller restores it on StatementError.

    ``summaries`` are the module's statements before and after the edit (the
    same object twice when its source did not change).  ``incoming``
    is :func:`translate_incoming`'s answer.  ``before_first`` runs once, just
    before the first statement (the pre-reload hooks).  The new statements at the
    positions ``again`` run again as if edited.  ``gone``: the functions and classes
    of names an earlier edit removed (a decorated ``def`` put back hands its
    decorators the one it made then).
    """
    old, new = summaries
    edited, moved, removed = match_statements(old, new)
    recompiled = old is not new and _future_flags(old) != _future_flags(new)
    if recompiled:
        # ``from __future__ import annotations`` added or taken away: each statement
        # compiles to other code (its annotations evaluated, or not), and runs, as in a
        # fresh start, where a def whose annotation names nothing raises.
        edited = [True] * len(new.statements)
        moved = [None] * len(new.statements)
    values, behaviors, rewrapped = set(incoming[0]), set(incoming[1]), set(incoming[2])
    mutated = set(incoming[3])  # containers changed in place (see Changes.mutated)
    # A dependent that follows a change runs the same statements: none is edited.
    several = frozenset() if old is new else _shared_def_names(old) | _shared_def_names(new)
    changes = Changes(
        old=dict(namespace),
        shared=frozenset(name for name in several if not same_last_def(summaries, name)),
    )
    expander = _Expander(new)
    start_module_run()
    flags = _future_flags(new)
    started = False
    rebound: set[str] = set()  # names that statements which ran bound again
    # (What the module's functions fill: looked for once, when a statement that fills
    # a container first runs again.)
    registries = functools.cache(
        lambda: filled_in_functions([each.node for each in new.statements])
    )
    cleared: set[str] = set()  # cached functions of the module emptied so far
    # Where the registries hold the functions of the decorated defs (looked for once).
    holders = Holders(
        lambda: [
            namespace.get(each.node.name)
            for each in new.statements
            if isinstance(each.node, ast.FunctionDef | ast.AsyncFunctionDef)
            and each.node.decorator_list
            and isinstance(namespace.get(each.node.name), types.FunctionType)
        ]
    )
    # ``del TMP`` taken away: the statement that bound TMP runs again, as in a fresh start.
    undeleted = _bound_again_for_dels_removed(old, new, namespace)
    # Classes kept live that changed only plain members, as the module spells them.
    kept_classes = dict(classes_kept or {})
    last_binder: dict[str, int] = {}  # name -> the last statement binding it (when needed)
    # Body edits not given to their functions yet: other threads call the live functions
    # while this runs, and a new body may use a name defined further down (a new helper
    # ``g``, a constant).  They are given before a statement that may call them, and at
    # the end: a thread sees the old body or the new one with what it uses.
    deferred: list[tuple[types.FunctionType, types.FunctionType]] = []
    # The ``lru_cache`` wrappers of those functions: their results are the old code's,
    # emptied with the new bodies (``T = table()`` below runs the new one).
    caches: list[object] = []
    # Methods of this module's classes whose bodies changed (``K.build``).
    methods: dict[str, bool] = {}

    def give_bodies() -> None:
        for target, fresh in deferred:
            set_code(target, fresh.__code__, fresh.__doc__)
        deferred.clear()
        for cache in caches:
            cache.cache_clear()  # type: ignore[attr-defined]
        caches.clear()

    for index, statement in enumerate(new.statements):
        if methods and isinstance(statement.node, ast.ClassDef):
            # ``class Sub(K)``: ``Sub.build()`` runs K's changed ``build``.
            _inherit_methods(statement.node, behaviors, methods)
        reads, calls = expander.statement(statement)
        rebinds = isinstance(statement.node, ast.ImportFrom) and bool(statement.binds & values)
        inputs_changed = bool(reads & values) or bool(calls & (behaviors - rewrapped))
        if not inputs_changed and mutated and reads & mutated:
            # ``PORT = DB["port"] * 10`` runs again; ``DB.setdefault(...)``,
            # ``register(DB)``, ``from a import DB`` hold the very container.
            inputs_changed = _derives(statement)
        if inputs_changed and kept_classes and not (edited[index] or rebinds):
            used = (reads, calls)
            made = _instance_kept(statement.node, used, values, behaviors, kept_classes)
            if made is None:
                made = _subclass_kept(
                    statement.node, used, values, behaviors, kept_classes, namespace=namespace
                )
            if made is not None:
                # ``player = Player()``: the live class has its new members, and the
                # instance its state; ``class Counter(Base)``: it inherits them, and its
                # instances keep their state.  What reads a changed member follows.
                inputs_changed = False
                values.update(made)
        must_run = (
            edited[index] or rebinds or inputs_changed or index in again or index in undeleted
        )
        if (
            not must_run
            and methods
            and statement.binds
            and _calls_changed_method(calls, methods, namespace)
        ):
            # ``A = Color.RED.label()``, ``A = inst.compute()``: its value.  (A call made
            # for what it does, ``bus.subscribe(f)``, is not made twice.)
            must_run = True
        if (
            not must_run
            and rebound
            and statement.binds & rebound
            and _augmented(statement.node) & rebound
        ):
            must_run = True  # ``V += 100`` adds to the new value above
        if not must_run and rebound and statement.binds & rebound:
            shadowed = [n for n in statement.binds if n in rebound and _binds(statement.node, n)]
            if shadowed and not last_binder:
                for at, each in enumerate(new.statements):
                    last_binder.update(dict.fromkeys(each.binds, at))
            # (One that binds such a name only maybe, under a ``try`` or an ``if``, runs
            # again: ``try: from .dicts import OMD`` below a fallback ``class OMD`` that
            # ran again, which the classes below must not take for their base.)
            if len(shadowed) == len(statement.binds & rebound) and all(
                last_binder[n] == index and n in changes.old for n in shadowed
            ):
                # Bound again above (``@overload`` stubs edited above their
                # implementation), and here for the last time: a whole run ends
                # with this statement's binding, which the edit left as it was.
                for name in shadowed:
                    namespace[name] = changes.old[name]
                    rebound.discard(name)
                    values.discard(name)
                    behaviors.discard(name)
            else:
                must_run = True  # what it binds depends on the new value above
        if not must_run and calls & rewrapped:
            if any(
                name + RESULTS * depth not in rewrapped
                for name, depth in results_called(statement.node).items()
                if name in rewrapped
            ):
                # ``@register("tag")``: what the factory returned (its edited
                # closure) ran here at import, on the def: its new code must too.
                # (Not when only what that returned was edited: see RESULTS.)
                must_run = True
            else:
                # It called a decorator (a factory) whose edit changed only the
                # closures it returns, and those run the new code already: it
                # does not run again, but what it bound behaves differently.
                behaviors |= statement.binds
        if not must_run and reads & behaviors:
            # ``shout = kernel.helper``, ``def f(on=helper)``: what it binds holds a
            # function that behaves differently now, under a name importers use.
            behaviors |= statement.binds
        previous = moved[index]
        if not must_run and previous is None:
            continue
        if deferred and must_run and any(name not in expander.defs for name in calls):
            give_bodies()  # it may call them (through another module, even)
        elif deferred and must_run and calls & {target.__name__ for target, _ in deferred}:
            give_bodies()
        if not started:
            started = True
            before_first()
        if must_run and (values or mutated):
            # ``FIRST = lookup("c")``, ``lookup`` cached and reading a ``TABLE`` that
            # changed: its cache holds what the old table gave.
            _clear_caches_called(calls, expander, namespace, (values | mutated, behaviors), cleared)
        if not must_run:
            # Only moved: it does not run again (its decorators would register
            # it twice); what it defined takes its new lines.
            assert previous is not None
            _relocate(
                statement,
                previous,
                namespace,
                filename,
                flags=flags,
                assign=_recording(changes),
            )
            changes.applied = True
            continue
        if edited[index] and not (rebinds or inputs_changed or recompiled):
            try:
                pairs = in_place_edit(statement, old, namespace, filename, flags, several=several)
            except StatementError:
                undo_run(changes)
                raise
            if pairs is not None:
                # Only bodies changed (a function's, or methods of a class):
                # the old functions get the new code now (later statements
                # may call them), and no decorator, class statement or
                # ``__init_subclass__`` runs again: a route, a registration,
                # happens once.
                node = statement.node
                if not isinstance(node, ast.ClassDef):
                    target, fresh = pairs[0]
                    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                    behaviors.add(node.name)
                    was = _function_statement(old, node.name)
                    depth = (
                        0
                        if was is None
                        else closures_changed_at(was, node, target.__code__, fresh.__code__)
                    )
                    if depth:  # only the closures it returns changed (a wrapper's edit)
                        rewrapped.add(node.name)
                        # (Called that many times over at import, it runs no new code.)
                        rewrapped.update(node.name + RESULTS * k for k in range(1, depth))
                for target, fresh in pairs:
                    changes.body_patches.append(BodyPatch(target, target.__code__, target.__doc__))
                    if isinstance(node, ast.ClassDef):
                        set_code(target, fresh.__code__, fresh.__doc__)
                    else:
                        deferred.append((target, fresh))
                        caches.extend(_caches_over(namespace.get(node.name), target))
                changes.executed += 1
                if isinstance(node, ast.ClassDef):
                    # Its methods below the edited ones moved.
                    cls = namespace.get(node.name)
                    if isinstance(cls, type):
                        # The other methods' lines, when the text around the bodies changed
                        # too (a comment between a def and its body): with equal frames,
                        # every body whose text changed took its new code, lines and all.
                        previous_class = next(
                            (
                                s
                                for s in old.statements
                                if isinstance(s.node, ast.ClassDef) and s.node.name == node.name
                            ),
                            None,
                        )
                        if (
                            previous_class is None
                            or framed_alike(previous_class, statement) is None
                        ):
                            given = {id(target) for target, _ in pairs}
                            others = [
                                f for f in class_functions(cls, filename) if id(f) not in given
                            ]
                            align_exactly(others, node, filename, flags, _recording(changes))
                        align_class(cls, node, filename, _recording(changes))
                        # ``@staticmethod @functools.cache``: results of the old code.
                        _clear_method_caches(cls, {id(target) for target, _ in pairs})
                    _note_methods(statement, old, behaviors, methods)
                continue
        if isinstance(statement.node, ast.ClassDef):
            orm_edit = kept_class_edit(
                statement,
                old,
                namespace,
                filename,
                flags,
                edited=edited[index],
                values=values,
            )
            if orm_edit is not None:
                # An ORM's model: its class statement does not run again (see
                # kept_classes); its methods were set on it, or the edit is refused.
                changes.live_patches.append(orm_edit)
                if not orm_edit[0].refused:
                    changes.executed += 1  # (its identity stays: as for a class patched)
                continue
        binds = statement.binds
        # An optional import run again (``from .local import *``): what it binds is
        # known once it ran (the module was missing as the statement was parsed).
        whole = dict(namespace) if index in again else None
        before = {name: namespace.get(name, _MISSING) for name in binds}
        chain = _accumulated_from(new.statements, index, rebound, registries)
        chain = sorted({*chain, *_deleted_since(new.statements, index, namespace)})
        # (What the chain binds again is new as what the statement binds: ``X = []``
        # above ``X.append(...)``, which binds nothing.)
        made = set().union(*(new.statements[at].binds for at in chain)) - binds
        before.update((name, namespace.get(name, _MISSING)) for name in made)
        for earlier in chain:
            # ``V = 0`` ... ``V += f()``: the sum starts again from the value a fresh
            # start has there, not from the one the last run left.
            _run_statement(new.statements[earlier], namespace, filename, flags, changes)
            changes.executed += 1
        live = live_function(statement, (old, new), namespace, filename, gone)
        note_run(binds)
        if several:
            _note_defs_again(statement, old, new, several, edited=edited[index], was=moved[index])
        attributes = dict(live.__dict__) if live is not None else None
        if live is not None and _run_on_live(
            statement,
            live,
            namespace,
            filename,
            flags=flags,
            changes=changes,
            edited=edited[index],
            holders=holders,
        ):
            # The live function took the new definition: whatever the name holds now.
            behaviors.add(live.__name__)
            # Its decorators set other attributes on it (``fn.tag = compute()``): what
            # reads them here (``V = g.tag``) follows, as for a new value (not what
            # reads the function: it is the same one).
            values.update(
                f"{live.__name__}.{attr}" for attr in _changed_keys(live.__dict__, attributes)
            )
        elif live is None:
            held = None if edited[index] else _appended_to(statement, namespace)
            touched = Touched(statement.node, namespace, binds | made)
            _run_statement(statement, namespace, filename, flags, changes, again=not edited[index])
            # ``DB["port"] = 3``, ``APP.debug = True``: what reads it below, or in
            # the modules that import it, follows.
            mutated.update(touched.changed())
            if held is not None:
                # ``HANDLERS.append(("class", Reg))``, run again for what it reads (its
                # class changed): the entry it appends again is the one it holds.
                drop_entries_again([held], _registered_by(statement, namespace))
        changes.executed += 1
        binds = binds | made
        if whole is not None:
            bound = {key for key, now in namespace.items() if whole.get(key, _MISSING) is not now}
            before.update((key, whole.get(key, _MISSING)) for key in bound - binds)
            binds = binds | bound
        rebound.update(binds)
        for name in binds:
            now, then = namespace.get(name, _MISSING), before[name]
            if now is then:
                if type(now) in REFILLED and name in _augmented(statement.node):
                    mutated.add(name)  # ``INSTALLED += [...]`` added to the list it holds
                continue
            if _refilled(
                then, now, [new.statements[at].node for at in (*chain, index)], name
            ) and not aliased(then, namespace, name):
                # ``TABLE = {...}`` edited: once the module's new code is in, the old
                # container takes the new items too (see refill_containers).
                changes.refills.append((then, now))
            if not _one_definition(then, now):
                # Another function or class under the name (``from util import fmt``
                # made ``from other import fmt``): what holds the old one keeps it.
                values.add(name)
            elif isinstance(now, types.FunctionType) and isinstance(then, types.FunctionType):
                behaviors.add(name)
                if _defaults_differ(now, then):
                    # ``V = f.__defaults__[0]`` reads them (what reads ``f`` does not
                    # follow: the live function takes them, as its other readers see).
                    values.update((f"{name}.__defaults__", f"{name}.__kwdefaults__"))
            elif isinstance(now, type) and isinstance(then, type):
                members = None if inputs_changed else _changed_members(old, new, name, now)
                if members is None or members:
                    # Its structure, members or what it inherits changed: readers follow.
                    values.add(name)
                if members:
                    kept_classes[name] = changes.kept_classes[name] = frozenset(members)
            elif type(now) is type(then) and isinstance(now, _PLAIN_VALUES) and now == then:
                continue
            else:
                values.add(name)
        if isinstance(statement.node, ast.ClassDef):
            _note_methods(statement, old, behaviors, methods)
            old_class = _class_statement(old, statement.node.name)
            kept = (
                kept_class_values(old_class.node, statement.node, values, behaviors, expander)
                if old_class is not None and isinstance(old_class.node, ast.ClassDef)
                else frozenset()
            )
            old_node = old_class.node if old_class is not None else None
            _adopt_class(
                namespace,
                statement.node,
                before,
                changes,
                kept,
                bodies=(
                    functools.partial(class_bodies_of, old_node)
                    if isinstance(old_node, ast.ClassDef)
                    else None
                ),
            )
    give_bodies()
    busy: set[str] = set()
    if removed and any(name in namespace for name in removed):
        busy = read_by_running_code(namespace)
        paused = paused_in(namespace)
        if paused:
            changes.paused = [weakref.ref(each) for each in paused]
            busy |= read_by_paused(changes.paused) or set()
    for name in removed:
        if name in namespace:
            if not started:
                started = True
                before_first()
            if name in busy:
                changes.lingering[name] = namespace[name]
            else:
                del namespace[name]
            values.add(name)
            changes.removed.add(name)
            changes.applied = True
    changes.applied = changes.applied or changes.executed > 0
    # Functions that did not run again, but now compute something else.
    for name in expander.defs:
        if name not in behaviors:
            body_reads, body_calls = expander.body(name)
            if body_reads & (values | mutated) or body_calls & behaviors:
                behaviors.add(name)
    _clear_method_caches_reading(new, namespace, values | mutated)
    changes.values = {name for name in values if "." not in name and name in changes.old}
    changes.values |= {name for name in removed}
    changes.mutated = {
        name
        for name in mutated
        if "." not in name and name in changes.old and name not in changes.values
    }
    changes.behaviors = (
        {name for name in behaviors if "." not in name}
        | {name for name, by_class in methods.items() if by_class}
        | _methods_calling(new, behaviors | values)
        | passed_methods(behaviors, namespace)
    )
    changes.rewrapped = {
        name for name in rewrapped if name.partition(RESULTS)[0] in changes.behaviors
    }
    return changes
