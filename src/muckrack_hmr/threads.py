"""The threads HMR starts leave the program's signals to its main thread."""

from __future__ import annotations

# The C functions, not signal's wrappers: those turn every signal number of a mask
# into an enum member (two masks of 64 a call), which made watching 60 folders
# cost milliseconds.  (typeshed has no stub for it.)
import _signal  # type: ignore[import-not-found]
import contextlib
from collections.abc import Iterator

__all__ = ["signals_to_main_thread"]

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
