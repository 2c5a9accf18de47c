"""The threads HMR starts: they leave the program's signals to its main thread, and
get the interpreter promptly while a save is handled."""

from __future__ import annotations

# The C functions, not signal's wrappers: those turn every signal number of a mask
# into an enum member (two masks of 64 a call), which made watching 60 folders
# cost milliseconds.  (typeshed has no stub for it.)
import _signal  # type: ignore[import-not-found]
import contextlib
import sys
import threading
from collections.abc import Iterator

__all__ = [
    "OURS",
    "PROMPT_SWITCH_INTERVAL",
    "all_threads",
    "hide_ours",
    "prompt",
    "raise_in",
    "signals_to_main_thread",
]

#: How the name of each thread of ours begins.
OURS = "muckrack-hmr-"
#: ``threading.enumerate`` as the interpreter has it: every thread, ours too.
all_threads = threading.enumerate

# Signals the kernel raises in the thread that caused them: never blocked.
_SYNCHRONOUS = frozenset(
    getattr(_signal, name)
    for name in (
        "SIGKILL",
        "SIGSTOP",
        "SIGSEGV",
        "SIGBUS",
        "SIGFPE",
        "SIGILL",
        "SIGABRT",
        "SIGTRAP",
        "SIGSYS",
    )
    if hasattr(_signal, name)
)
# The asynchronous ones, as plain ints (made at the first use).
_blocked: frozenset[int] | None = None


@contextlib.contextmanager
def signals_to_main_thread() -> Iterator[None]:
    """Threads started inside this block never receive the process's signals.

    Python runs signal handlers in the main thread only.  A signal sent to
    the process (Ctrl-C's SIGINT, a SIGTERM) may be handed by the kernel to
    any thread that does not block it; when that is a thread of ours, a
    system call the main thread is blocked in (``input()``, ``accept()``, a
    long sleep) is not interrupted, and the handler runs only when that call
    returns.  A new thread inherits the signal mask of the thread that
    starts it, so the watcher's threads, and the threads of the file-event
    libraries they start, block every asynchronous signal, as in a program
    without HMR, where the main thread gets them all.  The calling thread's
    own mask is put back on the way out.  Not on Windows, which has no
    signal masks.
    """
    global _blocked
    try:
        if _blocked is None:
            _blocked = frozenset(_signal.valid_signals()) - _SYNCHRONOUS
        previous = _signal.pthread_sigmask(_signal.SIG_BLOCK, _blocked)
    except (AttributeError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, previous)


#: The interpreter's switch interval while a save is handled (seconds).
PROMPT_SWITCH_INTERVAL = 0.00025


class _Prompt:
    """Shorter waits for the interpreter while a save is handled.

    Each time a thread of ours blocks (a file read, a lock, a log line), a
    thread of the program that computes takes the interpreter, and hands it
    back only when asked to, once the switch interval (5 ms) has passed; two
    such threads can take turns before ours gets it.  A save handled in a
    program that computes in two threads blocked dozens of times, and went
    live 200-600 ms after it was made, where 5 ms is usual.  From the save's
    first file event until it is handled (:meth:`begin`, :meth:`end`), the
    interval is ``PROMPT_SWITCH_INTERVAL``; then the program's own again,
    unless the program set one of its own meanwhile.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._previous: float | None = None  # the program's interval, while ours is set
        self._ours = 0.0  # ours, as the interpreter reads it back

    def begin(self) -> None:
        """A save is on its way in (from any thread; once is enough)."""
        with self._lock:
            if self._previous is not None:
                return
            current = sys.getswitchinterval()
            if current > PROMPT_SWITCH_INTERVAL:
                sys.setswitchinterval(PROMPT_SWITCH_INTERVAL)
                self._previous, self._ours = current, sys.getswitchinterval()

    def end(self) -> None:
        """The saves on their way are handled: the program's interval again."""
        with self._lock:
            previous, self._previous = self._previous, None
            if previous is not None and sys.getswitchinterval() == self._ours:
                sys.setswitchinterval(previous)


#: The one switch-interval setting of the process's HMR threads.
prompt = _Prompt()


def hide_ours() -> None:
    """``threading.enumerate()`` and ``threading.active_count()`` leave the threads of ours
    out, as under ``python``, where there are none (the CLI asks for it): a program that
    waited with ``while threading.active_count() > 1`` for its workers waited for the
    watcher's thread, forever."""
    if threading.enumerate is not all_threads:
        return  # (once)

    def enumerate() -> list[threading.Thread]:
        return [thread for thread in all_threads() if not thread.name.startswith(OURS)]

    def active_count() -> int:
        return len(enumerate())

    enumerate.__doc__ = all_threads.__doc__
    active_count.__doc__ = threading.active_count.__doc__
    threading.enumerate = enumerate
    threading.active_count = active_count


def raise_in(thread: int, exception: type[BaseException]) -> None:
    """Raise ``exception`` in the thread ``thread`` at its next Python step."""
    import ctypes  # (here: most programs never need it)

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread), ctypes.py_object(exception))
