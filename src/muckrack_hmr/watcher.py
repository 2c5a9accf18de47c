"""Watching the project's files and reloading the modules that are saved.

The watcher watches the folders of the loaded project modules (not whole
trees) through a backend (:mod:`.backends`), collects the changes of a burst
of saves (an editor's several writes, a formatter, a ``git checkout``) until
they settle, and reloads every module whose file now holds new code in one
transaction, on its own thread, while the program's threads keep running.

Saves come in many shapes, and none may be missed or applied half-written:

* written in place, or truncated then written: a file still open for writing
  (inotify reports the close), empty, or that does not parse yet is given a
  little time (``SETTLE``) for the rest of the write before it is judged;
* written to a temporary file renamed over the original (vim, JetBrains,
  VS Code), deleted and created again, or renamed to a backup first: the
  watcher follows the path, not the file, and compares contents;
* a touch, or a save of the code that already runs, reloads nothing.
"""

from __future__ import annotations

import _imp
import hashlib
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from stat import S_ISLNK
from types import FrameType
from typing import Any

from .backends import (
    CREATED,
    DEFAULT_POLL_INTERVAL,
    MODIFIED,
    Backend,
    PollingBackend,
    choose_backend,
)
from .datafiles import DEFAULT_DATA_SUFFIXES, DataFiles
from .debounce import FORCE_AFTER, Batch
from .filters import PathFilter

__all__ = ["Watcher"]

log = logging.getLogger("muckrack_hmr")

# Modules analyzed per idle tick of the watcher (a tick is ``rescan``, 0.1 s).
_WARM_BATCH = 8
#: How long a file that looks unfinished (empty, missing, unreadable, or not
#: parsing) may stay so before it is judged as it is.
SETTLE = 0.1
#: How long a file that a writer still holds open is waited for (inotify
#: reports the close; other backends don't, and rely on SETTLE).
OPEN_PATIENCE = 2.0
#: A file changed this long before a burst's first event arrived may still
#: belong to it (its own event late): it is looked at with the burst.
LAG_MARGIN = 1.0
#: How long a reload waits for another thread's import to finish.
IMPORT_PATIENCE = 2.0
_IMPORT_RETRY = 0.002

_CLEAR_SCREEN = "\033[H\033[2J\033[3J"


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


@dataclass
class _FileState:
    """What the watcher told the user about one file, so that it says it once."""

    problem: str = ""  # the warning last logged for it ("" when fine)
    waiting: str = ""  # why the watcher waits for it ("" when it doesn't)
    failed: bytes | None = None  # digest of a content whose reload failed


@dataclass
class _Wait:
    """A file that looks unfinished: judge it again at ``until`` (or at its next event)."""

    until: float
    why: str


