"""What wakes the watch loop up: settled saves and typed commands, for pytest's main thread.

Saves come from the package's save pipeline (:mod:`muckrack_hmr.watch.pipeline`),
the one the CLI uses, with every backend and its fallbacks (polling where
file events never come: network drives, bind mounts, WSL's Windows drives),
on individual folders (not whole trees, so that a virtualenv or
``node_modules`` in the project costs nothing).  Its thread hands each
settled burst to :class:`Wakeups`, which queues it: only the main thread
acts (reloads and test runs never overlap).  Commands: one per line on
standard input, read from a private duplicate of its file descriptor,
because pytest's output capturing points descriptor 0 at ``/dev/null``
while a test runs.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ... import collector
from ...threads import signals_to_main_thread
from ...watch.backends import CREATED, Backend, choose_backend
from ...watch.bursts import SettledSaves
from ...watch.pipeline import SavePipeline

if TYPE_CHECKING:
    from ...api import HMR

__all__ = ["Wakeup", "Wakeups"]

log = logging.getLogger(__name__)

# How often an idle wait wakes up to do background work (analysis for early cutoff).
_IDLE_TICK = 0.1


@dataclass(frozen=True)
class Wakeup:
    """What the loop woke up for: settled saves, one command, or a line to show."""

    saves: SettledSaves | None = None
    command: str | None = None
    notice: str | None = None
    """A line to show (how saves are found changed)."""


class Wakeups:
    """Settled saves and commands, queued for the watch loop (a :class:`SavesConsumer`)."""

    def __init__(
        self,
        hmr: HMR,  # what the pipeline judges saves with
        debounce: float,
        *,
        backend: str = "auto",
        poll: float | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """``backend``, ``poll`` and ``MUCKRACK_HMR_FORCE_POLLING`` (in ``environ``)
        choose how files are watched, as the CLI's ``--backend`` and ``--poll`` do.
        Raises BackendUnavailable or ValueError."""
        self._queue: queue.Queue[Wakeup] = queue.Queue()
        self._next: Wakeup | None = None  # taken while merging saves: returned next
        chosen, self.why = choose_backend(
            backend, poll_interval=poll, roots=hmr.project.roots, environ=environ
        )
        self.pipeline = SavePipeline(
            hmr,
            self,
            debounce=debounce,
            backend=chosen,
            plain_files=True,
            poll_option="--hmr-poll",
            # The loop counts a save's latency with perf_counter.
            clock=time.perf_counter,
        )
        self._started = False
        self._reader: threading.Thread | None = None

    @property
    def backend(self) -> Backend:
        """Where the file events come from (polling, once the OS's never came)."""
        backend = self.pipeline.backend
        assert backend is not None  # given at construction
        return backend

    # -- files -----------------------------------------------------------------

    def watch(self, folders: Iterable[str]) -> None:
        """Watch these folders too (each one alone, not its subfolders)."""
        if not self._started:
            self._started = True
            self.pipeline.start()  # the file events start here, before the first run
            log.debug("file events from %s (%s)", self.backend.describe(), self.why)
        for folder in folders:
            if os.path.isdir(folder):
                self.pipeline.watch(folder)

    def track(self, paths: Iterable[str]) -> None:
        """These files' saves count (and their deletion), whatever their name."""
        self.pipeline.track(paths)

    def look_at(self, paths: Iterable[str]) -> None:
        """Judge these files as saved now (saved before they were watched)."""
        for path in paths:
            self.pipeline.notify(path, CREATED)

    @property
    def watched(self) -> frozenset[str]:
        """The folders watched so far."""
        return self.pipeline.watched

    # -- the pipeline's consumer (on its thread) -----------------------------------

    def saves_settled(self, saves: SettledSaves) -> None:
        """Queue a settled burst for the main thread."""
        self._queue.put(Wakeup(saves=saves))

    def events_never_came(self, message: str) -> None:
        """Queue the line that says saves are polled for from now on."""
        self._queue.put(Wakeup(notice=f"hmr: {message}"))

    def idle(self) -> bool:
        """The loop's idle work runs on the main thread (:meth:`next_wakeup`)."""
        return False

    def busy_share(self) -> float:
        """(Never busy: :meth:`idle` does nothing.)"""
        return 0.0

    # -- commands ----------------------------------------------------------------

    def read_commands(self, fd: int) -> None:
        """Read commands, one per line, from ``fd`` (a duplicate: it is closed at EOF)."""

        def read() -> None:
            try:
                with open(fd, encoding="utf-8", errors="replace", closefd=True) as lines:
                    for line in lines:
                        self._queue.put(Wakeup(command=line.strip()))
            except (OSError, ValueError):
                pass  # the terminal went away: the loop still watches files

        self._reader = threading.Thread(
            target=collector.ours(read), name="muckrack-hmr-stdin", daemon=True
        )
        with signals_to_main_thread():
            self._reader.start()

    # -- waiting -----------------------------------------------------------------

    def next_wakeup(self, idle: Callable[[], bool]) -> Wakeup:
        """Block until a command comes, or saves settled (those queued meanwhile in one).

        ``idle()`` is called while nothing happens; it returns True while it
        has more background work to do.
        """
        wakeup, self._next = self._next, None
        busy = True
        while wakeup is None:
            try:
                wakeup = self._queue.get(timeout=_IDLE_TICK if busy else 1.0)
            except queue.Empty:
                busy = idle()
        saves = wakeup.saves
        if saves is None:
            return wakeup
        # Bursts that settled while the last run went on are applied together.
        while True:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more.saves is None:
                self._next = more  # handled after these saves
                break
            saves = saves.then(more.saves)
        return Wakeup(saves=saves)

    def close(self) -> None:
        """Stop watching (the command reader is a daemon thread)."""
        if self._started:
            self._started = False
            self.pipeline.stop()
