"""Where file events come from: inotify or watchdog (checked, the default), polling, watchfiles.

Every backend has the same small interface (:class:`Backend`, here with the
kinds of change it reports) and a module of its own: it watches folders, not
trees (``watch(folder)`` is never recursive), and reports each change as
``sink(path, kind)`` from a thread of its own.  The watcher decides what a
change means; a backend only reports.  :func:`choose_backend` is the one
place that picks one, for the CLI, ``HMR.watch`` and ``pytest --hmr``.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from .base import (
    BACKENDS,
    CLOSED,
    CREATED,
    DEFAULT_POLL_INTERVAL,
    DELETED,
    FOLDER,
    FORCE_POLLING_ENV,
    MODIFIED,
    MOVED_AWAY,
    TOUCHED,
    Backend,
    BackendUnavailable,
    Sink,
    force_polling_requested,
)

__all__ = [
    "BACKENDS",
    "CLOSED",
    "CREATED",
    "DEFAULT_POLL_INTERVAL",
    "DELETED",
    "FOLDER",
    "FORCE_POLLING_ENV",
    "MODIFIED",
    "MOVED_AWAY",
    "TOUCHED",
    "Backend",
    "BackendUnavailable",
    "CheckedBackend",
    "InotifyBackend",
    "PollingBackend",
    "Sink",
    "WatchdogBackend",
    "WatchfilesBackend",
    "check_available",
    "choose_backend",
    "force_polling_requested",
]

log = logging.getLogger(__name__)


def _is_wsl(release: str) -> bool:
    return "microsoft" in release.lower()


def windows_drive_mounts(mounts_text: str) -> list[str]:
    """Mount points of WSL's Windows drives (drvfs, or 9p in WSL 2) in ``/proc/mounts``."""
    points = []
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] in ("drvfs", "9p", "v9fs"):
            points.append(fields[1].replace("\\040", " "))
    return points


def needs_polling_on_wsl(roots: Iterable[str], release: str, mounts_text: str) -> bool:
    """On WSL, a root on a Windows drive gets no inotify events for edits made from Windows."""
    if not _is_wsl(release):
        return False
    mounts = windows_drive_mounts(mounts_text)
    return any(
        root == point or root.startswith(point.rstrip("/") + "/")
        for root in roots
        for point in mounts
    )


def _read_mounts() -> str:
    try:
        with open("/proc/mounts", encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def check_available(requested: str) -> None:
    """Raise :class:`BackendUnavailable` now for a backend asked for by name that
    cannot run here (its package missing, inotify off Linux), or ValueError for an
    unknown name: the watcher makes its backend later, on its own thread, where an
    error could only be logged while the program ran on without hot reload."""
    if requested not in BACKENDS:
        raise ValueError(f"unknown backend {requested!r} (one of {', '.join(BACKENDS)})")
    if requested in ("watchfiles", "watchdog"):
        try:
            importlib.import_module(requested)  # what the backend will need (asked for)
        except ImportError:
            raise BackendUnavailable.missing(requested) from None
    elif requested == "inotify" and not sys.platform.startswith("linux"):
        raise BackendUnavailable("inotify is Linux's")


def choose_backend(
    requested: str = "auto",
    *,
    poll_interval: float | None = None,
    roots: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> tuple[Backend, str]:
    """The backend to use, and why (for the log).

    ``poll_interval`` (``--poll``) and ``MUCKRACK_HMR_FORCE_POLLING`` force
    polling.  ``auto`` is inotify on Linux and watchdog elsewhere, checked
    against a slow listing, except on WSL for a project on a Windows drive.
    Raises :class:`BackendUnavailable` or ValueError.
    """
    from .checked import CheckedBackend
    from .inotify import InotifyBackend
    from .polling import PollingBackend
    from .watchdog import WatchdogBackend
    from .watchfiles import WatchfilesBackend

    if requested not in BACKENDS:
        raise ValueError(f"unknown backend {requested!r} (one of {', '.join(BACKENDS)})")
    environ = os.environ if environ is None else environ
    if poll_interval is not None:
        return PollingBackend(poll_interval), "--poll"
    if force_polling_requested(environ):
        return PollingBackend(), f"{FORCE_POLLING_ENV} is set"
    if requested == "polling":
        return PollingBackend(), "asked for"
    if requested == "watchfiles":
        return WatchfilesBackend(), "asked for"
    if requested == "watchdog":
        return WatchdogBackend(), "asked for"  # its events as they come, unchecked
    if requested == "inotify":
        return InotifyBackend(), "asked for"
    if (
        requested == "auto"
        and sys.platform.startswith("linux")
        and needs_polling_on_wsl(roots, _kernel_release(), _read_mounts())
    ):
        # WSL serves the Windows drives (/mnt/c...) through drvfs/9p, which
        # delivers no inotify events for files changed from the Windows side:
        # an editor running on Windows would never be seen.
        return PollingBackend(), "the project is on a Windows drive under WSL"
    if sys.platform.startswith("linux"):
        try:
            # One descriptor and one thread for every folder; watchdog takes a
            # thread and an inotify instance per folder (see .inotify).
            return CheckedBackend(InotifyBackend()), "the default"
        except BackendUnavailable as exc:
            log.debug("no inotify (%s): watchdog instead", exc)
    return CheckedBackend(WatchdogBackend()), "the default"


def _kernel_release() -> str:
    # os.uname, not platform.uname: the same string, without importing platform
    # (a few ms, on the watcher's thread as the program's start-up ends).
    return os.uname().release


# Each backend in its own module, imported when it is first asked for: the CLI
# reads the names and defaults above at start-up, and needs no backend until its
# watcher starts.
_MODULES = {
    "CheckedBackend": "checked",
    "InotifyBackend": "inotify",
    "PollingBackend": "polling",
    "WatchdogBackend": "watchdog",
    "WatchfilesBackend": "watchfiles",
}

if TYPE_CHECKING:
    from .checked import CheckedBackend
    from .inotify import InotifyBackend
    from .polling import PollingBackend
    from .watchdog import WatchdogBackend
    from .watchfiles import WatchfilesBackend


def __getattr__(name: str) -> type[Backend]:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    found: type[Backend] = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    return found
