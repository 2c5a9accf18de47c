"""The garbage collector around the program's start-up, under the CLI.

The program starts in a process that holds more than ``python`` would: the
CLI's modules, the core, the watcher (some 12,000 objects, 2-3 times what a
fresh interpreter has).  Left as they are, every full collection of the
program's start-up walks them again, and what made them left the collector's
counts in mid-cycle: its full collections come at other points of the
start-up than under ``python`` (at 5,000 modules, one more of them: 140 ms).

So, as the program's code is about to run, everything alive is frozen
(``gc.freeze``: out of every collection) and a collection that finds nothing
to look at sets the counts to zero: the program starts with the collector of
a fresh interpreter, and its collections look at its own objects only.  When
the start-up is over and the watcher's idle work has what a first edit needs
(the index of what import-time code calls, see watch.idle), or that work finds
the program busy, or a reload begins, whichever comes first, the objects are
thawed: ``gc.get_referrers``, by which a reload finds the registries that hold
a class, sees all of them again, and the garbage among them can be collected.

Meanwhile the program sees the heap as under ``python``: ``gc.get_objects``,
``gc.get_referrers`` and ``gc.collect`` thaw first, and a program that calls
``gc.freeze`` itself (a server about to fork) keeps everything frozen, ours
with its own; one that calls ``gc.unfreeze`` has thawed ours too.  Those five
functions of the ``gc`` module are stand-ins until the thaw, then the
originals again.

A collection runs in the thread whose allocation made it due, and with it the
finalizers of the garbage it finds (``__del__``, weakref callbacks).  Under
``python``, a program's own threads run them; a finalizer may need its thread
(an SQLite connection checks it, an event loop's objects are not thread-safe).
So a collection made due by a thread of ours (the watcher's idle work, a
reload) looks at nothing (see :func:`ours`): the program's next allocation, in
its own thread, makes it due again.
"""

from __future__ import annotations

import functools
import gc
import os
import sys
import threading
import time
from collections.abc import Callable
from types import CodeType
from typing import TYPE_CHECKING

from .threads import raise_in

if TYPE_CHECKING:
    from ._core_py import GcGate

__all__ = ["gate", "hold", "ours", "start_fresh", "thaw"]

_lock = threading.Lock()
# Are the objects start_fresh froze still frozen, by us alone?
_frozen = False
# The gc module's own functions that stand-ins replace while they are.
_originals: dict[str, Callable[..., object]] = {}
# The originals, for the collections on our threads (the stand-ins may be in place).
_freeze, _unfreeze, _frozen_count = gc.freeze, gc.unfreeze, gc.get_freeze_count
_collect = gc.collect
# The threads of ours that run now (their idents).
_ours: set[int] = set()
# What the interpreter froze itself before the program ran (3.12.1 freezes a few
# hundred immortal tuples): more than that, the program froze objects of its own.
_interpreter_froze = _frozen_count()
# The collector's callback (see gate), once made.
_gate: GcGate | None = None
_gate_made = False


def start_fresh() -> None:
    """Freeze what is alive and zero the collector's counts (just before the program runs)."""
    global _frozen
    if not gc.isenabled():
        return  # (a program run with the collector off gets it as it is)
    callback = gate()
    with _lock:
        if _frozen:
            return
        gc.freeze()
        _frozen = True
        _stand_in()
        if callback is not None:
            # A collection a thread of ours makes due meanwhile (the watcher's looks at
            # the start-up) freezes what is new with the rest, as while held: it ran
            # there, and with it the finalizers of the program's start-up garbage.
            callback.held = True
    _collect()


def hold() -> None:
    """Freeze what the program made since :func:`start_fresh` too, until :func:`thaw`
    (its start-up is over: the collections due meanwhile look at what it makes next)."""
    callback = gate()
    with _lock:
        if _frozen:
            _freeze()
            if callback is not None:
                callback.held = True


def thaw() -> None:
    """Put what :func:`start_fresh` froze back into the collector's generations (any
    thread; the later calls do nothing)."""
    global _frozen
    with _lock:
        frozen, _frozen = _frozen, False
        _restore()
    if frozen:
        gc.unfreeze()


