"""Patching the old objects of a reloaded module with its new definitions.

After a module re-executes, its namespace holds new function and class
objects, while the rest of the program (registries, callbacks, bound methods,
decorators, instances, subclasses, ``from module import name`` bindings)
still holds the old ones.  Instead of chasing every reference, the old
objects take the new definitions and go back into the namespace:

* a function keeps its identity and gets the new code, defaults, annotations
  and closure values, so every reference to it runs the new body;
* a class keeps its identity and gets the new members (methods patched in
  place, added, removed), so ``isinstance``, subclasses and ``super()`` keep
  working and existing instances see the new behaviour.

A definition that ran again can leave its new object behind in a registry (a
decorator whose argument changed stored it); a class is then swapped back for
the live one in the registries (a heap walk), and a function patched into an
old one becomes its twin: every later edit gives all of them the same code.

What cannot be applied to a live object (a function whose closure changed
shape, a class whose bases, metaclass or ``__slots__`` changed) is reported,
and the old object stays as it was: nothing is half-applied.  The checks all
run before the first change.
"""

from __future__ import annotations

import abc
import contextlib
import enum
import functools
import gc
import logging
import sys
import time
import types
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum, Flag
from typing import TYPE_CHECKING, Literal, TypeVar, cast

from .in_place import REFILLED, Kept, aliased, give_items
from .kinds import CACHE_WRAPPER, is_a, takes_code, why_not_taken
from .refusals import CLASS_LAYOUT, ENUM_CLASS, ENUM_MEMBERS, Refusal
from .relocation import earlier_versions
from .running import read_by_running_code
from .validated_models import rebuild_models

if TYPE_CHECKING:
    from typing import Protocol, TypeGuard

    class _SingleDispatch(Protocol):
        """What ``functools.singledispatch`` makes (a function with these attributes)."""

        @property
        def registry(self) -> Mapping[object, object]: ...
        def register(self, cls: object, func: object, /) -> object: ...
        def dispatch(self, cls: object, /) -> object: ...

    class _CacheWrapper(Protocol):
        """What ``functools.lru_cache``/``cache`` make, as far as a patch needs it."""

        def cache_clear(self) -> None: ...


__all__ = [
    "BodyPatch",
    "PatchReport",
    "clear_abc_caches",
    "clear_caches_of",
    "defines",
    "invalidate_abc_negative_caches",
    "may_register",
    "patch_bodies",
    "patch_function_now",
    "patch_namespace",
    "refill",
    "set_code",
    "twins_of",
]

log = logging.getLogger(__name__)

# One ``def`` can make several live function objects: a decorator whose
# argument changed runs again, and the registry it fills keeps the new
# function, while the old one (patched with the new definition) goes back into
# the namespace.  Each old function knows the functions patched into it, its
# twins, so that every later edit reaches them all.  Weak both ways: a twin
# nobody holds any more is forgotten.
_TWINS: weakref.WeakKeyDictionary[types.FunctionType, weakref.WeakSet[types.FunctionType]] = (
    weakref.WeakKeyDictionary()
)


def twins_of(function: types.FunctionType) -> list[types.FunctionType]:
    """The other function objects the definition of ``function`` made, patched into it."""
    twins = _TWINS.get(function)
    return [] if twins is None else list(twins)


class _Same(enum.Enum):
    DOC = enum.auto()


_SAME_DOC = _Same.DOC

_T = TypeVar("_T")


_K = TypeVar("_K")
_V = TypeVar("_V")


def set_code(
    target: types.FunctionType,
    code: types.CodeType,
    doc: str | Literal[_Same.DOC] | None = _SAME_DOC,
) -> None:
    """Give ``target`` and its twins the body ``code`` and the docstring ``doc`` (if given)."""
    code = _same_nested_kept(target.__code__, code)
    target.__code__ = code
    if doc is not _SAME_DOC:
        target.__doc__ = doc
    for twin in twins_of(target):
        if takes_code(twin.__code__, code):
            twin.__code__ = code
            if doc is not _SAME_DOC:
                twin.__doc__ = doc


def _add_twin(old: types.FunctionType, new: types.FunctionType) -> None:
    """``new`` was patched into ``old``: it, and the twins it had, follow ``old`` now."""
    twins = _TWINS.get(old)
    if twins is None:
        twins = _TWINS[old] = weakref.WeakSet()
    twins.add(new)
    twins.update(twin for twin in twins_of(new) if twin is not old)


# Members of a class __dict__ that belong to the class object itself.
_CLASS_INTERNALS = frozenset({"__dict__", "__weakref__", "__module__", "__qualname__"})


@dataclass
class PatchReport:
    """What :func:`patch_namespace` did to one module."""

    patched: list[str] = field(default_factory=list)
    """Qualified names of functions and classes patched in place."""
    refused: list[Refusal] = field(default_factory=list)
    """One per definition that needs a restart (the old object is kept)."""
    replaced: list[tuple[str, str]] = field(default_factory=list)
    """(qualified name, why) of each function whose old object could not take the new
    definition (its closure changed shape, or its kind): the new object replaced it."""
    closures: int = 0
    """Closures made before the edit by a changed factory, given the new code."""
    rebuilt: list[type] = field(default_factory=list)
    """pydantic models rebuilt in place because their schemas held a patched model's."""
    module: str = ""
    """The module patched."""
    lingering: list[tuple[type, str, object]] = field(default_factory=list)
    """(class, name, value) of each member the edit removed that code running in other
    threads may still read (``self.finish_1()`` in a loop): left on the class for now."""


@dataclass(frozen=True)
class BodyPatch:
    """A function given a new body in place while its module's statements ran."""

    function: types.FunctionType
    old_code: types.CodeType
    """Its code before (the undo puts it back)."""
    old_doc: str | None
    """Its docstring before."""


@dataclass(frozen=True)
class _Refusal:
    """Why a class cannot be patched: its own change, or one of a nested class."""

    reason: str
    """What changed, as a verb phrase (``changed its bases (now B)``)."""
    kind: str = CLASS_LAYOUT
    nested: type | None = None
    """The nested class that cannot be patched (``Outer.Inner``), if it is one."""

    def refusal(self, module: str, cls: type) -> Refusal:
        """The engine's record of it, naming the class whose change it is."""
        owner = self.nested if self.nested is not None else cls
        return Refusal(self.kind, module, f"{module}.{owner.__qualname__} {self.reason}")


def _slots_change(cls: type) -> str:
    """What a change of ``cls``'s ``__slots__`` is to the user who wrote none: a field, in
    a class a decorator made slotted."""
    if "__attrs_attrs__" in cls.__dict__:
        return (
            "changed its fields, so the __slots__ that @attrs.define makes "
            "(@attrs.define(slots=False) lets fields change live)"
        )
    if "__dataclass_fields__" in cls.__dict__:
        return (
            "changed its fields, so the __slots__ that @dataclass(slots=True) makes "
            "(without slots=True, fields change live)"
        )
    return "changed its __slots__"


