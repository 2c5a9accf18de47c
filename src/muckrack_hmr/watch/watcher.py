"""Watching the project's files and reloading the modules that are saved (the CLI).

The watcher is the save pipeline's (:mod:`.pipeline`) consumer for a
running program: the pipeline watches the folders of the loaded project
modules and judges each burst of saves; the watcher reloads every module
whose file now holds new code in one transaction, with the bytes the
pipeline judged, on the pipeline's thread, while the program's threads keep
running.  It also picks the moment the file events start (once the
program's start-up is over), and uses the program's idle time for the
engine's bookkeeping.  A reload waits for other threads' imports
(:mod:`.safepoint`).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .backends import MODIFIED, Backend
from .datafiles import DEFAULT_DATA_SUFFIXES, DataFiles
from .filters import PathFilter
from .pipeline import LAG_MARGIN, SavePipeline
from .safepoint import SafePoint
from .saves import OPEN_PATIENCE, SETTLE

if TYPE_CHECKING:
    from ..api import HMR
    from ..reload.reloader import ReloadResult
    from .bursts import SettledSaves

__all__ = ["LAG_MARGIN", "OPEN_PATIENCE", "SETTLE", "Watcher"]

log = logging.getLogger(__name__)

# Modules indexed or compressed per step of the idle work (checked against the slice).
_IDLE_BATCH = 32
# The most one slice of idle work takes (the pipeline pauses after it while work is
# left: the program's threads get the interpreter meanwhile, and their use is looked at).
_IDLE_SLICE = 0.02
# Import statements recorded in the graph per idle step (ImportTracker.apply_pending).
_IDLE_IMPORTS = 256
# The share of a core the program's threads may use for the program to count as idle.
_QUIET = 0.2
#: The longest the file events wait for a start-up that keeps importing (seconds).
#: Only a program that keeps importing modules without a pause (see _settle_in)
#: waits this long; a save made meanwhile is found once they start.  A long
#: start-up (a big app, or one run 40x slower under valgrind) must not pay for
#: the watches while it imports.
SETUP_PATIENCE = 120.0
# No module imported for this long: the start-up is over, busy or not; or for
# this many times the time an import took on average, up to _LONGEST_PAUSE.
_IMPORTS_OVER = 0.25
_PAUSE_IN_IMPORTS = 20
_LONGEST_PAUSE = 5.0
# How often the watcher looks whether the start-up has quietened, and how many
# looks in a row must find the program quiet.
_QUIET_LOOK = 0.02
_QUIET_LOOKS = 3


class _Activity:
    """How busy the program's own threads were since the last look (from the watcher's thread).

    The process's CPU time less the watcher thread's own, against the wall
    clock: a program importing, computing or serving counts as busy.
    """

    def __init__(self) -> None:
        self._last: tuple[float, float, float] | None = None

    def quiet(self) -> bool:
        """Were the other threads quiet since the last call (always on this thread)?"""
        now = (time.monotonic(), time.process_time(), time.thread_time())
        last, self._last = self._last, now
        if last is None:
            return False  # the first look only sets the baseline
        wall, process, ours = (now[i] - last[i] for i in range(3))
        return wall > 0 and process - ours < _QUIET * wall


_CLEAR_SCREEN = "\033[H\033[2J\033[3J"


class Watcher:
    """Reload project modules when their files change on disk."""

    def __init__(
        self,
        hmr: HMR,
        *,
        debounce: float = 0.005,
        backend: str | Backend = "auto",
        poll: float | None = None,
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        watch_data: bool = False,
        clear: bool = False,
        rescan: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hmr = hmr
        self.project = hmr.project
        self.clear = clear
        self.filter = PathFilter(self.project.roots, list(include), list(exclude))
        self.data: DataFiles | None = None
        if watch_data or self.filter.include:
            self.data = DataFiles(
                self.project.roots,
                self.project.excluded,
                hmr.tracker.is_tracked,
                suffixes=DEFAULT_DATA_SUFFIXES if watch_data else (),
                filter=self.filter,
            )
        #: the settled saves, handed to :meth:`saves_settled` on the pipeline's thread
        self.pipeline = SavePipeline(
            hmr,
            self,
            debounce=debounce,
            backend=backend,
            poll=poll,
            path_filter=self.filter,
            data=self.data,
            rescan=rescan,
            clock=clock,
        )
        self.clock = clock
        self._safe_point = SafePoint(clock)
        self._activity = _Activity()
        self._warmed_up = False
        self._stopping = threading.Event()
        #: Set once file events are on (see :meth:`start`).
        self.started = self.pipeline.started

    @property
    def safe_point(self) -> SafePoint:
        """Where a reload waits for other threads' imports."""
        return self._safe_point

    @property
    def backend(self) -> Backend | None:
        """Where file events come from (None until they start)."""
        return self.pipeline.backend

    # -- lifecycle --------------------------------------------------------------

    def start(self, *, thread: bool = True) -> None:
        """Start watching, on a thread of its own (``thread=False``: tests drive :meth:`step`).

        The data-file hook starts at once (it must see the imports to come).
        The file events wait, on the watcher's thread, until the program's
        start-up is over (see ``_settle_in``): starting them costs as much as
        importing a few dozen modules, and a save made meanwhile is not lost
        (each module's file is compared with what its loader read once it is
        watched).
        """
        self.pipeline.start(thread=thread, settle_in=self._settle_in)

    def _settle_in(self) -> None:
        """Wait until the program's start-up is over, or SETUP_PATIENCE.

        Over means: its threads are quiet for a moment, or it has imported no
        module for a while (a program that computes right after its imports,
        and never rests).  Any module counts, not only the project's: a
        program that imports a big library before its own modules is still
        starting.  The while is ``_IMPORTS_OVER``, or many times the program's
        own pace of imports when that is slower (a slow machine, or valgrind):
        a module that takes long to run is not the end of the imports.
        """
        started = time.monotonic()
        deadline = started + SETUP_PATIENCE
        self._activity.quiet()
        modules = sys.modules
        first = loaded = len(modules)
        since = started
        quiet = 0  # looks in a row that found the program quiet
        while not self._stopping.wait(_QUIET_LOOK):
            now = time.monotonic()
            # One quiet look may be a busy program that did not get the CPU
            # (a loaded machine): quiet means quiet for a few looks in a row.
            quiet = quiet + 1 if self._activity.quiet() else 0
            if quiet >= _QUIET_LOOKS or now >= deadline:
                return
            count = len(modules)
            if count != loaded:
                loaded, since = count, now
                continue
            pace = (since - started) / max(loaded - first, 1)  # seconds per import so far
            if now - since >= min(max(_IMPORTS_OVER, _PAUSE_IN_IMPORTS * pace), _LONGEST_PAUSE):
                return

    def backend_choice(self) -> tuple[str, float | None]:
        """The backend asked for (a name) and the polling interval (``--poll``), if any."""
        return self.pipeline.backend_choice()

    def stop(self) -> None:
        """Stop watching; a reload in progress finishes first."""
        self._stopping.set()
        self.pipeline.stop()

    # -- the pipeline's side ------------------------------------------------------

    def refresh(self) -> None:
        """Watch the folders of project modules (and data files) loaded since the last call."""
        self.pipeline.refresh()

    def notify(self, path: str, kind: str = MODIFIED) -> None:
        """``path`` changed (called from the backend's thread)."""
        self.pipeline.notify(path, kind)

    def step(self) -> bool:
        """Process the pending batch if it is due now (tests drive the watcher with it)."""
        return self.pipeline.step()

    # -- the consumer's side ------------------------------------------------------

    def events_never_came(self, message: str) -> None:
        """The OS accepted the watches but delivers no events (the backend polls now)."""
        log.warning("%s", message)

    def idle(self) -> bool:
        """No saves pending: when the program is idle, tidy up.

        The engine's bookkeeping (recording the imports in the dependency
        graph, indexing what each module spells, moving the sources taken
        at import out of memory, analyzing modules) runs only while the
        program's own threads used less than a fifth of a core since the
        last look, in slices with a pause between them, so that it never
        competes with start-up or a busy loop, and is done soon after the
        program rests.  Returns whether work is left.
        """
        if not self._activity.quiet():
            return False
        reloader = self.hmr.reloader
        if not self._warmed_up:
            # The engine's code runs once before the first edit needs it.
            self._warmed_up = True
            reloader.warm_up()
        deadline = time.perf_counter() + _IDLE_SLICE
        more = True
        while more and not self.pipeline.pending() and time.perf_counter() < deadline:
            more = bool(
                self.hmr.tracker.apply_pending(limit=_IDLE_IMPORTS)
                or reloader.index_mentions(limit=_IDLE_BATCH)
                or reloader.keep_sources(limit=_IDLE_BATCH)
                or reloader.warm(limit=1)
            )
        self._activity.quiet()  # what this slice did is ours, not the program's
        return more

    def saves_settled(self, saves: SettledSaves) -> None:
        """Reload what the burst changed, in one transaction, with the bytes judged finished."""
        self.clear_screen()
        self.safe_point.wait()
        self.apply(saves)

    def clear_screen(self) -> None:
        """Clear the terminal before a reload's output (``--clear``)."""
        if self.clear:
            sys.stderr.write(_CLEAR_SCREEN)
            sys.stderr.flush()

    def apply(self, saves: SettledSaves) -> ReloadResult:
        """Reload what the burst changed now (the caller waited for the safe point)."""
        result = self.hmr.reloader.reload_result(
            saves.names, force=saves.forced, sources=saves.sources()
        )
        for save in saves.modules:
            self.pipeline.reload_failed(save, save.name in result.failed)
        return result
