"""Keeping the exact bytes each project module runs, at the moment it is imported.

An edit is applied by comparing the new source with the one that ran.  Read
later (by the watcher, or at the first reload), the file may already hold the
edit: a save 1 ms after an import would then look like no change at all, or
force a whole re-execution that loses the module's state.  So the bytes are
taken where Python takes them, in the loader of the module, before its code
runs.

``SourceFileLoader`` compiles a module from the source, or loads the cached
bytecode after checking the source's modification time and size.  For project
files, the source is read once, with those two figures taken around the read
(a write that overlaps the read is seen, and the read is done again), and the
loader is handed both: the bytecode cache is checked against the figures of
the bytes kept, and a stale cache is compiled from exactly those bytes.  What
runs is what is kept, whichever way Python loads it.  The loader's steps
are the core's (``capture_sources``): the compiled core reads with plain
system calls and runs no Python frame of its own per module.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from importlib.machinery import SourceFileLoader
from stat import S_ISREG
from types import CodeType, ModuleType

try:
    # The one hash used here, without the cost of ``hashlib`` at start-up
    # (it loads OpenSSL); hashlib's own blake2b is this one.
    from _blake2 import blake2b as _blake2b
except ImportError:  # an interpreter built without it
    from hashlib import blake2b as _blake2b

__all__ = [
    "READ_FLAGS",
    "READ_TRIES",
    "SourceCapture",
    "being_written",
    "changed_since",
    "digest",
    "file_digest",
    "read_if_unchanged",
    "read_open",
    "read_steady",
    "read_whole",
]

log = logging.getLogger(__name__)

# Tries at a read that no write overlaps; the last read is kept whatever happens.
READ_TRIES = 4
#: How every file here is opened (read only, not inherited by child processes).
READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def digest(data: bytes) -> bytes:
    """The digest sources and files are compared by (16 bytes of BLAKE2b)."""
    return _blake2b(data, digest_size=16).digest()


def file_digest(path: str) -> bytes | None:
    """The digest of a regular file's content; None for anything else (opening a FIFO
    would block) or a file that cannot be read."""
    try:
        if not S_ISREG(os.stat(path).st_mode):
            return None
        with open(path, "rb") as handle:
            return digest(handle.read())
    except OSError:
        return None


def being_written(path: str) -> bool:
    """Does some process hold ``path`` open for writing?  False where that cannot be told.

    Linux tells without a look at other processes: a read lease
    (``F_SETLEASE``) is refused while the file is open for writing anywhere,
    this process included.  A lease granted is dropped at once, with its
    descriptor; a writer that opens the file in between waits for that, and
    the kernel's notice of it comes as SIGURG, which a process ignores unless
    it asks for it (the default, SIGIO, would end the process).  Elsewhere
    (another system, a file of another user, a filesystem without leases),
    the answer is False, and the other signs of a write in progress are all
    there is.
    """
    global _leases
    if _leases is None:
        _leases = _lease_calls()
    if not _leases:
        return False
    fcntl, signal = _leases
    if signal.getsignal(signal.SIGURG) is not signal.SIG_DFL:
        return False  # the program handles SIGURG: a notice of ours must not reach it
    try:
        descriptor = os.open(path, READ_FLAGS | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.fcntl(descriptor, fcntl.F_SETSIG, signal.SIGURG)
        fcntl.fcntl(descriptor, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        return exc.errno == errno.EAGAIN  # (EACCES, EINVAL: leases cannot tell)
    finally:
        os.close(descriptor)
    return False


def changed_since(path: str, figures: os.stat_result) -> bool:
    """Is ``path`` no longer the file a read left with ``figures`` (the open file's own,
    taken after the read)?  True where it cannot be looked at.

    Asked after :func:`being_written` said no one writes it: a writer that
    wrote its last part and closed the file between the read and that question
    is no longer seen, but it changed the file's figures.  A writer still there
    then was seen; one that opens the file after is a later save.
    """
    try:
        now = os.stat(path)
    except OSError:
        return True
    return (now.st_ino, now.st_dev, now.st_mtime_ns, now.st_size) != (
        figures.st_ino,
        figures.st_dev,
        figures.st_mtime_ns,
        figures.st_size,
    )


# (fcntl, signal) where read leases can be asked for, () where not; None: not looked yet.
# Imported on the first look, not at start-up.
_leases: tuple[ModuleType, ModuleType] | tuple[()] | None = None


def _lease_calls() -> tuple[ModuleType, ModuleType] | tuple[()]:
    try:
        import fcntl
        import signal
    except ImportError:  # Windows
        return ()
    if not all(hasattr(fcntl, each) for each in ("F_SETLEASE", "F_SETSIG", "F_RDLCK")):
        return ()  # macOS, the BSDs
    if not hasattr(signal, "SIGURG"):
        return ()
    return fcntl, signal


def read_if_unchanged(path: str, baseline: tuple[int, int] | None) -> bytes | None:
    """The bytes of ``path`` if its (mtime_ns, size) is ``baseline`` before and after the
    read (a save may begin in between), else None: it is not what was loaded any more."""
    if baseline is None:
        return None
    try:
        stat = os.stat(path)
        if (stat.st_mtime_ns, stat.st_size) != baseline:
            return None
        with open(path, "rb") as handle:
            content = handle.read()
        stat = os.stat(path)
    except OSError:
        return None
    return content if (stat.st_mtime_ns, stat.st_size) == baseline else None


def read_steady(path: str, tries: int = READ_TRIES) -> tuple[bytes, os.stat_result, bool]:
    """Read ``path`` with no write overlapping the read: (bytes, figures, whether steady).

    The figures are the open file's own (an editor that renames a new file
    over it leaves this one as it was): a write that overlaps the read
    changes them, and the read is done again, ``tries`` times at most.
    """
    # Plain descriptors: every project module is read at import, and a file
    # object costs twice the system calls (an fstat of its own, a seek, a
    # second read for the end of the file).
    try:
        return read_open(os.open(path, READ_FLAGS), tries)
    except OSError as exc:
        if exc.filename is None:  # (a read of a folder: named, as an open's error is)
            exc.filename = path
        raise


def read_open(descriptor: int, tries: int) -> tuple[bytes, os.stat_result, bool]:
    """:func:`read_steady` on a descriptor open at the start of the file (closed here)."""
    try:
        for _ in range(tries):
            before = os.fstat(descriptor)
            source = _read_all(descriptor, before.st_size)
            after = os.fstat(descriptor)
            steady = (before.st_mtime_ns, before.st_size) == (after.st_mtime_ns, after.st_size)
            if steady:
                break
            os.lseek(descriptor, 0, os.SEEK_SET)
    finally:
        os.close(descriptor)
    return source, after, steady and len(source) == after.st_size


def _read_all(descriptor: int, expected: int) -> bytes:
    """Everything from the position to the end, in one read when the file is ``expected`` long.

    A read of one byte more than expected that comes back short has met the
    end of the file; one that does not (the file grew) reads on to the end.
    """
    first = os.read(descriptor, expected + 1)
    if len(first) <= expected:
        return first
    chunks = [first]
    while chunk := os.read(descriptor, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def read_whole(path: str) -> bytes:
    """A file's bytes in four system calls (open, fstat, read, close), to its end.

    What a loader reads besides the source (the bytecode cache) while a
    project module is imported: ``io.open_code`` takes twice as many.
    """
    descriptor = os.open(path, READ_FLAGS)
    try:
        size = os.fstat(descriptor).st_size
        data = os.read(descriptor, size + 1)
        if len(data) == size:
            return data
        # Grown since the fstat, or a file system that reads in pieces: the
        # end is where a read gives nothing.
        chunks = [data]
        while chunk := os.read(descriptor, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def _failed(message: str, name: str) -> None:
    """What the sink or a listener raised, logged (called in its ``except`` block)."""
    log.exception(message, name)


class SourceCapture:
    """Patches ``SourceFileLoader`` so that project modules hand over their source."""

    _active: SourceCapture | None = None

    def __init__(
        self,
        project_path: Callable[[str], str | None],
        sink: Callable[[str, bytes, tuple[int, int], str | None], None],
        core: ModuleType,
    ) -> None:
        #: the core whose ``capture_sources`` makes the loader's replacement steps
        self.core = core
        #: a module file's real path if it is project code, else None
        self.project_path = project_path
        self.sink = sink
        #: called with the code of each project module imported, and the bytecode cache it
        #: was made of or None (``_core_py.CodeListener``; pytest --hmr arms the code)
        self.listeners: list[Callable[[CodeType, bytes | None], None]] = []
        self._saved: dict[str, object] = {}

    def install(self) -> None:
        """Start keeping sources (one capture per process: a second one replaces the first)."""
        if SourceCapture._active is not None:
            SourceCapture._active.uninstall()
        cls = SourceFileLoader
        for name in ("get_code", "path_stats", "get_data"):
            self._saved[name] = cls.__dict__.get(name)
        replacements = self.core.capture_sources(
            self.project_path,
            self.sink,
            self.listeners,
            _failed,
            get_code=cls.get_code,
            path_stats=cls.path_stats,
            get_data=cls.get_data,
        )
        for name, replacement in zip(
            ("get_code", "path_stats", "get_data"), replacements, strict=True
        ):
            setattr(cls, name, replacement)
        SourceCapture._active = self

    def uninstall(self) -> None:
        """Put ``SourceFileLoader`` back as it was."""
        if SourceCapture._active is not self:
            return
        cls = SourceFileLoader
        for name, previous in self._saved.items():
            if previous is None:
                if name in cls.__dict__:
                    delattr(cls, name)
            else:
                setattr(cls, name, previous)
        SourceCapture._active = None
