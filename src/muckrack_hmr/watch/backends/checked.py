"""The OS's file events, checked against a slow listing: polling where they never come."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ... import collector
from . import mounts
from .base import DEFAULT_POLL_INTERVAL, MODIFIED, Backend, Sink
from .polling import PollingBackend

__all__ = ["CHECK_INTERVAL", "CheckedBackend"]

log = logging.getLogger(__name__)

#: How often the OS's events are checked against a listing of the watched folders.
CHECK_INTERVAL = 1.0
# Rounds of that listing the OS has to report a change it found: its events can be
# late on a loaded machine (its thread not scheduled), and a wrong verdict costs a
# poll every 0.1 s for the rest of the session.
_PATIENCE = 2
# The files whose changes are judged: sources.  Others can change without an
# event where events do come (SQLite's ``-shm`` file is written through mmap,
# which inotify does not see): they would stop the OS's events for nothing.
_JUDGED = (".py", ".pyw")
# At the switch to polling, how far before "now" a file's time may fall and still count
# as changed since: file systems stamp times from a coarse clock, up to a tick (4-10 ms)
# behind time.time_ns().  One changed just before is reported too, and its content then
# says it is the same.  (Not for a folder's first check: a change reported there that the
# OS did not report would count against its events.)
_CLOCK_SLACK_NS = 50_000_000
# Before any report (a time every report of a path is after).
_NEVER = float("-inf")


class CheckedBackend(Backend):
    """The OS's file events, checked by a slow poll; polling takes over where they never come.

    Some file systems accept a watch and then deliver nothing: a Docker bind
    mount from a macOS or Windows host, a network drive, a FUSE mount.  A
    save there would go unseen forever.  So every ``check`` seconds the
    watched folders are listed (a stat per file), and each change of a Python
    file found is looked at two rounds later: if the OS reported nothing for that path since
    the listing before it, its events are not coming.  (A file changed after its folder's
    watch began and before the folder's first listing is told by its time.)  The changes it missed
    are reported then, and from there on the folders are polled every
    ``interval`` seconds instead (``on_switch`` is told why).  Until then
    the listing reports nothing itself: the OS's events stay the fast path.

    Only folders where events can be missing are listed: ``trusted(folder)``
    (by default :func:`.mounts.events_are_local`, a local disk or memory)
    says the kernel sees every write there.  With no folder to list, no
    thread runs: nothing is polled while the program rests.
    """

    def __init__(
        self,
        primary: Backend,
        *,
        check: float = CHECK_INTERVAL,
        interval: float = DEFAULT_POLL_INTERVAL,
        on_switch: Callable[[str], None] | None = None,
        trusted: Callable[[str], bool] | None = None,
    ) -> None:
        self.primary = primary
        #: is every change to this folder a write of this kernel (its events then come)?
        self.trusted = mounts.events_are_local if trusted is None else trusted
        #: the folders whose events are checked (listed), and the trusted ones
        self.checked: set[str] = set()
        self._trusted: set[str] = set()
        self.name = primary.name
        self.check = check
        self.interval = interval
        self.on_switch = on_switch
        self.switched = False
        #: listings compared so far (while the OS's events are checked)
        self.rounds = 0
        self._listing = PollingBackend(check)  # driven from here, not from its own thread
        # folders to list from the next round on, with when their watch began
        # (time.time_ns(), to compare with files' times, and time.monotonic())
        self._new: list[tuple[str, int, float]] = []
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

    def watch(self, folder: str) -> None:
        if not self.switched:
            self.primary.watch(folder)
            if self.trusted(folder):
                with self._lock:
                    if not self.switched:  # else the switch missed it: listed below
                        self._trusted.add(folder)
                        return
        self._check(folder)

    def _check(self, folder: str) -> None:
        # Listed on the checker's thread, not the caller's: what changes before
        # that first listing is told by its time (from now on, the OS reports it).
        watched = (folder, time.time_ns(), time.monotonic())
        with self._lock:
            if folder in self.checked:
                return
            self.checked.add(folder)
            self._new.append(watched)
            if self._thread is None and not self._stopping.is_set():
                # The first folder to check: the checker's thread starts (the
                # caller's signal mask, which leaves signals to the main thread).
                self._thread = threading.Thread(
                    target=collector.ours(self._run), name="muckrack-hmr-check", daemon=True
                )
                self._thread.start()

    def rewatch(self, folder: str) -> None:
        if not self.switched:
            self.primary.rewatch(folder)
        if folder in self.checked:
            self._listing.rewatch(folder)

    def stop(self) -> None:
        self._stopping.set()
        self.primary.stop()
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def catch_up(self) -> None:
        if not self.switched:
            self.primary.catch_up()

    def describe(self) -> str:
        if self.switched:
            return f"polling every {self.interval:g} s (no file events came)"
        if not self.checked:
            return self.primary.describe()  # local file systems only: nothing to check
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
            # Before the new folders are taken: an OS report for one of them
            # comes after this, and is kept for its judging.
            now = time.monotonic()
            with self._lock:
                new, self._new = self._new, []
            found.clear()
            # Changed since its folder's watch began, before its first listing.
            early: list[tuple[str, float]] = []
            for folder, since_ns, since in new:
                self._listing.watch(folder)
                early += [
                    (path, since)
                    for path, (key, _) in self._listing.listing(folder).items()
                    if path.endswith(_JUDGED) and max(key[0], key[1]) >= since_ns
                ]
            try:
                self._listing.poll_once()
            except Exception:
                log.exception("listing the watched folders failed; trying again")
                continue
            if self.switched:
                for path, kind in [*((path, MODIFIED) for path, _ in early), *found]:
                    self._sink_safely(path, kind)
                continue
            self.rounds += 1
            rounds = self.rounds
            due = [entry for entry in waiting if entry[3] <= rounds]
            waiting = [entry for entry in waiting if entry[3] > rounds]
            waiting += [
                (path, kind, before, rounds + _PATIENCE)
                for path, kind in found
                if path.endswith(_JUDGED)
            ]
            waiting += [(path, MODIFIED, since, rounds + _PATIENCE) for path, since in early]
            oldest = min((entry[2] for entry in waiting), default=now)
            with self._lock:
                missed = [
                    (path, kind)
                    for path, kind, since, _ in due
                    if self._reported.get(path, _NEVER) < since
                ]
                # Only reports since the oldest change still waiting can count.
                self._reported = {p: t for p, t in self._reported.items() if t >= oldest}
            before = now
            if missed:
                self._switch(missed)

    def _switch(self, missed: list[tuple[str, str]]) -> None:
        # The trusted folders are polled too from now on, and what changed in them
        # since this moment is reported at the next round (told by its time).
        since_ns, since = time.time_ns() - _CLOCK_SLACK_NS, time.monotonic()
        with self._lock:
            self.switched = True
            for folder in self._trusted - self.checked:
                self.checked.add(folder)
                self._new.append((folder, since_ns, since))
            self._trusted.clear()
        why = (
            f"{self.primary.describe()} reported no event for {missed[0][0]}, changed "
            f"{self.check * _PATIENCE:g}-{self.check * (_PATIENCE + 1):g} s ago"
        )
        try:
            self.primary.stop()
        except Exception:
            log.debug("stopping %s failed", self.primary.describe(), exc_info=True)
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
            log.exception("handling a change of %s failed", path)
