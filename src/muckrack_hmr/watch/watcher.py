"""Watching the project's files and reloading the modules that are saved.

The watcher watches the folders of the loaded project modules (not whole
trees) through a backend (:mod:`.backends`), collects the changes of a burst
of saves (an editor's several writes, a formatter, a ``git checkout``) until
they settle, and reloads every module whose file now holds new code in one
transaction, on its own thread, while the program's threads keep running.

What a save holds, and whether it is finished, is judged by :mod:`.saves`;
a reload waits for other threads' imports (:mod:`.safepoint`).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..capture import read_if_unchanged
from ..threads import signals_to_main_thread
from .backends import (
    CREATED,
    DEFAULT_POLL_INTERVAL,
    MODIFIED,
    TOUCHED,
    Backend,
    CheckedBackend,
    PollingBackend,
    choose_backend,
)
from .datafiles import DEFAULT_DATA_SUFFIXES, DataFiles
from .debounce import FORCE_AFTER, Batch
from .filters import PathFilter
from .safepoint import SafePoint
from .saves import OPEN_PATIENCE, SETTLE, Judged, SaveJudge, Wait, digest

__all__ = ["OPEN_PATIENCE", "SETTLE", "Watcher"]

log = logging.getLogger(__name__)

# Modules indexed or compressed per step of the idle work (checked against the slice).
_IDLE_BATCH = 32
# The most one slice of idle work takes, and the pause after it while work is left
# (the program's threads get the interpreter meanwhile, and their use is looked at).
_IDLE_SLICE = 0.02
# Import statements recorded in the graph per idle step (ImportTracker.apply_pending).
_IDLE_IMPORTS = 256
_IDLE_PAUSE = 0.005
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
# A file changed this recently may have changed again within its clock's tick (ns).
_RACY_NS = 2_000_000_000


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


#: A file changed this long before a burst's first event arrived may still
#: belong to it (its own event late): it is looked at with the burst.
LAG_MARGIN = 1.0

_CLEAR_SCREEN = "\033[H\033[2J\033[3J"


class Watcher:
    """Reload project modules when their files change on disk."""

    def __init__(
        self,
        hmr: Any,
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
        self.debounce = debounce
        self.rescan = rescan
        self.clear = clear
        self.clock = clock
        self.filter = PathFilter(self.project.roots, list(include), list(exclude))
        self._requested = backend
        self._poll = poll
        self.backend: Backend | None = backend if isinstance(backend, Backend) else None
        self.data: DataFiles | None = None
        if watch_data or self.filter.include:
            self.data = DataFiles(
                self.project.roots,
                self.project.excluded,
                hmr.tracker.is_tracked,
                suffixes=DEFAULT_DATA_SUFFIXES if watch_data else (),
                filter=self.filter,
            )
        self._files: dict[str, str] = {}  # real path -> module name
        self._scripts: dict[str, bytes | None] = {}  # the script's path -> digest of what ran
        self._by_folder: dict[str, list[str]] = {}  # folder -> its module and data files
        self._saves = SaveJudge(hmr, self.data)
        self._data_seen = 0
        self._folders: dict[str, int | None] = {}  # watched folder -> its inode
        self._batch = Batch(debounce, reports_close=False)
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._loaded_seen = 0
        self._safe_point = SafePoint(clock)
        self._activity = _Activity()
        self._warmed_up = False
        self._folders_checked = 0.0  # monotonic time of the last look at the folders
        self._thread: threading.Thread | None = None
        #: Set once file events are on (see :meth:`start`).
        self.started = threading.Event()

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
        if self.data is not None:
            self.data.start()
        if not thread:
            with signals_to_main_thread():
                self._start_events()
            return
        self._thread = threading.Thread(target=self._run, name="muckrack-hmr-watcher", daemon=True)
        # The thread (and the threads of the file-event library it starts)
        # inherit a mask that leaves the process's signals to the main thread.
        with signals_to_main_thread():
            self._thread.start()

    def _start_events(self) -> None:
        if self.backend is None:
            requested = self._requested if isinstance(self._requested, str) else "auto"
            self.backend, why = choose_backend(
                requested, poll_interval=self._poll, roots=self.project.roots
            )
            log.debug("file events from %s (%s)", self.backend.describe(), why)
        if isinstance(self.backend, CheckedBackend):
            self.backend.on_switch = self._events_never_came
        self._batch.reports_close = self.backend.reports_close
        try:
            self.backend.start(self.notify)
        except OSError as exc:
            self._fall_back_to_polling(exc)
        # The roots at once: the script's first imports come from there, and
        # may be saved before the first refresh.
        for root in self.project.roots:
            self._watch(root)
        self.refresh()
        self.started.set()

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
        requested = self._requested
        return (requested if isinstance(requested, str) else requested.name), self._poll

    def stop(self) -> None:
        """Stop watching; a reload in progress finishes first."""
        with self._wake:
            self._stopping.set()
            self._wake.notify_all()
        if self.data is not None:
            self.data.stop()
        if self.backend is not None:
            self.backend.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    # -- which files belong to which modules ------------------------------------

    def refresh(self) -> None:
        """Watch the folders of project modules (and data files) loaded since the last call."""
        loaded = self.project.loaded
        if len(loaded) != self._loaded_seen:
            new = list(loaded.items())[self._loaded_seen :]
            self._loaded_seen += len(new)
            names = []
            for path, (name, baseline) in new:
                if name == "__main__":
                    # Never re-executed: a save of it is only answered with a warning.
                    self._scripts[path] = self._baseline_digest(path, baseline)
                    self._watch(os.path.dirname(path))
                    continue
                if self.filter.excluded(path):
                    log.debug("not watching %s (--exclude)", path)
                    continue
                self._files[path] = name
                self._by_folder.setdefault(os.path.dirname(path), []).append(path)
                self._watch(os.path.dirname(path))
                taken = self.hmr.sources.import_stats.get(name)
                if taken is not None:
                    # Its loader kept what it runs: a look at the file says
                    # whether it was saved since, without reading it.
                    self._saves.baselines[path] = None
                    self._saved_since(path, name, taken)
                else:
                    self._saves.baselines[path] = self._baseline_digest(path, baseline)
                names.append(name)
            if names:
                log.debug("tracking %s", ", ".join(names))
        if self.data is not None:
            new_data = self.data.since(self._data_seen)
            self._data_seen += len(new_data)
            for path in new_data:
                self._by_folder.setdefault(os.path.dirname(path), []).append(path)
                self._watch(os.path.dirname(path))
                self._saves.data_digests[path] = self._baseline_digest(
                    path, self.data.baselines.get(path)
                )
                owners = ", ".join(sorted(self.data.owners.get(path, ())))
                log.debug("%s read %s at import: watching it", owners, path)

    def _saved_since(self, path: str, name: str, taken: tuple[int, int]) -> None:
        """Judge ``path`` now if it changed since its source was taken at import.

        The event is a TOUCHED one: the write (if any) ended before the
        watch began, so no close is waited for.
        """
        try:
            stat = os.stat(path)
        except OSError:
            self.notify(path, TOUCHED)
            return
        if (stat.st_mtime_ns, stat.st_size) != taken:
            self.notify(path, TOUCHED)
        elif time.time_ns() - stat.st_mtime_ns < _RACY_NS:
            # Written moments ago: a save of the same size within one tick of
            # the file system's clock looks the same; the content tells.
            try:
                with open(path, "rb") as handle:
                    content = handle.read()
            except OSError:
                return
            if content != self.hmr.sources.ran(name):
                self.notify(path, TOUCHED)

    def _baseline_digest(self, path: str, baseline: tuple[int, int] | None) -> bytes | None:
        """The digest of ``path`` if it is still as it was loaded, else None (and look at it)."""
        content = read_if_unchanged(path, baseline)
        if content is not None:
            return digest(content)
        # Saved between its import and now: no baseline, reload it.
        self.notify(path, MODIFIED)
        return None

    def _watch(self, folder: str) -> None:
        if folder in self._folders or self.backend is None:
            return
        try:
            inode: int | None = os.stat(folder).st_ino
        except OSError:
            inode = None
        self._folders[folder] = inode
        try:
            with signals_to_main_thread():  # a watch may start a thread (watchdog's emitters)
                self.backend.watch(folder)
        except OSError as exc:
            self._fall_back_to_polling(exc)
            return
        log.debug("watching %s", folder)

    def _events_never_came(self, why: str) -> None:
        """The OS accepted the watches but delivers no events (the backend polls now)."""
        self._batch.reports_close = False
        log.warning(
            "file events do not arrive here (%s); polling every %g s instead "
            "(pass --poll to start so)",
            why,
            DEFAULT_POLL_INTERVAL,
        )

    def _fall_back_to_polling(self, exc: OSError) -> None:
        old = self.backend
        if old is None or isinstance(old, PollingBackend):
            log.error("cannot watch files: %s", exc)
            return
        # inotify has per-user limits (fs.inotify.max_user_watches and
        # max_user_instances) shared with every editor and tool of the user,
        # and some containers have no inotify at all: polling always works.
        log.warning(
            "%s failed (%s); polling every %g s instead "
            "(raise fs.inotify.max_user_watches, or pass --poll)",
            old.describe(),
            exc,
            DEFAULT_POLL_INTERVAL,
        )
        try:
            old.stop()
        except Exception:
            log.debug("stopping %s failed", old.describe(), exc_info=True)
        backend = PollingBackend()
        with signals_to_main_thread():
            backend.start(self.notify)
            for folder in self._folders:
                backend.watch(folder)
        self.backend = backend
        self._batch.reports_close = False
        # Whatever changed while nothing watched is found by comparing contents.
        for path in [*self._files, *self._saves.data_digests]:
            self.notify(path, MODIFIED)

    def _check_folders(self) -> None:
        """A watched folder deleted and made again (a branch switch) is watched anew."""
        backend = self.backend
        if backend is None:
            return
        for folder, inode in list(self._folders.items()):
            try:
                now: int | None = os.stat(folder).st_ino
            except OSError:
                now = None
            if now == inode:
                continue
            self._folders[folder] = now
            if now is None:
                continue
            log.debug("%s was made again: watching it anew", folder)
            try:
                backend.rewatch(folder)
            except OSError as exc:
                self._fall_back_to_polling(exc)
            prefix = folder.rstrip(os.sep) + os.sep
            for path in [*self._files, *self._saves.data_digests]:
                if path.startswith(prefix) and os.sep not in path[len(prefix) :]:
                    self.notify(path, CREATED)

    # -- events -----------------------------------------------------------------

    def notify(self, path: str, kind: str = MODIFIED) -> None:
        """``path`` changed (called from the backend's thread)."""
        if (
            path not in self._files
            and path not in self.project.loaded
            and (self.data is None or path not in self.data.owners)
        ):
            return  # not a file any module runs or read: a new file, a temporary file...
        with self._wake:
            self._batch.add(path, kind, self.clock())
            self._wake.notify_all()

    def _run(self) -> None:
        self._settle_in()
        if self._stopping.is_set():
            return
        try:
            self._start_events()
        except Exception:
            log.exception("the watcher could not start watching")
            return
        more = False  # idle work left over: come back sooner
        while not self._stopping.is_set():
            taken: tuple[dict[str, float], float, set[str]] | None = None
            idle = False
            with self._wake:
                wait = self._batch.due_in(self.clock())
                if wait is None:
                    idle = not self._wake.wait(_IDLE_PAUSE if more else self.rescan)
                elif wait > 0:
                    self._wake.wait(wait)
                else:
                    taken = self._batch.take()
            if self._stopping.is_set():
                return
            try:
                more = False
                if taken is not None:
                    self._process(*taken)
                elif idle:
                    more = self._idle()
            except Exception:
                log.exception("the watcher hit an internal error; it keeps watching")

    def step(self) -> bool:
        """Process the pending batch if it is due now (tests drive the watcher with it)."""
        with self._wake:
            wait = self._batch.due_in(self.clock())
            if wait is None or wait > 0:
                return False
            taken = self._batch.take()
        self._process(*taken)
        return True

    def _idle(self) -> bool:
        """No saves pending: watch what was imported; when the program is idle, tidy up.

        Watching new folders cannot wait (a save there would go unseen for
        as long), and costs a look at each new file.  The rest (recording
        the imports in the dependency graph, indexing what each module
        spells, moving the sources taken at import out of memory, analyzing
        modules) can: it runs only while the program's own
        threads used less than a fifth of a core since the last look, in
        slices with a pause between them, so that it never competes with
        start-up or a busy loop, and is done soon after the program rests.
        Returns whether work is left.
        """
        self.refresh()
        now = time.monotonic()
        if now - self._folders_checked >= self.rescan:
            self._folders_checked = now
            self._check_folders()
        if not self._activity.quiet():
            return False
        reloader = self.hmr.reloader
        if not self._warmed_up:
            # The engine's code runs once before the first edit needs it.
            self._warmed_up = True
            reloader.warm_up()
        deadline = time.perf_counter() + _IDLE_SLICE
        more = True
        while more and not self._batch.last and time.perf_counter() < deadline:
            more = bool(
                self.hmr.tracker.apply_pending(limit=_IDLE_IMPORTS)
                or reloader.index_mentions(limit=_IDLE_BATCH)
                or reloader.keep_sources(limit=_IDLE_BATCH)
                or reloader.warm(limit=1)
            )
        self._activity.quiet()  # what this slice did is ours, not the program's
        return more

    # -- judging what changed -----------------------------------------------------

    def _process(self, paths: dict[str, float], first: float, writing: set[str]) -> None:
        self.refresh()
        now = self.clock()
        self._add_laggards(paths, first, now)
        can_wait = now - first < FORCE_AFTER
        names: list[str] = []
        tried: dict[str, tuple[str, bytes]] = {}  # module -> (path, digest of what it got)
        given: dict[str, bytes] = {}  # module -> the bytes judged finished: what runs
        forced: set[str] = set()  # readers of a changed data file: they run again whole
        hold_until = 0.0
        for path, last in sorted(paths.items()):
            if not can_wait:
                last = -math.inf  # judged as it is now: nothing is waited for any more
            name = self._files.get(path)
            if name is None and path in self.project.loaded:
                self.refresh()  # imported since: pick it up
                name = self._files.get(path)
            if name is None and path in self._scripts:
                self._script_saved(path)
                continue
            verdicts: list[tuple[object, str | None]] = []
            if name is not None:
                verdicts.append(
                    (self._saves.judge_module(path, name, last, now, path in writing), name)
                )
            if self.data is not None and path in self.data.owners:
                verdicts.append((self._saves.judge_data(path, last, now), None))
            for verdict, module in verdicts:
                if isinstance(verdict, Wait) and can_wait:
                    state = self._saves.state(path)
                    if state.waiting != verdict.why:
                        state.waiting = verdict.why
                        log.debug("waiting for %s: %s", path, verdict.why)
                    hold_until = max(hold_until, verdict.until)
                    continue
                self._saves.state(path).waiting = ""
                if isinstance(verdict, Judged) and module is not None:
                    tried[module] = (path, verdict.digest)
                    given[module] = verdict.source
                    verdict = [module]
                elif isinstance(verdict, list):
                    forced.update(verdict)
                if isinstance(verdict, list):
                    names.extend(owner for owner in verdict if owner not in names)
        if hold_until:
            # Something looks half-written: wait for the rest, and judge the
            # whole burst together again.
            with self._wake:
                self._batch.hold((paths, first, writing), hold_until)
                self._wake.notify_all()
            return
        if names:
            self._reload(names, tried, forced, given)

    def _script_saved(self, path: str) -> None:
        """The running script changed: say once per new content that it is not reloaded."""
        try:
            with open(path, "rb") as handle:
                content = digest(handle.read())
        except OSError:
            return
        if content == self._scripts[path]:
            return  # a touch, or saved back as it runs
        self._scripts[path] = content
        log.warning(
            "%s is the running script (__main__), which is never reloaded: "
            "restart to apply the edit",
            path,
        )

    def _add_laggards(self, paths: dict[str, float], first: float, now: float) -> None:
        """Add the files of the burst whose events have not arrived yet.

        Events reach us late when the program keeps the CPU busy (the
        backend's thread waits for its turn): a file changed since the burst
        began is part of it, event or not.  A file added for nothing costs a
        read: its content is compared with the code that runs.
        """
        since_ns = int((time.time() - (now - first) - LAG_MARGIN) * 1e9)
        if len(paths) > 1:
            candidates: Iterable[str] = [*self._files, *self._saves.data_digests]
        else:
            folder = os.path.dirname(next(iter(paths)))
            candidates = self._by_folder.get(folder, ())
        for path in candidates:
            if path in paths:
                continue
            try:
                stat = os.stat(path)
            except OSError:
                continue
            if max(stat.st_mtime_ns, stat.st_ctime_ns) >= since_ns:
                paths[path] = now

    # -- applying -------------------------------------------------------------------

    def _reload(
        self,
        names: list[str],
        tried: dict[str, tuple[str, bytes]],
        forced: set[str],
        given: dict[str, bytes],
    ) -> None:
        self._safe_point.wait()
        if self.clear:
            sys.stderr.write(_CLEAR_SCREEN)
            sys.stderr.flush()
        result = self.hmr.reloader.reload_result(names, force=forced, sources=given)
        for name, (path, content) in tried.items():
            self._saves.state(path).failed = content if name in result.failed else None
