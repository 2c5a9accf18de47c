"""Where file events come from: watchdog (the default), polling, or watchfiles.

Every backend has the same small interface (:class:`Backend`): it watches
folders, not trees (``watch(folder)`` is never recursive), and reports each
change as ``sink(path, kind)`` from a thread of its own.  The watcher decides
what a change means; a backend only reports.  :func:`choose_backend` is the
one place that picks one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .capture import file_digest

__all__ = [
    "BACKENDS",
    "CLOSED",
    "CREATED",
    "DEFAULT_POLL_INTERVAL",
    "DELETED",
    "FOLDER",
    "MODIFIED",
    "MOVED_AWAY",
    "TOUCHED",
    "Backend",
    "BackendUnavailable",
    "CheckedBackend",
    "PollingBackend",
    "WatchdogBackend",
    "WatchfilesBackend",
    "choose_backend",
    "force_polling_requested",
]

log = logging.getLogger("muckrack_hmr")

# What happened to a path.
MODIFIED = "modified"  # written (maybe not finished: see CLOSED)
CREATED = "created"  # appeared: created, or renamed into place
DELETED = "deleted"
MOVED_AWAY = "moved-away"  # renamed to another name (a backup rename, say)
CLOSED = "closed"  # a writer closed it: what it wrote is complete
TOUCHED = "touched"  # metadata only (mtime, mode)
FOLDER = "folder"  # a folder appeared in a watched one: created, or renamed into place

Sink = Callable[[str, str], None]

BACKENDS = ("auto", "watchdog", "polling", "watchfiles")
DEFAULT_POLL_INTERVAL = 0.1  # seconds
FORCE_POLLING_ENV = "MUCKRACK_HMR_FORCE_POLLING"


class BackendUnavailable(Exception):
    """The backend asked for cannot run here (watchfiles not installed...)."""


class Backend:
    """Reports changes to the files of a set of folders (non-recursively)."""

    name = "backend"
    #: Does it report CLOSED when a writer closes a file?  Then a file that is
    #: written but not closed yet is known to be incomplete.
    reports_close = False

    def start(self, sink: Sink) -> None:
        """Start reporting changes to ``sink(path, kind)``, from another thread."""
        raise NotImplementedError

    def watch(self, folder: str) -> None:
        """Also watch ``folder`` (not its subfolders); OSError when the OS refuses."""
        raise NotImplementedError

    def rewatch(self, folder: str) -> None:
        """``folder`` was deleted and made again: watch the new one."""
        self.watch(folder)

    def stop(self) -> None:
        """Stop reporting; idempotent."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for the log: what watches, and how."""
        return self.name


# -- watchdog ---------------------------------------------------------------------


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


# -- polling ------------------------------------------------------------------------

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
        self._thread = threading.Thread(target=self._run, name="muckrack-hmr-poll", daemon=True)
        self._thread.start()

    def watch(self, folder: str) -> None:
        with self._lock:
            if folder not in self._folders:
                # The first listing is the baseline: a change right after
                # this call is seen by the next poll.
                self._folders[folder] = _snapshot(folder)

    def rewatch(self, folder: str) -> None:
        self.watch(folder)  # a listing has no handle to lose

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
                log.exception("hmr: the polling watcher hit an internal error; it keeps polling")

    def describe(self) -> str:
        return f"polling every {self.interval:g} s"


# -- the OS's events, checked ----------------------------------------------------------

#: How often the OS's events are checked against a listing of the watched folders.
CHECK_INTERVAL = 1.0
# Rounds of that listing the OS has to report a change it found: its events can be
# late on a loaded machine (its thread not scheduled), and a wrong verdict costs a
# poll every 0.1 s for the rest of the session.
_PATIENCE = 2