class Watcher:
    """Reload project modules when their files change on disk."""

    def __init__(
        self,
        hmr: Any,
        *,
        debounce: float = 0.005,
        backend: str | Backend = "auto",
        poll: float | None = None,
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        watch_data: bool = False,
        clear: bool = False,
        rescan: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hmr = hmr
        self.project = hmr.project
        self.debounce = debounce
        self.rescan = rescan
        self.clear = clear
        self.clock = clock
        self.filter = PathFilter(self.project.roots, list(include), list(exclude))
        self._requested = backend
        self._poll = poll
        self.backend: Backend | None = backend if isinstance(backend, Backend) else None
        self.data: DataFiles | None = None
        if watch_data or self.filter.include:
            self.data = DataFiles(
                self.project.roots,
                self.project.excluded,
                hmr.tracker.is_tracked,
                suffixes=DEFAULT_DATA_SUFFIXES if watch_data else (),
                filter=self.filter,
            )
        self._files: dict[str, str] = {}  # real path -> module name
        self._by_folder: dict[str, list[str]] = {}  # folder -> its module and data files
        self._digests: dict[str, bytes | None] = {}  # what the watcher first saw
        self._states: dict[str, _FileState] = {}
        self._data_seen = 0
        self._data_digests: dict[str, bytes | None] = {}
        self._folders: dict[str, int | None] = {}  # watched folder -> its inode
        self._batch = Batch(debounce, reports_close=False)
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._loaded_seen = 0
        self._long_imports: set[tuple[int, int]] = set()
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------

    def start(self, *, thread: bool = True) -> None:
        """Start the backend and the reload thread (``thread=False``: tests drive :meth:`step`)."""
        if self.backend is None:
            requested = self._requested if isinstance(self._requested, str) else "auto"
            self.backend, why = choose_backend(
                requested, poll_interval=self._poll, roots=self.project.roots
            )
            log.debug("hmr: file events from %s (%s)", self.backend.describe(), why)
        if self.data is not None:
            self.data.start()
        self._batch.reports_close = self.backend.reports_close
        try:
            self.backend.start(self.notify)
        except OSError as exc:
            self._fall_back_to_polling(exc)
        # The roots at once: the script's first imports come from there, and
        # may be saved before the first refresh.
        for root in self.project.roots:
            self._watch(root)
        if thread:
            self._thread = threading.Thread(
                target=self._run, name="muckrack-hmr-watcher", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop watching; a reload in progress finishes first."""
        with self._wake:
            self._stopping.set()
            self._wake.notify_all()
        if self.data is not None:
            self.data.stop()
        if self.backend is not None:
            self.backend.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    # -- which files belong to which modules ------------------------------------

    def refresh(self) -> None:
        """Watch the folders of project modules (and data files) loaded since the last call."""
        loaded = self.project.loaded
        if len(loaded) != self._loaded_seen:
            new = list(loaded.items())[self._loaded_seen :]
            self._loaded_seen += len(new)
            names = []
            for path, (name, baseline) in new:
                if name == "__main__":
                    continue  # the script is never re-executed
                if self.filter.excluded(path):
                    log.debug("hmr: not watching %s (--exclude)", path)
                    continue
                self._files[path] = name
                self._by_folder.setdefault(os.path.dirname(path), []).append(path)
                self._watch(os.path.dirname(path))
                self._digests[path] = self._baseline_digest(path, baseline)
                names.append(name)
            if names:
                log.debug("hmr: tracking %s", ", ".join(names))
        if self.data is not None:
            new_data = self.data.since(self._data_seen)
            self._data_seen += len(new_data)
            for path in new_data:
                self._by_folder.setdefault(os.path.dirname(path), []).append(path)
                self._watch(os.path.dirname(path))
                self._data_digests[path] = self._baseline_digest(
                    path, self.data.baselines.get(path)
                )
                owners = ", ".join(sorted(self.data.owners.get(path, ())))
                log.debug("hmr: %s read %s at import: watching it", owners, path)

    def _baseline_digest(self, path: str, baseline: tuple[int, int] | None) -> bytes | None:
        """The digest of ``path`` if it is still as it was loaded, else None (and look at it)."""
        try:
            stat = os.stat(path)
            if (stat.st_mtime_ns, stat.st_size) == baseline:
                with open(path, "rb") as handle:
                    content = handle.read()
                stat = os.stat(path)  # a save may have begun during the read
                if (stat.st_mtime_ns, stat.st_size) == baseline:
                    return _digest(content)
        except OSError:
            pass
        # Saved between its import and now: no baseline, reload it.
        self.notify(path, MODIFIED)
        return None

    def _watch(self, folder: str) -> None:
        if folder in self._folders or self.backend is None:
            return
        try:
            inode: int | None = os.stat(folder).st_ino
        except OSError:
            inode = None
        self._folders[folder] = inode
        try:
            self.backend.watch(folder)
        except OSError as exc:
            self._fall_back_to_polling(exc)
            return
        log.debug("hmr: watching %s", folder)

    def _fall_back_to_polling(self, exc: OSError) -> None:
        old = self.backend
        if old is None or isinstance(old, PollingBackend):
            log.error("hmr: cannot watch files: %s", exc)
            return
        # inotify has per-user limits (fs.inotify.max_user_watches and
        # max_user_instances) shared with every editor and tool of the user,
        # and some containers have no inotify at all: polling always works.
        log.warning(
            "hmr: %s failed (%s); polling every %g s instead "
            "(raise fs.inotify.max_user_watches, or pass --poll)",
            old.describe(),
            exc,
            DEFAULT_POLL_INTERVAL,
        )
        try:
            old.stop()
        except Exception:
            log.debug("hmr: stopping %s failed", old.describe(), exc_info=True)
        backend = PollingBackend()
        backend.start(self.notify)
        for folder in self._folders:
            backend.watch(folder)
        self.backend = backend
        self._batch.reports_close = False
        # Whatever changed while nothing watched is found by comparing contents.
        for path in [*self._files, *self._data_digests]:
            self.notify(path, MODIFIED)

    def _check_folders(self) -> None:
        """A watched folder deleted and made again (a branch switch) is watched anew."""
        backend = self.backend
        if backend is None:
            return
        for folder, inode in list(self._folders.items()):
            try:
                now: int | None = os.stat(folder).st_ino
            except OSError:
                now = None
            if now == inode:
                continue
            self._folders[folder] = now
            if now is None:
                continue
            log.debug("hmr: %s was made again: watching it anew", folder)
            try:
                backend.rewatch(folder)
            except OSError as exc:
                self._fall_back_to_polling(exc)
            prefix = folder.rstrip(os.sep) + os.sep
            for path in [*self._files, *self._data_digests]:
                if path.startswith(prefix) and os.sep not in path[len(prefix) :]:
                    self.notify(path, CREATED)

    # -- events -----------------------------------------------------------------

    def notify(self, path: str, kind: str = MODIFIED) -> None:
        """``path`` changed (called from the backend's thread)."""
        if (
            path not in self._files
            and path not in self.project.loaded
            and (self.data is None or path not in self.data.owners)
        ):
            return  # not a file any module runs or read: a new file, a temporary file...
        with self._wake:
            self._batch.add(path, kind, self.clock())
            self._wake.notify_all()

    def _run(self) -> None:
        while not self._stopping.is_set():
            taken: tuple[dict[str, float], float, set[str]] | None = None
            idle = False
            with self._wake:
                wait = self._batch.due_in(self.clock())
                if wait is None:
                    idle = not self._wake.wait(self.rescan)
                elif wait > 0:
                    self._wake.wait(wait)
                else:
                    taken = self._batch.take()
            if self._stopping.is_set():
                return
            try:
                if taken is not None:
                    self._process(*taken)
                elif idle:
                    self._idle()
            except Exception:
                log.exception("hmr: the watcher hit an internal error; it keeps watching")

    def step(self) -> bool:
        """Process the pending batch if it is due now (tests drive the watcher with it)."""
        with self._wake:
            wait = self._batch.due_in(self.clock())
            if wait is None or wait > 0:
                return False
            taken = self._batch.take()
        self._process(*taken)
        return True

    def _idle(self) -> None:
        """No saves pending: keep the sources as they ran, analyze a few modules."""
        self.refresh()
        self._check_folders()
        self.hmr.remember_sources()
        for _ in range(_WARM_BATCH):
            if self._batch.last or not self.hmr.reloader.warm(limit=1):
                break

    # -- judging what changed -----------------------------------------------------

    def _process(self, paths: dict[str, float], first: float, writing: set[str]) -> None:
        self.refresh()
        now = self.clock()
        self._add_laggards(paths, first, now)
        can_wait = now - first < FORCE_AFTER
        names: list[str] = []
        tried: dict[str, tuple[str, bytes]] = {}  # module -> (path, digest of what it got)
        hold_until = 0.0
        for path, last in sorted(paths.items()):
            if not can_wait:
                last = -math.inf  # judged as it is now: nothing is waited for any more
            name = self._files.get(path)
            if name is None and path in self.project.loaded:
                self.refresh()  # imported since: pick it up
                name = self._files.get(path)
            verdicts: list[tuple[object, str | None]] = []
            if name is not None:
                verdicts.append((self._judge_module(path, name, last, now, path in writing), name))
            if self.data is not None and path in self.data.owners:
                verdicts.append((self._judge_data(path, last, now), None))
            for verdict, module in verdicts:
                if isinstance(verdict, _Wait) and can_wait:
                    state = self._state(path)
                    if state.waiting != verdict.why:
                        state.waiting = verdict.why
                        log.debug("hmr: waiting for %s: %s", path, verdict.why)
                    hold_until = max(hold_until, verdict.until)
                    continue
                self._state(path).waiting = ""
                if isinstance(verdict, bytes) and module is not None:
                    tried[module] = (path, verdict)
                    verdict = [module]
                if isinstance(verdict, list):
                    names.extend(owner for owner in verdict if owner not in names)
        if hold_until:
            # Something looks half-written: wait for the rest, and judge the
            # whole burst together again.
            with self._wake:
                self._batch.hold((paths, first, writing), hold_until)
                self._wake.notify_all()
            return
        if names:
            self._reload(names, tried)

    def _add_laggards(self, paths: dict[str, float], first: float, now: float) -> None:
        """Add the files of the burst whose events have not arrived yet.

        Events reach us late when the program keeps the CPU busy (the
        backend's thread waits for its turn): a file changed since the burst
        began is part of it, event or not.  A file added for nothing costs a
        read: its content is compared with the code that runs.
        """
        since_ns = int((time.time() - (now - first) - LAG_MARGIN) * 1e9)
        if len(paths) > 1:
            candidates: Iterable[str] = [*self._files, *self._data_digests]
        else:
            folder = os.path.dirname(next(iter(paths)))
            candidates = self._by_folder.get(folder, ())
        for path in candidates:
            if path in paths:
                continue
            try:
                stat = os.stat(path)
            except OSError:
                continue
            if max(stat.st_mtime_ns, stat.st_ctime_ns) >= since_ns:
                paths[path] = now

    def _state(self, path: str) -> _FileState:
        state = self._states.get(path)
        if state is None:
            state = self._states[path] = _FileState()
        return state

    def _problem(self, path: str, message: str) -> None:
        """Log ``message`` as a warning, once for as long as it holds."""
        state = self._state(path)
        if state.problem != message:
            state.problem = message
            log.warning("%s", message)

    def _judge_module(
        self, path: str, name: str, last: float, now: float, open_for_writing: bool
    ) -> object:
        """The digest of the new content to reload, None to leave it, or a _Wait."""
        settle = _Wait(last + SETTLE, "")
        recent = now < settle.until
        if open_for_writing and now < last + OPEN_PATIENCE:
            return _Wait(last + OPEN_PATIENCE, "still open for writing")
        try:
            link = S_ISLNK(os.lstat(path).st_mode)
        except FileNotFoundError:
            if recent:  # a rename or a delete-and-create in progress
                return _Wait(settle.until, "missing")
            self._problem(path, f"hmr: {path} was deleted; {name} keeps running its old code")
            return None
        except OSError as exc:
            if recent:
                return _Wait(settle.until, f"cannot look at it ({exc})")
            self._problem(path, f"hmr: cannot read {path} ({exc}); {name} keeps its old code")
            return None
        if link:
            target = os.path.realpath(path)
            if not self.project.contains_file(target):
                # Never execute a file from outside the roots, however it got there.
                self._problem(
                    path,
                    f"hmr: {path} is now a symlink to {target}, outside the project; "
                    f"not following it ({name} keeps its old code)",
                )
                return None
        try:
            with open(path, "rb") as handle:
                source = handle.read()
        except OSError as exc:
            # Windows refuses to open a file that an editor is still writing.
            if recent:
                return _Wait(settle.until, f"cannot read it ({exc})")
            self._problem(path, f"hmr: cannot read {path} ({exc}); {name} keeps its old code")
            return None
        state = self._state(path)
        digest = _digest(source)
        if self._unchanged(name, path, source, digest):
            if state.problem:
                log.info("hmr: %s is back, with the code that runs", path)
                state.problem = ""
            self._recovered_unchanged(name)
            return None
        if not source.strip():
            if recent:  # truncated; the write that brings the content follows
                return _Wait(settle.until, "empty")
            self._problem(path, f"hmr: {path} is empty; {name} keeps running its old code")
            return None
        if b"\0" in source:
            if recent:
                return _Wait(settle.until, "it holds null bytes")
            self._problem(
                path,
                f"hmr: {path} is not Python source (it holds null bytes); "
                f"{name} keeps running its old code",
            )
            return None
        if state.failed == digest and name in self.hmr.reloader.failing:
            return None  # the same broken content again: already reported
        if recent:
            error = self.hmr.reloader.check_source(name, source)
            if error is not None:  # maybe the rest of the file is on its way
                return _Wait(settle.until, f"it does not parse yet ({type(error).__name__})")
        state.problem = ""
        return digest

    def _unchanged(self, name: str, path: str, source: bytes, digest: bytes) -> bool:
        """Is ``source`` the code ``name`` runs now?"""
        ran = self.hmr.reloader.sources.ran(name)
        if ran is not None:
            return bool(ran == source)
        baseline = self._digests.get(path)
        return baseline is not None and baseline == digest

    def _recovered_unchanged(self, name: str) -> None:
        """A failed module whose file is back to the code that runs is fine again."""
        failing = self.hmr.reloader.failing
        if name in failing:
            failing.discard(name)
            log.info("hmr: %s recovered (its file is back to the code that runs)", name)

    def _judge_data(self, path: str, last: float, now: float) -> object:
        """The modules to reload for a changed data file, None, or a _Wait."""
        assert self.data is not None
        recent = now < last + SETTLE
        try:
            with open(path, "rb") as handle:
                content = handle.read()
        except OSError as exc:
            if recent:
                return _Wait(last + SETTLE, f"cannot read it ({exc})")
            log.debug("hmr: %s is gone or unreadable; its readers are left alone", path)
            return None
        digest = _digest(content)
        if digest == self._data_digests.get(path):
            return None
        if not content.strip() and recent:
            return _Wait(last + SETTLE, "empty")
        self._data_digests[path] = digest
        return [
            owner
            for owner in sorted(self.data.owners.get(path, ()))
            if self.hmr.reloader.why_not_reloadable(owner) is None
        ]

    # -- applying -------------------------------------------------------------------

    def _reload(self, names: list[str], tried: dict[str, tuple[str, bytes]]) -> None:
        self._wait_for_safe_point()
        if self.clear:
            sys.stderr.write(_CLEAR_SCREEN)
            sys.stderr.flush()
        result = self.hmr.reloader.reload_result(names)
        for name, (path, digest) in tried.items():
            self._state(path).failed = digest if name in result.failed else None

    def _wait_for_safe_point(self) -> None:
        """Wait (a little) while another thread imports: its module may need what we'd replace."""
        deadline = self.clock() + IMPORT_PATIENCE
        while True:
            locked = _imp.lock_held()
            importing = None if locked else self._other_thread_importing()
            if not locked and importing is None:
                return
            if self.clock() >= deadline:
                if importing is not None:
                    # A thread that stays in an import (a module that runs a
                    # server at import time) is not waited for again.
                    self._long_imports.add(importing)
                log.debug("hmr: another thread is still importing; reloading anyway")
                return
            time.sleep(_IMPORT_RETRY)

    def _other_thread_importing(self) -> tuple[int, int] | None:
        """(thread id, frame id) of another thread's import in progress, if any."""
        me = threading.get_ident()
        for ident, top in sys._current_frames().items():
            if ident == me:
                continue
            frame: FrameType | None = top
            while frame is not None:
                code = frame.f_code
                if code.co_name == "_find_and_load" and code.co_filename.startswith(
                    "<frozen importlib"
                ):
                    key = (ident, id(frame))
                    if key not in self._long_imports:
                        return key
                    break
                frame = frame.f_back
        return None