def _stand_in() -> None:
    def thawing(original: Callable[..., object]) -> Callable[..., object]:
        @functools.wraps(original)
        def query(*args: object, **keywords: object) -> object:
            thaw()  # (the heap as under python, then the original answers)
            return original(*args, **keywords)

        return query

    def given_up(name: str) -> Callable[[], None]:
        # The program freezes what it made, and ours stays frozen with it; or it thaws
        # all, ours too.  Either way nothing is ours to thaw any more.
        def stand_in() -> None:
            global _frozen
            with _lock:
                _frozen = False
                _restore()
            getattr(gc, name)()  # (the original, put back)

        return stand_in

    replacements = {
        "get_objects": thawing(gc.get_objects),
        "get_referrers": thawing(gc.get_referrers),
        # (A collection it asks for finds its start-up's garbage: see hold.)
        "collect": thawing(gc.collect),
        "freeze": given_up("freeze"),
        "unfreeze": given_up("unfreeze"),
    }
    for name, replacement in replacements.items():
        _originals[name] = getattr(gc, name)
        setattr(gc, name, replacement)


def _restore() -> None:
    """The originals back (under _lock): nothing is frozen by us alone any more."""
    for name, original in _originals.items():
        setattr(gc, name, original)
    _originals.clear()
    if _gate is not None:
        _gate.held = False


def ours(target: Callable[..., object]) -> Callable[..., None]:
    """``target`` to run as a thread of ours: a collection its allocations make due looks
    at nothing, and the program's garbage waits for a thread of the program.

    Done with a callback of the collector: as a collection starts in a thread of
    ours, everything is frozen (it finds no object to look at), and thawed as it
    ends, into the oldest generation.  While the CLI keeps the start-up frozen
    (from :func:`start_fresh` to :func:`thaw`), what is new is frozen with the rest
    and stays so until the thaw.  Not while a program froze objects of its own
    (thawing would undo that): the collection then runs here, as before.
    """
    callback = gate()
    if callback is not None and callback not in gc.callbacks:
        gc.callbacks.append(callback)

    def run(*args: object, **keywords: object) -> None:
        ident = threading.get_ident()
        _ours.add(ident)
        try:
            target(*args, **keywords)
        finally:
            _ours.discard(ident)

    return run


def gate() -> GcGate | None:
    """The collector's callback for :func:`ours`, made once: the core's ``GcGate``.

    None on CPython 3.11 with the pure core: a collection that runs Python code (a
    callback) in the middle of 3.11's conversion of a parse into ``ast`` objects lets
    another thread in, and that thread's parse makes the first one fail (``SystemError:
    AST constructor recursion depth mismatch``: the watcher's judgement of a save, or
    the program's own ``ast.parse``).  The compiled core's gate runs no Python code.
    There, a collection due in a thread of ours runs as it comes, as without the CLI.
    """
    global _gate, _gate_made
    if not _gate_made:
        from ._core import USING_EXTENSION, core

        _gate_made = True
        if USING_EXTENSION or sys.version_info[:2] != (3, 11):
            _gate = core.GcGate(_ours, _freeze, _unfreeze, _frozen_count, _interpreter_froze)
            if not USING_EXTENSION:
                _keep_interrupts(type(_gate).__call__.__code__)
    return _gate


def _keep_interrupts(gate: CodeType) -> None:
    """The pure gate is Python code, and a collection in the program's main thread calls
    it: a signal handler that was due ran there, at its first line, and what it raised
    (Ctrl-C's KeyboardInterrupt) was lost, as a collection callback's exceptions are
    (reported as unraisable, if at all).  A Ctrl-C during a long collection was ignored,
    and ``pytest --hmr`` waited on.  So it is raised again in the main thread, by a
    thread of ours, once the main thread is out of the gate and of this hook (raised
    there, it would be lost the same way)."""
    previous = sys.unraisablehook

    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        caught, where = unraisable.exc_value, unraisable.exc_traceback
        main = threading.main_thread().ident
        if (
            where is not None
            and where.tb_frame.f_code is gate
            and caught is not None
            and not isinstance(caught, Exception)  # (a fault of the gate's is reported)
            and main is not None
        ):
            again = functools.partial(_raise_outside, main, type(caught), (gate, hook.__code__))
            threading.Thread(target=ours(again), name="muckrack-hmr-interrupt", daemon=True).start()
            return
        previous(unraisable)

    sys.unraisablehook = hook


def _raise_outside(thread: int, kind: type[BaseException], codes: tuple[CodeType, ...]) -> None:
    """Raise ``kind`` in ``thread`` once it runs none of ``codes`` (at most 1 s later)."""
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(thread)
        while frame is not None and frame.f_code not in codes:
            frame = frame.f_back
        if frame is None:
            break
        time.sleep(0.001)  # (it leaves them in microseconds: waiting with a deadline)
    raise_in(thread, kind)


if hasattr(os, "register_at_fork"):
    # A fork child has none of our threads (its main thread may have the ident of the
    # one that forked): ours register again as they start.
    os.register_at_fork(after_in_child=_ours.clear)