def _private_globals(namespace: dict[str, object]) -> bool:
    """Are these a generated function's own globals, not a module's namespace?"""
    name = namespace.get("__name__")
    module = sys.modules.get(name) if isinstance(name, str) else None
    return getattr(module, "__dict__", None) is not namespace


def _defined_in(obj: object, module: str) -> bool:
    return getattr(obj, "__module__", None) == module


def _same_definition(old: object, new: object) -> bool:
    return getattr(old, "__qualname__", None) == getattr(new, "__qualname__", None)


class _Patcher:
    def __init__(
        self,
        module: str,
        bodies: Callable[[], Mapping[str, frozenset[str]] | None] | None = None,
    ) -> None:
        self.module = module
        # What each class statement of the old code bound in its body (see
        # analysis.class_bodies), asked for once a class lost a member.
        self._bodies = bodies
        self._bound: Mapping[str, frozenset[str]] | None = None
        self.report = PatchReport(module=module)
        self._busy: set[str] | None = None  # what the module's running code reads
        # new object -> the old object that stands for it from now on
        self.new_to_old: dict[int, object] = {}
        self.keep_alive: list[object] = []  # ids in new_to_old stay valid
        self.actions: list[Callable[[], None]] = []
        # Code of functions nested in a patched one, old -> new: closures a
        # factory made before the edit still run the old code.
        self.nested: dict[types.CodeType, types.CodeType] = {}
        #: Classes met as members of a planned class, (old, new): ``Outer.Inner``.
        self.nested_classes: list[tuple[type, type]] = []
        #: When a list, apply() records here how to put back each thing it
        #: changes (for a patch made while later statements may still fail).
        self.undo: list[Callable[[], None]] | None = None
        #: id of an old class -> members it keeps (an unchanged ``items = []``: the
        #: live list, with what the program put in it, as at module level).
        self.kept: dict[int, frozenset[str]] = {}

    # -- planning: every check, no change ---------------------------------------

    def map(self, value: _T) -> _T:
        """The object that stands for ``value`` after the patch (an object of its kind)."""
        return cast(_T, self.new_to_old.get(id(value), value))

    def plan_function(
        self, old: types.FunctionType, new: types.FunctionType, label: str | None = None
    ) -> bool:
        """Schedule ``old`` to take ``new``'s definition; False if it cannot.

        ``label`` names it in the report (a class member: ``C.method``, also
        when a code generator gave it another qualified name); an empty label
        leaves it out (the function a wrapper holds: one definition, one entry).
        """
        if old is new or id(new) in self.new_to_old:
            return True
        if _is_single_dispatch(old) and _is_single_dispatch(new):
            return self._plan_single_dispatch(old, new)
        if not takes_code(old.__code__, new.__code__):
            return False
        self.new_to_old[id(new)] = old
        self.keep_alive.append(new)
        if old.__globals__ is not new.__globals__ and _private_globals(old.__globals__):
            # Made by a code generator with globals of its own (attrs' ``__init__``
            # finds a field's converter and validator there): its body reads the new.
            self.actions.append(
                functools.partial(self._adopt_globals, old.__globals__, new.__globals__)
            )
        cells = list(zip(old.__closure__ or (), new.__closure__ or (), strict=True))
        for index, (old_cell, new_cell) in enumerate(cells):
            self._plan_cell(old, index, old_cell, new_cell)
        self.actions.append(functools.partial(self._apply_function, old, new))
        if label != "":
            self.report.patched.append(f"{self.module}.{label or old.__qualname__}")
        if old.__code__ is not new.__code__:
            new.__code__ = _same_nested_kept(old.__code__, new.__code__)
            _pair_nested(old.__code__, new.__code__, self.nested)
        return True

    def _plan_cell(
        self,
        function: types.FunctionType,
        index: int,
        old_cell: types.CellType,
        new_cell: types.CellType,
    ) -> None:
        name = function.__code__.co_freevars[index]
        try:
            old_value = old_cell.cell_contents
            new_value = new_cell.cell_contents
        except ValueError:  # an empty cell: nothing to carry over
            return
        if old_value is new_value or name == "__class__":
            return  # ``__class__`` must keep pointing at the old class
        if (
            isinstance(old_value, types.FunctionType)
            and isinstance(new_value, types.FunctionType)
            and _same_definition(old_value, new_value)
            and self.plan_function(old_value, new_value, "")
        ):
            return  # the wrapped function of a decorator, patched in place

        def set_cell() -> None:
            # The twins' cells too: each function the definition made sees the new value.
            twins = [
                twin.__closure__[index]
                for twin in twins_of(function)
                if twin.__code__.co_freevars == function.__code__.co_freevars
                and twin.__closure__ is not None
            ]
            for cell in [old_cell, *twins]:
                if self.undo is not None:
                    self.undo.append(_cell_restorer(cell))
                cell.cell_contents = self.map(new_value)

        self.actions.append(set_cell)

    def _plan_single_dispatch(self, old: _SingleDispatch, new: _SingleDispatch) -> bool:
        # The old dispatcher stays: other modules registered implementations
        # in its registry.  Its base implementation gets the new code, and the
        # module's own (re-executed) registrations are added to it.
        base_old, base_new = old.registry[object], new.registry[object]
        if not (
            isinstance(base_old, types.FunctionType)
            and isinstance(base_new, types.FunctionType)
            and self.plan_function(base_old, base_new)
        ):
            return False
        self.new_to_old[id(new)] = old
        self.keep_alive.append(new)

        def merge() -> None:
            for cls, impl in new.registry.items():
                if cls is not object:
                    old.register(self.map(cls), self.map(impl))

        self.actions.append(merge)
        return True

    def plan_class(self, old: type, new: type) -> Refusal | None:
        """Schedule ``old`` to take ``new``'s members; why it cannot, if it cannot.

        Nested classes are planned with it; if one of them cannot be patched,
        nothing of ``old`` is scheduled.
        """
        refusal = self._plan_class(old, new)
        return None if refusal is None else refusal.refusal(self.module, old)

    def _plan_class(self, old: type, new: type) -> _Refusal | None:
        if old is new or id(new) in self.new_to_old:
            return None
        mark = self._mark()
        refusal = self._plan_class_unmarked(old, new)
        if refusal is not None:
            self._rollback(mark)
        return refusal

    def _mark(self) -> tuple[int, ...]:
        """How much is planned so far (see :meth:`_rollback`)."""
        planned = (self.actions, self.keep_alive, self.new_to_old, self.nested)
        return (
            *(len(each) for each in planned),
            len(self.report.patched),
            len(self.report.replaced),
        )

    def _rollback(self, mark: tuple[int, ...]) -> None:
        """Forget what was planned since ``mark``: planning only ever adds."""
        actions, keep_alive, new_to_old, nested, patched, replaced = mark
        del self.actions[actions:], self.keep_alive[keep_alive:]
        del self.report.patched[patched:], self.report.replaced[replaced:]
        for key in list(self.new_to_old)[new_to_old:]:
            del self.new_to_old[key]
        for code in list(self.nested)[nested:]:
            del self.nested[code]

    def _plan_class_unmarked(self, old: type, new: type) -> _Refusal | None:
        if type(old) is not type(new):
            change = f"({type(old).__name__} -> {type(new).__name__})"
            if issubclass(old, Enum) != issubclass(new, Enum):
                return _Refusal(
                    f"became {'an enum' if issubclass(new, Enum) else 'a plain class'} {change}",
                    ENUM_CLASS,
                )
            return _Refusal(f"changed its metaclass {change}")
        new_bases = tuple(self.map(base) for base in new.__bases__)
        if new_bases != old.__bases__:
            names = ", ".join(base.__name__ for base in new.__bases__)
            return _Refusal(f"changed its bases (now {names})")
        if old.__dict__.get("__slots__") != new.__dict__.get("__slots__"):
            return _Refusal(_slots_change(new))
        if issubclass(old, Enum):
            added, moved = _enum_additions(old, new)
            if moved is not None:
                return _Refusal(f"changed its members ({moved})", ENUM_MEMBERS)
            if added:
                reason = _adopt_members(old, new, added)
                if reason is not None:
                    return _Refusal(reason, ENUM_MEMBERS)
            # (Reordered only: the same members, in the statement's new order.)
            if added or list(old._member_map_) != list(getattr(new, "_member_map_", ())):
                self.actions.append(functools.partial(self._add_enum_members, old, new, added))
        if getattr(old, "_fields", None) != getattr(new, "_fields", None):
            return _Refusal("changed its fields")
        self.new_to_old[id(new)] = old
        self.keep_alive.append(new)
        members = _members(new)
        kept = self.kept.get(id(old), frozenset())
        for key, value in members.items():
            current = old.__dict__.get(key, _ABSENT)
            if key in kept and current is not _ABSENT and not isinstance(value, type):
                continue  # unchanged, and reads nothing that changed: the live value stays
            if current is _ABSENT:
                current = None
            if _own_slot(new, value) and _own_slot(old, current):
                # A slot's descriptor reads its own class's instance layout:
                # the live class keeps its own (the slots are the same).
                continue
            nested = self._nested_pair(old, key, current, value)
            if nested is not None:
                # ``Outer.Inner``: patched in place too, so that its instances
                # stay instances and run the new methods.
                self.nested_classes.append(nested)
                refusal = self._plan_class(*nested)
                if refusal is not None:
                    if refusal.nested is not None:
                        return refusal
                    return _Refusal(refusal.reason, refusal.kind, nested[0])
                continue
            if (
                isinstance(value, types.FunctionType)
                and isinstance(current, types.FunctionType)
                and _same_definition(current, value)
                and self.plan_function(current, value, f"{old.__qualname__}.{key}")
            ):
                continue
            wrapped = _unwrap_pair(current, value)
            if wrapped is not None and self.plan_function(*wrapped):
                continue
            if self._plan_property(current, value):
                continue
            if (
                type(current) is type(value)
                and type(value) in REFILLED
                and current is not value
                and not key.startswith("__")  # (``__dataclass_fields__``: the class's own)
                and not aliased(current, old.__dict__, key)
                and not aliased(current, vars(sys.modules.get(self.module, sys)), "")
            ):
                # ``KEYWORDS = {...}`` edited in the class body: the live table takes the
                # new items and stays (what copied it, a singleton built from it, reads
                # them), as a module's does.
                self.actions.append(functools.partial(self._give_items, current, value))
                continue
            if isinstance(current, types.FunctionType) and isinstance(value, types.FunctionType):
                # Same name, but the closure changed shape: the class gets the new
                # function, and old bound methods keep the old one.
                self.report.replaced.append(
                    (
                        f"{self.module}.{current.__qualname__}",
                        why_not_taken(current.__code__, value.__code__),
                    )
                )
            self.actions.append(functools.partial(self._set_member, old, key, value))
        self.actions.append(functools.partial(self._define_members, old, frozenset(members)))
        for key in old.__dict__:
            if key not in members and key not in _CLASS_INTERNALS and not _is_member(old, key):
                if not self._bound_by_statement(old, key):
                    # Set on the class from outside its statement, which did not run
                    # again (``post.notes``, the reverse accessor of another app's
                    # ``ForeignKey("blog.Post", related_name="notes")``): it stays.
                    continue
                value = old.__dict__[key]
                if _callable_member(value) and key in self._running_reads():
                    # A call running in another thread may still look it up
                    # (``self.finish_1()``, renamed by the edit): it goes once none does.
                    self.report.lingering.append((old, key, value))
                    continue
                self.actions.append(functools.partial(self._delete_member, old, key))
        self.report.patched.append(f"{self.module}.{old.__qualname__}")
        return None

    def _bound_by_statement(self, cls: type, key: str) -> bool:
        """Did the class statement of ``cls`` (in the old code) bind ``key`` in its body?
        Yes where that is not known."""
        if self._bound is None:
            found = self._bodies() if self._bodies is not None else None
            self._bound = found if found is not None else {}
            if found is None:
                self._bodies = None
        if self._bodies is None:
            return True
        names = self._bound.get(cls.__qualname__)
        return names is None or key in names

    def _running_reads(self) -> set[str]:
        """The names (attributes too) that the module's code running in other threads
        may read, looked up once per patch."""
        if self._busy is None:
            namespace = getattr(sys.modules.get(self.module), "__dict__", None)
            self._busy = read_by_running_code(namespace) if isinstance(namespace, dict) else set()
        return self._busy

    def _nested_pair(
        self, owner: type, key: str, current: object, value: object
    ) -> tuple[type, type] | None:
        """(old, new) when a class member is, old and new, a class defined in its body.

        Not an alias of another class (``Default = Other``): that one is
        patched where it is defined, and the member maps to the live class.
        """
        if (
            isinstance(current, type)
            and isinstance(value, type)
            and _defined_in(current, self.module)
            and _defined_in(value, self.module)
            and _same_definition(current, value)
            and current.__qualname__ == f"{owner.__qualname__}.{key}"
        ):
            return current, value
        return None

    def _plan_property(self, old: object, new: object) -> bool:
        if not (isinstance(old, property) and isinstance(new, property)):
            return False
        pairs = [(old.fget, new.fget), (old.fset, new.fset), (old.fdel, new.fdel)]
        for old_accessor, new_accessor in pairs:
            if (old_accessor is None) != (new_accessor is None):
                return False  # an accessor added or removed: a new property
        for old_accessor, new_accessor in pairs:
            if old_accessor is None:
                continue
            if not (
                isinstance(old_accessor, types.FunctionType)
                and isinstance(new_accessor, types.FunctionType)
                and self.plan_function(old_accessor, new_accessor)
            ):
                return False
        return True

    # -- applying: runs only once every check passed ------------------------------

    def apply(self) -> None:
        # Other threads run on between two steps: the members a class gains come first
        # (a patched method may call them at once), those it loses last.
        for action in sorted(self.actions, key=self._order):
            action()
        if self.nested:
            self._update_closures()
        # Models whose validators instantiate the class they were built for: the live one.
        self.report.rebuilt += rebuild_models(
            [old for old in self.new_to_old.values() if isinstance(old, type)],
            [new for new in self.keep_alive if isinstance(new, type)],
        )

    def _update_closures(self) -> None:
        """The fallback: find live closures of the changed nested code on the heap.

        It walks the heap (``gc.get_referrers``), so it runs only when a
        function that makes closures changed them, and it is logged.
        """
        started = time.perf_counter()
        updated = 0
        for referrer in gc.get_referrers(*self.nested):
            if isinstance(referrer, types.FunctionType):
                new_code = self.nested.get(referrer.__code__)
                if new_code is not None and takes_code(referrer.__code__, new_code):
                    if self.undo is not None:
                        self.undo.append(
                            functools.partial(setattr, referrer, "__code__", referrer.__code__)
                        )
                    referrer.__code__ = new_code
                    updated += 1
        self.report.closures += updated
        log.debug(
            "looked for closures made before the edit in %s: %d updated (heap walk, %.1f ms)",
            self.module,
            updated,
            (time.perf_counter() - started) * 1000.0,
        )

    def _adopt_globals(self, target: dict[str, object], source: dict[str, object]) -> None:
        if self.undo is not None:
            self.undo.append(functools.partial(refill, target, dict(target)))
        target.update(source)

    def _apply_function(self, old: types.FunctionType, new: types.FunctionType) -> None:
        if self.undo is not None:
            # Puts back ``old`` and every twin, ``new`` included: ``new`` may
            # sit in a registry that the failed run filled.
            self.undo.append(functools.partial(_set_function_state, old, _function_state(old)))
        attributes = {key: self.map(value) for key, value in new.__dict__.items()}
        _set_function_state(old, _state_of(new, attributes))  # to its twins too
        _add_twin(old, new)

    def _order(self, action: Callable[[], None]) -> int:
        if isinstance(action, functools.partial):
            if action.func == self._set_member and action.args[1] not in action.args[0].__dict__:
                return 0
            if action.func == self._delete_member:
                return 2
        return 1

    def _set_member(self, cls: type, key: str, value: object) -> None:
        self._remember_member(cls, key)
        setattr(cls, key, self._rehome(cls, value))

    def _give_items(self, live: object, fresh: object) -> None:
        if self.undo is not None:
            # (Undone with the class: a later statement of the module may fail.)
            kept = Kept()
            kept.container(live)
            self.undo.append(kept.put_back)
        give_items(live, fresh)

    def _define_members(self, cls: type, members: frozenset[str]) -> None:
        if self.undo is not None:
            self.undo.append(functools.partial(_set_defined, cls, _DEFINED.get(cls)))
        _set_defined(cls, members)

    def _delete_member(self, cls: type, key: str) -> None:
        self._remember_member(cls, key)
        delattr(cls, key)

    def _add_enum_members(self, old: type[Enum], new: type[Enum], added: list[str]) -> None:
        """Add the (adopted) members ``added`` to the live enum ``old``, and order its
        members as ``new`` has them."""
        flag = issubclass(old, Flag) and bool(added)
        if self.undo is not None:
            if flag:  # (last, as undone: after the maps are put back)
                self.undo.append(functools.partial(_forget_inversions, old))
            maps: _EnumMaps = (old._member_names_, old._member_map_, old._value2member_map_)
            copies: _EnumMaps = (list(maps[0]), dict(maps[1]), dict(maps[2]))
            for name in [*added, *_FLAG_BOOKKEEPING]:
                self._remember_member(old, name)
            self.undo.append(functools.partial(_put_back, maps, copies))
        for name in added:
            twin = member = new.__members__[name]
            canonical = member.name == name
            if canonical:
                old._member_names_.append(name)
                # An unhashable value is found by a scan of the members.  A value held
                # by no member (a flag's combination cached: ``Perm(7)`` before ``RWX
                # = 7`` was added) goes to the new member, as a fresh start has it.
                with contextlib.suppress(TypeError):
                    held = old._value2member_map_.get(member._value_)
                    if held is None or all(held is not each for each in old._member_map_.values()):
                        old._value2member_map_[member._value_] = member
            else:
                member = old._member_map_[member.name]
            old._member_map_[name] = member
            # As the class statement left it: the member itself (3.11+), a
            # descriptor where the name clashes with something, or nothing (3.10,
            # where the metaclass finds members in _member_map_).
            found = new.__dict__.get(name)
            if found is not None:
                type.__setattr__(old, name, member if found is twin else found)
        for key in _FLAG_BOOKKEEPING:
            if key in new.__dict__:
                type.__setattr__(old, key, new.__dict__[key])
        if flag:
            # The combinations and inversions made so far (``~Opt.A``, ``Perm(7)``) are
            # cached, worked out from the members before: a fresh start has none.
            members = {id(member) for member in old._member_map_.values()}
            cached = old._value2member_map_
            for value in [value for value, member in cached.items() if id(member) not in members]:
                del cached[value]
            _forget_inversions(old)
        # In the new statement's order: a member added between two others is iterated
        # (and listed, and offered as a choice) there, as a fresh start has it.  Each
        # in one step that runs no Python code: other threads never see a list or a
        # map without its members (list.sort empties the list while it sorts).
        place = {name: at for at, name in enumerate(new._member_map_)}
        last = len(place)
        old._member_names_[:] = sorted(old._member_names_, key=lambda n: place.get(n, last))
        self._remember_member(old, "_member_map_")
        ordered = dict(sorted(old._member_map_.items(), key=lambda kv: place.get(kv[0], last)))
        type.__setattr__(old, "_member_map_", ordered)

    def _remember_member(self, cls: type, key: str) -> None:
        if self.undo is not None:
            self.undo.append(
                functools.partial(_restore_member, cls, key, cls.__dict__.get(key, _ABSENT))
            )

    def _rehome(self, cls: type, value: _T) -> _T:
        """A new method whose ``super()`` must see the old class, not the new one."""
        if isinstance(value, staticmethod | classmethod):
            return type(value)(self._rehome(cls, value.__func__))
        if isinstance(value, property):
            if type(value) is not property:
                # A subclass (toolz's instanceproperty) may hold more than its
                # accessors, and take other arguments: it is kept as it is.
                return value
            rehomed = property(
                self._rehome(cls, value.fget),
                self._rehome(cls, value.fset),
                self._rehome(cls, value.fdel),
                value.__doc__,
            )
            return cast(_T, rehomed)
        if (
            not isinstance(value, types.FunctionType)
            or "__class__" not in value.__code__.co_freevars
        ):
            return self.map(value)
        closure = tuple(
            types.CellType(cls) if name == "__class__" else cell
            for name, cell in zip(value.__code__.co_freevars, value.__closure__ or (), strict=True)
        )
        rebuilt = types.FunctionType(
            value.__code__, value.__globals__, value.__name__, value.__defaults__, closure
        )
        rebuilt.__kwdefaults__ = value.__kwdefaults__
        _set_state(rebuilt, "__annotations__", _get_state(value, "__annotations__"))
        rebuilt.__qualname__ = value.__qualname__
        rebuilt.__doc__ = value.__doc__
        rebuilt.__dict__.update(value.__dict__)
        _add_twin(rebuilt, value)  # a decorator may have stored ``value``
        return cast(_T, rebuilt)