class CheckedBackend(Backend):
    """The OS's file events, checked by a slow poll; polling takes over where they never come.

    Some file systems accept a watch and then deliver nothing: a Docker bind
    mount from a macOS or Windows host, a network drive, a FUSE mount.  A
    save there would go unseen forever.  So every ``check`` seconds the
    watched folders are listed (a stat per file), and each change found is
    looked at two rounds later: if the OS reported nothing for that path since
    the listing before it, its events are not coming.  The changes it missed
    are reported then, and from there on the folders are polled every
    ``interval`` seconds instead (``on_switch`` is told why).  Until then
    the listing reports nothing itself: the OS's events stay the fast path.
    """

    def __init__(
        self,
        primary: Backend,
        *,
        check: float = CHECK_INTERVAL,
        interval: float = DEFAULT_POLL_INTERVAL,
        on_switch: Callable[[str], None] | None = None,
    ) -> None:
        self.primary = primary
        self.name = primary.name
        self.check = check
        self.interval = interval
        self.on_switch = on_switch
        self.switched = False
        #: listings compared so far (while the OS's events are checked)
        self.rounds = 0
        self._listing = PollingBackend(check)  # driven from here, not from its own thread
        self._new: list[str] = []  # folders to list from the next round on
        self._lock = threading.Lock()
        # path -> time.monotonic() of the OS's last event for it
        self._reported: dict[str, float] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sink: Sink | None = None

    @property
    def reports_close(self) -> bool:  # type: ignore[override]
        return self.primary.reports_close and not self.switched

    def start(self, sink: Sink) -> None:
        self._sink = sink
        self.primary.start(self._from_os)
        self._thread = threading.Thread(target=self._run, name="muckrack-hmr-check", daemon=True)
        self._thread.start()

    def watch(self, folder: str) -> None:
        if not self.switched:
            self.primary.watch(folder)
        with self._lock:
            self._new.append(folder)  # listed on the checker's thread, not the caller's

    def rewatch(self, folder: str) -> None:
        if not self.switched:
            self.primary.rewatch(folder)
        self._listing.rewatch(folder)

    def stop(self) -> None:
        self._stopping.set()
        self.primary.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def describe(self) -> str:
        if self.switched:
            return f"polling every {self.interval:g} s (no file events came)"
        return f"{self.primary.describe()}, checked every {self.check:g} s"

    def _from_os(self, path: str, kind: str) -> None:
        with self._lock:
            self._reported[path] = time.monotonic()
        if self._sink is not None and not self.switched:
            self._sink(path, kind)

    def _run(self) -> None:
        found: list[tuple[str, str]] = []
        self._listing._sink = lambda path, kind: found.append((path, kind))
        # changes the listing found, since when the OS should have reported
        # them, and the round they are judged in
        waiting: list[tuple[str, str, float, int]] = []
        before = time.monotonic()
        while not self._stopping.wait(self.interval if self.switched else self.check):
            with self._lock:
                new, self._new = self._new, []
            for folder in new:
                self._listing.watch(folder)
            now = time.monotonic()
            found.clear()
            try:
                self._listing.poll_once()
            except Exception:
                log.exception("hmr: listing the watched folders failed; trying again")
                continue
            if self.switched:
                for path, kind in found:
                    self._sink_safely(path, kind)
                continue
            self.rounds += 1
            rounds = self.rounds
            due = [entry for entry in waiting if entry[3] <= rounds]
            waiting = [entry for entry in waiting if entry[3] > rounds]
            waiting += [(path, kind, before, rounds + _PATIENCE) for path, kind in found]
            oldest = min((entry[2] for entry in waiting), default=now)
            with self._lock:
                missed = [
                    (path, kind)
                    for path, kind, since, _ in due
                    if self._reported.get(path, -math.inf) < since
                ]
                # Only reports since the oldest change still waiting can count.
                self._reported = {p: t for p, t in self._reported.items() if t >= oldest}
            before = now
            if missed:
                self._switch(missed)

    def _switch(self, missed: list[tuple[str, str]]) -> None:
        self.switched = True
        why = (
            f"{self.primary.describe()} reported no event for {missed[0][0]}, changed "
            f"{self.check * _PATIENCE:g}-{self.check * (_PATIENCE + 1):g} s ago"
        )
        try:
            self.primary.stop()
        except Exception:
            log.debug("hmr: stopping %s failed", self.primary.describe(), exc_info=True)
        if self.on_switch is not None:
            self.on_switch(why)
        for path, kind in missed:
            self._sink_safely(path, kind)

    def _sink_safely(self, path: str, kind: str) -> None:
        if self._sink is None:
            return
        try:
            self._sink(path, kind)
        except Exception:
            log.exception("hmr: handling a change of %s failed", path)


