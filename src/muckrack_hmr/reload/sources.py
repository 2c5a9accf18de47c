"""What each project module ran, and what it uses of the modules it imports.

The reloader compares an edit with the source a module last ran: its loader
hands the bytes over as it is imported (:mod:`.capture`), and they are kept
here, in memory until the program is idle, then compressed in an unlinked
temporary file (``compress``): a reload reads back one of them, and the
bookkeeping of a thousand-module program stays within a couple of megabytes.

The dependents a change can reach are found through the ``.name`` spellings
of every module's source (:mod:`.mentions`, indexed when idle, or when a
reload needs a module), and what a reached module takes from its imports is
analyzed when a change first reaches it (``consumption``), or when idle
(``warm``).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import marshal
import os
import re
import sys
import threading
import time
import weakref
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from operator import itemgetter
from types import CodeType, FunctionType, ModuleType
from typing import TYPE_CHECKING

from .._core import USING_EXTENSION, core
from ..capture import (
    being_written,
    changed_since,
    digest,
    read_if_unchanged,
    read_steady,
)
from .mentions import Mentions
from .reach import ImportReach, scan

if TYPE_CHECKING:
    from ..project import LoadedModules
    from .analysis import ModuleSummary
    from .incremental import Consumption, Interned

__all__ = ["SETTLE", "SETTLE_AT_MOST", "SourceStore", "StillWritten", "read_settled"]

log = logging.getLogger(__name__)

# Parsed modules kept while one save is handled: the watcher's check, a caller's
# comparison (parsed_edit) and the reload share them; a reload's end drops them.
_SUMMARY_CACHE_SIZE = 16
# Modules whose parsed source that runs now outlives their reload: the next edit
# of each parses only its own lines (see summarize_before), on both sides.
_RUNNING_PARSES = 4


#: How long a file that looks unfinished (changed during the read, empty, or
#: not parsing right after a write) must have been left alone before it is
#: taken as it is.
SETTLE = 0.1
#: How long a file that keeps changing, or that a process holds open for writing,
#: is waited for (as a burst of saves is, see watch.saves).
SETTLE_AT_MOST = 2.0


class StillWritten(OSError):
    """A file still open for writing once :func:`read_settled` waited for it."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path} is held open for writing")
        #: The file (where a failure it causes is said to be).
        self.path = path


def read_settled(
    module: ModuleType,
    parses: Callable[[ModuleType, str, bytes], bool],
    writer_patience: float = SETTLE_AT_MOST,
) -> tuple[str, bytes]:
    """Read the source of ``module``, giving a write in progress ``SETTLE`` to finish.

    A read that a write overlapped (the file's size or time changed during
    it), or that found a file written moments ago empty or not parsing, is
    tried again until the file has been quiet for ``SETTLE``: an editor that
    truncates and then writes is never caught in between.  A file that a
    process holds open for writing (:func:`being_written`) is waited for
    until it is closed, ``writer_patience`` seconds at most: then StillWritten.
    """
    filename = getattr(module, "__file__", None)
    if not isinstance(filename, str):
        raise ImportError(f"{module.__name__} has no source file", name=module.__name__)
    started = time.monotonic()
    # Writes that never stop for SETTLE: the last read, after a while.
    deadline = started + SETTLE_AT_MOST
    while True:
        # The clock read before the file: a thread held up between the read and
        # the look at the clock (waiting for the interpreter while another
        # applies a reload) would see a file truncated just before its read as
        # one quiet for long, and apply it empty.
        began = time.time_ns()
        source, after, steady = read_steady(filename, tries=1)
        # Looked at after the read: a writer that came and went during it changed the
        # file's figures; one that is still there is seen; one that wrote its last
        # part and closed the file in between changed what the file's figures are now.
        writing = being_written(filename)
        if steady and not writing and not changed_since(filename, after):
            quiet = began - after.st_mtime_ns >= SETTLE * 1e9
            if quiet or (source.strip() and parses(module, filename, source)):
                return filename, source
        now = time.monotonic()
        if writing and now - started >= writer_patience:
            raise StillWritten(filename)
        if now >= deadline:
            return filename, source
        time.sleep(SETTLE / 20)