_COMPREHENSIONS = frozenset({"<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>"})


def _same_nested_kept(old: types.CodeType, new: types.CodeType) -> types.CodeType:
    """``new``, holding ``old``'s own nested code objects where they are equal to its.

    A closure a function made (``second``, made by ``init(app)``) holds the
    nested code object it was made with.  An edit of another closure of that
    function (``first``) brings a new compile of ``second`` too, equal but
    another object: the edit after, of ``second`` itself, looked for the live
    closures of that object (a heap walk by identity), and found none.  Kept
    as they were, unchanged nested codes stay the ones the closures hold.
    """
    kept_by_name: dict[str, list[types.CodeType]] = {}
    for const in old.co_consts:
        if isinstance(const, types.CodeType) and const.co_name not in _COMPREHENSIONS:
            kept_by_name.setdefault(const.co_name, []).append(const)
    if not kept_by_name:
        return new
    consts = list(new.co_consts)
    changed = False
    for index, const in enumerate(consts):
        if not isinstance(const, types.CodeType) or const.co_name in _COMPREHENSIONS:
            continue
        candidates = kept_by_name.get(const.co_name)
        if not candidates:
            continue
        earlier = candidates.pop(0)  # paired in order, as _pair_nested does
        kept = earlier if earlier == const else _same_nested_kept(earlier, const)
        if kept is not const:
            consts[index] = kept
            changed = True
    return new.replace(co_consts=tuple(consts)) if changed else new


