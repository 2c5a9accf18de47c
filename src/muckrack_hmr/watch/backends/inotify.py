"""Linux's inotify, asked directly: one descriptor and one thread, however many folders.

watchdog's observer gives every watched folder an emitter of its own: a thread
and an inotify instance each.  A project of a few hundred folders then starts
hundreds of threads while it imports (0.4 s at 250 folders, on the program's
start-up path), and runs into ``fs.inotify.max_user_instances`` (128 by
default, shared with every editor of the user).  Here one instance holds a
watch per folder (``inotify_add_watch`` is one system call) and one thread
reads the events of them all.  The calls come from the C library through
ctypes; where it has no inotify, :class:`BackendUnavailable` says so and the
caller takes another backend.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import struct
import sys
import threading
from typing import ClassVar

from ... import collector
from .base import (
    CLOSED,
    CREATED,
    DELETED,
    FOLDER,
    MODIFIED,
    MOVED_AWAY,
    TOUCHED,
    Backend,
    BackendUnavailable,
    Sink,
)

__all__ = ["InotifyBackend", "events_of"]

log = logging.getLogger(__name__)

# <sys/inotify.h>
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

# What we ask for: writes, closes after a write, names coming and going, metadata.
# Not opens, reads or closes without a write: every import of a module opens and
# reads its file, and those events would stay in the kernel's queue for nothing.
_MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_ONLYDIR
    | IN_EXCL_UNLINK
)

# struct inotify_event { int wd; uint32_t mask, cookie, len; char name[len]; }
_HEADER = struct.Struct("iIII")

# A file's event -> our kind, tried in this order (one event can carry one bit only,
# but the order states which wins if a kernel ever merged them).
_FILE_KINDS = (
    (IN_CLOSE_WRITE, CLOSED),
    (IN_MODIFY, MODIFIED),
    (IN_CREATE, CREATED),
    (IN_MOVED_TO, CREATED),
    (IN_DELETE, DELETED),
    (IN_MOVED_FROM, MOVED_AWAY),
    (IN_ATTRIB, TOUCHED),
)


def _same_folder(path: str, other: str) -> bool:
    try:
        return os.path.samefile(path, other)
    except OSError:
        return False


def events_of(data: bytes) -> list[tuple[int, int, bytes]]:
    """``(watch descriptor, mask, name)`` of each event in a read of the descriptor."""
    events = []
    offset, end, size = 0, len(data), _HEADER.size
    while offset + size <= end:
        wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
        offset += size
        events.append((wd, mask, data[offset : offset + length].rstrip(b"\0")))
        offset += length
    return events


def kind_of(mask: int) -> str | None:
    """Our kind of change for an event's mask, or None for one we do not report."""
    if mask & IN_ISDIR:
        # A folder made or moved into a watched one: the watcher may import from it.
        return FOLDER if mask & (IN_CREATE | IN_MOVED_TO) else None
    for bit, kind in _FILE_KINDS:
        if mask & bit:
            return kind
    return None


class _Libc:
    """The three calls of the C library this backend needs."""

    _loaded: ClassVar[_Libc | None] = None

    def __init__(self) -> None:
        # The running interpreter's own symbols: the C library it is linked with
        # (no search of the file system, which ctypes.util.find_library does).
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            self.init1 = libc.inotify_init1
            self.add_watch = libc.inotify_add_watch
            self.rm_watch = libc.inotify_rm_watch
        except AttributeError as exc:
            raise BackendUnavailable("this C library has no inotify") from exc
        self.init1.argtypes = [ctypes.c_int]
        self.init1.restype = ctypes.c_int
        self.add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.add_watch.restype = ctypes.c_int
        self.rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        self.rm_watch.restype = ctypes.c_int

    @classmethod
    def get(cls) -> _Libc:
        if cls._loaded is None:
            cls._loaded = cls()
        return cls._loaded


def _error(what: str, path: str | None = None) -> OSError:
    code = ctypes.get_errno()
    if path is None:
        return OSError(code, f"{what}: {os.strerror(code)}")
    return OSError(code, f"{what}: {os.strerror(code)}", path)


# The most reads of the queue a catch_up makes (64 KiB each): all that a save leaves.
_CATCH_UP_READS = 16


