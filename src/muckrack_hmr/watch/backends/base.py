"""The interface every backend has (:class:`Backend`), and the kinds of change it reports.

A module of its own, below the package and every backend: the package picks a
backend (:func:`~muckrack_hmr.watch.backends.choose_backend`) and each backend
module implements this, with no import going the other way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

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
    "Sink",
    "force_polling_requested",
]

# What happened to a path.
MODIFIED = "modified"  # written (maybe not finished: see CLOSED)
CREATED = "created"  # appeared: created, or renamed into place
DELETED = "deleted"
MOVED_AWAY = "moved-away"  # renamed to another name (a backup rename, say)
CLOSED = "closed"  # a writer closed it: what it wrote is complete
TOUCHED = "touched"  # metadata only (mtime, mode)
FOLDER = "folder"  # a folder appeared in a watched one: created, or renamed into place

Sink = Callable[[str, str], None]

BACKENDS = ("auto", "inotify", "watchdog", "polling", "watchfiles")
DEFAULT_POLL_INTERVAL = 0.1  # seconds
FORCE_POLLING_ENV = "MUCKRACK_HMR_FORCE_POLLING"


class BackendUnavailable(Exception):
    """The backend asked for cannot run here (watchfiles not installed...)."""

    @classmethod
    def missing(cls, package: str) -> BackendUnavailable:
        """The backend of the same name as ``package``, not installed."""
        return cls(f"the {package} backend needs the {package} package (pip install {package})")


class Backend:
    """Reports changes to the files of a set of folders (non-recursively)."""

    name = "backend"
    #: Does it report CLOSED when a writer closes a file?  Then a file that is
    #: written but not closed yet is known to be incomplete.
    reports_close = False

    def start(self, sink: Sink) -> None:
        """Start reporting changes to ``sink(path, kind)``, from another thread."""
        raise NotImplementedError

    def watch(self, folder: str) -> None:
        """Also watch ``folder`` (not its subfolders); OSError when the OS refuses."""
        raise NotImplementedError

    def rewatch(self, folder: str) -> None:
        """``folder`` was deleted and made again: watch the new one."""
        self.watch(folder)

    def stop(self) -> None:
        """Stop reporting; idempotent."""
        raise NotImplementedError

    def catch_up(self) -> None:
        """Report now what the OS has queued of the changes made so far (by this thread too).

        A backend whose events come from a queue of the kernel's (inotify) reads
        it here, on the caller's thread: a notebook's next cell then finds the
        save its last cell made.  Elsewhere nothing is queued that could be read
        sooner, and this does nothing.
        """

    def describe(self) -> str:
        """One line for the log: what watches, and how."""
        return self.name


def force_polling_requested(environ: Mapping[str, str]) -> bool:
    """``MUCKRACK_HMR_FORCE_POLLING`` set to anything but empty, 0, false or no."""
    value = environ.get(FORCE_POLLING_ENV, "").strip().lower()
    return value not in ("", "0", "false", "no", "off")