def _pair_nested(
    old: types.CodeType, new: types.CodeType, pairs: dict[types.CodeType, types.CodeType]
) -> None:
    """Pair the nested function code of ``old`` and ``new`` by name, recursively."""
    new_by_name: dict[str, list[types.CodeType]] = {}
    for const in new.co_consts:
        if isinstance(const, types.CodeType) and const.co_name not in _COMPREHENSIONS:
            new_by_name.setdefault(const.co_name, []).append(const)
    for const in old.co_consts:
        if not isinstance(const, types.CodeType) or const.co_name not in new_by_name:
            continue
        candidates = new_by_name[const.co_name]
        if not candidates:
            continue
        replacement = candidates.pop(0)
        if replacement != const:
            pairs[const] = replacement
            # Closures made before the nested code moved hold an earlier version.
            for earlier in earlier_versions(const):
                pairs[earlier] = replacement
        _pair_nested(const, replacement, pairs)


def _wrapped_pair(
    old: object, new: object, module: str
) -> tuple[types.FunctionType, types.FunctionType] | None:
    """The functions inside two wrapper objects of one kind, defined in ``module``."""
    if old is new or type(old) is not type(new) or isinstance(old, types.FunctionType | type):
        return None
    old_function = getattr(old, "__wrapped__", None)
    new_function = getattr(new, "__wrapped__", None)
    if (
        isinstance(old_function, types.FunctionType)
        and isinstance(new_function, types.FunctionType)
        and _defined_in(old_function, module)
        and _same_definition(old_function, new_function)
    ):
        return old_function, new_function
    return None


