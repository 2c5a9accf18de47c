"""What wakes the watch loop up: saved files and typed commands.

Both arrive on one queue, from background threads, and only the main thread
acts on them (reloads and test runs never overlap).  Files: a watchdog
observer on individual folders (not whole trees, so that a virtualenv or
``node_modules`` in the project costs nothing).  Commands: one per line on
standard input, read from a private duplicate of its file descriptor,
because pytest's output capturing points descriptor 0 at ``/dev/null``
while a test runs.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ...threads import signals_to_main_thread

__all__ = ["Batch", "Events"]

# How often an idle wait wakes up to do background work (analysis for early cutoff).
_IDLE_TICK = 0.1
# The watchdog events that can mean new content.
_WRITES = frozenset({"created", "modified", "moved", "deleted", "closed"})


@dataclass
class Batch:
    """Saved files (real paths) after a quiet period, or one command."""

    paths: set[str] = field(default_factory=set)
    command: str | None = None
    first_event: float = 0.0
    """``time.perf_counter()`` of the first event of the batch: the save."""


class Events:
    """File events and commands, collected for the watch loop."""

    def __init__(self, debounce: float) -> None:
        self.debounce = debounce
        self._queue: queue.Queue[tuple[str, str, float]] = queue.Queue()
        self._observer: Any = None
        self._watched: set[str] = set()
        self._reader: threading.Thread | None = None

    # -- files -----------------------------------------------------------------

    def watch(self, folders: Iterable[str]) -> None:
        """Watch these folders too (each one alone, not its subfolders)."""
        with signals_to_main_thread():  # Ctrl-C reaches the loop, not an observer's thread
            self._watch(folders)

    def _watch(self, folders: Iterable[str]) -> None:
        for folder in folders:
            if folder in self._watched or not os.path.isdir(folder):
                continue
            if self._observer is None:
                from watchdog.observers import Observer

                self._observer = Observer()
                self._observer.daemon = True
                self._observer.start()
            self._watched.add(folder)
            self._observer.schedule(_Handler(self._queue), folder, recursive=False)

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
            if kind == "command":
                # Handled after this batch: put it back behind the files.
                self._queue.put((kind, value, when))
                return batch
            batch.paths.add(value)
            last = when

    def close(self) -> None:
        """Stop watching (the command reader is a daemon thread)."""
        if self._observer is not None:
            self._observer.stop()
            self._observer = None


class _Handler:
    """A watchdog event handler: every path an event names goes on the queue."""

    def __init__(self, events: queue.Queue[tuple[str, str, float]]) -> None:
        self.events = events

    def dispatch(self, event: Any) -> None:
        if event.event_type not in _WRITES:
            return  # reading a file (ours, or an import) opens and closes it
        if event.is_directory and event.event_type not in ("created", "moved"):
            return  # a folder "modified" because a file in it was: that file has its event
        now = time.perf_counter()
        for attr in ("src_path", "dest_path"):
            path = getattr(event, attr, "")
            if isinstance(path, bytes):
                path = os.fsdecode(path)
            if path and "__pycache__" not in path:
                self.events.put(("path", os.path.realpath(path), now))
