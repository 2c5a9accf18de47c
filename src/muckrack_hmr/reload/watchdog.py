"""A reload whose new code runs for long: said, and stopped by the next save of its files.

A module's top level runs in the reload's thread.  One that never ends (a
``while True`` left at the top level by mistake) kept the watcher's thread in
it for good: no later save was applied, nothing was said, and the module
stayed half run.  The watchdog looks at the module's file once the run has
taken _FIRST_LOOK seconds, and says which line runs at _LONG_RUN: a save made
since the run began (or of a file saved for the same reload: the module that a dependent's
loop follows) stops it (an exception raised in the reloading thread, as Ctrl-C
would be), the module is put back as it was, and the newer save is applied
next.  A run that catches that exception (``except BaseException``) cannot be
stopped: after a few tries, a line says so.

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

from .. import collector
from ..threads import raise_in, signals_to_main_thread

__all__ = ["Ended", "Superseded", "Watchdog"]

log = logging.getLogger("muckrack_hmr.reload")

# When the watchdog starts looking at the files of a run that goes on (seconds).
_FIRST_LOOK = 1.0
# How long a module's run goes before the watchdog says so.
_LONG_RUN = 3.0
# How often it looks at the files.
_LOOK = 0.2
# How many times it tries to stop a run that catches the exception that stops it.
_TRIES = 5
# How long a stop waits for the thread to end (seconds).
_STOP_PATIENCE = 2.0


class Superseded(BaseException):
    """Raised in a module's run, which took long, when its file (or a file saved for the
    same reload) was saved again: the edit fails (nothing of it stays), and the newer
    save is applied next.

    A BaseException, as KeyboardInterrupt: the module's ``except Exception``
    does not keep it running.
    """

    note = "its file was saved again while it ran"

    def __str__(self) -> str:
        return self.note


class Ended(Superseded):
    """Raised in a module's run that the program's exit finds running (Ctrl-C, its end):
    as under python, the program does not wait for it."""

    note = "the program ends"


class _Run:
    __slots__ = ("filename", "name", "saved", "source", "started", "stat", "thread")

    def __init__(self, name: str, filename: str, source: bytes, saved: dict[str, object]) -> None:
        self.name = name
        self.filename = filename
        self.source = source
        self.saved = saved
        self.thread = threading.get_ident()
        self.started = time.monotonic()
        # The file's figures once found to hold ``source`` (by the first look that
        # compares them): no look at the file as the run begins, where it would let
        # the program's other threads in mid-reload (see reloader._applied_at_once).
        self.stat: tuple[int, int] | None = None


def _figures(filename: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(filename)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


class Watchdog:
    """Watches the module runs of reloads, one at a time (see the module's doc).

    A run costs the reload two attribute stores and a stat: the watchdog's
    thread looks at what runs every ``first_look / 2`` seconds, on its own.
    """

    def __init__(
        self, long_run: float = _LONG_RUN, look: float = _LOOK, first_look: float = _FIRST_LOOK
    ) -> None:
        self.long_run = long_run
        self.look = look
        self.first_look = min(first_look, long_run)
        self._run: _Run | None = None
        self._saved: dict[str, object] = {}
        # Held to end a run, and to stop one: never both.
        self._ending = threading.Lock()
        # Set only to stop: its wait is the watchdog's pause (time.sleep is the program's).
        self._pause = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the watchdog's thread (the program's idle time does, before a reload)."""
        if self._thread is None:
            self._pause = pause = threading.Event()
            thread = threading.Thread(
                target=collector.ours(self._watch),
                args=(pause,),
                name="muckrack-hmr-watchdog",
                daemon=True,
            )
            # A reload the program asks for in its main thread starts it there: it must
            # not inherit a mask that takes the process's signals (see threads).
            with signals_to_main_thread():
                try:
                    thread.start()
                except RuntimeError:
                    # 3.12+ starts no thread once the interpreter ends (the idle work's
                    # last step at exit): a reload then, if any, runs unwatched.
                    return
            self._thread = thread

    def stop(self) -> None:
        """Stop the watchdog's thread (the engine is taken out: ``%unload_ext``); a later
        run starts it again."""
        thread = self._thread
        if thread is None:
            return
        self._pause.set()
        if thread is not threading.current_thread():
            thread.join(timeout=_STOP_PATIENCE)
        self._thread = None

    def end_run(self) -> bool:
        """The program ends: stop the module's run in progress, if its code runs now (a
        long top level), as a newer save would (its thread then ends its reload, the
        module as it was, once it runs Python code again: not inside a blocking call);
        whether one did."""
        run = self._run
        if run is None or run.thread == threading.get_ident():
            return False
        with self._ending:
            if self._run is run and _in_its_code(run):
                raise_in(run.thread, Ended)
                return True
        return False

    def saves(self, filenames: list[str]) -> None:
        """The files saved for the reload that starts (its modules'): a newer save of one
        of them stops a long run of a module it reaches too."""
        self._saved = {filename: _figures(filename) for filename in filenames}

    @contextlib.contextmanager
    def running(self, name: str, filename: str, source: bytes) -> Iterator[None]:
        """While the new ``source`` of ``name`` runs in this thread."""
        self._run = _Run(name, filename, source, self._saved)
        self.start()
        try:
            yield
        finally:
            with self._ending:
                self._run = None

    def _watch(self, pause: threading.Event) -> None:
        # (``pause``: this thread's; a stop sets it, and a later start makes another.)
        while not pause.is_set():
            pause.wait(self.first_look / 2)
            run = self._run
            if run is None or time.monotonic() - run.started < self.first_look:
                continue
            self._until_saved(run, pause)
            while self._run is run and not pause.is_set():  # stopped, or left to run
                pause.wait(self.look)

    def _until_saved(self, run: _Run, pause: threading.Event) -> None:
        """Look at ``run``'s files while it runs; stop it when a newer save is there."""
        said = False
        tries = 0
        while self._run is run and not pause.is_set():
            ran = time.monotonic() - run.started
            if not said and ran >= self.long_run:
                said = True
                log.warning(
                    "still reloading %s: %s has run for %.0f s; save the file again to stop it",
                    run.name,
                    _where(run),
                    ran,
                )
            saved = _newer_save(run)
            if saved is not None:
                with self._ending:
                    if self._run is not run:
                        return
                    if _in_its_code(run):  # (not the engine's own steps between statements)
                        if tries == _TRIES:
                            log.warning(
                                "%s does not stop: it catches the exception that would stop it "
                                "(except BaseException); restart the program to apply the "
                                "newer save",
                                _where(run),
                            )
                            return
                        tries += 1
                        Superseded.note = (
                            f"{saved} was saved again after {run.name} ran for {ran:.0f} s"
                        )
                        raise_in(run.thread, Superseded)
            pause.wait(self.look)


def _newer_save(run: _Run) -> str | None:
    """The name of a file of ``run`` saved since it began (its module's, with other
    bytes than it runs; or one saved for the same reload), if any."""
    for filename, figures in run.saved.items():
        if filename != run.filename and _figures(filename) != figures:
            return os.path.basename(filename)
    now = _figures(run.filename)
    if now is None or now == run.stat:
        return None
    try:
        with open(run.filename, "rb") as file:
            if file.read() == run.source:
                run.stat = now
                return None
    except OSError:
        return None
    return os.path.basename(run.filename)


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
