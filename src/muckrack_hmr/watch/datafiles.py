"""Data files a module read while it was imported (``--watch-data``).

``CONFIG = json.load(open("config.json"))`` at the top of ``app/settings.py``
makes ``config.json`` part of what ``app.settings`` ran: when it changes, the
module must run again.  An audit hook (PEP 578, the core's ``add_open_audit_hook``) sees every
``open()``; an open for reading of a data file under the project roots is
credited to the innermost project module whose top-level code is running in
that thread (the module being imported, or re-executed by a reload), however
deep the call that opened it.  Opens made later, at run time (a template read
by a request handler), have no such frame and are ignored.

Audit hooks cannot be removed: after :meth:`DataFiles.stop` the hook stays
installed and returns at once.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from .._core import add_open_audit_hook
from .filters import PathFilter

__all__ = ["DEFAULT_DATA_SUFFIXES", "DataFiles"]

#: Files that ``--watch-data`` follows (``--include`` adds more).
DEFAULT_DATA_SUFFIXES = (
    ".json",
    ".toml",
    ".yaml",
    ".yml",
    ".ini",
    ".cfg",
    ".conf",
    ".txt",
    ".csv",
    ".html",
    ".htm",
    ".xml",
    ".jinja",
    ".jinja2",
    ".j2",
    ".tmpl",
    ".tpl",
    ".mako",
    ".sql",
)

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def _reads_only(mode: object, flags: object) -> bool:
    if isinstance(mode, str):
        return not any(char in mode for char in "wax+")
    return isinstance(flags, int) and not flags & _WRITE_FLAGS


class DataFiles:
    """Which project modules read which data files at import time."""

    def __init__(
        self,
        roots: Iterable[str],
        excluded_dirs: Iterable[str],
        is_project_module: Callable[[str], bool],
        *,
        suffixes: Iterable[str] = DEFAULT_DATA_SUFFIXES,
        filter: PathFilter | None = None,
    ) -> None:
        self.roots = tuple(root.rstrip(os.sep) + os.sep for root in roots)
        self.excluded = tuple(path.rstrip(os.sep) + os.sep for path in excluded_dirs)
        self.is_project_module = is_project_module
        self.suffixes = tuple(suffix.lower() for suffix in suffixes)
        self.filter = filter
        #: real path -> the modules that read it while they ran their top level.
        self.owners: dict[str, set[str]] = {}
        #: real path -> (mtime_ns, size) when it was first read: the watcher's
        #: baseline, so that a change before it looks at the file is not lost.
        self.baselines: dict[str, tuple[int, int] | None] = {}
        self._order: list[str] = []  # paths in the order they were first read
        self._lock = threading.Lock()

    # -- the hook -------------------------------------------------------------

    def start(self) -> None:
        """Credit data files opened from now on to the modules that opened them."""
        _install(self)

    def stop(self) -> None:
        """Stop recording (the audit hook stays, and does nothing)."""
        _uninstall(self)

    def candidate(self, path: str) -> bool:
        """Is ``path`` (real, absolute) a data file worth watching?"""
        if not path.startswith(self.roots) or path.startswith(self.excluded):
            return False
        if path.endswith((".py", ".pyw", ".pyc")):
            return False
        if self.filter is not None:
            if self.filter.excluded(path):
                return False
            if self.filter.included(path):
                return True
        return path.lower().endswith(self.suffixes)

    def opened(self, path: object, mode: object, flags: object) -> None:
        """An ``open`` audit event: record it if a project module's top level read a data file."""
        if not isinstance(path, (str, bytes, os.PathLike)) or not _reads_only(mode, flags):
            return  # a file descriptor, or a write
        text = os.fsdecode(os.fspath(path))
        if not text or text.endswith((".py", ".pyc")):
            return  # the import system reading modules: the common case, first
        module = self._importing_module(sys._getframe(1))
        if module is None:
            return
        real = os.path.realpath(text)
        if not self.candidate(real):
            return
        self.record(real, module)

    def record(self, path: str, module: str) -> None:
        """``module`` read ``path`` (real) while it ran its top level."""
        with self._lock:
            owners = self.owners.get(path)
            if owners is None:
                owners = self.owners[path] = set()
                try:
                    stat = os.stat(path)
                    self.baselines[path] = (stat.st_mtime_ns, stat.st_size)
                except OSError:
                    self.baselines[path] = None
                self._order.append(path)
            owners.add(module)

    def _importing_module(self, frame: FrameType | None) -> str | None:
        """The innermost project module running its top-level code in this thread."""
        while frame is not None:
            if frame.f_code.co_name == "<module>":
                name = frame.f_globals.get("__name__")
                # The script never runs again: what it reads does not count.
                if isinstance(name, str) and name != "__main__" and self.is_project_module(name):
                    return name
            frame = frame.f_back
        return None

    def since(self, seen: int) -> list[str]:
        """Paths first read after the first ``seen`` ones."""
        with self._lock:
            return self._order[seen:]


# The audit hook is installed once per process and follows the active DataFiles.
_active: list[DataFiles] = []
_hook_lock = threading.Lock()
_hook_installed = False


def _opened(args: tuple[Any, ...]) -> None:
    if not _active:
        return
    # An audit hook that raises makes the program's open() raise.
    with contextlib.suppress(Exception):
        _active[-1].opened(*args[:3])


def _install(files: DataFiles) -> None:
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            # The core's hook: the events that are not an ``open`` of a data file
            # (about ten a module at start-up) never call Python (5% of a
            # 1,000-module app's start-up when this module's hook took them all).
            add_open_audit_hook(_opened)
            _hook_installed = True
        _active.append(files)


def _uninstall(files: DataFiles) -> None:
    with _hook_lock:
        if files in _active:
            _active.remove(files)
