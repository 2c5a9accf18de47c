"""What the program's threads run now: the names a call already running may still read.

A save changes a module while other threads may be in the middle of a call to
its code: that call finishes with its old code, which may read a name (or call
a method) the edit removed.  The reload keeps those until nothing running reads
them (see reloader and patching).
"""

from __future__ import annotations

import sys
import threading
import types

__all__ = ["read_by_running_code"]


def read_by_running_code(namespace: dict[str, object]) -> set[str]:
    """The names of the module that code running now in other threads may read: a call
    already running finishes with its old code, which may need a name the edit removed.
    Its own code's globals, and attributes any code spells (``config.LR`` in another
    module's function, paused between two modules saved together, mid-way in the line
    that reads it: that module's new code no longer reads it, its running call does)."""
    me = threading.get_ident()
    names: set[str] = set()
    for ident, top in sys._current_frames().items():
        frame: types.FrameType | None = top
        depth = 0
        while ident != me and frame is not None and depth < _STACK_LOOKED_AT:
            names.update(frame.f_code.co_names)
            frame, depth = frame.f_back, depth + 1
    return names


# How deep another thread's stack is looked at for the module's running code.
_STACK_LOOKED_AT = 64
