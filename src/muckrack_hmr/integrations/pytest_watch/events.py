"""What wakes the watch loop up: saved files and typed commands.

Both arrive on one queue, from background threads, and only the main thread
acts on them (reloads and test runs never overlap).  Files: the CLI's file
event backends (watchdog, watchfiles, or polling where events never come:
network drives, bind mounts, WSL's Windows drives), on individual folders
(not whole trees, so that a virtualenv or ``node_modules`` in the project
costs nothing).  Commands: one per line on standard input, read from a
private duplicate of its file descriptor, because pytest's output capturing
points descriptor 0 at ``/dev/null`` while a test runs.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ...threads import signals_to_main_thread
from ...watch.backends import (
    DEFAULT_POLL_INTERVAL,
    TOUCHED,
    Backend,
    CheckedBackend,
    PollingBackend,
    choose_backend,
)

__all__ = ["Batch", "Events"]

log = logging.getLogger(__name__)

# How often an idle wait wakes up to do background work (analysis for early cutoff).
_IDLE_TICK = 0.1


@dataclass
class Batch:
    """Saved files (real paths) after a quiet period, or one command."""

    paths: set[str] = field(default_factory=set)
    command: str | None = None
    notice: str | None = None
    """A line to show (how saves are found changed)."""
    first_event: float = 0.0
    """``time.perf_counter()`` of the first event of the batch: the save."""


class Events:
    """File events and commands, collected for the watch loop."""

    def __init__(
        self,
        debounce: float,
        *,
        backend: str = "auto",
        poll: float | None = None,
        roots: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """``backend``, ``poll`` and ``MUCKRACK_HMR_FORCE_POLLING`` (in ``environ``)
        choose how files are watched, as the CLI's ``--backend`` and ``--poll`` do.
        Raises BackendUnavailable or ValueError."""
        self.debounce = debounce
        self._queue: queue.Queue[tuple[str, str, float]] = queue.Queue()
        chosen, self.why = choose_backend(backend, poll_interval=poll, roots=roots, environ=environ)
        self.backend: Backend = chosen
        if isinstance(chosen, CheckedBackend):
            chosen.on_switch = self._events_never_came
        self._started = False
        self._watched: set[str] = set()
        self._reader: threading.Thread | None = None

    # -- files -----------------------------------------------------------------

    def watch(self, folders: Iterable[str]) -> None:
        """Watch these folders too (each one alone, not its subfolders)."""
        with signals_to_main_thread():  # Ctrl-C reaches the loop, not a backend's thread
            if not self._started:
                self._started = True
                self.backend.start(self._saw)
                log.debug("file events from %s (%s)", self.backend.describe(), self.why)
            for folder in folders:
                if folder in self._watched or not os.path.isdir(folder):
                    continue
                try:
                    self.backend.watch(folder)
                except OSError as exc:
                    self._poll_instead(exc)
                    self.backend.watch(folder)
                self._watched.add(folder)

    def _saw(self, path: str, kind: str) -> None:
        """A backend's report (on its thread): every path that may hold new content."""
        if kind == TOUCHED or "__pycache__" in path:
            return  # metadata only; pytest's and Python's bytecode caches
        self._queue.put(("path", os.path.realpath(path), time.perf_counter()))

    def _events_never_came(self, why: str) -> None:
        """The OS accepted the watches but delivers no events (the backend polls now)."""
        notice = (
            f"hmr: file events do not arrive here ({why}); polling every "
            f"{DEFAULT_POLL_INTERVAL:g} s instead (pass --hmr-poll to start so)"
        )
        self._queue.put(("notice", notice, time.perf_counter()))

    def _poll_instead(self, exc: OSError) -> None:
        """The OS refused a watch (inotify's per-user limits, say): poll every folder."""
        old = self.backend
        if isinstance(old, PollingBackend):
            raise exc
        log.warning(
            "%s failed (%s); polling every %g s instead "
            "(raise fs.inotify.max_user_watches, or pass --hmr-poll)",
            old.describe(),
            exc,
            DEFAULT_POLL_INTERVAL,
        )
        old.stop()
        self.backend = PollingBackend()
        self.backend.start(self._saw)
        for folder in self._watched:
            self.backend.watch(folder)

    @property
    def watched(self) -> frozenset[str]:
        """The folders watched so far."""
        return frozenset(self._watched)

    # -- commands ----------------------------------------------------------------

    def read_commands(self, fd: int) -> None:
        """Read commands, one per line, from ``fd`` (a duplicate: it is closed at EOF)."""

        def read() -> None:
            try:
                with open(fd, encoding="utf-8", errors="replace", closefd=True) as lines:
                    for line in lines:
                        self._queue.put(("command", line.strip(), time.perf_counter()))
            except (OSError, ValueError):
                pass  # the terminal went away: the loop still watches files

        self._reader = threading.Thread(target=read, name="muckrack-hmr-stdin", daemon=True)
        with signals_to_main_thread():
            self._reader.start()

    # -- waiting -----------------------------------------------------------------

    def next_batch(self, idle: Callable[[], bool]) -> Batch:
        """Block until a command comes, or files were saved and then left alone.

        ``idle()`` is called while nothing happens; it returns True while it
        has more background work to do.
        """
        busy = True
        while True:
            try:
                kind, value, when = self._queue.get(timeout=_IDLE_TICK if busy else 1.0)
            except queue.Empty:
                busy = idle()
                continue
            if kind == "command":
                return Batch(command=value, first_event=when)
            if kind == "notice":
                return Batch(notice=value, first_event=when)
            batch = Batch(paths={value}, first_event=when)
            return self._settle(batch)

    def _settle(self, batch: Batch) -> Batch:
        # Saves come in bursts (an editor's several writes, a formatter, a
        # checkout): wait until the files are left alone for ``debounce``.
        last = batch.first_event
        while True:
            remaining = self.debounce - (time.perf_counter() - last)
            if remaining <= 0:
                return batch
            try:
                kind, value, when = self._queue.get(timeout=remaining)
            except queue.Empty:
                return batch
            if kind != "path":
                # Handled after this batch: put it back behind the files.
                self._queue.put((kind, value, when))
                return batch
            batch.paths.add(value)
            last = when

    def close(self) -> None:
        """Stop watching (the command reader is a daemon thread)."""
        if self._started:
            self._started = False
            self.backend.stop()