# A patched class -> the members its class statement defines now (see defines).
_DEFINED: weakref.WeakKeyDictionary[type, frozenset[str]] = weakref.WeakKeyDictionary()


def _set_defined(cls: type, members: frozenset[str] | None) -> None:
    if members is None:
        _DEFINED.pop(cls, None)
    else:
        _DEFINED[cls] = members


def defines(cls: type, key: str) -> bool:
    """Does the class statement that ``cls`` was last patched from define ``key``?"""
    return key in _DEFINED.get(cls, ())


def _callable_member(value: object) -> bool:
    """Is ``value`` a method-like member of a class (what ``self.name(...)`` calls)?"""
    return isinstance(value, (types.FunctionType, classmethod, staticmethod, property))


def _members(cls: type) -> dict[str, object]:
    """The members of ``cls`` that a patch copies: enum members excluded."""
    return {
        key: value
        for key, value in cls.__dict__.items()
        if key not in _CLASS_INTERNALS and not _is_member(cls, key)
    }


def _own_slot(cls: type, value: object) -> bool:
    """Is ``value`` the descriptor of one of ``cls``'s own ``__slots__``?"""
    return isinstance(value, types.MemberDescriptorType) and value.__objclass__ is cls


def _is_member(cls: type, key: str) -> bool:
    """An enum member, or enum bookkeeping (``_member_map_``...), or ABC state."""
    if key == "_abc_impl":
        return True  # virtual subclasses registered with the old class
    if not issubclass(cls, Enum):
        return False
    return key in cls.__members__ or (key.startswith("_") and key.endswith("_"))


def _enum_additions(old: type[Enum], new: type[Enum]) -> tuple[list[str], str | None]:
    """Names of members ``new`` adds to ``old``, and what it changed of the others (None:
    nothing): the first member removed, made an alias or given a new value (a member
    added above others with ``auto()`` gives them new values)."""
    fresh = new.__members__
    for name, member in old.__members__.items():
        twin = fresh.get(name)
        if twin is None:
            return [], f"{name} removed or renamed"
        if twin.name != member.name:
            return [], f"{name} made an alias of {twin.name}"
        if twin.value != member.value:
            return [], f"{name} given a new value: {member.value!r} -> {twin.value!r}"
    return [name for name in fresh if name not in old.__members__], None


# Flag enums keep masks of their members' bits (3.11+), which must cover the added ones.
_FLAG_BOOKKEEPING = ("_flag_mask_", "_singles_mask_", "_all_bits_")


def _forget_inversions(cls: type[Enum]) -> None:
    """Drop what a Flag's members cached of their inversion (``~member``, 3.11+)."""
    for member in cls._member_map_.values():
        if getattr(member, "_inverted_", None) is not None:
            object.__setattr__(member, "_inverted_", None)


