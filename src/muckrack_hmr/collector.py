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
the garbage among them can be collected.  A program that froze objects of its
own meanwhile (a server before it forks) keeps them frozen, and ours with them.
"""

from __future__ import annotations

import gc
import threading

__all__ = ["start_fresh", "thaw"]

_lock = threading.Lock()
# gc.get_freeze_count() just after our freeze; 0: nothing of ours is frozen.
_frozen = 0


def start_fresh() -> None:
    """Freeze what is alive and zero the collector's counts (just before the program runs)."""
    global _frozen
    if not gc.isenabled():
        return  # (a program run with the collector off gets it as it is)
    gc.freeze()
    with _lock:
        _frozen = gc.get_freeze_count()
    gc.collect()


def thaw() -> None:
    """Put what :func:`start_fresh` froze back into the collector's generations, unless
    the program froze more objects of its own since (any thread; the later calls do
    nothing)."""
    global _frozen
    with _lock:
        frozen, _frozen = _frozen, 0
    # (Fewer than we froze: some of ours died since.  More: the program froze its own.)
    if frozen and gc.get_freeze_count() <= frozen:
        gc.unfreeze()
