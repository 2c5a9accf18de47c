"""Which module this thread is reloading, and how to undo a framework change if it fails.

A framework's routing tables are not part of a module's namespace: when a
reload re-runs ``@app.route(...)`` and a later statement of the module
raises, the engine puts the namespace back as it was, and the route the
failed run added would stay.  An integration that changes such a table
during a reload registers an undo with :func:`on_failure`; the undos run,
newest first, when the module's reload fails, and are dropped when it
succeeds.

:func:`current` is our safe point: the module whose new code runs on this
thread right now.  A framework's guard against late changes (Flask's "setup
method can no longer be called") is lifted only while it is set, and only
on this thread.
"""

from __future__ import annotations

import logging
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from types import CodeType
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import ast

    from ..api import HMR

_T = TypeVar("_T")

#: The attribute of a router that lists the endpoints of the routes a reload took out of
#: it as their defs ran again on another router (``router = APIRouter(prefix=...)``
#: edited): an include of the old router stands for the new one (see starlette).
MOVED_ENDPOINTS = "__muckrack_hmr_moved__"

__all__ = [
    "MOVED_ENDPOINTS",
    "current",
    "defined_at_top",
    "enable",
    "kept",
    "made_again",
    "on_failure",
    "own_change_at",
    "own_steps",
    "ran_again",
    "refuse",
    "replaced",
    "same_def",
]

log = logging.getLogger(__name__)


class _State(threading.local):
    module: str | None = None
    undo: list[Callable[[], None]]
    kept: dict[object, object]

    def __init__(self) -> None:
        self.undo = []
        self.kept = {}


_state = _State()
_enabled: weakref.WeakSet[HMR] = weakref.WeakSet()


def enable(hmr: HMR) -> None:
    """Follow ``hmr``'s reloads (once; each integration that changes tables calls it)."""
    if hmr in _enabled:
        return
    _enabled.add(hmr)
    hmr.add_pre_reload_hook(_begin)
    hmr.add_post_reload_hook(_end)
    hmr.add_error_handler(_failed)


def current() -> str | None:
    """The module whose new code this thread runs now, or None outside a reload."""
    return _state.module


def on_failure(undo: Callable[[], None]) -> None:
    """Run ``undo`` if the module reloading on this thread fails (nothing outside a reload)."""
    if _state.module is not None:
        _state.undo.append(undo)


def refuse(kind: str, what: str, fix: str = "") -> bool:
    """Refuse the edit of the module reloading on this thread (see ``HMR.refuse``): nothing
    of it applies, and a restart does.  False outside a reload."""
    module = _state.module
    if module is None:
        return False
    return any(hmr.refuse(kind, what, fix, module=module) for hmr in list(_enabled))


def kept(key: object, take: Callable[[], _T]) -> _T | None:
    """What ``take()`` gave the first time ``key`` was asked for in this module's reload.

    None outside a reload.  An integration takes its snapshot of a table
    with it, once per reload, before it first changes the table.
    """
    if _state.module is None:
        return None
    if key not in _state.kept:
        _state.kept[key] = take()
    value: _T = _state.kept[key]  # type: ignore[assignment]  # stored by this very function
    return value


def _begin(name: str) -> None:
    _state.module = name
    _state.undo = []
    _state.kept = {}


def _end(name: str) -> None:
    _state.module = None
    _state.undo = []
    _state.kept = {}


def _failed(name: str, exc: BaseException) -> None:
    if _state.module != name:
        return  # failed before any of its code ran: nothing to undo
    undo, _state.undo = _state.undo, []
    _end(name)
    for action in reversed(undo):
        try:
            action()
        except Exception:
            log.exception("could not undo a framework change of the failed reload of %s", name)


def defined_at_top(function: object, module: str) -> str | None:
    """The name a top-level ``def`` of ``module`` binds for ``function`` (or what it wraps)."""
    qualname = getattr(function, "__qualname__", None)
    if getattr(function, "__module__", None) != module or not isinstance(qualname, str):
        return None
    return qualname if qualname.isidentifier() else None


def own_steps(code: CodeType) -> tuple[object, ...]:
    """What ``code`` does itself: the names and constants it uses, in the order it first
    uses them, its nested functions' code by name only (a closure's body edited changes
    the closure, not the function that made it).  Not its bytecode: a function compiled
    alone (a body edit) calls a module's function with other instructions than the
    module's compile (``LOAD_METHOD`` against ``LOAD_ATTR`` of an imported name, 3.11)."""
    consts = tuple(
        ("<code>", const.co_name) if isinstance(const, CodeType) else const
        for const in code.co_consts
    )
    return code.co_names, consts, code.co_varnames, code.co_argcount