def _adopt_members(old: type[Enum], new: type[Enum], added: list[str]) -> str | None:
    """Make ``new``'s added members instances of ``old``; the reason if one cannot be.

    The members are new objects that nothing but the discarded new class
    holds, so this changes nothing live if the reload is then refused.
    """
    for name in added:
        member = new.__members__[name]
        if member.name != name:
            continue  # an alias: it will name the old class's member
        try:
            member.__class__ = old
        except TypeError as error:
            return f"cannot take its new member {name} ({error})"
        if hasattr(member, "__objclass__"):
            member.__objclass__ = old
    return None


_ABSENT = object()


def refill(target: dict[_K, _V], items: Mapping[_K, _V]) -> None:
    """Make ``target`` hold exactly ``items``, never missing a name on the way.

    Other threads keep running during a reload: a clear-then-update would
    let them see a module (or a function) without a name it always has.
    """
    target.update(items)
    for key in [key for key in target if key not in items]:
        del target[key]


#: An enum's member names, its members by name and by value.
_EnumMaps = tuple[list[str], dict[str, Enum], dict[object, Enum]]


def _put_back(targets: _EnumMaps, copies: _EnumMaps) -> None:
    """An enum's member list and maps as they were (never empty on the way)."""
    targets[0][:] = copies[0]
    refill(targets[1], copies[1])
    refill(targets[2], copies[2])


def _restore_member(cls: type, key: str, value: object) -> None:
    # type's own setattr: a metaclass may refuse (an enum's members) or react.
    if value is _ABSENT:
        if key in cls.__dict__:
            type.__delattr__(cls, key)
    else:
        type.__setattr__(cls, key, value)


# What a patch gives an old function; what an undo puts back.
_FUNCTION_STATE = (
    "__code__",
    "__defaults__",
    "__kwdefaults__",
    "__annotations__",
    "__doc__",
    "__name__",
    "__qualname__",
    # Python 3.12+ (PEP 695): ``def first[T, S](...)``'s parameters, which the new
    # annotations name (and their defaults, PEP 696).
    *(("__type_params__",) if sys.version_info >= (3, 12) else ()),
)


# Python 3.14+ (PEP 649): a function's annotations are computed when first asked
# for, by its ``__annotate__``.  Reading ``__annotations__`` to copy them would
# evaluate them at reload time (a name imported under TYPE_CHECKING only, or one
# defined later, fails there), so the ``__annotate__`` is what moves.
_DEFERRED_ANNOTATIONS = sys.version_info >= (3, 14)


class _Annotate:
    """A function's ``__annotate__``, as the ``__annotations__`` part of its state."""

    __slots__ = ("function",)

    def __init__(self, function: object) -> None:
        self.function = function


def _get_state(function: types.FunctionType, key: str) -> object:
    if key == "__annotations__" and _DEFERRED_ANNOTATIONS:
        annotate = getattr(function, "__annotate__", None)
        if annotate is not None:
            return _Annotate(annotate)
    return getattr(function, key)


def _set_state(function: types.FunctionType, key: str, value: object) -> None:
    if isinstance(value, _Annotate):
        function.__annotate__ = value.function  # type: ignore[attr-defined]  # 3.14+
    else:
        setattr(function, key, value)


@dataclass(frozen=True)
class _FunctionState:
    """One value per name of ``_FUNCTION_STATE`` (``code`` is the first), and the attributes."""

    code: types.CodeType
    values: tuple[object, ...]
    attributes: dict[str, object]


def _state_of(function: types.FunctionType, attributes: dict[str, object]) -> _FunctionState:
    values = tuple(_get_state(function, key) for key in _FUNCTION_STATE)
    return _FunctionState(function.__code__, values, attributes)


def _function_state(function: types.FunctionType) -> _FunctionState:
    return _state_of(function, dict(function.__dict__))


def _set_function_state(function: types.FunctionType, state: _FunctionState) -> None:
    """Give ``function`` and its twins ``state`` (see :func:`_function_state`)."""
    code = state.code
    for each in [function, *twins_of(function)]:
        if each is not function and not takes_code(each.__code__, code):
            continue
        for key, value in zip(_FUNCTION_STATE, state.values, strict=True):
            _set_state(each, key, value)
        refill(each.__dict__, state.attributes)


def _cell_restorer(cell: types.CellType) -> Callable[[], None]:
    """How to put ``cell`` back as it is now (empty, or holding its value)."""
    try:
        value = cell.cell_contents
    except ValueError:
        return functools.partial(delattr, cell, "cell_contents")
    return functools.partial(setattr, cell, "cell_contents", value)


def _unwrap_pair(old: object, new: object) -> tuple[types.FunctionType, types.FunctionType] | None:
    """The functions inside a static/class method pair, when both are of one kind."""
    if (
        type(old) is type(new)
        and isinstance(old, staticmethod | classmethod)
        and isinstance(new, staticmethod | classmethod)
    ):
        old_func, new_func = old.__func__, new.__func__
        if isinstance(old_func, types.FunctionType) and isinstance(new_func, types.FunctionType):
            return old_func, new_func
    return None


def _is_single_dispatch(func: object) -> TypeGuard[_SingleDispatch]:
    return all(hasattr(func, attr) for attr in ("dispatch", "register", "registry"))


# What runs when a class statement does, and is known to keep the class nowhere.
_QUIET_METACLASSES = (type, abc.ABCMeta, enum.EnumMeta)
_QUIET_DECORATORS = frozenset(
    {"dataclass", "total_ordering", "final", "unique", "runtime_checkable"}
)


def may_register(cls: type, decorators: Iterable[str]) -> bool:
    """Whether running the class statement of ``cls`` again may have stored the new class.

    A class decorator (``@register``), an ``__init_subclass__`` of a base, or
    a metaclass (Django's models) can keep the class in a registry; the
    known ones that do not are left out.  ``decorators`` are the last parts
    of the decorators' names.
    """
    if any(name not in _QUIET_DECORATORS for name in decorators):
        return True
    if type(cls) not in _QUIET_METACLASSES:
        return True
    return any(
        "__init_subclass__" in vars(base)
        for base in cls.__mro__[1:-1]
        if base.__module__ not in ("typing", "typing_extensions", "builtins")
    )


