"""The ASGI side of ``--reload-browser``: the event stream, and the script in HTML pages.

:class:`BrowserASGI` wraps the application uvicorn serves (FastAPI,
Starlette, any ASGI app).  It answers :data:`~.page.EVENTS_PATH` itself (the
stream waits for events in a thread, the event loop stays free), and adds
the script to a response that is HTML, not compressed and of a declared
``Content-Length`` (Starlette's ``HTMLResponse``, a template's response):
its body is held until its last part, then sent with the script and the new
length.  A response of no declared length streams: it passes untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING

from .events import KEEPALIVE, Events
from .page import EVENTS_PATH, inject, is_html, is_loopback
from .wsgi import MAX_BODY

if TYPE_CHECKING:
    _Message = MutableMapping[str, object]
    _Receive = Callable[[], Awaitable[_Message]]
    _Send = Callable[[_Message], Awaitable[None]]
    _App = Callable[[MutableMapping[str, object], _Receive, _Send], Awaitable[None]]

__all__ = ["BrowserASGI", "wrap"]

_MARK = "__muckrack_hmr_browser__"


def _headers(message: _Message) -> list[tuple[bytes, bytes]]:
    raw = message.get("headers")
    if not isinstance(raw, (list, tuple)):
        return []
    return [(bytes(k).lower(), bytes(v)) for k, v in raw]


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


class BrowserASGI:
    """An ASGI application: ``app`` with the event stream and the script."""

    def __init__(self, app: _App, events: Events) -> None:
        self.app = app
        self.events = events
        setattr(self, _MARK, True)

    def __getattr__(self, name: str) -> object:
        return getattr(self.app, name)

    async def __call__(
        self, scope: MutableMapping[str, object], receive: _Receive, send: _Send
    ) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        local = isinstance(client, (list, tuple)) and bool(client) and is_loopback(client[0])
        if scope.get("path") == EVENTS_PATH:
            await self._events(local, receive, send)
            return
        if not local or scope.get("method") == "HEAD":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _Rewriting(send))

    async def _events(self, local: bool, receive: _Receive, send: _Send) -> None:
        if not local:
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [(b"content-type", b"text/plain")],
                }
            )
            body = b"the hot-reload events are for this machine only\n"
            await send({"type": "http.response.body", "body": body})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        events = self.events
        # Woken by the publishing thread: no thread waits for a page.  Listening
        # before the stream's start is taken: an event in between is not missed.
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def poke() -> None:
            loop.call_soon_threadsafe(wake.set)

        events.add_listener(poke)
        seen, first = events.opening()
        try:
            await send({"type": "http.response.body", "body": first, "more_body": True})
        except BaseException:
            events.remove_listener(poke)
            raise
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            while True:
                waiter = asyncio.ensure_future(wake.wait())
                done, _pending = await asyncio.wait(
                    {waiter, gone}, timeout=KEEPALIVE, return_when=asyncio.FIRST_COMPLETED
                )
                waiter.cancel()
                if gone in done:
                    return
                wake.clear()
                fresh = events.after(seen, 0)
                if fresh is None:
                    break  # the server stops
                if fresh:
                    seen = fresh[-1].id
                body = b"".join(event.encode() for event in fresh) or b": keep-alive\n\n"
                await send({"type": "http.response.body", "body": body, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the connection is gone
        finally:
            events.remove_listener(poke)
            gone.cancel()


async def _disconnected(receive: _Receive) -> None:
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            return


class _Rewriting:
    """The ``send`` of one response: an HTML page of known length is held and rewritten."""

    def __init__(self, send: _Send) -> None:
        self.send = send
        self.start: _Message | None = None
        self.parts: list[bytes] = []

    async def __call__(self, message: _Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start":
            headers = _headers(message)
            length = _header(headers, b"content-length")
            encoding = _header(headers, b"content-encoding")
            if (
                is_html(_header(headers, b"content-type"))
                and encoding in (None, "", "identity")
                and length is not None
                and length.isdigit()
                and int(length) <= MAX_BODY
            ):
                self.start = message
                return
        elif kind == "http.response.body" and self.start is not None:
            body = message.get("body")
            self.parts.append(bytes(body) if isinstance(body, (bytes, bytearray)) else b"")
            if message.get("more_body"):
                return
            start, self.start = self.start, None
            content = b"".join(self.parts)
            page = inject(content)
            if page is None:  # no </body>: a fragment, or no body at all (304)
                await self.send(start)
                await self.send({"type": "http.response.body", "body": content})
                return
            headers = [(k, v) for k, v in _headers(start) if k != b"content-length"]
            headers.append((b"content-length", str(len(page)).encode()))
            await self.send({**start, "headers": headers})
            await self.send({"type": "http.response.body", "body": page, "more_body": False})
            return
        await self.send(message)


def wrap(app: _App, events: Events) -> _App:
    """``app`` wrapped once."""
    if getattr(app, _MARK, False):
        return app
    return BrowserASGI(app, events)
