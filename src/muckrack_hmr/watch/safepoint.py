"""The watcher's safe point: a reload waits (a little) while another thread imports.

A module that another thread is importing may need the very definitions a
reload would replace; the reload thread waits for the import lock and for
other threads' imports in progress, up to ``IMPORT_PATIENCE``.
"""

from __future__ import annotations

import _imp
import logging
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

__all__ = ["IMPORT_PATIENCE", "SafePoint", "import_frame"]

log = logging.getLogger(__name__)

#: How long a reload waits for another thread's import to finish.
IMPORT_PATIENCE = 2.0
_IMPORT_RETRY = 0.002


class SafePoint:
    """Waits until no other thread is in the middle of an import, or gives up."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._long_imports: set[tuple[int, int]] = set()

    def wait(self) -> None:
        """Wait (a little) while another thread imports: its module may need what we'd replace."""
        deadline = self.clock() + IMPORT_PATIENCE
        while True:
            locked = _imp.lock_held()
            importing = None if locked else self.other_thread_importing()
            if not locked and importing is None:
                return
            if self.clock() >= deadline:
                if importing is not None:
                    # A thread that stays in an import (a module that runs a
                    # server at import time) is not waited for again.
                    self._long_imports.add(importing)
                log.debug("another thread is still importing; reloading anyway")
                return
            time.sleep(_IMPORT_RETRY)

    def other_thread_importing(self) -> tuple[int, int] | None:
        """(thread id, frame id) of another thread's import in progress, if any."""
        me = threading.get_ident()
        for ident, top in sys._current_frames().items():
            if ident == me:
                continue
            frame = import_frame(top)
            if frame is not None:
                key = (ident, id(frame))
                if key not in self._long_imports:
                    return key
        return None


def import_frame(top: FrameType | None) -> FrameType | None:
    """The frame of the import in progress in a thread whose top frame is ``top``, if any.

    The thread runs on while its frames are read (the interpreter may switch between
    two reads), and on CPython 3.11 a frame it left meanwhile may read as garbage
    (``f_code`` a dict): then ``top`` itself is taken for an import in progress, so that
    the caller looks again rather than fork or reload in the middle of one."""
    frame = top
    try:
        while frame is not None:
            code = frame.f_code
            if code.co_name == "_find_and_load" and code.co_filename.startswith(
                "<frozen importlib"
            ):
                return frame
            frame = frame.f_back
    except (AttributeError, TypeError, ValueError):
        return top
    return None