class InotifyBackend(Backend):
    """Linux's inotify: one instance and one reading thread for every watched folder."""

    name = "inotify"
    reports_close = True

    def __init__(self) -> None:
        if not sys.platform.startswith("linux"):
            raise BackendUnavailable("inotify is Linux's")
        self._libc = _Libc.get()
        self._fd = -1
        self._lock = threading.Lock()
        self._folders: dict[str, int] = {}  # folder -> watch descriptor
        # watch descriptor -> folders (one folder reached by two paths shares one)
        self._paths: dict[int, list[str]] = {}
        self._sink: Sink | None = None
        self._stopping = threading.Event()
        self._wake_r = self._wake_w = -1
        self._thread: threading.Thread | None = None
        # Held from a read of the queue to the end of its dispatch: the events of
        # two reads (the thread's, and catch_up's) reach the sink in their order.
        self._reading = threading.Lock()

    def _open(self) -> None:
        if self._fd < 0:
            fd = self._libc.init1(IN_NONBLOCK | IN_CLOEXEC)
            if fd < 0:
                # EMFILE: the user's max_user_instances are taken (editors, other tools).
                raise _error("inotify_init1")
            self._fd = fd

    def start(self, sink: Sink) -> None:
        with self._lock:
            self._open()
            self._sink = sink
            self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
            self._thread = threading.Thread(
                target=collector.ours(self._run), name="muckrack-hmr-inotify", daemon=True
            )
            self._thread.start()

    def watch(self, folder: str) -> None:
        with self._lock:
            if folder in self._folders or self._stopping.is_set():
                return
            self._open()
            wd = self._libc.add_watch(self._fd, os.fsencode(folder), _MASK)
            if wd < 0:
                # ENOSPC: fs.inotify.max_user_watches is reached; the caller polls instead.
                raise _error("inotify_add_watch", folder)
            self._folders[folder] = wd
            paths = self._paths.setdefault(wd, [])
            if folder not in paths:
                # The descriptor of a folder watched under another name: the same
                # folder (a symlink to it), or one the watch followed as it was renamed
                # (``pkg`` became ``pkg2``), whose old name is gone.  Each of its events
                # was reported under both names, the old one a missing file, waited for.
                for stale in [path for path in paths if not _same_folder(path, folder)]:
                    paths.remove(stale)
                    self._folders.pop(stale, None)
                paths.append(folder)

    def rewatch(self, folder: str) -> None:
        # The kernel dropped the deleted folder's watch (IN_IGNORED); the folder
        # made again under its name is another inode, with a watch of its own.
        with self._lock:
            wd = self._folders.pop(folder, None)
            if wd is not None:
                self._forget(wd, folder)
        self.watch(folder)

    def _forget(self, wd: int, folder: str | None = None) -> None:
        paths = self._paths.get(wd, [])
        for path in [folder] if folder is not None else list(paths):
            if path in paths:
                paths.remove(path)
            if self._folders.get(path) == wd:
                del self._folders[path]
        if not paths:
            self._paths.pop(wd, None)
            if self._fd >= 0:
                self._libc.rm_watch(self._fd, wd)  # EINVAL if the kernel dropped it: fine

    def stop(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            self._stopping.set()
            thread = self._thread
            if self._wake_w >= 0:
                with contextlib.suppress(OSError):  # the pipe is full: woken already
                    os.write(self._wake_w, b"x")
        if thread is None:
            self._close()
        elif thread is not threading.current_thread():
            thread.join(timeout=5)

    def _close(self) -> None:
        with self._reading, self._lock:
            for fd in (self._fd, self._wake_r, self._wake_w):
                if fd >= 0:
                    os.close(fd)
            self._fd = self._wake_r = self._wake_w = -1

    def describe(self) -> str:
        return "inotify"

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        try:
            while not self._stopping.is_set():
                poller.poll()
                if self._stopping.is_set():
                    break
                try:
                    self._read_queue()
                except OSError as exc:
                    log.error("reading inotify's events failed: %s", exc)
                    break
        finally:
            self._close()

    def _read_queue(self, reads: int = 1) -> None:
        """Read and dispatch what the kernel has queued, ``reads`` times at most (nothing
        left: a catch_up took it).  Bounded: a folder whose files are written without
        a pause (a log) keeps the queue full."""
        with self._reading:
            if self._fd < 0:
                return
            for _ in range(reads):
                while True:
                    try:
                        data = os.read(self._fd, 64 * 1024)
                        break
                    except BlockingIOError:
                        return
                    except InterruptedError:
                        continue
                self._dispatch(data)

    def catch_up(self) -> None:
        if self._stopping.is_set():
            return
        try:
            self._read_queue(_CATCH_UP_READS)
        except OSError as exc:  # the reading thread meets it too, and says so
            log.debug("reading inotify's events failed: %s", exc)

    def _dispatch(self, data: bytes) -> None:
        sink = self._sink
        if sink is None:
            return
        for wd, mask, name in events_of(data):
            if mask & IN_Q_OVERFLOW:
                self._overflowed(sink)
                continue
            if mask & IN_IGNORED:
                # The folder went away (or was unwatched): its descriptor may be reused.
                with self._lock:
                    self._forget(wd)
                continue
            kind = kind_of(mask)
            if kind is None or not name:
                continue
            with self._lock:
                folders = list(self._paths.get(wd, ()))
            for folder in folders:
                path = os.path.join(folder, os.fsdecode(name))
                try:
                    sink(path, kind)
                except Exception:
                    log.exception("handling a change of %s failed", path)

    def _overflowed(self, sink: Sink) -> None:
        """The kernel's queue overflowed and dropped events: every file may have changed.

        Each file of the watched folders is reported as touched: its content
        is compared with what runs, and no close of a write is waited for (the
        write, if any, is over or will report its close).
        """
        log.warning("inotify's event queue overflowed: looking at every watched file")
        with self._lock:
            folders = list(self._folders)
        for folder in folders:
            try:
                with os.scandir(folder) as entries:
                    paths = [entry.path for entry in entries if entry.is_file()]
            except OSError:
                continue
            for path in paths:
                try:
                    sink(path, TOUCHED)
                except Exception:
                    log.exception("handling a change of %s failed", path)