def _redirect(new: type, old: type, internal: Iterable[object]) -> int:
    """Registries that took ``new`` when its class statement ran hold ``old`` instead.

    Dict values and keys, list items and set members; a list that already
    holds ``old`` drops ``new`` rather than holding the class twice, and a dict that
    held ``old`` under one other key (``CLASSES[cls.name]``, the name edited) drops it.  Tuples
    and other immutable holders are left as they are.  ``internal`` lists
    holders to leave alone.
    """
    skip = {id(holder) for holder in internal}
    skip.update(id(referent) for referent in gc.get_referents(new))
    redirected = 0
    for holder in gc.get_referrers(new):
        if id(holder) in skip:
            continue
        if isinstance(holder, dict):
            was = [key for key, value in list(holder.items()) if value is old]
            for key, value in list(holder.items()):
                if value is new:
                    holder[key] = old
                    redirected += 1
                    # ``CLASSES[cls.name] = cls`` with the name edited: the one key the
                    # class had there is this one's old registration (a fresh start has
                    # the new key alone).
                    if len(was) == 1 and was[0] != key and "__builtins__" not in holder:
                        holder.pop(was.pop(), None)
                if key is new:
                    holder.setdefault(old, holder.pop(new))
                    redirected += 1
        elif isinstance(holder, list):
            twice = any(item is old for item in holder)
            redirected += sum(1 for item in holder if item is new)
            holder[:] = [
                old if item is new else item for item in holder if not (item is new and twice)
            ]
        elif isinstance(holder, set):
            holder.discard(new)
            holder.add(old)
            redirected += 1
    return redirected


def _redirect_logged(module: str, new: type, old: type, internal: Iterable[object]) -> None:
    started = time.perf_counter()
    redirected = _redirect(new, old, internal)
    log.debug(
        "looked for registrations of the new %s.%s: %d redirected to the live class "
        "(heap walk, %.1f ms)",
        module,
        old.__qualname__,
        redirected,
        (time.perf_counter() - started) * 1000.0,
    )


def patch_class_now(
    module: str,
    old: type,
    new: type,
    registered: bool = False,
    kept: frozenset[str] = frozenset(),
    *,
    bodies: Callable[[], Mapping[str, frozenset[str]] | None] | None = None,
) -> tuple[PatchReport, Callable[[], None]]:
    """Give the live class ``old`` the definition of ``new`` at once; and how to undo it.

    For a class statement that ran again while the module's later statements
    have yet to run: they must see (and instantiate) the class that every
    reference holds.  If a later statement fails, the undo puts back every
    member, method body and enum member as it was.  With ``registered``
    (see :func:`may_register`), the registries that took ``new`` get ``old``
    back; that stands whether the reload succeeds or not.  ``kept``: members of
    ``old`` whose values stay (see incremental.kept_class_values).  ``bodies``: as
    for :func:`patch_namespace`.
    """
    patcher = _Patcher(module, bodies)
    patcher.undo = []
    if kept and not issubclass(old, Enum):
        patcher.kept[id(old)] = kept
    reason = patcher.plan_class(old, new)
    if registered:
        _redirect_logged(module, new, old, (patcher.keep_alive,))
    # A nested class whose metaclass or bases may keep it (``class Inner(Plugin)``);
    # its decorators are not known here.  The new outer class is left as it is.
    for old_nested, new_nested in patcher.nested_classes:
        if may_register(old_nested, ()):
            _redirect_logged(
                module, new_nested, old_nested, (patcher.keep_alive, *gc.get_referents(new))
            )
    if reason is not None:
        patcher.report.refused.append(reason)
        return patcher.report, lambda: None
    patcher.apply()
    undo = patcher.undo

    def revert() -> None:
        for action in reversed(undo):
            action()

    return patcher.report, revert


def patch_function_now(
    module: str, old: types.FunctionType, new: types.FunctionType
) -> tuple[PatchReport, Callable[[], None]] | None:
    """Give the live function ``old`` the definition of ``new`` at once; and how to undo it.

    For a decorated ``def`` that runs again: its decorators then get ``old``.
    None if ``old`` cannot take it (its closure changed shape).
    """
    patcher = _Patcher(module)
    patcher.undo = []
    if not patcher.plan_function(old, new):
        return None
    patcher.apply()
    undo = patcher.undo

    def revert() -> None:
        for action in reversed(undo):
            action()

    return patcher.report, revert


def patch_bodies(
    module: str,
    pairs: list[BodyPatch],
    namespace: dict[str, object] | None = None,
) -> PatchReport:
    """Report functions whose body was replaced in place, and follow their closures.

    The bodies were replaced while the module's statements ran (later
    statements may call them); closures these functions made before the edit
    still run the old nested code, and get the new one here.  The caches of
    ``lru_cache``/``cache`` wrappers around them in ``namespace`` (and its
    classes) are emptied: they hold results of the old code.
    """
    patcher = _Patcher(module)
    for pair in pairs:
        function = pair.function
        patcher.nested.update(_nested_pairs(pair.old_code, function.__code__))
        patcher.report.patched.append(f"{module}.{function.__qualname__}")
    if namespace is not None:
        patched = {id(each) for pair in pairs for each in [pair.function, *twins_of(pair.function)]}
        for wrapper in _cache_wrappers(namespace, module):
            if _wraps_one_of(wrapper, patched):
                patcher.actions.append(wrapper.cache_clear)
    patcher.apply()
    return patcher.report


def _cache_wrappers(namespace: dict[str, object], module: str) -> list[_CacheWrapper]:
    """The cache wrappers a module holds at top level and in its own classes.

    Only exact type checks: a namespace may hold lazy objects whose
    attribute lookups have side effects.
    """
    found: list[_CacheWrapper] = []
    for value in list(namespace.values()):
        members = [value]
        if is_a(value, type) and value.__module__ == module:
            members = list(vars(value).values())
        for member in members:
            if is_a(member, staticmethod) or is_a(member, classmethod):
                member = member.__func__
            if is_a(member, CACHE_WRAPPER):
                found.append(member)
    return found


def clear_caches_of(module: str, namespace: dict[str, object], names: set[str]) -> int:
    """Empty the ``lru_cache``/``cache`` of the module's functions named in ``names`` (the
    ones whose results changed: they read a value that changed, or call a function whose
    body did); how many."""
    cleared = 0
    for wrapper in _cache_wrappers(namespace, module):
        inner = getattr(wrapper, "__wrapped__", None)
        if getattr(inner, "__name__", None) in names:
            wrapper.cache_clear()
            cleared += 1
    return cleared


def _wraps_one_of(wrapper: object, functions: set[int]) -> bool:
    inner = wrapper
    for _ in range(8):  # decorators stacked under the cache
        inner = getattr(inner, "__wrapped__", None)
        if inner is None:
            return False
        if id(inner) in functions:
            return True
    return False


def _nested_pairs(old: types.CodeType, new: types.CodeType) -> dict[types.CodeType, types.CodeType]:
    pairs: dict[types.CodeType, types.CodeType] = {}
    _pair_nested(old, new, pairs)
    return pairs


def clear_abc_caches(namespaces: Iterable[tuple[str, dict[str, object]]]) -> int:
    """Empty the ``isinstance``/``issubclass`` caches of the ABCs and runtime-checkable
    protocols defined in these (module name, namespace) pairs, and of their subclasses;
    how many were emptied.

    They remember answers of the old code: a protocol that gained a member, a class
    that lost a method, a ``__subclasshook__`` edited.
    """
    seen: set[int] = set()
    pending: list[type] = [
        value
        for module, namespace in namespaces
        for value in list(namespace.values())
        if is_a(value, abc.ABCMeta) and value.__dict__.get("__module__") == module
    ]
    while pending:
        cls = pending.pop()
        if id(cls) in seen:
            continue
        seen.add(id(cls))
        clear = getattr(cls, "_abc_caches_clear", None)
        if clear is not None:
            clear()
        pending.extend(type.__subclasses__(cls))  # not a metaclass's own
    return len(seen)


