"""A reload whose new code runs for long: said, and stopped by the next save of its file.

A module's top level runs in the reload's thread.  One that never ends (a
``while True`` left at the top level by mistake) kept the watcher's thread in
it for good: no later save was applied, nothing was said, and the module
stayed half run.  The watchdog says which line runs once the run has taken
_LONG_RUN seconds, then looks at the module's file: a save made since the run
began stops it (an exception raised in the reloading thread, as Ctrl-C would
be), the module is put back as it was, and the newer save is applied next.

A run blocked in a call that does not return to Python (a socket read, a
``time.sleep``) is stopped when that call returns.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator

__all__ = ["Superseded", "Watchdog"]

log = logging.getLogger("muckrack_hmr.reload")

# How long a module's run goes before the watchdog says so (seconds).
_LONG_RUN = 3.0
# How often it then looks at the module's file.
_LOOK = 0.2


class Superseded(BaseException):
    """Raised in a module's run, which took long, when its file was saved again: the
    edit fails (nothing of it stays), and the newer save is applied next.

    A BaseException, as KeyboardInterrupt: the module's ``except Exception``
    does not keep it running.
    """

    note = "its file was saved again while it ran"

    def __str__(self) -> str:
        return self.note


class _Run:
    __slots__ = ("filename", "name", "source", "started", "stat", "thread")

    def __init__(self, name: str, filename: str, source: bytes) -> None:
        self.name = name
        self.filename = filename
        self.source = source
        self.thread = threading.get_ident()
        self.started = time.monotonic()
        try:
            self.stat: tuple[int, int] | None = _figures(filename)
        except OSError:
            self.stat = None


def _figures(filename: str) -> tuple[int, int]:
    stat = os.stat(filename)
    return stat.st_mtime_ns, stat.st_size


class Watchdog:
    """Watches the module runs of reloads, one at a time (see the module's doc)."""

    def __init__(self, long_run: float = _LONG_RUN, look: float = _LOOK) -> None:
        self.long_run = long_run
        self.look = look
        self._run: _Run | None = None
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def running(self, name: str, filename: str, source: bytes) -> Iterator[None]:
        """While the new ``source`` of ``name`` runs in this thread."""
        run = _Run(name, filename, source)
        with self._wake:
            self._run = run
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="muckrack-hmr-watchdog", daemon=True
                )
                self._thread.start()
            self._wake.notify()
        try:
            yield
        finally:
            with self._wake:
                self._run = None
                self._wake.notify()

    def _watch(self) -> None:
        while True:
            with self._wake:
                while self._run is None:
                    self._wake.wait()
                run = self._run
                due = run.started + self.long_run
                while self._run is run and time.monotonic() < due:
                    self._wake.wait(due - time.monotonic())
                if self._run is not run:
                    continue
            log.warning(
                "still reloading %s: %s has run for %.0f s; save the file again to stop it",
                run.name,
                _where(run),
                time.monotonic() - run.started,
            )
            self._until_saved(run)
            with self._wake:
                while self._run is run:  # said once; stopped, or left to run
                    self._wake.wait()

    def _until_saved(self, run: _Run) -> None:
        """Look at ``run``'s file while it runs; stop it when a newer save is there."""
        while True:
            with self._wake:
                self._wake.wait(self.look)
                if self._run is not run:
                    return
            try:
                if run.stat is None or _figures(run.filename) == run.stat:
                    continue
                with open(run.filename, "rb") as file:
                    saved = file.read()
            except OSError:
                continue
            if saved == run.source:
                continue
            with self._wake:
                if self._run is not run:
                    return
                if not _in_its_code(run):
                    continue  # (the engine's own steps between statements: not there)
                Superseded.note = (
                    f"{os.path.basename(run.filename)} was saved again after it ran "
                    f"for {time.monotonic() - run.started:.0f} s"
                )
                _raise_in(run.thread, Superseded)
            return


def _where(run: _Run) -> str:
    """``file:line`` of the module's code that the reloading thread runs now."""
    frame = sys._current_frames().get(run.thread)
    while frame is not None:
        if frame.f_code.co_filename == run.filename:
            return f"{run.filename}:{frame.f_lineno}"
        frame = frame.f_back
    return run.filename


_ENGINE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _in_its_code(run: _Run) -> bool:
    """Does the reloading thread run the module's code (or what it calls) now, not the
    engine's?  It waits for the interpreter meanwhile: it resumes there."""
    frame = sys._current_frames().get(run.thread)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename == run.filename:
            return True
        if filename.startswith(_ENGINE + os.sep):
            return False
        frame = frame.f_back
    return False


def _raise_in(thread: int, exception: type[BaseException]) -> None:
    """Raise ``exception`` in the thread ``thread`` at its next Python step."""
    import ctypes  # (here: most programs never need it)

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread), ctypes.py_object(exception))
