"""watchdog's native observer: inotify, FSEvents, kqueue or ReadDirectoryChangesW."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from .base import CLOSED, CREATED, DELETED, FOLDER, MODIFIED, MOVED_AWAY, TOUCHED, Backend, Sink

__all__ = ["WatchdogBackend"]


def _event_types() -> dict[type, str]:
    """watchdog's file event classes -> our kinds (older watchdogs lack some)."""
    from watchdog import events

    kinds = {
        "FileModifiedEvent": MODIFIED,
        "FileCreatedEvent": CREATED,
        "FileDeletedEvent": DELETED,
        "FileMovedEvent": MOVED_AWAY,
        "FileClosedEvent": CLOSED,
        "FileAttribEvent": TOUCHED,
        "DirCreatedEvent": FOLDER,
        "DirMovedEvent": FOLDER,
    }
    return {getattr(events, cls): kind for cls, kind in kinds.items() if hasattr(events, cls)}


class _WatchdogHandler:
    """Forwards watchdog's file events; ignores folders, opens and reads."""

    def __init__(self, sink: Sink, kinds: dict[type, str]) -> None:
        self.sink = sink
        self.kinds = kinds

    def dispatch(self, event: Any) -> None:
        kind = self.kinds.get(type(event))
        if event.is_directory:
            if kind == FOLDER:
                # Moved into place: where it is now; created: where it was made.
                path = getattr(event, "dest_path", "") or event.src_path
                if path:
                    self.sink(os.fsdecode(path), FOLDER)
            return
        if kind is None:
            # Opened and closed-without-writing: our own reads of a module
            # would otherwise wake the watcher up after every reload.
            return
        src = os.fsdecode(event.src_path) if event.src_path else ""
        if kind == MOVED_AWAY:
            dest = os.fsdecode(event.dest_path) if event.dest_path else ""
            if src:
                self.sink(src, MOVED_AWAY)
            if dest:
                self.sink(dest, CREATED)
        elif src:
            self.sink(src, kind)


class WatchdogBackend(Backend):
    """watchdog's native observer: inotify, FSEvents, kqueue or ReadDirectoryChangesW."""

    name = "watchdog"

    def __init__(self) -> None:
        from watchdog.observers import Observer

        self._observer: Any = Observer()
        self._observer.daemon = True
        # Only inotify reports IN_CLOSE_WRITE; FSEvents and Windows don't.
        self.reports_close = type(self._observer).__name__.startswith("Inotify")
        self._kinds = _event_types()
        self._handler: _WatchdogHandler | None = None
        self._watches: dict[str, Any] = {}
        self._lock = threading.Lock()

    def start(self, sink: Sink) -> None:
        self._handler = _WatchdogHandler(sink, self._kinds)
        self._observer.start()

    def watch(self, folder: str) -> None:
        with self._lock:
            if folder in self._watches:
                return
            try:
                # Asking the kernel for our event types only: opens and reads
                # of the project's files (every import) stay in the kernel.
                watch = self._observer.schedule(
                    self._handler, folder, recursive=False, event_filter=list(self._kinds)
                )
            except TypeError:  # watchdog < 4.0.1: no event_filter
                watch = self._observer.schedule(self._handler, folder, recursive=False)
            self._watches[folder] = watch

    def rewatch(self, folder: str) -> None:
        # inotify drops the watch of a deleted folder (IN_IGNORED) and watchdog
        # stops its emitter; a folder made again under the same name needs a
        # new one.
        with self._lock:
            old = self._watches.pop(folder, None)
            if old is not None:
                with contextlib.suppress(KeyError, OSError):
                    self._observer.unschedule(old)
        self.watch(folder)

    def stop(self) -> None:
        self._observer.stop()
        if self._observer.is_alive() and self._observer is not threading.current_thread():
            self._observer.join(timeout=5)

    def describe(self) -> str:
        return f"watchdog ({type(self._observer).__name__})"
