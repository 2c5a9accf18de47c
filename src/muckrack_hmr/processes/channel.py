"""The channel's messages: length-prefixed ``marshal`` frames over a Unix stream socket.

``marshal`` carries the plain data we send (dicts, lists, strings, bytes,
numbers) faster than ``pickle`` and never runs code when it loads.  The
socket lives in a folder only the user can enter (``tempfile.mkdtemp``).

Messages (dicts, ``op`` says which):

* ``hello`` (child -> supervisor): ``pid``, ``seq`` (the last save its code
  reflects: what it inherited at fork, or what was on disk when it started);
* ``apply`` (supervisor -> child): ``seq``, ``names``, ``forced``,
  ``sources`` (module -> the judged bytes), ``catch_up`` (saves it missed);
* ``done`` (child -> supervisor): ``seq``, ``pid`` and the outcome.
"""

from __future__ import annotations

import marshal
import socket
import struct

__all__ = ["Frames", "Message", "send"]

Message = dict[str, object]

_HEADER = struct.Struct("!I")


def send(sock: socket.socket, message: Message) -> None:
    """Send one message (blocking; a closed peer raises OSError)."""
    body = marshal.dumps(message)
    sock.sendall(_HEADER.pack(len(body)) + body)


class Frames:
    """Bytes in from one socket, whole messages out."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        """Add ``data``; the messages now complete."""
        self._buffer += data
        messages: list[Message] = []
        buffer = self._buffer
        while len(buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer)
            end = _HEADER.size + size
            if len(buffer) < end:
                break
            message = marshal.loads(bytes(buffer[_HEADER.size : end]))
            del buffer[:end]
            if isinstance(message, dict):
                messages.append(message)
        return messages


def receive(sock: socket.socket, frames: Frames) -> list[Message] | None:
    """The messages of the next read from ``sock`` (blocking); None at its end."""
    try:
        data = sock.recv(1 << 16)
    except OSError:
        return None
    if not data:
        return None
    return frames.feed(data)
