"""A decorated ``def`` that runs again hands its decorators the live function.

When an edit changes a decorated definition's signature or decorators, its
statement runs again.  Run as written, it would make a new function object,
and its decorators would register that one: a registry that dedupes by
identity (Django's ``receiver``, ``if f not in HANDLERS``) then holds the
function twice and calls it twice.  Instead, the live function (the one the
previous run made, inside any wrapper) takes the new definition first, and
the decorators get it: they see the object they saw before, and dedupe by
themselves.

The statement runs with one more decorator, innermost, that does this
swap.  Python's order is kept exactly: the decorator expressions evaluate
top to bottom, then the defaults and annotations, then the function is
made, and the decorators apply bottom-up, the added one first.  The one
difference: the object the user's decorators receive is the live function
(patched with the new code, defaults, annotations, ``__dict__``), not a new
one.
"""

from __future__ import annotations

import ast
import copy
import functools
import gc
import inspect
import threading
import types
from collections.abc import Callable, Mapping

from .analysis import ModuleSummary, Statement
from .body_edits import StatementError, compile_one, original_function
from .patching import PatchReport, patch_function_now

__all__ = [
    "Holders",
    "decorated_again",
    "drop_entries_again",
    "lists_holding",
    "live_function",
    "made_by_a_def_again",
    "note_defs_again",
    "note_run",
    "ran_again",
    "run_on_live",
    "start_module_run",
]

# The added decorator's name in the module namespace, only while the statement runs.
_ADOPT = "__muckrack_hmr_adopt__"


class _Decorated(threading.local):
    def __init__(self) -> None:
        self.again: list[types.FunctionType] = []
        # The names bound by the statements that ran again in the module run.
        self.ran: set[str] = set()
        # A name two top-level defs bind -> the lines where the old source's defs of it
        # that ran again (or went) started: what each function's code says it is.
        self.lines: dict[str, set[int]] = {}


_decorated = _Decorated()


def decorated_again(function: object) -> bool:
    """Was ``function`` handed to its decorators again in the module run of this thread?

    A registry (a framework's routes) that replaces what a def registered
    before when the def runs again can no longer tell by identity: the
    function is the one it holds already.  This tells it, from the moment
    the decorators get the function until the next module's run starts.
    """
    return any(each is function for each in _decorated.again)


def start_module_run() -> None:
    """A module's statements start to run on this thread: forget the previous run's defs."""
    _decorated.again = []
    _decorated.ran = set()
    _decorated.lines = {}


def note_run(names: frozenset[str]) -> None:
    """A statement binding ``names`` runs again in this thread's module run."""
    _decorated.ran |= names


def note_defs_again(name: str, lines: set[int]) -> None:
    """``name`` is bound by more than one ``def`` (in the old source or the new): of its
    old functions, those that began at ``lines`` were made by a def that runs again (or
    went); the others' defs did not run again."""
    _decorated.lines.setdefault(name, set()).update(lines)


def made_by_a_def_again(function: object) -> bool:
    """Was ``function`` (a top-level one, or a wrapper of one, ``__wrapped__``) made by a
    ``def`` that ran again in the module run of this thread, as far as its name tells?
    Where two defs bind the name (two route handlers named ``handler``), its first line
    tells which; a framework's registry replaces only that one's entries."""
    if not _decorated.lines:
        return True
    try:
        inner = inspect.unwrap(function) if callable(function) else function
    except ValueError:  # a cycle of __wrapped__
        return True
    lines = _decorated.lines.get(getattr(inner, "__qualname__", None))  # type: ignore[arg-type]
    if lines is None:
        return True
    code = getattr(inner, "__code__", None)
    return isinstance(code, types.CodeType) and code.co_firstlineno in lines


def ran_again(name: str) -> bool:
    """Did a statement that binds ``name`` run again in the module run of this thread (a
    ``def`` whose decorators changed, say)?  Asked by a post-reload hook: a route whose
    decorator the edit removed was not registered again by its def."""
    return name in _decorated.ran


