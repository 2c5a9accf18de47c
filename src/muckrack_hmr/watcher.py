"""Watching the project's source files and reloading the ones that are saved.

A watchdog observer watches the folders of the loaded project modules (not
whole trees).  Events are collected for a short quiet period (the debounce),
then every saved module whose content really changed is reloaded in one
transaction, on the watcher's own thread, while the program's threads keep
running.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from typing import Any

__all__ = ["Watcher"]

log = logging.getLogger("muckrack_hmr")

# Modules analyzed per idle tick of the watcher (a tick is ``rescan``, 0.1 s).
_WARM_BATCH = 8


def _digest(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.blake2b(handle.read(), digest_size=16).digest()
    except OSError:
        return None


class Watcher:
    """Reload project modules when their files change on disk."""

    def __init__(self, hmr: Any, *, debounce: float = 0.02, rescan: float = 0.1) -> None:
        self.hmr = hmr
        self.debounce = debounce
        self.rescan = rescan
        self._files: dict[str, str] = {}  # real path -> module name
        self._digests: dict[str, bytes | None] = {}
        self._watched_dirs: set[str] = set()
        self._pending: set[str] = set()
        self._last_event = 0.0
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._loaded_seen = 0
        self._observer: Any = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        """Start the observer and the reload thread (both daemons)."""
        from watchdog.observers import Observer

        self._observer = Observer()
        self._observer.daemon = True
        self._observer.start()
        # The roots at once: the script's first imports come from there, and
        # may be saved before the first refresh.
        for root in self.hmr.project.roots:
            self._watch(root)
        self._thread = threading.Thread(target=self._run, name="muckrack-hmr-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; a reload in progress finishes first."""
        with self._wake:
            self._stopping.set()
            self._wake.notify_all()
        if self._observer is not None:
            self._observer.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    # -- which files belong to which modules ------------------------------------

    def refresh(self) -> None:
        """Watch the folders of project modules loaded since the last call."""
        loaded = self.hmr.project.loaded
        if len(loaded) == self._loaded_seen:
            return
        new = list(loaded.items())[self._loaded_seen :]
        self._loaded_seen += len(new)
        for path, (name, baseline) in new:
            if name == "__main__":
                continue  # the script is never re-executed
            self._files[path] = name
            self._watch(os.path.dirname(path))
            try:
                stat = os.stat(path)
                current: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
            except OSError:
                current = None
            if current is not None and current == baseline:
                self._digests[path] = _digest(path)
            else:
                # Saved between its import and now: no baseline, reload it.
                self._digests[path] = None
                self.notify(path)

    def _watch(self, folder: str) -> None:
        if folder in self._watched_dirs or self._observer is None:
            return
        self._watched_dirs.add(folder)
        self._observer.schedule(_Handler(self), folder, recursive=False)
        log.debug("hmr: watching %s", folder)

    # -- events -----------------------------------------------------------------

    def notify(self, path: str) -> None:
        """A file changed (called from the observer thread)."""
        if not path.endswith((".py", ".pyw")):
            return
        with self._wake:
            self._pending.add(os.path.realpath(path))
            self._last_event = time.monotonic()
            self._wake.notify_all()

    def _run(self) -> None:
        while not self._stopping.is_set():
            with self._wake:
                if not self._pending:
                    self._wake.wait(self.rescan)
                    paths: set[str] = set()
                else:
                    # Saves come in bursts (an editor's several writes, a
                    # formatter, a checkout): wait until they settle.
                    remaining = self.debounce - (time.monotonic() - self._last_event)
                    if remaining > 0:
                        self._wake.wait(remaining)
                        continue
                    paths, self._pending = self._pending, set()
            if self._stopping.is_set():
                return
            try:
                self.refresh()
                if paths:
                    self._apply(paths)
                else:
                    # Idle: keep the sources as they ran, and analyze a few
                    # modules, so that the first reload is as fast as the next.
                    self.hmr.remember_sources()
                    self.hmr.reloader.warm(limit=_WARM_BATCH)
            except Exception:
                log.exception("hmr: the watcher hit an internal error; it keeps watching")

    def _apply(self, paths: set[str]) -> None:
        changed: list[str] = []
        for path in sorted(paths):
            name = self._files.get(path)
            if name is None:
                continue  # a file nobody imported
            if not os.path.exists(path):
                log.warning("hmr: %s was deleted; %s keeps running its old code", path, name)
                continue
            digest = _digest(path)
            if digest is None or digest == self._digests.get(path):
                continue  # touched, or saved with the same content as loaded
            if os.path.getsize(path) == 0:
                continue  # truncated; the write that follows brings the content
            self._digests[path] = digest
            changed.append(name)
        if changed:
            self.hmr.reload_modules(changed)


class _Handler:
    """The watchdog event handler: forwards every path an event names."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def dispatch(self, event: Any) -> None:
        if event.is_directory:
            return
        for attr in ("src_path", "dest_path"):
            path = getattr(event, attr, "")
            if isinstance(path, bytes):
                path = os.fsdecode(path)
            if path:
                self.watcher.notify(path)
