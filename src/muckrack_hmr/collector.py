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
the start-up is over (the watcher's idle work begins) or a reload begins,
whichever comes first, the objects are thawed: ``gc.get_referrers``, by which
a reload finds the registries that hold a class, sees all of them again, and
the garbage among them can be collected.

Meanwhile the program sees the heap as under ``python``: ``gc.get_objects``
and ``gc.get_referrers`` thaw first, and a program that calls ``gc.freeze``
itself (a server about to fork) keeps everything frozen, ours with its own;
one that calls ``gc.unfreeze`` has thawed ours too.  Those four functions of
the ``gc`` module are stand-ins until the thaw, then the originals again.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable

__all__ = ["start_fresh", "thaw"]

_lock = threading.Lock()
# Are the objects start_fresh froze still frozen, by us alone?
_frozen = False
# The gc module's own functions that stand-ins replace while they are.
_originals: dict[str, Callable[..., object]] = {}


def start_fresh() -> None:
    """Freeze what is alive and zero the collector's counts (just before the program runs)."""
    global _frozen
    if not gc.isenabled():
        return  # (a program run with the collector off gets it as it is)
    with _lock:
        if _frozen:
            return
        gc.freeze()
        _frozen = True
        _stand_in()
    gc.collect()


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
        "freeze": given_up("freeze"),
        "unfreeze": given_up("unfreeze"),
    }
    for name, replacement in replacements.items():
        _originals[name] = getattr(gc, name)
        setattr(gc, name, replacement)


def _restore() -> None:
    for name, original in _originals.items():
        setattr(gc, name, original)
    _originals.clear()