#: How to take back one patch (a later statement failed): (report, undo).
Patched = tuple[PatchReport, Callable[[], None]]


def _defined_once(summary: ModuleSummary, name: str) -> bool:
    """Is ``name`` bound by one top-level statement, a ``def`` of that name?"""
    binders = [statement for statement in summary.statements if name in statement.binds]
    return (
        len(binders) == 1
        and isinstance(binders[0].node, ast.FunctionDef | ast.AsyncFunctionDef)
        and binders[0].node.name == name
    )


def live_function(
    statement: Statement,
    summaries: tuple[ModuleSummary, ModuleSummary],
    namespace: dict[str, object],
    filename: str,
    gone: Mapping[str, object] | None = None,
) -> types.FunctionType | None:
    """The function the previous run of this decorated ``def`` made, if it is known.

    Only for a name that one ``def`` binds, before and after the edit: with
    ``@overload`` stubs, ``@f.register`` implementations or a name bound
    elsewhere too, the function the name holds may come from another
    statement, and must not take this one's code.  A ``def`` renamed, and
    nothing else of it changed, is the same ``def``: the function its old name
    held (which its decorators registered) takes the new name.
    """
    node = statement.node
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or not node.decorator_list:
        return None
    old, new = summaries
    if not _defined_once(new, node.name):
        return None
    was = node.name if _defined_once(old, node.name) else _renamed_from(node, old, new)
    if was is not None:
        live = original_function(namespace.get(was), was, filename)
    elif gone and not any(node.name in statement.binds for statement in old.statements):
        # Put back after an edit removed it (an undo): the function it made then, which
        # the program's registries held, takes it again, and the decorators get it.
        live = original_function(gone.get(node.name), node.name, filename)
    else:
        return None
    if live is None:
        return None
    # A ``def`` that became an ``async def`` (or back) makes a new object, as
    # it always did: frameworks tell the two kinds apart when they register.
    if bool(live.__code__.co_flags & _ASYNC_FLAGS) != isinstance(node, ast.AsyncFunctionDef):
        return None
    return live


def _renamed_from(node: ast.stmt, old: ModuleSummary, new: ModuleSummary) -> str | None:
    """The old name of the ``def`` of ``node``, a name the old source did not bind, if one
    ``def`` of the old source that the new one no longer binds is this one but for its
    name (a rename): its registrations are this one's."""
    if any(node.name in statement.binds for statement in old.statements):  # type: ignore[attr-defined]
        return None
    shape = _unnamed(node)
    bound = {name for statement in new.statements for name in statement.binds}
    found = [
        statement.node.name
        for statement in old.statements
        if isinstance(statement.node, ast.FunctionDef | ast.AsyncFunctionDef)
        and statement.node.name not in bound
        and _defined_once(old, statement.node.name)
        and _unnamed(statement.node) == shape
    ]
    return found[0] if len(found) == 1 else None


def _unnamed(node: ast.stmt) -> str:
    """``node`` (a ``def``) dumped, its name left out."""
    unnamed = copy.copy(node)
    unnamed.name = ""  # type: ignore[attr-defined]
    return ast.dump(unnamed)