# -- watchfiles ---------------------------------------------------------------------


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
            raise BackendUnavailable(
                "the watchfiles backend needs the watchfiles package (pip install watchfiles)"
            ) from None
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
            target=self._run, name="muckrack-hmr-watchfiles", daemon=True
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
                log.exception("hmr: the watchfiles watcher failed; restarting it")
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


# -- choosing one -------------------------------------------------------------------


def force_polling_requested(environ: Mapping[str, str]) -> bool:
    """``MUCKRACK_HMR_FORCE_POLLING`` set to anything but empty, 0, false or no."""
    value = environ.get(FORCE_POLLING_ENV, "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


def _is_wsl(release: str) -> bool:
    return "microsoft" in release.lower()


def windows_drive_mounts(mounts_text: str) -> list[str]:
    """Mount points of WSL's Windows drives (drvfs, or 9p in WSL 2) in ``/proc/mounts``."""
    points = []
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] in ("drvfs", "9p", "v9fs"):
            points.append(fields[1].replace("\\040", " "))
    return points


def needs_polling_on_wsl(roots: Iterable[str], release: str, mounts_text: str) -> bool:
    """On WSL, a root on a Windows drive gets no inotify events for edits made from Windows."""
    if not _is_wsl(release):
        return False
    mounts = windows_drive_mounts(mounts_text)
    return any(
        root == point or root.startswith(point.rstrip("/") + "/")
        for root in roots
        for point in mounts
    )


def _read_mounts() -> str:
    try:
        with open("/proc/mounts", encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def choose_backend(
    requested: str = "auto",
    *,
    poll_interval: float | None = None,
    roots: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> tuple[Backend, str]:
    """The backend to use, and why (for the log).

    ``poll_interval`` (``--poll``) and ``MUCKRACK_HMR_FORCE_POLLING`` force
    polling.  ``auto`` is watchdog, except on WSL for a project on a Windows
    drive.  Raises :class:`BackendUnavailable` or ValueError.
    """
    if requested not in BACKENDS:
        raise ValueError(f"unknown backend {requested!r} (one of {', '.join(BACKENDS)})")
    environ = os.environ if environ is None else environ
    if poll_interval is not None:
        return PollingBackend(poll_interval), "--poll"
    if force_polling_requested(environ):
        return PollingBackend(), f"{FORCE_POLLING_ENV} is set"
    if requested == "polling":
        return PollingBackend(), "asked for"
    if requested == "watchfiles":
        return WatchfilesBackend(), "asked for"
    if requested == "watchdog":
        return WatchdogBackend(), "asked for"  # its events as they come, unchecked
    if (
        requested == "auto"
        and sys.platform.startswith("linux")
        and needs_polling_on_wsl(roots, _kernel_release(), _read_mounts())
    ):
        # WSL serves the Windows drives (/mnt/c...) through drvfs/9p, which
        # delivers no inotify events for files changed from the Windows side:
        # an editor running on Windows would never be seen.
        return PollingBackend(), "the project is on a Windows drive under WSL"
    return CheckedBackend(WatchdogBackend()), "the default"


def _kernel_release() -> str:
    import platform  # only here: it costs start-up time for one string

    return platform.uname().release