# A position in the spill: generation << 62 | offset << 32 | length (see _Spill).
_GENERATION = 62
_OFFSETS = (1 << (_GENERATION - 32)) - 1


class _Descriptor:
    """A file descriptor of the spill's, closed as it goes: the spill of an HMR that
    was uninstalled (a test's) is collected with its reloader's cycles, and a file
    object would warn of each (``ResourceWarning: unclosed file``)."""

    __slots__ = ("descriptor",)

    def __init__(self, descriptor: int) -> None:
        self.descriptor = descriptor

    def fileno(self) -> int:
        return self.descriptor

    def close(self) -> None:
        descriptor, self.descriptor = self.descriptor, -1
        if descriptor >= 0:
            os.close(descriptor)

    def __del__(self) -> None:
        with contextlib.suppress(OSError):
            self.close()


_File = io.RawIOBase | io.BufferedRandom | io.BytesIO | _Descriptor


def _write_at(file: _File, data: bytes, offset: int) -> None:
    if isinstance(file, _Descriptor):  # (where os.pwrite is: see _Spill._open)
        os.pwrite(file.descriptor, data, offset)
    else:
        file.seek(offset)
        file.write(data)


def _read_at(file: _File, offset: int, length: int) -> bytes:
    if isinstance(file, _Descriptor):
        return os.pread(file.descriptor, length, offset)
    file.seek(offset)
    return file.read(length) or b""


# Reads and writes at a position, without the file's shared offset (os.pread).
_POSITIONAL = hasattr(os, "pread") and hasattr(os, "pwrite")


class _Spill:
    """Append-only storage of byte strings in an unlinked temporary file.

    Falls back to memory where no temporary file can be made.  Space freed by
    a newer copy is reclaimed when it outgrows what is live.

    Fork-safe: a forked child (a pool's or a server's worker) shares the
    file, and its offset, with its parent.  So reads and writes name their
    position (``os.pread``, ``os.pwrite``), and the child writes from then on
    to a file of its own (a new generation), while it still reads what was
    written before the fork from the one it inherited, which the parent only
    appends to.
    """

    _RECLAIM_AT = 8 << 20

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._opened: _File | None = None  # made at the first put
        self._generation = 0
        self._inherited: dict[int, _File] = {}  # generations written before a fork
        self._end = 0
        self._size = 0  # bytes put, in every generation
        self._garbage = 0
        _SPILLS.add(self)

    @property
    def _file(self) -> _File:
        if self._opened is None:
            self._opened = self._open()
        return self._opened

    @staticmethod
    def _open() -> _File:
        try:
            import tempfile  # not at start-up: the first compression needs it

            # Unbuffered: nothing a fork could copy and write twice.
            file = tempfile.TemporaryFile(prefix="muckrack-hmr-", buffering=0)  # noqa: SIM115
            if not _POSITIONAL:
                return file  # (read and written at its offset: see _write_at)
            with file:
                return _Descriptor(os.dup(file.fileno()))
        except OSError:
            return io.BytesIO()

    def put(self, data: bytes) -> int:
        with self._lock:
            offset = self._end
            _write_at(self._file, data, offset)
            self._end += len(data)
            self._size += len(data)
            return self._generation << _GENERATION | offset << 32 | len(data)

    def get(self, where: int) -> bytes:
        generation = where >> _GENERATION
        offset = (where >> 32) & _OFFSETS
        with self._lock:
            file = self._file if generation == self._generation else self._inherited[generation]
            return _read_at(file, offset, where & 0xFFFFFFFF)

    def drop(self, where: int) -> None:
        self._garbage += where & 0xFFFFFFFF

    def needs_compaction(self) -> bool:
        return self._garbage > self._RECLAIM_AT and self._garbage > self._size - self._garbage

    def compacted(self, live: dict[str, int]) -> dict[str, int]:
        """Copy what ``live`` points at to a new file; the new positions."""
        fresh = _Spill()
        moved = {name: fresh.put(self.get(where)) for name, where in live.items()}
        with self._lock:
            for file in [self._opened, *self._inherited.values()]:
                if file is not None:
                    file.close()
            self._opened, self._inherited = fresh._opened, {}
            self._generation, self._end, self._size = 0, fresh._end, fresh._size
            self._garbage = 0
        _SPILLS.discard(fresh)
        return moved

    def forked(self) -> None:
        """In a forked child: the lock is new (its holder is not here), writes go elsewhere."""
        self._lock = threading.Lock()
        if self._opened is not None:
            self._inherited[self._generation] = self._opened
            self._opened = None
        self._generation += 1
        self._end = 0


