"""A worker process's end of the channel: it applies each save it is sent, at its safe point.

A thread of its own waits on the socket (blocked in ``recv``: no polling),
waits for the process's safe point (no import in progress,
:mod:`~muckrack_hmr.watch.safepoint`), applies the judged bytes in one
transaction of the engine (patching in place, early cutoff, per-module
atomicity, as in a single process), and answers with what it did.  Only the
modules this process has loaded are applied: one it imports later comes
from disk, where the save already is.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from types import CodeType
from typing import TYPE_CHECKING

from .. import collector, tracking
from ..threads import prompt, signals_to_main_thread
from .channel import Frames, Message, receive, send
from .locks import reload_lock
from .outcomes import CAPTURE, outcome_message

if TYPE_CHECKING:
    from ..api import HMR

__all__ = ["Member"]

log = logging.getLogger(__name__)

# The longest the exit waits for a save being applied (see Member.close).
_CLOSE_PATIENCE = 5.0


def _names(value: object) -> list[str]:
    return [str(name) for name in value] if isinstance(value, list) else []


class Member:
    """This process, connected to the supervisor's hub at ``address``."""

    def __init__(self, hmr: HMR, address: str, applied: int) -> None:
        self.hmr = hmr
        self.address = address
        #: the last save this process's code reflects (a fork child inherits it)
        self.applied = applied
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(address)
        self._sending = threading.Lock()  # the reader thread and the importing threads
        # Held while a save is applied: at exit, the process waits for it (see close).
        self._applying = threading.Lock()
        self._closed = False
        self._loaded_told = 0
        send(self.sock, {"op": "hello", "pid": os.getpid(), "seq": applied})
        self.tell_loaded()
        capture = tracking.capture()
        if capture is not None and self._tell_loaded_on_import not in capture.listeners:
            capture.listeners.append(self._tell_loaded_on_import)
        self._thread = threading.Thread(
            target=collector.ours(self._serve), name="muckrack-hmr-member", daemon=True
        )
        with signals_to_main_thread():
            self._thread.start()
        # What the supervisor's watcher does while its program rests (recording the
        # imports, keeping the sources, indexing what import-time code calls), this
        # process does while it rests: its first save then costs what a later one
        # does, not the bookkeeping of every module it imported.
        hmr.work_when_idle()

    def tell_loaded(self) -> None:
        """Tell the supervisor the project modules loaded here since the last call.

        It watches their files too: a module that only the workers import
        (the app of ``uvicorn --workers``) is judged there all the same.
        """
        loaded = self.hmr.project.loaded
        if len(loaded) == self._loaded_told:
            return
        with self._sending:
            new = list(dict(loaded).items())[self._loaded_told :]  # (see loaded_modules)
            self._loaded_told += len(new)
            modules = [
                [path, name, list(stat) if stat is not None else None]
                for path, (name, stat) in new
                if name != "__main__"
            ]
            if modules:
                self._send({"op": "loaded", "modules": modules})

    def _tell_loaded_on_import(self, _code: CodeType, _cached: bytes | None) -> None:
        self.tell_loaded()

    def _send(self, message: Message) -> None:
        try:
            send(self.sock, message)
        except OSError:
            log.debug("the supervisor is gone")

    def _serve(self) -> None:
        from ..watch.safepoint import SafePoint

        safe_point = SafePoint()
        frames = Frames()
        while True:
            messages = receive(self.sock, frames)
            if messages is None:
                return  # the supervisor is gone: this process runs on as it is
            for message in messages:
                if message.get("op") == "apply":
                    with self._applying:
                        if self._closed:
                            return  # the process exits
                        # A worker that computes (serving) hands the interpreter back
                        # within 1 ms each time this thread blocks (see threads.prompt).
                        prompt.begin()
                        try:
                            safe_point.wait()
                            self._apply(message)
                        finally:
                            prompt.end()

    def close(self) -> None:
        """At exit: the save being applied is finished, and no other begins (a thread of
        ours the interpreter's exit stopped in a reload would hold the engine's locks
        and the import lock: see HMR._close_at_exit)."""
        self._closed = True
        if self._applying.acquire(timeout=_CLOSE_PATIENCE):
            self._applying.release()

    def _apply(self, message: Message) -> None:
        seq = int(str(message.get("seq", 0)))
        loaded = sys.modules
        names = [name for name in _names(message.get("names")) if name in loaded]
        forced = [name for name in _names(message.get("forced")) if name in loaded]
        given = message.get("sources")
        sources = (
            {str(k): v for k, v in given.items() if isinstance(v, bytes)}
            if isinstance(given, dict)
            else {}
        )
        reloader = self.hmr.reloader
        with CAPTURE.collecting() as records, reload_lock(self.hmr):
            result = reloader.reload_result(names, force=forced, sources=sources)
            self.applied = max(self.applied, seq)
        answer = outcome_message(seq, os.getpid(), result, records)
        if message.get("catch_up"):
            answer["catch_up"] = True
        with self._sending:
            self._send(answer)

    def forget_in_child(self) -> None:
        """In a fork child: close this process's copy of the socket (its thread is not here)."""
        capture = tracking.capture()
        if capture is not None and self._tell_loaded_on_import in capture.listeners:
            capture.listeners.remove(self._tell_loaded_on_import)
        self.sock.close()