# Coroutine, async generator: what ``async def`` makes.
_ASYNC_FLAGS = inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def run_on_live(
    statement: Statement,
    live: types.FunctionType,
    namespace: dict[str, object],
    *,
    filename: str,
    flags: int,
    patched: list[Patched],
    edited: bool = False,
    holders: Holders | None = None,
) -> bool:
    """Run the decorated ``def`` of ``statement``, its decorators applied to ``live``.

    ``live`` takes the new definition just before the first decorator is
    applied; the patch (and its undo) goes to ``patched``.  Returns whether
    it did (False: the new function could not go into the live one, its
    closure changed shape, and the decorators got the new function).
    Raises StatementError if the statement raises; ``patched`` then holds
    the undo of a patch already made.  ``edited``: the statement's own text changed (an
    entry its decorators append again is dropped: see drop_entries_again).
    """
    node = statement.node
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    module = namespace.get("__name__")
    module = module if isinstance(module, str) else ""
    adopted = False

    def adopt(fresh: object) -> object:
        nonlocal adopted
        if not isinstance(fresh, types.FunctionType):
            return fresh
        done = patch_function_now(module, live, fresh)
        if done is None:
            return fresh
        # (Renamed: the patch gives it the new ``__name__`` and ``__qualname__`` too.)
        patched.append(done)
        adopted = True
        _decorated.again.append(live)
        return live

    wrapped = copy.copy(node)  # shallow: the children are shared, not changed
    innermost = ast.copy_location(ast.Name(id=_ADOPT, ctx=ast.Load()), node.decorator_list[-1])
    wrapped.decorator_list = [*node.decorator_list, innermost]
    code = compile_one(wrapped, filename, flags)
    # The def edited (a decorator added, its signature): the lists that hold the function
    # (or a tuple of it: ``HANDLERS.append((event, f))``) as the decorators find them, for
    # an entry they append again, which the list holds already.  (A walk of the heap;
    # for the defs that run again because what their decorators read changed,
    # ``@register(PREFIX + ":f")``, one walk a module: see Holders.)
    if edited:
        held, keyed = lists_holding([live]), _dicts_holding(live)
    elif holders is not None:
        # Run again for what its decorators read (``@register(PREFIX + ":f")``, PREFIX
        # edited): the module's decorated functions were looked for once, together.
        held, keyed = holders.of(live)
    else:
        held, keyed = [], []
    namespace[_ADOPT] = adopt
    try:
        exec(code, namespace)
    except BaseException as exc:
        raise StatementError(str(exc)) from exc
    finally:
        namespace.pop(_ADOPT, None)
    if adopted and (held or keyed):
        # (Replaced first: with what was appended again still there, a decorator added
        # beside the one that appended again is no replacement.)
        undo = _drop_replaced(held, keyed, live)
        drop_entries_again(held, [live])
        if undo:
            # A save that fails after it: the registries hold the old entries again.
            patched.append((PatchReport(), undo))
    return adopted


_Held = list[tuple[list[object], int]]
_Keyed = list[tuple[dict[object, object], frozenset[object]]]


class Holders:
    """The lists and dicts that hold the live functions of a module's decorated defs,
    found by one walk of the heap the first time one is asked for (a def run again for
    what its decorators read: with fifty routes under an edited prefix, one walk, not
    fifty), then told for each function as the lists and dicts are then."""

    def __init__(self, functions: Callable[[], list[object]]) -> None:
        self._functions = functions
        self._lists: list[list[object]] | None = None
        self._dicts: list[dict[object, object]] = []

    def of(self, function: object) -> tuple[_Held, _Keyed]:
        """(lists holding ``function``, or a tuple of it, with their lengths; dicts
        holding it, with its keys), now."""
        if self._lists is None:
            objects = [*{id(each): each for each in [*self._functions(), function]}.values()]
            self._lists = [items for items, _ in lists_holding(objects)]
            # (No module's namespace, and no class's: a class's attributes are set
            # through the class, which a dict of its does not tell.)
            self._dicts = [
                referrer
                for referrer in gc.get_referrers(*objects)
                if type(referrer) is dict
                and "__builtins__" not in referrer
                and "__qualname__" not in referrer
            ]
        held = [
            (items, len(items))
            for items in self._lists
            if any(_holds(item, function) for item in list(items))
        ]
        keyed = []
        for table in self._dicts:
            keys = frozenset(key for key, value in list(table.items()) if value is function)
            if keys:
                keyed.append((table, keys))
        return held, keyed