_SPILLS: weakref.WeakSet[_Spill] = weakref.WeakSet()


# The header of a bytecode cache (PEP 552: magic, flags, and the source's figures or hash).
_CACHE_HEADER = 16


def _code_of_cache(cached: bytes) -> CodeType:
    """The code a bytecode cache holds (what the loader made of it: an equal code)."""
    code = marshal.loads(memoryview(cached)[_CACHE_HEADER:])
    if not isinstance(code, CodeType):
        raise TypeError(f"a bytecode cache holds {type(code).__name__}, not code")
    return code


def _live_bodies(
    bodies: tuple[str | CodeType, ...], namespace: dict[str, object]
) -> tuple[str | CodeType | tuple[str, ...], ...]:
    """The functions' bodies of a scan of the code made again of a bytecode cache, for the
    index to keep: each the live function's own code where the namespace holds it (the
    same ``def``), else the names it holds.  Not the copies, which the index would keep
    alive (at 5,000 modules, their objects brought a full collection of 0.2 s)."""
    kept: list[str | CodeType | tuple[str, ...]] = []
    for at in range(0, len(bodies), 2):
        name, code = bodies[at], bodies[at + 1]
        # (By type alone: a namespace may hold a lazy proxy under a function's name.)
        value = namespace.get(name) if isinstance(name, str) else None
        live = value.__code__ if type(value) is FunctionType else None
        if not isinstance(code, CodeType):
            kept += (name, code)
        elif (
            isinstance(live, CodeType)
            and live.co_name == code.co_name
            and live.co_firstlineno == code.co_firstlineno
        ):
            kept += (name, live)
        else:
            found: set[str] = set()
            core.all_names(code, found)
            kept += (name, tuple(found))
    return tuple(kept)


def _forked() -> None:
    for spill in list(_SPILLS):
        spill.forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


