"""Turning an exception raised by user code into a message about user code."""

from __future__ import annotations

import functools
import os
import traceback
from types import FrameType, TracebackType

__all__ = ["first_line", "location_of", "strip_own_frames", "user_traceback"]

_PACKAGE_DIR = os.path.dirname(os.path.realpath(__file__))
# Frames of the import machinery are noise in a user's traceback too.
_NOISE = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


def _is_own_frame(frame: FrameType) -> bool:
    filename = frame.f_code.co_filename
    if filename in _NOISE:
        return True
    # Compiled frames carry a relative file name; their module name tells.
    name = frame.f_globals.get("__name__")
    if isinstance(name, str) and (name == "muckrack_hmr" or name.startswith("muckrack_hmr.")):
        return True
    return os.path.realpath(filename).startswith(_PACKAGE_DIR + os.sep)


def strip_own_frames(tb: TracebackType | None) -> TracebackType | None:
    """The traceback without the frames of muckrack_hmr and importlib, wherever they are."""
    kept: list[TracebackType] = []
    while tb is not None:
        if not _is_own_frame(tb.tb_frame):
            kept.append(tb)
        tb = tb.tb_next
    result: TracebackType | None = None
    for entry in reversed(kept):
        result = TracebackType(result, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return result


@functools.cache
def _library_prefixes() -> tuple[str, ...]:
    """Where the standard library and installed packages are (asked for when first needed)."""
    import sysconfig

    paths = sysconfig.get_paths()
    found = {
        os.path.realpath(paths[key]) + os.sep
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
        if key in paths
    }
    return tuple(sorted(found))


def _is_library(filename: str) -> bool:
    if filename.startswith("<"):
        return True  # <frozen ...>, <string>: not a file the user edits
    path = os.path.realpath(filename)
    parts = path.split(os.sep)
    if path.startswith(_library_prefixes()):
        return True
    return "site-packages" in parts or "dist-packages" in parts


def location_of(exc: BaseException) -> str:
    """``file:line`` of the syntax error, or of the innermost frame in the user's code.

    An error raised inside the standard library or an installed package
    (``json.loads`` of bad text, a framework refusing a call) is located where
    the user's code called it; the traceback shows the rest.
    """
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    innermost = user = ""
    tb = exc.__traceback__
    while tb is not None:
        if not _is_own_frame(tb.tb_frame):
            filename = tb.tb_frame.f_code.co_filename
            innermost = f"{filename}:{tb.tb_lineno}"
            if not _is_library(filename):
                user = innermost
        tb = tb.tb_next
    if not innermost and isinstance(exc, OSError):
        # The engine could not read the file (a folder now, held open for writing).
        path = exc.filename if isinstance(exc.filename, str) else getattr(exc, "path", None)
        if isinstance(path, str):
            return path
    return user or innermost or "<unknown>"


def first_line(exc: BaseException) -> str:
    """The exception's message on one line (the traceback that follows has all of it).

    A syntax error's without its ``(file, line N)``: the location is given already.
    """
    message = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    lines = message.strip().splitlines()
    if not lines:
        return ""
    return lines[0] + (" [...]" if len(lines) > 1 else "")


def user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` as Python would print it, minus our frames."""
    if isinstance(exc, SyntaxError):
        return "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
    tb = strip_own_frames(exc.__traceback__)
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()
