"""Polling: each watched folder listed every interval, and compared with the last listing."""

from __future__ import annotations

import logging
import os
import threading
import time

from ... import collector
from ...capture import file_digest
from .base import CREATED, DEFAULT_POLL_INTERVAL, DELETED, FOLDER, MODIFIED, Backend, Sink

__all__ = ["PollingBackend"]

log = logging.getLogger(__name__)

# path -> ((mtime_ns, ctime_ns, size, inode), digest of the content or None);
# a subfolder is there as _SUBFOLDER (only its appearance is reported).
_Snapshot = dict[str, tuple[tuple[int, int, int, int], bytes | None]]
_SUBFOLDER: tuple[tuple[int, int, int, int], bytes | None] = ((-1, -1, -1, -1), None)

# A file modified this recently may be modified again without its stat
# changing: Linux stamps files with a coarse clock (a tick of 1-10 ms) and FAT
# with a 2-second one, so two same-size saves within one tick look identical.
# Like git's "racily clean" index entries, such files are compared by content.
_RACY_NS = 2_000_000_000
_RACY_MAX_SIZE = 1 << 20


def _snapshot(folder: str) -> _Snapshot:
    """Each regular file of ``folder``: its stat, and its digest while it is racy."""
    found: _Snapshot = {}
    now = time.time_ns()
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    # Follows a symlinked file: its target's content is what runs.
                    stat = entry.stat()
                except OSError:
                    continue
                if entry.is_dir():
                    found[entry.path] = _SUBFOLDER
                    continue
                # ctime and the inode catch a rename into place, and a
                # same-size rewrite on filesystems with coarse mtimes.
                key = (stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size, stat.st_ino)
                racy = now - stat.st_mtime_ns < _RACY_NS and stat.st_size <= _RACY_MAX_SIZE
                found[entry.path] = (key, file_digest(entry.path) if racy else None)
    except OSError:
        pass  # the folder is gone (for now): its files read as deleted
    return found


def _differs(
    old: tuple[tuple[int, int, int, int], bytes | None],
    new: tuple[tuple[int, int, int, int], bytes | None],
) -> bool:
    if old[0] != new[0]:
        return True
    return old[1] is not None and new[1] is not None and old[1] != new[1]


class PollingBackend(Backend):
    """Compares each watched folder's listing every ``interval`` seconds.

    Works everywhere (network drives, Docker bind mounts from a macOS or
    Windows host, WSL's Windows drives) at the cost of a stat per file per
    interval and an interval of latency.
    """

    name = "polling"

    def __init__(self, interval: float = DEFAULT_POLL_INTERVAL) -> None:
        self.interval = max(interval, 0.001)
        self._folders: dict[str, _Snapshot] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sink: Sink | None = None

    def start(self, sink: Sink) -> None:
        self._sink = sink
        self._thread = threading.Thread(
            target=collector.ours(self._run), name="muckrack-hmr-poll", daemon=True
        )
        self._thread.start()

    def watch(self, folder: str) -> None:
        with self._lock:
            if folder not in self._folders:
                # The first listing is the baseline: a change right after
                # this call is seen by the next poll.
                self._folders[folder] = _snapshot(folder)

    def rewatch(self, folder: str) -> None:
        self.watch(folder)  # a listing has no handle to lose

    def listing(self, folder: str) -> dict[str, tuple[tuple[int, int, int, int], bytes | None]]:
        """The last listing of ``folder``: each file's (mtime_ns, ctime_ns, size, inode), and
        its digest while racy (subfolders are not in it)."""
        with self._lock:
            found = self._folders.get(folder, {})
        return {path: entry for path, entry in found.items() if entry is not _SUBFOLDER}

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def poll_once(self) -> None:
        """Compare every folder with its last listing and report the differences."""
        with self._lock:
            folders = list(self._folders.items())
        for folder, before in folders:
            after = _snapshot(folder)
            with self._lock:
                self._folders[folder] = after
            if self._sink is None:
                continue
            for path, entry in after.items():
                old = before.get(path)
                if old is None:
                    self._sink(path, FOLDER if entry is _SUBFOLDER else CREATED)
                elif old is _SUBFOLDER or entry is _SUBFOLDER:
                    if old is not entry:  # a folder became a file, or the reverse
                        self._sink(path, FOLDER if entry is _SUBFOLDER else CREATED)
                elif _differs(old, entry):
                    self._sink(path, MODIFIED)
            for path in before.keys() - after.keys():
                if before[path] is not _SUBFOLDER:
                    self._sink(path, DELETED)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.poll_once()
            except Exception:
                log.exception("the polling watcher hit an internal error; it keeps polling")

    def describe(self) -> str:
        return f"polling every {self.interval:g} s"
