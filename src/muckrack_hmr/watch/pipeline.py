"""Detecting settled saves: file events in, one burst of finished saves out, to a consumer.

The pipeline watches folders (not whole trees) through a backend
(:mod:`.backends`, with its fallbacks to polling), collects the events of a
burst of saves (an editor's several writes, a formatter, a ``git
checkout``) until they settle (:mod:`.debounce`), judges each saved file
(:mod:`.saves`: is the save finished, and what does it hold), and hands the
burst, as a :class:`~.bursts.SettledSaves`, to its consumer, on the
pipeline's own thread.  The bytes a save was judged on travel with it: the
consumer applies those, and never reads the file a second time.

Two ways to judge a file:

* project modules (the CLI, ``HMR.watch``): the folders of the modules the
  program loaded are watched as they load; a save is new code when the
  file no longer holds the code that runs (data files read at import
  bring their readers);
* plain files (``pytest --hmr``): the consumer says which folders to watch;
  every Python file and new folder there is reported with its content once
  settled, and the consumer decides what a change means.

Consumers: :class:`~.watcher.Watcher` reloads on the pipeline's thread;
``pytest --hmr`` queues each burst for pytest's main thread.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

from .. import collector
from ..capture import read_if_unchanged
from ..errors import first_line, location_of
from ..threads import prompt, signals_to_main_thread
from .backends import (
    CREATED,
    DEFAULT_POLL_INTERVAL,
    FOLDER,
    MODIFIED,
    TOUCHED,
    Backend,
    CheckedBackend,
    PollingBackend,
    check_available,
    choose_backend,
)
from .datafiles import DataFiles
from .debounce import FORCE_AFTER, Batch
from .filters import PathFilter
from .idle import IDLE_PAUSE, RESTING, next_pause
from .saves import Judged, Read, SaveJudge, Wait, digest

if TYPE_CHECKING:
    from ..api import HMR
    from ..reload.refusals import Refusal
    from .bursts import ModuleSave, SettledSaves

__all__ = ["LAG_MARGIN", "SavePipeline", "SavesConsumer"]

log = logging.getLogger(__name__)

# A file changed this recently may have changed again within its clock's tick (ns).
_RACY_NS = 2_000_000_000
# Plain files: the ones reported (a new test file, a conftest) besides those the
# consumer tracks; Python's bytecode caches never are.
_SOURCES = (".py", ".pyw")
_FOREVER = float("inf")
_CACHE = f"{os.sep}__pycache__"

#: A file changed this long before a burst's first event arrived may still
#: belong to it (its own event late): it is looked at with the burst.
LAG_MARGIN = 1.0

# (paths with the time of their last event, the burst's first event, files open for writing)
_Taken = tuple[dict[str, float], float, set[str]]


# A folder deleted before its watch was added: no reason to stop using file events.
_GONE = (FileNotFoundError, NotADirectoryError)


def _forget_bytecode(path: str) -> None:
    """Remove the bytecode cached for a saved module's file.

    Python trusts a ``.pyc`` whose recorded source size and mtime (in whole
    seconds) match the file: a save of the same size within the second of the
    previous one (``"v2"`` -> ``"v3"``) kept the old bytecode valid, and every
    process importing the module afresh (a pool's new worker, a subprocess) ran
    the old code for good.  The next import compiles the file again.
    """
    try:
        cached = importlib.util.cache_from_source(path)
    except (NotImplementedError, ValueError):
        return
    with contextlib.suppress(OSError):
        os.unlink(cached)


def _nothing_to_wait_for() -> None:
    """The start-up was waited for already (see SavePipeline.run)."""


class SavesConsumer(Protocol):
    """What a pipeline hands its settled saves to (called on the pipeline's thread)."""

    def saves_settled(self, saves: SettledSaves) -> None:
        """A burst of saves is finished: apply it, or pass it on."""

    def events_never_came(self, message: str) -> None:
        """The OS's file events never came: saves are polled for from now on (``message``)."""

    def idle(self) -> bool | None:
        """Nothing is pending: background work; True while some is left, None when
        the program was busy and nothing was done (asked again soon, then less and
        less often)."""

    def busy_share(self) -> float:
        """The share of a core the program's threads used at the last idle look that
        found them busy (see next_pause)."""


class SavePipeline:
    """Settled saves of watched files, handed to ``consumer`` one burst at a time."""

    def __init__(
        self,
        hmr: HMR,  # project, sources, reloader
        consumer: SavesConsumer,
        *,
        debounce: float = 0.005,
        backend: str | Backend = "auto",
        poll: float | None = None,
        path_filter: PathFilter | None = None,
        data: DataFiles | None = None,
        plain_files: bool = False,
        poll_option: str = "--poll",
        rescan: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        started: threading.Event | None = None,
        thread: threading.Thread | None = None,
    ) -> None:
        self.hmr = hmr
        self.project = hmr.project
        self.consumer = consumer
        self.debounce = debounce
        self.rescan = rescan
        self.clock = clock
        self.filter = path_filter or PathFilter(self.project.roots, [], [])
        self.data = data
        #: judge every Python file as a plain file, for a consumer that tracks its own
        self.plain_files = plain_files
        self.poll_option = poll_option
        if isinstance(backend, str) and poll is None:
            check_available(backend)  # here, not on the watcher's thread when it starts
        self._requested = backend
        self._poll = poll
        self.backend: Backend | None = backend if isinstance(backend, Backend) else None
        #: why this backend (for the log); "the default" unless an option or the OS chose
        self.why = "asked for" if self.backend is not None else "the default"
        self._files: dict[str, str] = {}  # real path -> module name ("" for a plain file)
        self._scripts: dict[str, bytes | None] = {}  # the script's path -> digest of what ran
        self._script_seen: dict[str, bytes | None] = {}  # ... and of what it held last seen
        self._twice_said: set[str] = set()  # scripts also imported by name, once said so
        self._failures = 0  # bursts in a row that hit an internal error
        #: ``fn(refusal, path)`` when the running script is saved (``--restart-on-refused``).
        self.script_refused: list[Callable[[Refusal, str], None]] = []
        #: ``fn(refusal, path)`` for an edit refused that no reload of this process
        #: reports: the workers refused the edit of a module this process has not
        #: loaded (see processes.supervisor), a module became a package
        #: (``--restart-on-refused``).
        self.refused_elsewhere: list[Callable[[Refusal, str], None]] = []
        self._by_folder: dict[str, list[str]] = {}  # folder -> its module and data files
        # Trees whose files are reported as they are saved (watch_files): prefix -> suffixes.
        self._trees: dict[str, tuple[str, ...]] = {}
        self._trees_pending: list[str] = []  # not watched yet (no backend yet, or new)
        self._saves = SaveJudge(
            hmr,
            data,
            spread=lambda: bool(getattr(self.consumer, "spreads_saves", False)),
            refused=self._refused_here,
        )
        #: path -> when a burst's judgement first looked at it, while it is waited for
        self._first_looks: dict[str, float] = {}
        self._data_seen = 0
        self._folders: dict[str, int | None] = {}  # watched folder -> its inode
        self._watch_lock = threading.RLock()
        self.batch = Batch(debounce, reports_close=False)
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._loaded_seen = 0
        self._folders_checked = 0.0  # monotonic time of the last look at the folders
        self._recheck = False  # a watched folder appeared again: look at the folders now
        # Looks asked for by another thread (look_now), and how many were made.
        self._look_asked = False
        self._looks = 0
        # Batches taken from the queue and not judged yet (see pending).
        self._judging = 0
        # The thread that runs the pipeline: its own (start), or its consumer's (run).
        self._thread = thread
        #: Set once file events are on (see :meth:`start`).
        self.started = started if started is not None else threading.Event()

    # -- lifecycle --------------------------------------------------------------

    def start(self, *, thread: bool = True, settle_in: Callable[[], None] | None = None) -> None:
        """Start the file events and the pipeline's thread (``thread=False``: :meth:`step`).

        With ``settle_in``, the file events start on the pipeline's thread
        once it returns (the CLI waits for the program's start-up to end);
        without, here and now: folders watched after this call are watched
        when the call returns.
        """
        if self.data is not None:
            self.data.start()
        if settle_in is None or not thread:
            with signals_to_main_thread():
                self._start_events()
            if not thread:
                return
        self._thread = threading.Thread(
            target=collector.ours(self._run),
            args=(settle_in,),
            name="muckrack-hmr-watcher",
            daemon=True,
        )
        # The thread (and the threads of the file-event library it starts)
        # inherit a mask that leaves the process's signals to the main thread.
        with signals_to_main_thread():
            self._thread.start()

    def run(self) -> None:
        """Start the file events, then run the pipeline on the calling thread until
        :meth:`stop`: for a consumer that waits for the program's start-up on a thread
        of its own (the watcher), and makes the pipeline only then."""
        self._thread = threading.current_thread()
        self._run(_nothing_to_wait_for)

    def _start_events(self) -> None:
        if self.backend is None:
            requested = self._requested if isinstance(self._requested, str) else "auto"
            self.backend, self.why = choose_backend(
                requested, poll_interval=self._poll, roots=self.project.roots
            )
            log.debug("file events from %s (%s)", self.backend.describe(), self.why)
        if isinstance(self.backend, CheckedBackend):
            self.backend.on_switch = self._events_never_came
        self.batch.reports_close = self.backend.reports_close
        try:
            self.backend.start(self.notify)
        except OSError as exc:
            self._fall_back_to_polling(exc)
        if not self.plain_files:
            # The roots at once: the script's first imports come from there, and
            # may be saved before the first refresh.
            for root in self.project.roots:
                self.watch(root)
            self.refresh()
        self.started.set()

    def backend_choice(self) -> tuple[str, float | None]:
        """The backend asked for (a name) and the polling interval (``--poll``), if any."""
        requested = self._requested
        return (requested if isinstance(requested, str) else requested.name), self._poll

    def stop(self, patience: float | None = None) -> None:
        """Stop watching; a burst being applied is finished first (within ``patience``
        seconds, if given)."""
        with self._wake:
            self._stopping.set()
            self._wake.notify_all()
        if self.data is not None:
            self.data.stop()
        if self.backend is not None:
            self.backend.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5 if patience is None else patience)
        prompt.end()  # (a save that came as it stopped is not handled)

    # -- which files belong to which modules ------------------------------------

    def refresh(self) -> None:
        """Watch the folders of project modules (and data files) loaded since the last call."""
        if self.plain_files:
            return  # the consumer says which folders and files it cares about
        loaded = self.project.loaded
        if len(loaded) != self._loaded_seen:
            new = list(dict(loaded).items())[self._loaded_seen :]  # (see loaded_modules)
            self._loaded_seen += len(new)
            names = []
            for path, (name, baseline) in new:
                if name == "__main__":
                    # Never re-executed: a save of it is only answered with a warning.
                    self._scripts[path] = self._baseline_digest(path, baseline)
                    self.watch(os.path.dirname(path))
                    continue
                if self._track(path, name, baseline):
                    names.append(name)
            if names:
                log.debug("tracking %s", ", ".join(names))
        if self._trees_pending and self.backend is not None:
            self._watch_trees()
        if self.data is not None:
            new_data = self.data.since(self._data_seen)
            self._data_seen += len(new_data)
            for path in new_data:
                self._by_folder.setdefault(os.path.dirname(path), []).append(path)
                self.watch(os.path.dirname(path))
                self._saves.data_digests[path] = self._baseline_digest(
                    path, self.data.baselines.get(path)
                )
                owners = ", ".join(sorted(self.data.owners.get(path, ())))
                log.debug("%s read %s at import: watching it", owners, path)

    def watch_files(self, folder: str, suffixes: Iterable[str]) -> None:
        """Also report the saves of files under ``folder`` (its whole tree) whose names end
        with one of ``suffixes``, as :attr:`~.bursts.SettledSaves.files`: nothing is reloaded
        for them (a web page's stylesheets and templates).  From any thread.

        The folders of the tree are watched as they are now; one made later is not.
        """
        prefix = os.path.realpath(folder).rstrip(os.sep) + os.sep
        with self._watch_lock:
            known = self._trees.get(prefix, ())
            self._trees[prefix] = (*known, *(s.lower() for s in suffixes if s not in known))
            self._trees_pending.append(prefix)
        if self.backend is not None:
            self._watch_trees()

    def _watch_trees(self) -> None:
        with self._watch_lock:
            pending, self._trees_pending = self._trees_pending, []
        for prefix in pending:
            for folder, subfolders, _files in os.walk(prefix):
                subfolders[:] = [name for name in subfolders if not name.startswith(".")]
                self.watch(folder.rstrip(os.sep))

    def _in_trees(self, path: str) -> bool:
        """Is ``path`` a file :meth:`watch_files` asked for?"""
        if not self._trees:
            return False
        lowered = path.lower()
        return any(
            path.startswith(prefix) and lowered.endswith(suffixes)
            for prefix, suffixes in list(self._trees.items())
        )

    def track(self, paths: Iterable[str]) -> None:
        """Plain files: these files count too, whatever their name (and go with their folder's
        bursts)."""
        with self._watch_lock:
            for path in paths:
                if path not in self._files:
                    self._files[path] = ""
                    self._by_folder.setdefault(os.path.dirname(path), []).append(path)

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

    def _track(self, path: str, name: str, baseline: tuple[int, int] | None) -> bool:
        """Watch ``path``, the file of module ``name`` (loaded with ``baseline``), unless
        excluded; a file that also runs as the script is noted as such."""
        if self.filter.excluded(path):
            log.debug("not watching %s (--exclude)", path)
            return False
        self._files[path] = name
        folder = os.path.dirname(path)
        self._by_folder.setdefault(folder, []).append(path)
        if folder not in self._folders:  # most modules share a folder
            self.watch(folder)
        taken = self.hmr.sources.import_stats.get(name)
        if taken is not None:
            # Its loader kept what it runs: a look at the file says
            # whether it was saved since, without reading it.
            self._saves.baselines[path] = None
            self._saved_since(path, name, taken)
        else:
            self._saves.baselines[path] = self._baseline_digest(path, baseline)
        if path not in self._scripts and path == self._script_file:
            # ``from main import fmt`` in a module of ``python main.py``: the
            # file runs twice, and only its module is ever reloaded.
            self._scripts[path] = self._saves.baselines[path]
        return True

    @functools.cached_property
    def _script_file(self) -> str | None:
        """The project file the program runs as ``__main__``, if any (looked up at the
        first module tracked: the program's, not the CLI's, by then)."""
        main = sys.modules.get("__main__")
        found = getattr(main, "__file__", None) if isinstance(main, ModuleType) else None
        return self.project.project_path(found) if isinstance(found, str) else None

    def _baseline_digest(self, path: str, baseline: tuple[int, int] | None) -> bytes | None:
        """The digest of ``path`` if it is still as it was loaded, else None (and look at it)."""
        content = read_if_unchanged(path, baseline)
        if content is not None:
            return digest(content)
        # Saved between its import and now: no baseline, reload it.  A TOUCHED
        # event, as in _saved_since: the write ended before the watch began, and
        # no close will come for it.
        self.notify(path, TOUCHED)
        return None

    def watch(self, folder: str) -> None:
        """Watch ``folder`` too (not its subfolders); from any thread."""
        with self._watch_lock:
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
            except _GONE:
                # Deleted since its module was imported (a branch switched back at
                # once): watched when it is made again (see check_folders).
                self._folders[folder] = None
                log.debug("%s is gone: watched when it is made again", folder)
                return
            except OSError as exc:
                self._fall_back_to_polling(exc)
                return
        log.debug("watching %s", folder)

    @property
    def watched(self) -> frozenset[str]:
        """The folders watched so far."""
        return frozenset(self._folders)

    def _events_never_came(self, why: str) -> None:
        """The OS accepted the watches but delivers no events (the backend polls now)."""
        self.batch.reports_close = False
        self.consumer.events_never_came(
            f"file events do not arrive here ({why}); polling every "
            f"{DEFAULT_POLL_INTERVAL:g} s instead (pass {self.poll_option} to start so)"
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
            "(raise fs.inotify.max_user_watches, or pass %s)",
            old.describe(),
            exc,
            DEFAULT_POLL_INTERVAL,
            self.poll_option,
        )
        try:
            old.stop()
        except Exception:
            log.debug("stopping %s failed", old.describe(), exc_info=True)
        backend = PollingBackend()
        with self._watch_lock, signals_to_main_thread():
            backend.start(self.notify)
            for folder in self._folders:
                backend.watch(folder)
            self.backend = backend
        self.batch.reports_close = False
        # Whatever changed while nothing watched is found by comparing contents.
        for path in [*self._files, *self._saves.data_digests]:
            self.notify(path, MODIFIED)

    def check_folders(self) -> None:
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
            except _GONE:
                self._folders[folder] = None  # gone again: looked at again later
                continue
            except OSError as exc:
                self._fall_back_to_polling(exc)
            prefix = folder.rstrip(os.sep) + os.sep
            for path in [*self._files, *self._saves.data_digests]:
                if path.startswith(prefix) and os.sep not in path[len(prefix) :]:
                    self.notify(path, CREATED)

    # -- events -----------------------------------------------------------------

    def notify(self, path: str, kind: str = MODIFIED) -> None:
        """``path`` changed (called from the backend's thread)."""
        if kind == FOLDER and path in self._folders:
            # A watched folder appeared again (a branch switch made it anew): its
            # watch is the old folder's, gone; the folders are looked at now, not
            # at the next idle look.  Watched anew even if the system gave the new
            # folder the old one's inode (``rm -rf pkg`` and a generator writing it
            # again: its later saves were never seen).
            with self._watch_lock:
                self._folders[path] = None
            with self._wake:
                self._recheck = True
                self._wake.notify_all()
            if not self.plain_files:
                return
        if kind == FOLDER and not self.plain_files and self._some_edit_failed():
            # A new package maybe, that a failed edit imports (``from sub import X`` saved
            # before ``sub/`` was made): watched, and its modules looked at.
            self._new_package(path)
            return
        if self.plain_files:
            if kind == TOUCHED or _CACHE in path:
                return  # metadata only; Python's and pytest's bytecode caches
            if kind != FOLDER and path not in self._files and not path.endswith(_SOURCES):
                return  # a log, a data file, a pipe: nothing the consumer imports
        elif (
            path not in self._files
            and path not in self.project.loaded
            and (self.data is None or path not in self.data.owners)
            and not self._in_trees(path)
            # (A new module may be the one a failed edit imports, or an optional
            # import missed: see _process.)
            and not (path.endswith(_SOURCES) and self._may_await())
        ):
            return  # not a file any module runs or read: a new file, a temporary file...
        with self._wake:
            prompt.begin()
            self.batch.add(path, kind, self.clock())
            self._wake.notify_all()

    def _new_package(self, folder: str) -> None:
        if not self.project.covers(folder):
            return
        self.watch(folder)
        try:
            names = os.listdir(folder)
        except OSError:
            return
        with self._wake:
            for name in names:
                if name.endswith(_SOURCES):
                    self.batch.add(os.path.join(folder, name), CREATED, self.clock())
            self._wake.notify_all()

    def _some_edit_failed(self) -> bool:
        # The engine as it is: asking for hmr.reloader would import it (on the
        # backend's thread) though nothing was reloaded yet.
        reloader = self.hmr._reloader
        return reloader is not None and bool(reloader.failing)

    def _may_await(self) -> bool:
        """May a module want a new module file (see Reloader.awaiting): an edit failed, or
        a module has an optional import (``try: import x`` / ``except ImportError``)?
        Asked once the engine runs (the idle work's first step, or the first save); until
        its idle work has analyzed every module, maybe."""
        reloader = self.hmr._reloader
        if reloader is None:
            return False
        sources = reloader.sources
        return bool(reloader.failing or sources.optional) or not sources.analyzed_all()

    def catch_up(self) -> None:
        """Take in now the file events the OS has queued for the saves made so far.

        A save's events reach the pipeline on the backend's thread, moments
        after the write: a consumer that applies saves at its own times (a
        notebook's next cell) calls this first, so that a save made just
        before (by the last cell, say) is pending when it looks.
        """
        backend = self.backend
        if backend is not None:
            backend.catch_up()

    def pending(self) -> bool:
        """Are events waiting to be judged, or being judged?"""
        return bool(self.batch.last) or self._judging > 0

    def _run(self, settle_in: Callable[[], None] | None) -> None:
        try:
            self._watch(settle_in)
        finally:
            # What the start-up made may be held frozen for the idle work (see
            # idle.settle_in): it is not left so when the watching ends, or never began.
            collector.thaw()

    def _watch(self, settle_in: Callable[[], None] | None) -> None:
        if settle_in is not None:
            settle_in()
            if self._stopping.is_set():
                return
            # Short waits for the interpreter meanwhile, as for a save (see
            # threads.prompt): a program that computes from its first lines held
            # each of the calls that start the file events 5 ms, 0.4 s in all, and a
            # save made in its first moments waited for them.
            prompt.begin()
            try:
                self._start_events()
            except Exception as exc:
                if sys.is_finalizing() or (
                    isinstance(exc, RuntimeError) and "shutdown" in str(exc)
                ):
                    # The program ended before its watcher began (a short script
                    # under ``python -i``, whose prompt got its end of input): said
                    # as a traceback at the exit, "can't create new thread".
                    return
                log.exception("the watcher could not start watching")
                return
            finally:
                with self._wake:
                    if not self.batch.last:
                        prompt.end()  # (else once the saves found meanwhile are handled)
        from . import bursts  # noqa: F401  (here, not at the first save: see bursts)

        # Idle work left over: come back sooner.  At the start there is (what the
        # imports left to do), and after each burst (what the reload left).
        pause = IDLE_PAUSE
        while not self._stopping.is_set():
            taken: _Taken | None = None
            idle = False
            with self._wake:
                wait = self.batch.due_in(self.clock())
                if wait is None and not (self._recheck or self._look_asked):
                    idle = not self._wake.wait(pause)
                elif wait is not None and wait > 0 and not self._look_asked:
                    self._wake.wait(wait)
                elif wait is not None and wait <= 0:
                    taken = self.batch.take()
                    self._judging += 1
                recheck, self._recheck = self._recheck, False
                asked, self._look_asked = self._look_asked, False
            if self._stopping.is_set():
                return
            try:
                if asked:
                    self.refresh()
                    with self._wake:
                        self._looks += 1
                        self._wake.notify_all()
                if recheck:
                    self.check_folders()
                if taken is not None:
                    self._handle(taken)
                    pause = IDLE_PAUSE
                elif idle:
                    pause = next_pause(self._idle(), pause, self.consumer.busy_share())
            except Exception:
                pause = RESTING
                log.exception("the watcher hit an internal error; it keeps watching")

    def look_now(self, timeout: float) -> None:
        """Have the pipeline's thread look at the modules imported since its last look now,
        and wait for that (``timeout`` seconds at most).

        A module imported moments ago is watched from the pipeline's next look; a
        save made since its import is found then.  A consumer that applies saves at
        its own times (a notebook's next cell) asks for that look first, so that
        such a save is pending when it looks.  Before the file events start (the
        start-up is not over), the look comes once they have.
        """
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        deadline = time.monotonic() + timeout
        with self._wake:
            looks = self._looks
            self.look_soon()
            while self._looks == looks and not self._stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._wake.wait(left)

    def look_soon(self) -> None:
        """Have the pipeline's thread look at the modules imported since its last look as
        soon as it can (not at its next idle look, up to RESTING away); from any thread."""
        with self._wake:
            self._look_asked = True
            self._wake.notify_all()

    def step(self) -> bool:
        """Process the pending batch if it is due now (tests drive the pipeline with it)."""
        with self._wake:
            wait = self.batch.due_in(self.clock())
            if wait is None or wait > 0:
                return False
            taken = self.batch.take()
            self._judging += 1
        self._handle(taken)
        return True

    def _handle(self, taken: _Taken) -> None:
        """Judge the burst ``taken`` and hand its saves over.  One that hits an internal
        error is judged once more (its saves were lost until saved again); when that
        fails too, it is dropped."""
        try:
            self._process(*taken)
        except Exception:
            log.exception("the watcher hit an internal error; it keeps watching")
            self._failures += 1
            if self._failures == 1:
                with self._wake:
                    for path in taken[0]:
                        self.batch.add(path, TOUCHED, self.clock())
                    self._wake.notify_all()
            else:
                self._failures = 0
        else:
            self._failures = 0
        finally:
            self._judged()

    def _judged(self) -> None:
        with self._wake:
            self._judging -= 1
            if not self.batch.last or self.batch.hold_until:
                # Handled, or waiting for the rest of a write (a file event ends that).
                prompt.end()
            self._wake.notify_all()

    def _idle(self) -> bool | None:
        """No saves pending: watch what was imported, look at the folders, then the consumer's
        idle work."""
        self.refresh()
        now = time.monotonic()
        if now - self._folders_checked >= self.rescan:
            self._folders_checked = now
            self.check_folders()
        return self.consumer.idle()

    # -- judging what changed -----------------------------------------------------

    def _process(self, paths: dict[str, float], first: float, writing: set[str]) -> None:
        from .bursts import FileSave, ModuleSave, SettledSaves

        self.refresh()
        now = self.clock()
        self._add_laggards(paths, first, now)
        can_wait = now - first < FORCE_AFTER
        names: list[str] = []
        modules: list[ModuleSave] = []
        files: list[FileSave] = []
        folders: list[str] = []
        forced: set[str] = set()  # readers of a changed data file: they run again whole
        held: list[str] = []  # open for writing beyond the burst's patience
        twice: list[tuple[str, str]] = []  # (path, module) of a script imported by its name
        hold_until = 0.0
        for path, last in sorted(paths.items()):
            if not can_wait:
                last = -_FOREVER  # judged as it is now: nothing is waited for any more
            elif path not in writing:  # (a writer's open file has its own patience)
                # A watcher kept off its core (a loaded machine) judges a save late.
                # What looks unfinished then still gets its time for the rest of the
                # write: counted from the first look, less the quiet time it waited.
                last = max(last, self._first_looks.get(path, now) - self.debounce)
            verdicts: list[tuple[object, str | None]] = []
            if self.plain_files:
                if os.path.isdir(path):
                    folders.append(path)
                    continue
                verdict = self._saves.judge_file(
                    path, last, now, path in writing, path in self._files
                )
                verdicts.append((verdict, None))
            else:
                name = self._files.get(path)
                if name is None and path in self.project.loaded:
                    self.refresh()  # imported since: pick it up
                    name = self._files.get(path)
                script_wait: Wait | None = None
                if name is None and path in self._scripts:
                    owner = self.project.loaded.get(path)
                    if owner is None or owner[0] == "__main__":
                        script_wait = self._judge_script(path, last, now, path in writing)
                        if script_wait is None:
                            self._first_looks.pop(path, None)
                            continue
                    elif self._track(path, *owner):
                        # Imported by its own name since the script was seen: the
                        # module is reloaded, and __main__ keeps its code.
                        name = owner[0]
                if script_wait is not None:
                    verdicts.append((script_wait, None))
                else:
                    if name is not None:
                        verdicts.append(
                            (self._saves.judge_module(path, name, last, now, path in writing), name)
                        )
                    if self.data is not None and path in self.data.owners:
                        verdicts.append((self._saves.judge_data(path, last, now), None))
                    elif name is None and self._in_trees(path):
                        verdicts.append(
                            (self._saves.judge_file(path, last, now, path in writing, True), None)
                        )
                    elif name is None and self._may_await():
                        # A new module that an edit which failed imports: once written,
                        # the edit is tried again (``from helpers import f`` saved
                        # before helpers.py).  Or one that a module's optional import
                        # missed as it ran: that statement runs again.
                        verdict = self._saves.judge_file(path, last, now, path in writing, False)
                        if isinstance(verdict, Wait):
                            verdicts.append((verdict, None))
                        elif isinstance(verdict, Read):
                            awaiting = self.hmr.reloader.awaiting(path)
                            names.extend(other for other in awaiting if other not in names)
            if can_wait and any(isinstance(verdict, Wait) for verdict, _ in verdicts):
                self._first_looks.setdefault(path, now)
            else:
                self._first_looks.pop(path, None)
            for verdict, module in verdicts:
                if isinstance(verdict, Wait) and verdict.writer and not can_wait:
                    # Still held open for writing as the burst's patience ends: the
                    # rest of the burst goes on, and this file waits on its own.
                    held.append(path)
                    continue
                if isinstance(verdict, Wait) and can_wait:
                    state = self._saves.state(path)
                    if state.waiting != verdict.why:
                        state.waiting = verdict.why
                        log.debug("waiting for %s: %s", path, verdict.why)
                    hold_until = max(hold_until, verdict.until)
                    continue
                self._saves.state(path).waiting = ""
                if isinstance(verdict, Read):
                    files.append(FileSave(path, verdict.source))
                elif isinstance(verdict, Judged) and module is not None:
                    modules.append(
                        ModuleSave(module, path, verdict.source, verdict.digest, verdict.stamp)
                    )
                    if module not in names:
                        names.append(module)
                    if path in self._scripts and path not in self._twice_said:
                        twice.append((path, module))
                elif isinstance(verdict, list):
                    forced.update(verdict)
                    names.extend(owner for owner in verdict if owner not in names)
        if hold_until:
            # Something looks half-written: wait for the rest, and judge the
            # whole burst together again.
            with self._wake:
                self.batch.hold((paths, first, writing), hold_until)
                self._wake.notify_all()
            return
        for path in dict.fromkeys(held):
            self._saves.problem(
                path,
                f"{path} is held open for writing; its save is applied once the writer closes it",
            )
            with self._wake:
                self.batch.add(path, TOUCHED, now)
                self._wake.notify_all()
        saves = SettledSaves(
            first_event=first,
            names=tuple(names),
            modules=tuple(modules),
            forced=frozenset(forced),
            files=tuple(files),
            folders=tuple(folders),
        )
        for path, module in twice:
            self._twice_said.add(path)
            log.warning(
                "%s also runs as the script (__main__), which is never reloaded: a save "
                "reloads the module %s, and __main__ keeps the code it started with",
                path,
                module,
            )
        if saves:
            for save in modules:
                _forget_bytecode(save.path)
            self.consumer.saves_settled(saves)

    def reload_failed(self, save: ModuleSave, failed: bool) -> None:
        """The consumer's reload of ``save`` failed (or was refused), or not: the same
        broken content saved again is not reloaded again."""
        self._saves.state(save.path).failed = (save.digest, save.stamp) if failed else None

    def applied_elsewhere(self, save: ModuleSave) -> None:
        """The consumer applied ``save`` in other processes only (a module this process never
        imported): what the file holds now is the code that runs."""
        self._saves.baselines[save.path] = save.digest
        self._saves.state(save.path).failed = None

    def _judge_script(self, path: str, last: float, now: float, writing: bool) -> Wait | None:
        """The running script's save, judged as any save (a read mid-write, truncated or
        empty, is no new content to warn about): a Wait, or None once it is said."""
        verdict = self._saves.judge_file(path, last, now, writing, True)
        if isinstance(verdict, Wait):
            return verdict
        if isinstance(verdict, Read) and verdict.source is not None:
            self._script_saved(path, verdict.source)
        return None

    def _script_saved(self, path: str, source: bytes) -> None:
        """The running script was saved (``source``, its settled content): say once per
        new content that it is not reloaded."""
        content = digest(source)
        if content == self._script_seen.get(path, self._scripts[path]):
            return  # a touch, or another event of the same save
        self._script_seen[path] = content
        if content == self._scripts[path]:
            log.info("__main__ recovered (%s holds the code that runs)", path)
            return
        try:
            compile(source, path, "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            # Half typed: no restart into a program that cannot start (the save
            # that mends it restarts, under --restart-on-refused).
            log.warning(
                "%s does not compile (%s: %s); __main__ keeps running",
                location_of(exc) if isinstance(exc, SyntaxError) else path,
                type(exc).__name__,
                first_line(exc),
            )
            return
        from ..reload.refusals import RUNNING_SCRIPT, Refusal

        refusal = Refusal(
            RUNNING_SCRIPT,
            "__main__",
            f"{path} was saved",
            "__main__ is never reloaded: put the code to reload in a module it imports",
        )
        log.warning("%s", refusal)
        for listener in list(self.script_refused):
            listener(refusal, path)

    def _refused_here(self, refusal: Refusal, path: str) -> None:
        for listener in list(self.refused_elsewhere):
            listener(refusal, path)

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
        for path in list(candidates):
            if path in paths:
                continue
            try:
                stat = os.stat(path)
            except OSError:
                continue
            if max(stat.st_mtime_ns, stat.st_ctime_ns) >= since_ns:
                paths[path] = now