class _Invalidator(abc.ABC):  # noqa: B024 (an ABC only for its register())
    """Registering a class with an ABC is abc's own signal that every ABC's cached
    answers "no" may be stale (its invalidation counter)."""


def invalidate_abc_negative_caches() -> None:
    """Have every ABC and protocol check again what it answered "no" to before."""
    _Invalidator.register(type("_Changed", (), {}))


def patch_namespace(
    module: str,
    old: dict[str, object],
    new: dict[str, object],
    shared: frozenset[str] = frozenset(),
    bodies: Callable[[], Mapping[str, frozenset[str]] | None] | None = None,
) -> PatchReport:
    """Give the old functions and classes of ``module`` its new definitions.

    ``old`` is the namespace before the module re-executed, ``new`` the live
    namespace after it (changed in place: patched old objects go back in).
    A function under one of the ``shared`` names (bound by several ``def``
    statements) is no other's old version: it is not patched by name.
    ``bodies`` gives what the old code's class statements bound in their bodies
    (see analysis.class_bodies; None: not known): a member of a live class that its
    statement did not bind was set from outside, and stays.
    """
    patcher = _Patcher(module, bodies)
    back: dict[str, object] = {}
    # Classes first, in definition order: a class's bases map to old classes
    # before its subclasses are checked.
    for name, value in new.items():
        previous = old.get(name)
        if (
            is_a(value, type)
            and is_a(previous, type)
            and _defined_in(value, module)
            and _defined_in(previous, module)
            and _same_definition(previous, value)
        ):
            # Refused or not, the live class stays: a refused edit waits for a restart.
            reason = patcher.plan_class(previous, value)
            if reason is not None:
                patcher.report.refused.append(reason)
            back[name] = previous
    for name, value in new.items():
        previous = old.get(name)
        if (
            is_a(value, types.FunctionType)
            and is_a(previous, types.FunctionType)
            and name not in shared
            and _same_definition(previous, value)
            and (
                (_defined_in(value, module) and _defined_in(previous, module))
                # A wrapper made again by an unchanged decorator of another
                # module: same code, new closure (the decorated function).
                or previous.__code__ is value.__code__
            )
        ):
            if patcher.plan_function(previous, value):
                back[name] = previous
            else:
                patcher.report.replaced.append(
                    (
                        f"{module}.{previous.__qualname__}",
                        why_not_taken(previous.__code__, value.__code__),
                    )
                )
            continue
        if (
            is_a(value, types.FunctionType)
            and is_a(previous, types.FunctionType)
            and _defined_in(previous, module)
            and not _defined_in(value, module)
        ):
            # Moved (``def util`` became ``from c import util``): nothing to patch.
            patcher.report.replaced.append(
                (
                    f"{module}.{previous.__qualname__}",
                    f"{value.__module__}.{value.__qualname__} now",
                )
            )
            continue
        pair = _wrapped_pair(previous, value, module)
        if pair is not None:
            # A wrapper object around a function of the module (``lru_cache``,
            # ``cache``...): the old wrapper stays, its function gets the new
            # code, and its cache is emptied.
            old_function, new_function = pair
            if patcher.plan_function(old_function, new_function):
                clear = getattr(previous, "cache_clear", None)
                if callable(clear):
                    patcher.actions.append(clear)
                changed = _cache_parameters_changed(previous, value)
                if changed is None:
                    back[name] = previous
                else:
                    # ``lru_cache(maxsize=2)`` made ``maxsize=8``: a cache takes its bounds
                    # as it is made.  The name holds the new one (the old runs the new code).
                    patcher.report.replaced.append(
                        (f"{module}.{old_function.__qualname__}", f"its cache's {changed}")
                    )
            else:
                patcher.report.replaced.append(
                    (
                        f"{module}.{old_function.__qualname__}",
                        why_not_taken(old_function.__code__, new_function.__code__),
                    )
                )
        if type(value) in _CONTAINERS and type(previous) is type(value) and name not in shared:
            _plan_held_functions(patcher, name, previous, value)
    if patcher.report.refused:
        # Nothing of the module applies (the engine puts its namespace back).
        return patcher.report
    patcher.apply()
    new.update(back)
    return patcher.report


def _cache_parameters_changed(old: object, new: object) -> str | None:
    """What changed of the parameters of two ``functools.lru_cache`` wrappers
    (``maxsize=2 -> 8``), or None."""
    before, after = getattr(old, "cache_parameters", None), getattr(new, "cache_parameters", None)
    if not (callable(before) and callable(after)):
        return None
    try:
        was, now = before(), after()
    except Exception:  # not functools' (a look-alike): as its wrapper says
        return None
    if not isinstance(was, dict) or not isinstance(now, dict) or was == now:
        return None
    return ", ".join(
        f"{key}={was.get(key)!r} -> {now.get(key)!r}"
        for key in sorted(was.keys() | now.keys(), key=str)
        if was.get(key) != now.get(key)
    )


# Containers whose functions a statement made (``HANDLERS = {"k": lambda x: ...}``).
_CONTAINERS = (dict, list, tuple)
# The most items of one container looked at.
_MOST_HELD = 256


def _plan_held_functions(patcher: _Patcher, name: str, old: object, new: object) -> None:
    """The functions of this module that the container ``new`` holds (a dispatch table of
    lambdas), paired with those ``old`` held at the same key or place: each old one takes
    the new definition (a reference taken from the old table runs the new code), and goes
    back in its place in ``new`` where it can (a list, a dict)."""
    pairs: list[tuple[object, object, object]]
    if isinstance(old, dict) and isinstance(new, dict):
        if len(new) > _MOST_HELD:
            return
        pairs = [(key, old[key], value) for key, value in new.items() if key in old]
    elif isinstance(old, list | tuple) and isinstance(new, list | tuple) and len(old) == len(new):
        if len(new) > _MOST_HELD:
            return
        pairs = list(zip(range(len(new)), old, new, strict=True))
    else:
        return
    module = patcher.module
    for key, before, after in pairs:
        if (
            before is after
            or not is_a(before, types.FunctionType)
            or not is_a(after, types.FunctionType)
            or not _defined_in(before, module)
            or not _defined_in(after, module)
            or not _same_definition(before, after)
        ):
            continue
        label = f"{name}[{key!r}]" if isinstance(new, dict) else f"{name}[{key}]"
        if patcher.plan_function(before, after, label) and not isinstance(new, tuple):
            patcher.actions.append(functools.partial(new.__setitem__, key, before))