def own_change_at(old: bytes | None, new: bytes | None, qualname: str) -> int | None:
    """The first line of the function ``qualname`` whose own code differs between the
    sources ``old`` and ``new`` (in ``new``; a line taken away: the line after the
    last one kept), as :func:`own_steps` tells a change: its nested functions and
    classes by their decorators and signature, not their bodies.  None when either
    source does not hold the function, or nothing of its own changed."""
    if old is None or new is None:
        return None
    before, after = _own_lines(old, qualname), _own_lines(new, qualname)
    if before is None or after is None:
        return None
    for (_, was), (line, now) in zip(before, after, strict=False):
        if was != now:
            return line
    if len(after) > len(before):
        return after[len(before)][0]
    if len(after) < len(before):
        return after[-1][0] if after else None
    return None


def _own_lines(source: bytes, qualname: str) -> list[tuple[int, str]] | None:
    """(line, what it does) of the statements of the function ``qualname`` in ``source``."""
    import ast

    try:
        body: list[ast.stmt] = ast.parse(source).body
    except (SyntaxError, ValueError):
        return None
    function: ast.AST | None = None
    for part in qualname.split("."):
        found = [
            node
            for node in body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and node.name == part
        ]
        if not found:
            return None
        function = found[-1]
        body = function.body
    if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
        return None
    lines: list[tuple[int, str]] = []
    _flatten(body, lines)
    return lines


def _flatten(nodes: Sequence[ast.AST], lines: list[tuple[int, str]]) -> None:
    """Each statement's own part (with its nested statements taken out, and a nested
    function's or class's body), in order, into ``lines``."""
    import ast

    for node in nodes:
        nested: list[Sequence[ast.AST]] = []
        own: list[str] = []
        defines = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        for field, value in ast.iter_fields(node):
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                if not defines:
                    nested.append(value)
            elif (
                isinstance(value, list)
                and value
                and isinstance(value[0], ast.excepthandler | ast.match_case)
            ):
                nested.append(value)
            else:
                shown = (
                    [ast.dump(each) if isinstance(each, ast.AST) else repr(each) for each in value]
                    if isinstance(value, list)
                    else ast.dump(value)
                    if isinstance(value, ast.AST)
                    else repr(value)
                )
                own.append(f"{field}={shown}")
        starts = [
            each.lineno
            for each in getattr(node, "decorator_list", None) or [getattr(node, "pattern", node)]
            if isinstance(getattr(each, "lineno", None), int)
        ]
        line = min(starts) if starts else lines[-1][0] if lines else 0
        lines.append((line, f"{type(node).__name__}({own})"))
        for block in nested:
            _flatten(block, lines)


def same_def(old: object, new: object) -> bool:
    """Made by the same ``def`` (the same module and qualified name)?  Nothing (None:
    a route with no endpoint, as FastAPI's entry for an included router) is no def."""
    if old is None or new is None:
        return False
    if old is new:
        return True
    names = ("__module__", "__qualname__")
    return all(
        isinstance(getattr(old, n, None), str) and getattr(old, n) == getattr(new, n, None)
        for n in names
    )


def replaced(name: str, held: dict[str, object] | None) -> list[tuple[str, object]]:
    """The top-level names of module ``name`` that held the objects ``held`` (noted
    before its reload: a served app, say) and hold another of the same type now, with
    it: a statement made a new one in their place (a refusal check's question)."""
    module = sys.modules.get(name)
    if not held or module is None:
        return []
    namespace = module.__dict__
    found = []
    for key, live in held.items():
        now = namespace.get(key)
        if now is not live and type(now) is type(live):
            found.append((key, now))
    return found


def ran_again(name: str, function: object = None) -> bool:
    """Did the statement that binds the top-level ``name`` of the module whose reload
    ends on this thread run again (a post-reload hook's question)?  With ``function``
    (what a def of that name made), was it that def (two defs may bind the name)?"""
    from ..reload.live_defs import made_by_a_def_again
    from ..reload.live_defs import ran_again as ran

    return ran(name) and (function is None or made_by_a_def_again(function))


def made_again(old: object, new: object) -> bool:
    """Did the ``def`` that made ``old`` just run again, making (or handing over) ``new``?

    A decorated def that runs again gives its decorators the live function,
    the very object they registered before (see :mod:`muckrack_hmr.reload.live_defs`):
    the same object counts only if this module's run decorated it again.  A new
    object (a wrapper made again) counts when the same def made it.
    """
    if old is None or new is None:
        return False
    if old is new:
        # (Imported here: a reload runs, and a framework's import at start-up does not
        # load the engine's modules, a few ms of every start.)
        from ..reload.live_defs import decorated_again

        return decorated_again(new)
    if not same_def(old, new):
        return False
    from ..reload.live_defs import made_by_a_def_again

    # (Two defs of one name: only the one that ran again made it.)
    return made_by_a_def_again(old)
