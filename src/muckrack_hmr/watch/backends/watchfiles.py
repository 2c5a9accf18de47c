"""watchfiles (Rust's notify): one OS watcher for all the folders, when installed."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ... import collector
from .base import CREATED, DELETED, FOLDER, MODIFIED, Backend, BackendUnavailable, Sink
from .polling import _SUBFOLDER, _differs, _Snapshot, _snapshot

__all__ = ["WatchfilesBackend"]

log = logging.getLogger(__name__)


class _Either:
    """A stop event for watchfiles: set when either event is."""

    def __init__(self, first: threading.Event, second: threading.Event) -> None:
        self.first = first
        self.second = second

    def is_set(self) -> bool:
        return self.first.is_set() or self.second.is_set()


class WatchfilesBackend(Backend):
    """watchfiles (Rust ``notify``): one OS watcher for every folder, when installed.

    watchfiles watches a fixed set of paths, so a new folder restarts its
    watch; files that changed during the restart are found by comparing
    listings taken before and after.
    """

    name = "watchfiles"

    def __init__(self, step_ms: int = 5) -> None:
        try:
            import watchfiles
        except ImportError:
            raise BackendUnavailable.missing("watchfiles") from None
        self._watchfiles: Any = watchfiles
        self.step_ms = step_ms
        self._folders: list[str] = []
        self._listings: dict[str, _Snapshot] = {}  # newly watched folder -> its listing
        self._lock = threading.Lock()
        self._changed = threading.Event()  # the folder set changed: restart the watch
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sink: Sink | None = None

    def start(self, sink: Sink) -> None:
        self._sink = sink
        self._thread = threading.Thread(
            target=collector.ours(self._run), name="muckrack-hmr-watchfiles", daemon=True
        )
        self._thread.start()

    def watch(self, folder: str) -> None:
        # The listing as of now: what changes before the (restarted) watch is
        # up is found by comparing it with the listing then.
        listing = _snapshot(folder)
        with self._lock:
            if folder in self._folders:
                return
            self._folders.append(folder)
            self._listings[folder] = listing
        self._changed.set()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        kinds = {
            self._watchfiles.Change.added: CREATED,
            self._watchfiles.Change.modified: MODIFIED,
            self._watchfiles.Change.deleted: DELETED,
        }
        before: dict[str, _Snapshot] = {}
        while not self._stopping.is_set():
            self._changed.clear()
            with self._lock:
                folders = list(self._folders)
                before.update(self._listings)
                self._listings.clear()
            if not folders:
                self._changed.wait(0.1)
                continue
            first = True
            try:
                for changes in self._watchfiles.watch(
                    *folders,
                    watch_filter=None,
                    recursive=False,
                    debounce=self.step_ms * 20,
                    step=self.step_ms,
                    stop_event=_Either(self._stopping, self._changed),
                    rust_timeout=100,
                    yield_on_timeout=True,
                    raise_interrupt=False,
                ):
                    if first:
                        # The watch is up: report what changed while it was not.
                        first = False
                        self._report_gap(before, folders)
                    for change, path in changes:
                        kind = kinds.get(change)
                        if kind == CREATED and os.path.isdir(path):
                            kind = FOLDER
                        if kind is not None and self._sink is not None:
                            self._sink(path, kind)
            except Exception:
                log.exception("the watchfiles watcher failed; restarting it")
                time.sleep(0.1)  # not a synchronisation: a pause before a retry
            before = {folder: _snapshot(folder) for folder in folders}

    def _report_gap(self, before: Mapping[str, _Snapshot], folders: Iterable[str]) -> None:
        if self._sink is None:
            return
        for folder in folders:
            old = before.get(folder)
            if old is None:
                continue
            new = _snapshot(folder)
            for path in {*old, *new}:
                was, now = old.get(path), new.get(path)
                if now is _SUBFOLDER:
                    if was is not _SUBFOLDER:
                        self._sink(path, FOLDER)
                elif was is _SUBFOLDER:
                    if now is not None:
                        self._sink(path, CREATED)
                elif was is None or now is None or _differs(was, now):
                    self._sink(path, MODIFIED if now is not None else DELETED)
