"""The channel's messages: length-prefixed ``marshal`` frames over a Unix stream socket.

``marshal`` carries the plain data we send (dicts, lists, strings, bytes,
numbers) faster than ``pickle`` and never runs code when it loads.

Where the socket lives (:func:`listen`): on Linux, in the abstract namespace
(a name, no file), so that a supervisor killed with SIGKILL leaves nothing
behind; anyone may connect to an abstract name, so the hub closes a
connection whose peer is not our user (``SO_PEERCRED``).  Elsewhere, in a
folder only the user can enter (``tempfile.mkdtemp``); the folders of dead
supervisors are removed by the next one.

Messages (dicts, ``op`` says which):

* ``hello`` (child -> supervisor): ``pid``, ``seq`` (the last save its code
  reflects: what it inherited at fork, or what was on disk when it started);
* ``apply`` (supervisor -> child): ``seq``, ``names``, ``forced``,
  ``sources`` (module -> the judged bytes), ``catch_up`` (saves it missed);
* ``done`` (child -> supervisor): ``seq``, ``pid`` and the outcome.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import secrets
import shutil
import socket
import struct
import sys
import tempfile
import time

__all__ = ["Frames", "Message", "describe", "listen", "peer_is_us", "send", "sweep_stale_folders"]

Message = dict[str, object]

_HEADER = struct.Struct("!I")
_PREFIX = "muckrack-hmr-"
# Only Linux has the abstract namespace (and SO_PEERCRED to go with it).
ABSTRACT = sys.platform.startswith("linux") and hasattr(socket, "SO_PEERCRED")
# A folder younger than this may be a live supervisor's that is not listening yet.
_STALE_AFTER = 60.0


def listen() -> tuple[socket.socket, str, str | None]:
    """A listening Unix socket for a new hub: the socket, its address, its folder (or None)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if ABSTRACT:
            address = f"\0{_PREFIX}{os.getpid()}-{secrets.token_hex(8)}"
            folder = None
        else:
            sweep_stale_folders(tempfile.gettempdir())
            folder = tempfile.mkdtemp(prefix=_PREFIX)  # only the user may enter it
            address = os.path.join(folder, "channel")
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock, address, folder


def peer_is_us(sock: socket.socket) -> bool:
    """Is the process at the other end of ``sock`` our user's (always, without SO_PEERCRED)?"""
    if not ABSTRACT:
        return True  # the folder's permissions let no one else reach the socket
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return bool(uid == os.getuid())


def sweep_stale_folders(temp: str, now: float | None = None) -> list[str]:
    """Remove the socket folders in ``temp`` that our user's dead supervisors left; their paths.

    A folder is stale when nothing listens on its socket any more, and it is
    older than a minute (a new one may not be listening yet).
    """
    now = time.time() if now is None else now
    removed: list[str] = []
    with contextlib.suppress(OSError), os.scandir(temp) as entries:
        for entry in entries:
            if not entry.name.startswith(_PREFIX) or not entry.is_dir(follow_symlinks=False):
                continue
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                if info.st_uid != os.getuid() or now - info.st_mtime < _STALE_AFTER:
                    continue
                if _listening(os.path.join(entry.path, "channel")):
                    continue
                shutil.rmtree(entry.path)
                removed.append(entry.path)
    return removed


def _listening(address: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(address)
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except OSError:
            return True  # not ours to judge: leave it
        return True


def describe(address: str) -> str:
    """``address`` as ``ss -x`` shows it: an abstract name starts with ``@``."""
    return "@" + address[1:] if address.startswith("\0") else address


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
