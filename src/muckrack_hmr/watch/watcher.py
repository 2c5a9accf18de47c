"""Watching the project's files and reloading the modules that are saved (the CLI).

The watcher is the save pipeline's (:mod:`.pipeline`) consumer for a
running program: the pipeline watches the folders of the loaded project
modules and judges each burst of saves; the watcher reloads every module
whose file now holds new code in one transaction, with the bytes the
pipeline judged, on the pipeline's thread, while the program's threads keep
running.  It also picks the moment the file events start (once the
program's start-up is over: the pipeline is imported and made then, on the
watcher's thread, unless something asks for it before), and uses the
program's idle time for the engine's bookkeeping.  A reload waits for other
threads' imports (:mod:`.safepoint`).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .. import collector
from ..threads import prompt, signals_to_main_thread
from . import idle as idle_work
from .backends import MODIFIED, Backend, check_available
from .filters import PathFilter
from .safepoint import SafePoint

if TYPE_CHECKING:
    from ..api import HMR
    from ..reload.reloader import ReloadResult
    from .bursts import FileSave, SettledSaves
    from .datafiles import DataFiles
    from .pipeline import SavePipeline

__all__ = ["Watcher"]

log = logging.getLogger(__name__)

#: The longest the file events wait for a start-up that keeps importing (seconds).
SETUP_PATIENCE = idle_work.SETUP_PATIENCE
#: The share of a core the program's threads may use for the program to count as idle.
_QUIET = idle_work.QUIET
_Activity = idle_work.Activity


_CLEAR_SCREEN = "\033[H\033[2J\033[3J"


def _to_a_terminal() -> bool:
    if os.environ.get("FORCE_COLOR", "") not in ("", "0"):
        return True
    isatty = getattr(sys.stderr, "isatty", None)
    return isatty is not None and bool(isatty())


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
            from .datafiles import DEFAULT_DATA_SUFFIXES, DataFiles

            self.data = DataFiles(
                self.project.roots,
                self.project.excluded,
                hmr.tracker.is_tracked,
                suffixes=DEFAULT_DATA_SUFFIXES if watch_data else (),
                filter=self.filter,
            )
        if isinstance(backend, str) and poll is None:
            # Now, where an error is the caller's: the backend is made on the watcher's
            # thread, where it could only be logged while the program ran on.
            check_available(backend)

        def make_pipeline() -> SavePipeline:
            from .pipeline import SavePipeline

            return SavePipeline(
                hmr,
                self,
                debounce=debounce,
                backend=backend,
                poll=poll,
                path_filter=self.filter,
                data=self.data,
                rescan=rescan,
                clock=clock,
                started=self.started,
                thread=self._thread,
            )

        # (See pipeline.)
        self._make_pipeline = make_pipeline
        self._pipeline: SavePipeline | None = None
        self._pipeline_made = threading.Lock()
        self._thread: threading.Thread | None = None
        self.clock = clock
        self._safe_point = SafePoint(clock)
        self._activity = idle_work.Activity.of(hmr)
        self._work = idle_work.IdleWork(hmr)
        self._stopping = threading.Event()
        # Set by stop() and hurry(): the start-up is not waited for any more.
        self._hurried = threading.Event()
        #: called with the saves of the files asked for by :meth:`watch_files`, after the
        #: burst's reload
        self.file_listeners: list[Callable[[tuple[FileSave, ...]], object]] = []
        #: Set once file events are on (see :meth:`start`).
        self.started = threading.Event()
        #: ``fn(result)`` after each reload of saves (the CLI's ``--graph`` and
        #: ``--restart-on-refused``), on the watcher's thread.
        self.after_reload: list[Callable[[ReloadResult], None]] = []
        #: ``fn(saves)`` as each burst of saves settles, before it is applied here or in
        #: the workers (gunicorn's arbiter boots workers again), on the watcher's thread; a
        #: listener reloads nothing (the engine's lock may be held).
        self.settling: list[Callable[[SettledSaves], None]] = []

    @property
    def pipeline(self) -> SavePipeline:
        """The save pipeline, which hands the settled saves to :meth:`saves_settled` on
        the watcher's thread.

        Made (and its modules imported) by the watcher's thread once the program's
        start-up is over, or here by the first caller that needs it before: the
        start-up does not pay for what only a save needs (2 ms, 7.6M instructions).
        """
        pipeline = self._pipeline
        if pipeline is None:
            with self._pipeline_made:
                pipeline = self._pipeline
                if pipeline is None:
                    pipeline = self._pipeline = self._make_pipeline()
        return pipeline

    def safe_point(self) -> None:
        """Wait (a little) while another thread imports: a reload's moment."""
        self._safe_point.wait()

    @property
    def backend(self) -> Backend | None:
        """Where file events come from (None until they start)."""
        pipeline = self._pipeline
        return None if pipeline is None else pipeline.backend

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
        if not thread:
            self.pipeline.start(thread=False)
            return
        if self.data is not None:
            self.data.start()
        self._thread = threading.Thread(
            target=collector.ours(self._run), name="muckrack-hmr-watcher", daemon=True
        )
        # The thread (and the threads of the file-event library it starts)
        # inherit a mask that leaves the process's signals to the main thread.
        with signals_to_main_thread():
            self._thread.start()

    def _run(self) -> None:
        """The watcher's thread: the start-up first, then the pipeline, until :meth:`stop`."""
        try:
            self._settle_in()
            if self._stopping.is_set():
                return
            # Short waits for the interpreter from here until the file events are on (the
            # pipeline ends it): making the pipeline imports its modules, a read of a file
            # each, and a program that computes in two threads held each read's return
            # 5 ms and more (one thread handed the interpreter to the other): the events
            # began 0.5 s after the start-up's end, and a save made then waited for them.
            prompt.begin()
            pipeline = self.pipeline
            if not self._stopping.is_set():  # (else stop() saw the pipeline: it stops it)
                try:
                    pipeline.run()
                except RuntimeError:
                    # Stopped by the program's exit as the file events started: 3.12+
                    # starts no thread once the interpreter ends.
                    if not self._stopping.is_set():
                        raise
        finally:
            # What the start-up made may be held frozen for the idle work (see
            # idle.settle_in): it is not left so when the watching ends, or never began.
            collector.thaw()
            prompt.end()  # (the program's switch interval, if the events never came on)

    def _settle_in(self) -> None:
        """Wait until the program's start-up is over (see :func:`.idle.settle_in`), or
        until :meth:`hurry`."""
        idle_work.settle_in(self._activity, self._hurried)

    def hurry(self) -> None:
        """Start the file events now if they wait for the start-up to end: the program
        says it is at rest (a notebook about to run a cell)."""
        self._hurried.set()

    def backend_choice(self) -> tuple[str, float | None]:
        """The backend asked for (a name) and the polling interval (``--poll``), if any."""
        return self.pipeline.backend_choice()

    def stop(self, patience: float | None = None) -> None:
        """Stop watching; a reload in progress finishes first (within ``patience`` seconds,
        if given)."""
        self._stopping.set()
        self._hurried.set()
        until = None if patience is None else time.monotonic() + patience
        with self._pipeline_made:
            pipeline = self._pipeline
        if pipeline is not None:
            pipeline.stop(patience)
        if self._thread is not None and self._thread is not threading.current_thread():
            # (At once when the pipeline waited for it.)
            self._thread.join(timeout=5 if until is None else max(0.0, until - time.monotonic()))

    # -- the pipeline's side ------------------------------------------------------

    def refresh(self) -> None:
        """Watch the folders of project modules (and data files) loaded since the last call."""
        self.pipeline.refresh()

    def watch_files(
        self,
        folder: str,
        suffixes: Iterable[str],
        listener: Callable[[tuple[FileSave, ...]], object],
    ) -> None:
        """Tell ``listener`` about the saved files under ``folder`` that end with ``suffixes``.

        Nothing is reloaded for them: the listener gets each burst's saves
        of such files (with their content) after the burst's reload.
        """
        if listener not in self.file_listeners:
            self.file_listeners.append(listener)
        self.pipeline.watch_files(folder, suffixes)

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

    def idle(self) -> bool | None:
        """No saves pending: when the program is idle, tidy up (see :class:`.idle.IdleWork`).

        Returns whether work is left; None when the program was busy (nothing done).
        """
        return self._work.step(self._activity, self._interrupted)

    def _interrupted(self) -> bool:
        """Should a slice of idle work end early: a save waits, or the watching stops."""
        return self._stopping.is_set() or self.pipeline.pending()

    def busy_share(self) -> float:
        """How busy the program was at the last idle look that found it busy."""
        return self._work.used

    def saves_settled(self, saves: SettledSaves) -> None:
        """Reload what the burst changed, in one transaction, with the bytes judged finished."""
        self.clear_screen()
        self.safe_point()
        if saves.names:
            # A fork takes the engine's lock, once its supervisor took our place as the
            # pipeline's consumer: a burst handed to us as the program forked its first
            # workers (a pool made) goes to the supervisor, which applies it in every
            # process, not here alone (the workers kept the old code for good).
            with self.hmr.reloader._lock:
                forward = self.pipeline.consumer is not self
                if not forward:
                    self.tell_settling(saves)
                    self.apply(saves)
            if forward:
                self.pipeline.consumer.saves_settled(saves)
                return
        else:
            self.tell_settling(saves)
        if saves.files:
            for listener in list(self.file_listeners):
                try:
                    listener(saves.files)
                except Exception:
                    log.exception("a file listener failed")

    def tell_settling(self, saves: SettledSaves) -> None:
        """Call the :attr:`settling` listeners with a burst that settled."""
        for listener in list(self.settling):
            try:
                listener(saves)
            except Exception:
                log.exception("the listener %r raised", listener)

    def clear_screen(self) -> None:
        """Clear the terminal before a reload's output (``--clear``).

        Only a terminal, as for colours: a log file or a pipe would get the codes
        as text.  ``FORCE_COLOR`` says a pipe ends in one.
        """
        if self.clear and _to_a_terminal():
            sys.stderr.write(_CLEAR_SCREEN)
            sys.stderr.flush()

    def apply(self, saves: SettledSaves) -> ReloadResult:
        """Reload what the burst changed now (the caller waited for the safe point)."""
        result = self.hmr.reloader.reload_result(
            saves.names, force=saves.forced, sources=saves.sources()
        )
        not_applied = result.failed.keys() | {refusal.module for refusal in result.refused}
        for save in saves.modules:
            self.pipeline.reload_failed(save, save.name in not_applied)
        for listener in list(self.after_reload):
            try:
                listener(result)
            except Exception:
                log.exception("after-reload listener %r raised", listener)
        return result
