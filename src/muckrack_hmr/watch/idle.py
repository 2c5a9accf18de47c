"""The program's idle time, used for the engine's bookkeeping: when, and in what slices.

What can wait after an import (recording its statements in the dependency
graph, indexing what each module spells after a dot, moving the sources
taken at import out of memory, analyzing modules for early cutoff) is done
here, only while the program's own threads rest, so that it never competes
with start-up or a busy loop, and is done soon after the program rests.  The
watcher runs it between saves; :class:`IdleWorker` runs it alone, for a
program without file watching (``--no-watch``), whose first reload must cost
what a later one does.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING

from .. import collector
from ..threads import signals_to_main_thread

if TYPE_CHECKING:
    from ..api import HMR

__all__ = [
    "IDLE_PAUSE",
    "QUIET",
    "RESTING",
    "SETUP_PATIENCE",
    "Activity",
    "IdleWork",
    "IdleWorker",
    "next_pause",
    "settle_in",
]

log = logging.getLogger(__name__)

# Modules indexed or compressed per step of the idle work (checked against the slice).
_IDLE_BATCH = 32
# The most one slice of idle work takes (a pause follows while work is left: the
# program's threads get the interpreter meanwhile, and their use is looked at).
_IDLE_SLICE = 0.02
# ... until what a first edit needs is done (see IdleWork.step): fewer pauses, and a
# program that wakes meanwhile still gets the interpreter at each switch interval.
_FIRST_SLICE = 0.05
# The longest a stop waits for the slice in progress (the engine's first import, under
# load: a second or so): at exit, a thread of ours stopped in it would hold its locks.
_STOP_PATIENCE = 5.0
#: The pause between slices, while idle work is left (seconds).
IDLE_PAUSE = 0.005
#: How long the watcher (or the idle worker) sleeps when nothing is pending and its
#: idle work is done: it wakes for file events, and looks at its folders this often.
RESTING = 1.0
# Import statements recorded in the graph per idle step (ImportTracker.apply_pending).
_IDLE_IMPORTS = 256
# Modules' code taken into the index of what import-time code may call, per step
# (tens of microseconds each).
_IDLE_CODES = 16
# A program busy without a break this long gets what a first edit needs done anyway
# (see IdleWork._busy_slice), in slices of _BUSY_SLICE (seconds, of the wall clock) at
# most every _BUSY_EVERY, with fewer import statements recorded per step.  Within a
# slice the interpreter's switch interval takes turns between the program's thread
# and ours (5 ms each, by default): the program keeps at least half a core meanwhile.
_BUSY_GRACE = 0.25
_BUSY_SLICE = 0.03
_BUSY_EVERY = 0.05
_BUSY_IMPORTS = 32
#: The share of a core the program's threads may use for the program to count as idle.
QUIET = 0.2
#: The longest the file events wait for a start-up that keeps importing (seconds).
#: Only a program that keeps importing modules without a pause (see settle_in)
#: waits this long; a save made meanwhile is found once they start.  A long
#: start-up (a big app, or one run 40x slower under valgrind) must not pay for
#: the watches while it imports.
SETUP_PATIENCE = 120.0
# Fewer modules than this imported in the last _PACE_WINDOW seconds: the start-up is
# over, busy or not (a start-up imports dozens a second, even 40x slower under valgrind).
_STARTING_PACE = 10
_PACE_WINDOW = 1.0
# No module imported for this long: the start-up is over, busy or not; or for
# this many times the time an import took on average, up to _LONGEST_PAUSE.  (A server
# that answers requests as soon as it listens is busy from then on: a save made then
# waits this long for the watches, 0.25 s before.)
_IMPORTS_OVER = 0.1
_PAUSE_IN_IMPORTS = 20
_LONGEST_PAUSE = 5.0
# How often start-up is looked at to see whether it has quietened, and how many
# such looks in a row show it has.
_QUIET_LOOK = 0.02
_QUIET_LOOKS = 3
# The quiet a start-up must show to be over: _QUIET_LOOKS looks (less half of one, for
# the looks' jitter), or one look at least as long.
_QUIET_FOR = (_QUIET_LOOKS - 0.5) * _QUIET_LOOK
# While the looks find the program using a whole core (_ALL_BUSY), the pause
# between them doubles up to this: each look takes the interpreter from the
# importing thread (a switch it is made to wait for on a loaded machine), 1-5 %
# of a long start-up at 50 looks a second.  Every other look brings the pause back
# to _QUIET_LOOK.
_BUSY_LOOK = 0.16
# The share of a core a program's threads use while a start-up imports without a
# pause: the looks thin out only then.
_ALL_BUSY = 0.9


def next_pause(more: bool | None, pause: float, used: float = 1.0) -> float:
    """The wait before the next idle step, after one that said ``more`` (see
    :meth:`IdleWork.step`) following a wait of ``pause``; ``used``: the share of a
    core the program's threads used over that wait, when it found them busy.

    A program found busy is looked at again after _QUIET_LOOK, then less and
    less often: one busy for a moment (the last lines of its start-up) gets the
    idle work soon after, and a first save finds it done.  Up to RESTING while
    it uses a whole core; up to _BUSY_LOOK when it used less over the wait (its
    start-up ended during it, and a wait of a second found it half busy: the
    idle work then began a second late, and a save in that second did it).
    """
    if more:
        return IDLE_PAUSE
    if more is None:
        longest = RESTING if used >= _ALL_BUSY else _BUSY_LOOK
        return min(max(pause * 2, _QUIET_LOOK), longest)
    return RESTING


class Activity:
    """How busy the program's own threads were since the last look (from a thread of ours).

    The process's CPU time less the looking thread's own, against the wall
    clock: a program importing, computing or serving counts as busy.
    ``core`` (the compiled one) may offer looks that cost the program nothing
    (see :meth:`rest`).
    """

    def __init__(self, core: ModuleType | None = None) -> None:
        self._last: tuple[float, float, float] | None = None
        #: The share of a core the program's threads used between the last two looks.
        self.used = 1.0
        # The core's wait_for_quiet, where it looks without the GIL.
        self._wait_for_quiet: Callable[[float, float, float, float], bool] | None = (
            core.wait_for_quiet if core is not None and core.WAITS_WITHOUT_GIL else None
        )

    @classmethod
    def of(cls, hmr: HMR) -> Activity:
        """The activity as ``hmr``'s core looks at it (its tracker's module)."""
        return cls(sys.modules.get(type(hmr.tracker).__module__))

    def rest(self, pause: float, stopping: threading.Event) -> bool:
        """Sleep ``pause`` seconds; True when the program was seen resting meanwhile.

        Where the core looks without the GIL, it looks every _QUIET_LOOK, and
        quiet looks in a row that cover _QUIET_FOR end the sleep at once (True):
        the end of a busy start-up is seen within a few looks, not at the next
        of the thinned-out looks that take the GIL.  Elsewhere the sleep ends
        early only when ``stopping`` is set (False).
        """
        wait = self._wait_for_quiet
        if wait is None or pause < _QUIET_FOR:
            # A short sleep: its own looks could not see _QUIET_FOR of rest, the
            # next look that takes the GIL comes as soon.
            stopping.wait(pause)
            return False
        if not wait(pause, _QUIET_LOOK, QUIET, _QUIET_FOR):
            return False
        # The next look covers what follows: not the busy time before this sleep
        # (the idle work's first look would find the start-up's imports in it).
        self.quiet()
        return True

    def quiet(self) -> bool:
        """Were the other threads quiet since the last call (always on this thread)?"""
        now = (time.monotonic(), time.process_time(), time.thread_time())
        last, self._last = self._last, now
        if last is None:
            return False  # the first look only sets the baseline
        wall, process, ours = (now[i] - last[i] for i in range(3))
        self.used = (process - ours) / wall if wall > 0 else 1.0
        return wall > 0 and process - ours < QUIET * wall


def settle_in(activity: Activity, stopping: threading.Event) -> None:
    """Wait until the program's start-up is over, or SETUP_PATIENCE (or ``stopping``).
    Then what the CLI froze for the start-up, and what the start-up made, stay frozen
    until the idle work has what a first edit needs, or finds the program busy (see
    :meth:`IdleWork.step`).

    Over means: its threads are quiet for a moment, or it has imported no
    module for a while (a program that computes right after its imports,
    and never rests).  Any module counts, not only the project's: a program
    that imports a big library before its own modules is still starting.
    The while is ``_IMPORTS_OVER``, or many times the program's own pace of
    imports when that is slower (a slow machine, or valgrind): a module that
    takes long to run is not the end of the imports.
    """
    _wait_for_start_up(activity, stopping)
    if not stopping.is_set():
        # What the start-up made is frozen too until then: the full collection it left
        # due (0.2 s at 5,000 modules) came in the middle of the idle work's first
        # slices, and a save 1 s after the start-up paid for the index itself.
        collector.hold()


def _wait_for_start_up(activity: Activity, stopping: threading.Event) -> None:
    started = time.monotonic()
    deadline = started + SETUP_PATIENCE
    activity.quiet()
    modules = sys.modules
    first = loaded = len(modules)
    since = started
    # (when, modules loaded) at the looks of the last second or so: a program that
    # imports a module now and then as it runs (plugins, imports in functions) while it
    # computes is no start-up, however busy.
    marks: collections.deque[tuple[float, int]] = collections.deque([(started, first)])
    quiet_for = 0.0  # how long the looks in a row that found the program quiet cover
    looked = started
    pause = _QUIET_LOOK
    while True:
        if activity.rest(pause, stopping):
            return  # seen quiet for _QUIET_FOR, by the core's own looks
        if stopping.is_set():
            return
        now = time.monotonic()
        # One short quiet look may be a busy program that did not get the CPU
        # (a loaded machine): quiet means quiet for a while, over a few short
        # looks or one long one (the first after a busy start-up's thinned-out
        # looks: waiting for two more would add 40 ms to a save made then).
        quiet_for = quiet_for + (now - looked) if activity.quiet() else 0.0
        looked = now
        if quiet_for >= _QUIET_FOR or now >= deadline:
            return
        if quiet_for or activity.used < _ALL_BUSY:
            # Quiet, or not busy all the time (its start-up ending, or waiting on
            # I/O, when a look takes no interpreter the program was using): soon.
            pause = _QUIET_LOOK
        else:
            pause = min(pause * 2, _BUSY_LOOK)
        count = len(modules)
        marks.append((now, count))
        while len(marks) > 2 and now - marks[1][0] >= _PACE_WINDOW:
            marks.popleft()
        if now - marks[0][0] >= _PACE_WINDOW and count - marks[0][1] < _STARTING_PACE:
            return
        if count != loaded:
            loaded, since = count, now
            continue
        # Seconds per import so far: a pace once there are enough of them to tell one.
        # (A small program's few imports, then a busy loop: its first import's wait for
        # the script to start, over two imports, made a pace that held the file
        # events back 0.7 s, and a save made meanwhile with them.)
        imported = loaded - first
        pace = (since - started) / imported if imported >= _STARTING_PACE else 0.0
        if now - since >= min(max(_IMPORTS_OVER, _PAUSE_IN_IMPORTS * pace), _LONGEST_PAUSE):
            return


class IdleWork:
    """The engine's bookkeeping, a slice at a time, while the program rests."""

    def __init__(self, hmr: HMR) -> None:
        self.hmr = hmr
        self._warmed_up = False
        self._thawed = False
        #: The share of a core the program used over the last look that found it busy.
        self.used = 1.0
        # Since when the looks found the program busy without a break (None: it rested
        # at the last look), and when the last short slice in a busy program began.
        self._busy_since: float | None = None
        self._busy_slice_at = 0.0

    def step(self, activity: Activity, interrupted: Callable[[], bool]) -> bool | None:
        """One slice, if the program's threads were quiet since ``activity``'s last look.

        None: the program was busy, nothing was done.  Else whether work is
        left (a program busy for a while gets what a first edit needs in slices
        all the same: see _busy_slice).  ``interrupted`` (a save waiting) ends the
        slice early.
        """
        if not self._warmed_up:
            # The engine is imported, and its code run once, before the first edit
            # needs it, resting or not: a program that computes (and never rests)
            # made its first save pay for it, a blocking call per file imported
            # (each a wait for the interpreter), 0.3-1.6 s with two busy threads.
            self._warmed_up = True
            self.hmr.reloader.warm_up()  # (the folders of the modules loaded judged too)
        if not activity.quiet():
            self.used = activity.used
            self.thaw()  # (the program runs: its collections look at everything, as under python)
            return self._busy_slice(activity, interrupted)
        self._busy_since = None
        reloader = self.hmr.reloader
        deadline = time.perf_counter() + (_IDLE_SLICE if self._thawed else _FIRST_SLICE)
        more = True
        try:
            while more and not interrupted() and time.perf_counter() < deadline:
                if self._for_a_first_edit(_IDLE_IMPORTS):
                    continue
                if collector.gate() is not None:
                    # What a first edit needs is done: the start-up's objects go back
                    # to the collector now (the full collection that makes due looks
                    # at nothing in a thread of ours: the program's thread runs it).
                    self.thaw()
                # What a change of a value searches its users with; the sources kept.
                more = bool(
                    reloader.index_mentions(limit=_IDLE_BATCH)
                    or reloader.keep_sources(limit=_IDLE_BATCH)
                )
                if not more:
                    # Without the collector's gate (3.11 on the pure core) the full
                    # collection the thaw makes due runs in this thread: 0.2 s at 5,000
                    # modules, which held a save made 1 s after the start-up back when
                    # it came with the index.  (A reload thaws first, with the
                    # collector off: it comes after the new code is in.)
                    self.thaw()
                    more = bool(reloader.warm(limit=1))
        except BaseException:
            self.thaw()
            raise
        activity.quiet()  # what this slice did is ours, not the program's
        return more

    def _for_a_first_edit(self, imports: int) -> bool:
        """One step of what a first edit needs done; whether it did any."""
        reloader = self.hmr.reloader
        return bool(
            # (What a first reload would do, once: 10 ms at 5,000 modules.)
            reloader.keep_sources(limit=0)
            # Then what lets a body edit (the most common) know at once which
            # modules follow it: an index the reload would otherwise make up for
            # with a search of every module that imports the edited one (5,000
            # modules: 25 ms on the pure core), 60-140 us a module.
            or reloader.index_reach(limit=_IDLE_CODES)
            # Then the import statements into the graph: a reload that needs some
            # records them itself, only those of the names that changed (see
            # Reloader._reached).  (First, they held the index back: at 5,000 modules,
            # the pure core's was whole 1.2 s after the start-up.)
            or self.hmr.tracker.apply_pending(limit=imports)
        )

    def _busy_slice(self, activity: Activity, interrupted: Callable[[], bool]) -> bool | None:
        """A program busy since _BUSY_GRACE (a server under load, a computation) may never
        rest: what a first edit needs is done in slices meanwhile (see _BUSY_SLICE).
        Else the first edit of a function every module imports took the index in
        itself, inside the reload, sharing the interpreter with the program: 1,000
        modules, 1 s after the start-up, 0.25-0.5 s on the pure core (and 1-5 s on the
        compiled one, when it read each bytecode cache again then).  In a slice every
        ~0.12 s, it is done about 1 s after the program got busy, at about a tenth
        of a core meanwhile.  True: a slice ran and more is left (the next look comes
        soon, and slices only when due); None: nothing done."""
        now = time.monotonic()
        if self._busy_since is None:
            self._busy_since = now
        if now - self._busy_since < _BUSY_GRACE or now - self._busy_slice_at < _BUSY_EVERY:
            return None
        self._busy_slice_at = now
        deadline = time.perf_counter() + _BUSY_SLICE
        did = True
        while did and not interrupted() and time.perf_counter() < deadline:
            did = self._for_a_first_edit(_BUSY_IMPORTS)
        activity.quiet()  # what this slice did is ours, not the program's
        return True if did else None

    def thaw(self) -> None:
        """Put what the CLI froze for the start-up back into the collector (once)."""
        if not self._thawed:
            self._thawed = True
            collector.thaw()


