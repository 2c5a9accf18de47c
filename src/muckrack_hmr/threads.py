"""The threads HMR starts leave the program's signals to its main thread."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

__all__ = ["signals_to_main_thread"]

# Signals the kernel raises in the thread that caused them: never blocked.
_SYNCHRONOUS = frozenset(
    getattr(signal, name)
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
    if hasattr(signal, name)
)


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
    try:
        previous = signal.pthread_sigmask(
            signal.SIG_BLOCK, set(signal.valid_signals()) - _SYNCHRONOUS
        )
    except (AttributeError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