def lists_holding(objects: list[object]) -> list[tuple[list[object], int]]:
    """The lists that hold one of ``objects``, or a tuple that holds one, with their
    lengths (a walk of the heap: only for a statement that registers again)."""
    found: dict[int, list[object]] = {}
    tuples: list[object] = []
    for referrer in gc.get_referrers(*objects):
        if type(referrer) is list and referrer is not objects:
            found[id(referrer)] = referrer
        elif type(referrer) is tuple:
            tuples.append(referrer)
    if tuples:
        for referrer in gc.get_referrers(*tuples):
            if type(referrer) is list and referrer is not tuples:
                found[id(referrer)] = referrer
    return [(each, len(each)) for each in found.values()]


def drop_entries_again(held: list[tuple[list[object], int]], objects: list[object]) -> None:
    """An entry for one of ``objects`` appended to one of the lists ``held`` (as long as
    they were) that is one of its entries before, taken out again: a decorator or a call
    that ran again registered what it holds already (``("start", on_start)`` twice, a
    handler called twice per event).  A new entry (``("restart", on_start)``) stays."""
    for items, length in held:
        if len(items) <= length:
            continue
        before = items[:length]
        kept = before + [
            item
            for item in items[length:]
            if not (
                any(_holds(item, each) for each in objects)
                and any(_same(item, each) for each in before)
            )
        ]
        if len(kept) != len(items):
            items[:] = kept


def _dicts_holding(function: object) -> list[tuple[dict[object, object], frozenset[object]]]:
    """The dicts (no module's namespace) that hold ``function`` as a value, with its keys."""
    found = []
    for referrer in gc.get_referrers(function):
        if type(referrer) is dict and "__builtins__" not in referrer:
            keys = frozenset(key for key, value in referrer.items() if value is function)
            if keys:
                found.append((referrer, keys))
    return found


def _drop_replaced(
    held: list[tuple[list[object], int]],
    keyed: list[tuple[dict[object, object], frozenset[object]]],
    function: object,
) -> Callable[[], None] | None:
    """A registration the edited decorator made in place of its old one (``@register("a")``
    made ``@register("b")``): where a dict gained one key for ``function`` and held it
    under one other key before, or a list gained one new entry for it and held one other
    before, the old one goes, as a fresh start has it.  With more (an entry another
    statement made beside), nothing is told apart, and they stay.  Returns what puts
    the tables back as they were before the run, for a save that fails (None: the run
    added nothing to them)."""
    undos: list[Callable[[], None]] = []
    for table, keys in keyed:
        now = {key for key, value in list(table.items()) if value is function}
        added = now - keys
        # (Undone, the entries the run added go too: the old code runs on.)
        undos.extend(functools.partial(_pop_if, table, key, function) for key in added)
        if len(keys) == 1 and len(added) == 1:
            key = next(iter(keys))
            if key in table:
                value = table.pop(key)
                undos.append(functools.partial(table.__setitem__, key, value))
    for items, length in held:
        before = [item for item in items[:length] if _holds(item, function)]
        new = [item for item in items[length:] if _holds(item, function)]
        if new:
            undos.append(functools.partial(items.__setitem__, slice(None), list(items[:length])))
        if len(before) != 1 or len(new) != 1 or _same(before[0], new[0]):
            continue
        stale = before[0]
        items[:] = [item for item in items if item is not stale]
    if not undos:
        return None

    def put_back() -> None:
        for undo in reversed(undos):
            undo()

    return put_back


def _pop_if(table: dict[object, object], key: object, value: object) -> None:
    if table.get(key) is value:
        del table[key]


def _holds(item: object, function: object) -> bool:
    return item is function or (type(item) is tuple and any(each is function for each in item))


# Values compared by equality in entries (no __eq__ of the program's runs).
_PLAIN = (str, int, float, bytes, bool, type(None))


def _same(one: object, other: object) -> bool:
    """The same entry: the same object, or tuples of the same objects or plain values."""
    if one is other:
        return True
    if type(one) is not tuple or type(other) is not tuple or len(one) != len(other):
        return False
    return all(
        a is b or (type(a) is type(b) and type(a) in _PLAIN and a == b)
        for a, b in zip(one, other, strict=True)
    )
