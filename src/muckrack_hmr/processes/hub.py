"""The supervisor's end of the channel: a Unix socket every process of the tree connects to.

One thread waits in ``select`` (no timeout: nothing runs while nothing is
said) for new processes, their ``hello`` and their answers.  The watcher's
thread broadcasts each save and waits, with a deadline, for the answers.

Every save gets a sequence number.  A process says in its ``hello`` which
save its code reflects (a fork child inherits its parent's number with its
modules; a spawned child is told the number current when it was started,
and reads newer code from disk anyway), and is sent what it missed since in
one ``apply``: a process forked just before a save, that connects just
after its broadcast, still runs the new code.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from .. import collector
from ..threads import signals_to_main_thread
from .channel import Frames, Message, listen, peer_is_us, receive, send

__all__ = ["Hub"]

log = logging.getLogger(__name__)

# How long a peer that does not read may hold up a broadcast.
_SEND_TIMEOUT = 5.0


class _Peer:
    __slots__ = ("answers", "frames", "pid", "seq", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.frames = Frames()
        self.pid = 0  # 0 until its hello
        self.seq = 0
        self.answers: dict[int, Message] = {}


class Hub:
    """Broadcasts saves to the processes connected to it, and gathers their answers."""

    def __init__(self) -> None:
        #: the socket's folder, where it is a file (not on Linux: see :func:`.channel.listen`)
        self.folder: str | None
        self.listener, self.address, self.folder = listen()
        #: the last save broadcast
        self.seq = 0
        #: the last save this process applied (what a fork child inherits)
        self.applied = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._peers: dict[int, _Peer] = {}  # file descriptor -> peer
        # What each save changed, the latest per module: the catch-up of a late process.
        self._names_at: dict[str, int] = {}
        self._sources: dict[str, tuple[int, bytes]] = {}
        self._forced_at: dict[str, int] = {}
        #: called on the hub's thread with ``[path, name, stat]`` of modules a process loaded
        self.on_loaded: Callable[[list[object]], None] | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._closed = False
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.listener, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._thread = threading.Thread(
            target=collector.ours(self._run), name="muckrack-hmr-hub", daemon=True
        )
        with signals_to_main_thread():
            self._thread.start()

    # -- the hub's thread -----------------------------------------------------------

    def _run(self) -> None:
        while not self._closed:
            for key, _ in self._selector.select():
                sock = key.fileobj
                if sock is self.listener:
                    self._accept()
                elif sock is self._wake_r:
                    return
                elif isinstance(sock, socket.socket):
                    self._read(sock)

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except OSError:
            return
        try:
            ours = peer_is_us(sock)
        except OSError:
            ours = False
        if not ours:
            log.warning("refused a connection to the reloads from another user")
            sock.close()
            return
        sock.settimeout(_SEND_TIMEOUT)
        with self._lock:
            self._peers[sock.fileno()] = _Peer(sock)
        self._selector.register(sock, selectors.EVENT_READ)

    def _read(self, sock: socket.socket) -> None:
        peer = self._peers.get(sock.fileno())
        if peer is None:
            return
        messages = receive(sock, peer.frames)
        if messages is None:
            self._drop(peer)
            return
        for message in messages:
            op = message.get("op")
            if op == "hello":
                self._hello(peer, message)
            elif op == "loaded":
                modules = message.get("modules")
                if isinstance(modules, list) and self.on_loaded is not None:
                    self.on_loaded(modules)
            elif op == "done":
                with self._changed:
                    seq = int(str(message.get("seq", 0)))
                    if message.get("catch_up"):
                        _log_catch_up(peer.pid, message)
                    else:
                        peer.answers[seq] = message
                        self._changed.notify_all()

    def _hello(self, peer: _Peer, message: Message) -> None:
        with self._lock:
            peer.pid = int(str(message.get("pid", 0)))
            peer.seq = int(str(message.get("seq", 0)))
            log.debug("process %d joined (at save %d of %d)", peer.pid, peer.seq, self.seq)
            if peer.seq < self.seq:
                self._send(peer, self._catch_up(peer.seq))

    def _catch_up(self, since: int) -> Message:
        """Everything saved after save ``since``, as one apply."""
        names = sorted((seq, name) for name, seq in self._names_at.items() if seq > since)
        return {
            "op": "apply",
            "seq": self.seq,
            "catch_up": True,
            "names": [name for _, name in names],
            "forced": [name for name, seq in self._forced_at.items() if seq > since],
            "sources": {
                name: source for name, (seq, source) in self._sources.items() if seq > since
            },
        }

    def _drop(self, peer: _Peer) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(peer.sock)
        with self._changed:
            for fd, known in list(self._peers.items()):
                if known is peer:
                    del self._peers[fd]
            self._changed.notify_all()
        if peer.pid:
            log.debug("process %d left", peer.pid)
        peer.sock.close()

    def _send(self, peer: _Peer, message: Message) -> bool:
        """Send under the lock; a peer gone (or stuck) is dropped by the hub's thread."""
        try:
            send(peer.sock, message)
        except OSError as exc:
            log.debug("process %d cannot be reached (%s)", peer.pid, exc)
            with contextlib.suppress(OSError):
                peer.sock.shutdown(socket.SHUT_RDWR)  # the hub's thread sees the end
            return False
        return True

    # -- the watcher's side -------------------------------------------------------

    def broadcast(
        self, names: Iterable[str], forced: Iterable[str], sources: Mapping[str, bytes]
    ) -> tuple[int, list[int]]:
        """Send a save to every process: its number, and the PIDs it was sent to."""
        with self._lock:
            self.seq += 1
            seq = self.seq
            names = list(names)
            forced = list(forced)
            for name in names:
                self._names_at[name] = seq
            for name in forced:
                self._forced_at[name] = seq
            for name, source in sources.items():
                self._sources[name] = (seq, source)
            message: Message = {
                "op": "apply",
                "seq": seq,
                "names": names,
                "forced": forced,
                "sources": dict(sources),
            }
            sent = [
                peer.pid
                for peer in list(self._peers.values())
                if peer.pid and self._send(peer, message)
            ]
        return seq, sent

    def collect(
        self, seq: int, pids: Iterable[int], timeout: float
    ) -> tuple[list[Message], list[int]]:
        """The answers to save ``seq`` of ``pids`` (those that are still there), and the PIDs
        that did not answer within ``timeout``."""
        wanted = set(pids)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                alive = {peer.pid: peer for peer in self._peers.values() if peer.pid in wanted}
                waiting = [pid for pid, peer in alive.items() if seq not in peer.answers]
                remaining = deadline - time.monotonic()
                if not waiting or remaining <= 0:
                    break
                self._changed.wait(remaining)
            answers = [peer.answers.pop(seq) for peer in alive.values() if seq in peer.answers]
        return answers, sorted(waiting)

    @property
    def pids(self) -> list[int]:
        """The processes connected now."""
        with self._lock:
            return sorted(peer.pid for peer in self._peers.values() if peer.pid)

    def close(self) -> None:
        """Stop the hub's thread, close every connection, remove the socket's folder (if any)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        for peer in list(self._peers.values()):
            peer.sock.close()
        for sock in (self.listener, self._wake_r, self._wake_w):
            sock.close()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def forget_in_child(self) -> None:
        """In a fork child: close this process's copies of the hub's sockets (no thread runs)."""
        self._closed = True
        for peer in list(self._peers.values()):
            peer.sock.close()
        for sock in (self.listener, self._wake_r, self._wake_w):
            sock.close()
        with contextlib.suppress(Exception):
            self._selector.close()


def _log_catch_up(pid: int, message: Message) -> None:
    failed = message.get("failed")
    if failed:
        log.debug("process %d caught up with failures: %s", pid, failed)
    else:
        log.debug("process %d caught up: %s", pid, message.get("summary") or "nothing to run")
