"""The WSGI side of ``--reload-browser``: the event stream, and the script in HTML pages.

:class:`BrowserWSGI` wraps the application a development server serves
(werkzeug's, behind Flask; Django's ``runserver``).  It answers
:data:`~.page.EVENTS_PATH` itself, and adds the script to a response that is
HTML, not compressed, and whole in memory: a ``Content-Length`` says how
long it is, or the iterable is a list (Flask's bodies) or says it does not
stream (Django's ``HttpResponse``).  Anything else passes through untouched:
a stream is never read ahead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING

from .events import Events, stream
from .page import EVENTS_PATH, inject, is_html, is_loopback

if TYPE_CHECKING:
    _ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
    _StartResponse = Callable[..., Callable[[bytes], object]]
    _App = Callable[[dict[str, object], _StartResponse], Iterable[bytes]]

__all__ = ["MAX_BODY", "BrowserWSGI", "wrap"]

log = logging.getLogger(__name__)

#: Larger pages are left alone (a body is held in memory to be rewritten).
MAX_BODY = 8 * 1024 * 1024

_MARK = "__muckrack_hmr_browser__"


class BrowserWSGI:
    """A WSGI application: ``app`` with the event stream and the script."""

    def __init__(self, app: _App, events: Events) -> None:
        self.app = app
        self.events = events
        setattr(self, _MARK, True)

    def __getattr__(self, name: str) -> object:
        # The wrapped app's attributes (a server may look at them).
        return getattr(self.app, name)

    def __call__(
        self, environ: dict[str, object], start_response: _StartResponse
    ) -> Iterable[bytes]:
        local = is_loopback(environ.get("REMOTE_ADDR"))
        if environ.get("PATH_INFO") == EVENTS_PATH:
            return self._events(local, environ, start_response)
        if not local or environ.get("REQUEST_METHOD") == "HEAD":
            return self.app(environ, start_response)
        held: list[tuple[str, list[tuple[str, str]], _ExcInfo | None]] = []
        returned = False

        def holding(
            status: str, headers: list[tuple[str, str]], exc_info: _ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            # Held only when called before the app returned: one that starts its
            # response lazily, as it is iterated, streams.
            if not returned and _rewritable(headers):
                held[:] = [(status, headers, exc_info)]
                return _no_write
            held.clear()
            return start_response(status, headers, exc_info)

        body = self.app(environ, holding)
        returned = True
        if not held:
            return body  # not a page we rewrite: started already, streamed as it comes
        status, headers, exc_info = held[0]
        length = _header(headers, "content-length")
        whole = length is not None or isinstance(body, (list, tuple))
        if not whole and getattr(body, "streaming", None) is False:
            whole = True  # Django's HttpResponse: its content is in memory
        if not whole or (length is not None and length.isdigit() and int(length) > MAX_BODY):
            start_response(status, headers, exc_info)
            return body
        try:
            content = b"".join(body)
        finally:
            close = getattr(body, "close", None)
            if callable(close):
                close()
        page = inject(content) if len(content) <= MAX_BODY else None
        if page is None:  # no </body>: a fragment, or no body at all (304)
            start_response(status, headers, exc_info)
            return [content]
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(page))))
        start_response(status, headers, exc_info)
        return [page]

    def _events(
        self, local: bool, environ: dict[str, object], start_response: _StartResponse
    ) -> Iterable[bytes]:
        if not local:
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"the hot-reload events are for this machine only\n"]
        if not environ.get("wsgi.multithread") and not environ.get("wsgi.multiprocess"):
            # One request at a time (app.run(threaded=False), runserver --nothreading):
            # a stream that never ends would hold the server.  204 tells the page's
            # EventSource not to come back.
            _warn_single_threaded()
            start_response("204 No Content", [])
            return []
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/event-stream"),
                ("Cache-Control", "no-cache"),
                ("X-Accel-Buffering", "no"),
            ],
        )
        return _Stream(stream(self.events))


class _Stream:
    """The stream's body; its ``close()`` (the page went away) ends the generator."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks

    def close(self) -> None:
        close = getattr(self.chunks, "close", None)
        if callable(close):
            close()


_warned: list[bool] = []


def _warn_single_threaded() -> None:
    if not _warned:
        _warned.append(True)
        log.warning(
            "--reload-browser: this server handles one request at a time; "
            "pages are not told about reloads (run it threaded)"
        )


def _no_write(data: bytes) -> object:
    raise RuntimeError("write() of a page being rewritten for --reload-browser")


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _rewritable(headers: list[tuple[str, str]]) -> bool:
    """An HTML page, not compressed (its bytes are what we add to)."""
    encoding = _header(headers, "content-encoding")
    return is_html(_header(headers, "content-type")) and encoding in (None, "", "identity")


def wrap(app: _App, events: Events) -> _App:
    """``app`` wrapped once (a server made twice does not wrap it twice)."""
    if getattr(app, _MARK, False):
        return app
    return BrowserWSGI(app, events)
