"""What the open pages are told: the events of ``--reload-browser``, as server-sent events.

One :class:`Events` per process.  The reload hooks publish into it (from the
watcher's thread); each open page's event stream waits on it (from a
server's thread, or its event loop's executor).  An event is a name and a
small JSON object: ``reload``, ``css`` (the URL path of a saved stylesheet),
``error`` (the project-relative file, the line and the error's one line) and
``ok`` (the error is gone without a reload).  Nothing else leaves the
process: no source, no path outside the project.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType

from ...errors import first_line

__all__ = ["KEEPALIVE", "Event", "Events", "error_event", "stream"]

#: A comment sent on an idle stream this often (seconds): a closed page is noticed
#: when the write fails, and proxies keep the connection open.
KEEPALIVE = 15.0
# How many events a stream that lags behind may still catch up with.
_BACKLOG = 32


@dataclass(frozen=True)
class Event:
    """One event: its number in this process, its name and its data."""

    id: int
    name: str
    data: dict[str, object]

    def encode(self) -> bytes:
        """The event as the ``text/event-stream`` format spells it."""
        payload = json.dumps(self.data, separators=(",", ":"))
        return f"id: {self.id}\nevent: {self.name}\ndata: {payload}\n\n".encode()


class Events:
    """The events of this process, for every page that listens (thread-safe)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._recent: list[Event] = []
        self._next = 1
        #: the failed reload a page must show, until a save recovers
        self.error: Event | None = None
        self._closed = False
        self._listeners: list[Callable[[], object]] = []

    def add_listener(self, listener: Callable[[], object]) -> None:
        """Call ``listener()`` (from the publishing thread) after each event, and on close."""
        with self._changed:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], object]) -> None:
        """Stop calling ``listener`` (nothing if it was not added)."""
        with self._changed:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _tell_listeners(self) -> None:
        with self._changed:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener()
            except Exception:  # an event loop that is closed: its stream is gone
                self.remove_listener(listener)

    def publish(self, name: str, data: dict[str, object] | None = None) -> Event:
        """Send ``name`` to every page; an ``error`` stays for pages that open later."""
        with self._changed:
            event = Event(self._next, name, dict(data or {}))
            self._next += 1
            self._recent = [*self._recent[-(_BACKLOG - 1) :], event]
            if name == "error":
                self.error = event
            elif name in ("reload", "ok"):
                self.error = None
            self._changed.notify_all()
        self._tell_listeners()
        return event

    @property
    def last_id(self) -> int:
        """The number of the newest event (0: none yet)."""
        with self._changed:
            return self._next - 1

    def after(self, seen: int, timeout: float) -> list[Event] | None:
        """The events newer than ``seen``, waiting up to ``timeout`` s for one; None: closed."""
        with self._changed:
            self._changed.wait_for(lambda: self._closed or self._next - 1 > seen, timeout)
            if self._closed:
                return None
            return [event for event in self._recent if event.id > seen]

    def close(self) -> None:
        """End every stream (the server stops)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._tell_listeners()

    def opening(self) -> tuple[int, bytes]:
        """Where a new stream starts (the newest event's number), and what it sends first:
        how soon to reconnect, and the standing error."""
        with self._changed:
            seen = self._next - 1
            standing = self.error
        first = b"retry: 500\n\n"
        return seen, first + (standing.encode() if standing is not None else b"")


def stream(events: Events, keepalive: float = KEEPALIVE) -> Iterator[bytes]:
    """The body of one page's event stream: the standing error first, then what comes."""
    seen, first = events.opening()
    yield first
    while True:
        fresh = events.after(seen, keepalive)
        if fresh is None:
            return
        if not fresh:
            yield b": keep-alive\n\n"
            continue
        for event in fresh:
            yield event.encode()
        seen = fresh[-1].id


# -- what a failed reload may say -------------------------------------------------------


def _relative(path: str, roots: Iterable[str]) -> str | None:
    """``path`` relative to the project root that holds it, or None (outside the project)."""
    real = os.path.realpath(path)
    for root in roots:
        base = os.path.realpath(root).rstrip(os.sep) + os.sep
        if real.startswith(base):
            return real[len(base) :].replace(os.sep, "/")
    return None


def _where(exc: BaseException, roots: Iterable[str]) -> tuple[str | None, int | None]:
    """The project file and line of a syntax error, or of the innermost project frame."""
    roots = tuple(roots)
    if isinstance(exc, SyntaxError) and exc.filename:
        return _relative(exc.filename, roots), exc.lineno
    found: tuple[str | None, int | None] = (None, None)
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        relative = _relative(tb.tb_frame.f_code.co_filename, roots)
        if relative is not None and not relative.startswith(".."):
            found = (relative, tb.tb_lineno)
        tb = tb.tb_next
    return found


def error_event(module: str, exc: BaseException, roots: Iterable[str]) -> dict[str, object]:
    """The data of an ``error`` event: module, project-relative file, line, one-line error."""
    roots = tuple(roots)
    message = f"{type(exc).__name__}: {first_line(exc)}".rstrip(": ")
    if isinstance(exc, SyntaxError):
        message = f"{type(exc).__name__}: {exc.msg}"  # without its file's name
    for root in roots:
        # A path the message names (a file not found...) is told relative to its root.
        message = message.replace(os.path.realpath(root).rstrip(os.sep) + os.sep, "")
        message = message.replace(root.rstrip(os.sep) + os.sep, "")
    file, line = _where(exc, roots)
    return {"module": module, "file": file, "line": line, "message": message}