class IdleWorker:
    """The idle work on a thread of its own, for a program that watches no files.

    It waits for the start-up to settle, works while the program rests, and
    ends when nothing is left (a module imported later is analyzed at its
    first reload, as before).
    """

    def __init__(self, hmr: HMR) -> None:
        self._work = IdleWork(hmr)
        self._activity = Activity.of(hmr)
        self._stopping = threading.Event()
        #: set when everything that was imported is analyzed and indexed
        self.done = threading.Event()
        self._thread = threading.Thread(
            target=collector.ours(self._main), name="muckrack-hmr-idle-work", daemon=True
        )

    def start(self) -> None:
        """Start the thread (at once: it waits for the start-up itself)."""
        with signals_to_main_thread():
            self._thread.start()

    def stop(self) -> None:
        """Stop, and wait (a little) for the current slice to end."""
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=_STOP_PATIENCE)

    def _main(self) -> None:
        try:
            settle_in(self._activity, self._stopping)
            pause = IDLE_PAUSE
            while not self._stopping.wait(pause):
                more = self._work.step(self._activity, self._stopping.is_set)
                if more is False:
                    self.done.set()
                    return
                pause = next_pause(more, pause, self._work.used)  # as the watcher paces it
        except Exception:  # the program goes on: its first reload does the work
            log.exception("the idle work stopped")
        finally:
            self._work.thaw()