class SourceStore:
    """The sources project modules last ran, and the index of what they use."""

    def __init__(
        self,
        project: LoadedModules | None,
        is_project: Callable[[str], bool] = lambda name: True,
    ) -> None:
        self.project = project
        #: Is a module (by name) project code?  Only imports of project code
        #: can bring a change, so only those are indexed.
        self.is_project = is_project
        self._spill = _Spill()
        # module -> where its source as it last ran (compressed) is in the
        # spill file: what an edit is compared with.
        self._kept: dict[str, int] = {}
        # module -> what its loader ran, as taken at its import and not yet
        # compressed into the spill file (the watcher does that when idle).
        self._fresh: dict[str, bytes] = {}
        # module -> (its place in the spill file, what it ran) read back for a reload
        # (read_ahead).
        self._ahead: dict[str, tuple[int, bytes]] = {}
        #: module -> the file's (mtime_ns, size) when its source was taken at import.
        self.import_stats: dict[str, tuple[int, int]] = {}
        self._reimported: set[str] = set()
        self._remembered = 0  # how many entries of project.loaded were looked at
        self._summaries: OrderedDict[tuple[str, bytes], ModuleSummary] = OrderedDict()
        # module -> (digest, parse) of the source it runs, for the last few reloaded.
        self._running: OrderedDict[str, tuple[bytes, ModuleSummary]] = OrderedDict()
        # module -> what it takes from its imports, analyzed when a change
        # first reaches it (or when the program is idle).
        self._consumptions: dict[str, Consumption] = {}
        #: Module -> what its ``try``/``except ImportError`` statements import (see
        #: analysis.optional_imports), for the modules analyzed that have any.
        self.optional: dict[str, frozenset[str]] = {}
        #: What the code that runs at import time may call, as those analyses tell.
        self.reach = ImportReach(is_project)
        # What the index of what import-time code may call takes in of the code each
        # module imported ran, by its file, until it does (index_reach, see
        # code_loaded): its bytecode cache; for a module compiled from its source, on
        # the compiled core, the names its level loads and its functions' code (see
        # reach.scan: two flat tuples, apart, as a tuple of them would be one the
        # garbage collector looks at twice), on the pure one, the code.  And the
        # modules imported it has not taken in yet.
        self._codes: dict[str, tuple[str, ...] | CodeType | bytes] = {}
        self._code_bodies: dict[str, tuple[str | CodeType, ...]] = {}
        self._code_pending: dict[str, None] = {}
        #: Which modules spell which ``.name``: the candidates a change can reach.
        self.mentions = Mentions()
        # Equal tuples of the consumptions, kept once (see consumption_of).
        self._shared: Interned = {}

    def __contains__(self, name: object) -> bool:
        return name in self._fresh or name in self._kept

    def count(self) -> int:
        """How many modules' sources are kept (more for a moment after a module is
        imported again: until it is settled, it may be in both places)."""
        return len(self._fresh) + len(self._kept)

    def captured(self, name: str, source: bytes, stat: tuple[int, int]) -> None:
        """``name`` was just imported from ``source``, read when the file's (mtime_ns,
        size) was ``stat`` (called by the import)."""
        self._fresh[name] = source
        self.import_stats[name] = stat
        self._code_pending[name] = None
        if name in self._kept or name in self._consumptions or name in self.mentions:
            # Imported again (``importlib.reload``): what was derived from the
            # old source goes, under the reloader's lock (see _settle).
            self._reimported.add(name)
        self.mentions.pending.add(name)

    def code_loaded(self, code: CodeType, cached: bytes | None) -> None:
        """A project module's code, as its loader made it (a listener of the capture), and
        the bytecode cache it made it of (None: it compiled the source).

        The index takes it in when the program rests (index_reach).  Kept until then,
        a module's code object holds tuples that live on only for that, and each such
        object moves the garbage collector's clock (at 5,000 modules, one more full
        collection during the start-up, 0.15 s).  So what is kept is the cache's
        bytes, which the loader read anyway and the collector never looks at, until
        the index reads the code of them again.  Not a stamp of the cache and the
        file read again then: those reads are system calls, and a first edit of a
        function every module imports, made in a program that computes, took the
        index in inside the reload, each call handing the interpreter to the program
        for a switch interval (1,000 modules: 1.5-5.4 s).  A module compiled from its
        source has no cache: the compiled core reads its code now, the pure one keeps
        it.
        """
        filename = code.co_filename
        if cached is not None:
            self._codes[filename] = cached
        elif not USING_EXTENSION:
            self._codes[filename] = code
        else:
            names, bodies = scan(code)
            # (The bodies first: index_reach takes a module in once its names are here.)
            self._code_bodies[filename] = bodies
            self._codes[filename] = names

    def unindexed(self) -> int:
        """How many modules imported wait for the index of what import-time code calls."""
        return len(self._code_pending)

    def index_reach(self, limit: int | None = None) -> int:
        """Take the code of up to ``limit`` imported modules into the index of what
        import-time code may call (see ImportReach.add_code); how many."""
        self._settle()
        done = 0
        pending, known = self._code_pending, self.reach.known
        # (The modules still running their top level wait: a few past the limit.)
        for name in list(pending if limit is None else itertools.islice(pending, limit + 64)):
            if limit is not None and done >= limit:
                break
            module = sys.modules.get(name)
            if module is not None and getattr(module.__spec__, "_initializing", False):
                continue  # its top level still runs: what it binds is not all there
            del pending[name]
            filename = getattr(module, "__file__", None)
            if not isinstance(filename, str) or filename not in self._codes:
                continue
            kept, bodies = self._codes.pop(filename), self._code_bodies.pop(filename, ())
            if name in known:
                continue
            try:
                if isinstance(kept, bytes):
                    names, made = scan(_code_of_cache(kept))
                    read = (names, _live_bodies(made, module.__dict__))
                else:
                    read = scan(kept) if isinstance(kept, CodeType) else (kept, bodies)
                self.reach.add_code(name, read, module.__dict__)
            except Exception:  # never the program's: the module stays out of the index
                log.debug("could not index what %s calls", name, exc_info=True)
                continue
            done += 1
        return done

    def _settle(self) -> None:
        """Forget what was kept of modules imported again since the last look."""
        while self._reimported:
            name = self._reimported.pop()
            previous = self._kept.pop(name, None)
            if previous is not None:
                self._spill.drop(previous)
            self._consumptions.pop(name, None)
            self.optional.pop(name, None)
            self.reach.forget(name)
            self.mentions.forget(name)
            if name in self:
                self.mentions.pending.add(name)

    def compress(self, limit: int | None = None) -> int:
        """Move up to ``limit`` sources kept as they ran (taken at import, or given by a
        reload) into the spill file; how many."""
        self._settle()
        done = 0
        for name, source in list(self._fresh.items()):
            if limit is not None and done >= limit:
                break
            kept = self._spill.put(zlib.compress(source, 1))
            # An import or a reload may have replaced it meanwhile: keep the newer.
            if self._fresh.get(name) is source:
                previous = self._kept.get(name)
                if previous is not None:
                    self._spill.drop(previous)
                self._kept[name] = kept
                del self._fresh[name]
            else:
                self._spill.drop(kept)
            done += 1
        if done and self._spill.needs_compaction():
            self._kept = self._spill.compacted(self._kept)
        return done

    def remember_all(self, untrusted: Iterable[str] = ()) -> int:
        """Keep the source of every project module still as it was imported; how many new.

        An edit is compared with this copy to find what changed.  A module
        saved after its import and before this call has no copy: its first
        reload re-executes it whole.  ``untrusted`` modules (the ones being
        reloaded) are never copied: their file may already hold the edit, and
        a same-size save within one clock tick passes the stat check.
        """
        skip = set(untrusted)
        loaded = getattr(self.project, "loaded", None)
        if loaded is None or len(loaded) == self._remembered:
            return 0  # nothing imported since the last call (entries are never removed)
        start = self._remembered
        records = list(dict(loaded).values())[start:]  # (see loaded_modules)
        self._remembered += len(records)
        # Nearly every one was taken at import: those are told apart in one step
        # of sets (a walk over a big start-up's modules cost its first edit 4 ms).
        names = map(itemgetter(0), records)
        missing = set(names).difference(self._fresh, self._kept, skip, ("__main__",))
        if not missing:
            return 0
        entries = list(dict(loaded).items())[start : start + len(records)]
        added = 0
        modules = sys.modules
        script = modules.get("__main__")
        for path, (name, baseline) in entries:
            if name not in missing or baseline is None:
                continue  # taken at import, or not to be trusted
            if script is not None and modules.get(name) is script:
                # The script under another name (``__mp_main__`` in a spawned worker):
                # never run again, nor analyzed for the index (it would wait for it).
                continue
            if name not in modules:
                # Loaded by a worker only (see processes.supervisor): this process
                # runs no code of it, the content it judges a save by is the file's.
                continue
            source = read_if_unchanged(path, baseline)
            if source is None:
                continue  # saved since its import: not the code that runs
            self.remember(name, source)
            missing.discard(name)
            added += 1
        return added

    def remember(self, name: str, source: bytes, summary: ModuleSummary | None = None) -> None:
        """``source`` is what ``name`` runs now; ``summary``, if given, is it parsed."""
        self._settle()
        if name in self.mentions:
            self.mentions.add(name, source, self.ran(name))
        else:
            self.mentions.pending.add(name)
        previous = self._kept.pop(name, None)
        if previous is not None:
            self._spill.drop(previous)
        # Kept as it is: the program's idle time compresses it into the spill file
        # (compress), never the reload (the first one would create the file).
        self._fresh[name] = source
        if summary is None:
            self._consumptions.pop(name, None)
            self.optional.pop(name, None)
            self.reach.forget(name)
            self._running.pop(name, None)
        else:
            from .incremental import consumption_of

            consumption = consumption_of(summary, self.is_project, self._shared)
            self._consumptions[name] = consumption
            self._note_optional(name, summary)
            self.reach.add(name, consumption)
            self._running[name] = (digest(source), summary)
            self._running.move_to_end(name)
            if len(self._running) > _RUNNING_PARSES:
                self._running.popitem(last=False)

    def running_summary(self, name: str, source: bytes) -> ModuleSummary | None:
        """The parse of ``source`` if it is what ``name`` runs since one of the last
        reloads (given to :meth:`remember`), else None."""
        kept = self._running.get(name)
        if kept is None or kept[0] != digest(source):
            return None
        return kept[1]

    def ran(self, name: str) -> bytes | None:
        """The source ``name`` last ran, if it was kept."""
        fresh = self._fresh.get(name)
        if fresh is not None:
            return fresh
        kept = self._kept.get(name)
        if kept is None:
            return None
        ahead = self._ahead.get(name)
        if ahead is not None and ahead[0] == kept:
            return ahead[1]
        return zlib.decompress(self._spill.get(kept))

    def read_ahead(self, names: Iterable[str]) -> None:
        """Read what ``names`` ran back from the spill file now, for a reload that asks
        for it while it holds the program's threads off: the file's read would let them
        in (it waits for the system without the interpreter).  Until :meth:`forget_ahead`."""
        for name in names:
            kept = self._kept.get(name)
            if kept is not None and name not in self._fresh:
                with contextlib.suppress(OSError, zlib.error):
                    self._ahead[name] = (kept, zlib.decompress(self._spill.get(kept)))

    def forget_ahead(self) -> None:
        """Drop what :meth:`read_ahead` read (a reload is over)."""
        self._ahead = {}

    def summary(
        self,
        filename: str,
        source: bytes,
        package: str | None,
        previous: ModuleSummary | None = None,
        previous_source: bytes | None = None,
    ) -> ModuleSummary:
        """``source`` parsed; the last few are kept (an edit compares two of them).

        ``previous``, the other side of an edit, spares analyzing its
        unchanged statements again; with ``previous_source`` (what it was
        parsed from), only the lines that differ from it are parsed.
        """
        key = (filename, digest(source))
        summary = self._summaries.get(key)
        if summary is None:
            from .analysis import summarize, summarize_before

            if previous is not None and previous_source is not None:
                summary = summarize_before(source, filename, package, previous, previous_source)
            else:
                summary = summarize(source, filename, package, previous)
            self._summaries[key] = summary
            if len(self._summaries) > _SUMMARY_CACHE_SIZE:
                self._summaries.popitem(last=False)
        else:
            self._summaries.move_to_end(key)
        return summary

    def summary_of_next(
        self, name: str, filename: str, source: bytes, package: str | None
    ) -> ModuleSummary:
        """``source`` parsed as the next code of ``name`` (raises SyntaxError): when what
        it runs is parsed still (:meth:`running_summary`), only the edit's lines are."""
        if name in self._running:
            try:
                ran = self.ran(name)
            except zlib.error:
                ran = None
            kept = None if ran is None else self.running_summary(name, ran)
            if kept is not None:
                return self.summary(filename, source, package, kept, ran)
        return self.summary(filename, source, package)

    def forget_parses(self) -> None:
        """Drop the parsed sources kept by :meth:`summary` (a reload is over); the few
        that modules run now stay (:meth:`running_summary`)."""
        self._summaries.clear()

    def consumption(self, name: str) -> Consumption | None:
        """What ``name`` takes from its imports, as of the source it last ran."""
        if self._reimported:
            self._settle()
        found = self._consumptions.get(name)
        if found is not None:
            return found
        module = sys.modules.get(name)
        if module is None or getattr(module.__spec__, "_initializing", False):
            # Still running its top level: the modules it imports are not all
            # loaded yet, and would not count as project code.
            return None
        try:
            source = self.ran(name)
        except zlib.error:
            return None
        if source is None:
            return None
        filename = getattr(module, "__file__", None)
        if not isinstance(filename, str):
            return None
        from .analysis import summarize
        from .incremental import consumption_of

        try:
            # Not through the summary cache: parsed trees are large, and only
            # the small consumption is kept for every module.
            summary = summarize(source, filename, module.__dict__.get("__package__"))
        except (SyntaxError, ValueError, OSError):
            return None
        found = consumption_of(summary, self.is_project, self._shared)
        self._consumptions[name] = found
        self._note_optional(name, summary)
        self.reach.add(name, found)
        return found

    def analyzed_all(self) -> bool:
        """Is every module whose source is kept analyzed (see :meth:`consumption`)?"""
        return not self._reimported and all(
            name in self._consumptions for name in itertools.chain(self._fresh, self._kept)
        )

    def optional_importers(self, modules: list[str]) -> list[str]:
        """The modules whose optional imports (see :attr:`optional`) name one of
        ``modules``: among those analyzed, and those not analyzed yet whose source spells
        the last part of one of them (analyzed now; the others wait for the idle work)."""
        if self._reimported:
            self._settle()
        lasts = {module.rpartition(".")[2].encode() for module in modules}
        for name in [*self._fresh, *self._kept]:
            if name in self._consumptions:
                continue
            try:
                source = self.ran(name)
            except zlib.error:
                continue
            if source is not None and b"except" in source and any(last in source for last in lasts):
                self.consumption(name)
        wanted = set(modules)
        return sorted(name for name, found in self.optional.items() if not found.isdisjoint(wanted))

    def _note_optional(self, name: str, summary: ModuleSummary) -> None:
        from .analysis import optional_imports

        module = sys.modules.get(name)
        package = getattr(module, "__dict__", {}).get("__package__")
        found = frozenset().union(*optional_imports(summary.statements, package))
        if found:
            self.optional[name] = found
        else:
            self.optional.pop(name, None)

    def spells(self, module: str, pattern: re.Pattern[bytes]) -> bool:
        """Does the source ``module`` ran match ``pattern`` (see mentions.spelling_any)?

        True when its source is unknown: only an analysis can tell then.
        For a module not indexed yet: one search, cheaper than indexing it.
        """
        try:
            source = self.ran(module)
        except zlib.error:
            return True
        return source is None or pattern.search(source) is not None

    def index_mention(self, module: str) -> bool:
        """Index the ``.name`` spellings of ``module`` now, if needed; False if its source is
        unknown (then only an analysis can tell what it uses)."""
        mentions = self.mentions
        if module in mentions:
            return True
        try:
            source = self.ran(module)
        except zlib.error:
            source = None
        if source is None:
            return False
        mentions.add(module, source)
        return True

    def index_mentions(self, limit: int | None = None) -> int:
        """Index the ``.name`` spellings of up to ``limit`` pending modules; how many."""
        self._settle()
        done = 0
        mentions = self.mentions
        for name in list(mentions.pending):
            if limit is not None and done >= limit:
                break
            if not self.index_mention(name):
                mentions.pending.discard(name)
                continue
            done += 1
        return done

    def warm(self, limit: int | None = None) -> int:
        """Analyze remembered modules not analyzed yet (at most ``limit``); how many."""
        done = 0
        for name in [*self._fresh, *self._kept]:
            if limit is not None and done >= limit:
                break
            if name not in self._consumptions and self.consumption(name) is not None:
                done += 1
        else:
            # Every module is analyzed: the table that made their equal tuples
            # one copy has done its work (what it holds stays shared).
            self._shared.clear()
        return done
