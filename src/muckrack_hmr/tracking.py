"""Installing the import hooks (project code is what :mod:`.project` says it is)."""

from __future__ import annotations

import builtins
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import TYPE_CHECKING

from . import _core
from .api import HMR
from .capture import SourceCapture
from .project import ProjectFilter

if TYPE_CHECKING:
    from ._core import ImportTracker

    #: A lazy-imports filter (PEP 810): ``(importer, name, fromlist) -> lazy?``.
    LazyFilter = Callable[[str, str, object], object]

__all__ = ["ProjectFilter", "active", "capture", "install", "uninstall", "unsupported"]


class _Installation:
    """The one installation per process, and what it replaced."""

    __slots__ = (
        "capture",
        "get_filter",
        "had_hmr",
        "hmr",
        "original_import",
        "original_import_module",
        "previous_hmr",
        "set_filter",
        "tracker",
    )

    def __init__(
        self,
        hmr: HMR,
        tracker: ImportTracker,
        capture: SourceCapture,
        original_import: Callable[..., ModuleType],
        original_import_module: Callable[..., ModuleType],
    ) -> None:
        self.hmr = hmr
        self.tracker = tracker
        self.capture = capture
        self.original_import = original_import
        self.original_import_module = original_import_module
        self.had_hmr = hasattr(builtins, "__hmr__")
        self.previous_hmr: object = getattr(builtins, "__hmr__", None)
        #: sys.set/get_lazy_imports_filter (3.15+), replaced while installed.
        self.set_filter: Callable[[LazyFilter | None], None] | None = None
        self.get_filter: Callable[[], LazyFilter | None] | None = None


_installed: _Installation | None = None


def unsupported() -> str | None:
    """Why hot reload cannot run in this interpreter, or None.

    A free-threaded build (3.13t, 3.14t) with the GIL off runs a function in
    several threads at once with no lock: a reload swaps its code object
    while other threads may be executing it, which CPython does not make safe
    there (``func_set_code`` races).  With the GIL on (``PYTHON_GIL=1``) the
    swap is as safe as on any build.
    """
    gil_enabled = getattr(sys, "_is_gil_enabled", None)
    if gil_enabled is not None and not gil_enabled():
        return (
            "hot reload is not supported on a free-threaded build with the GIL off "
            "(a function's code would be swapped while other threads run it); "
            "PYTHON_GIL=1 turns the GIL on"
        )
    return None


def active() -> HMR | None:
    """The installed :class:`~muckrack_hmr.api.HMR`, or None."""
    return None if _installed is None else _installed.hmr


def install(
    roots: Iterable[str | os.PathLike[str]] | None = None,
    *,
    core: ModuleType | None = None,
) -> HMR:
    """Wrap ``builtins.__import__`` and ``importlib.import_module``.

    ``roots`` are the project folders (default: the current folder).  Returns
    the :class:`~muckrack_hmr.api.HMR` object, also set as ``builtins.__hmr__``.
    ``core`` picks the core module (tests and benchmarks use it to compare the
    compiled core with the pure twin).  Installing twice returns the first
    installation.
    """
    global _installed
    if _installed is not None:
        return _installed.hmr
    reason = unsupported()
    if reason is not None:
        raise RuntimeError(reason)
    chosen = core if core is not None else _core.core
    project = ProjectFilter(roots if roots is not None else [os.getcwd()])
    graph = chosen.DependencyGraph()
    original_import = builtins.__import__
    original_import_module = importlib.import_module
    tracker: ImportTracker = chosen.ImportTracker(
        graph, project, original_import, original_import_module
    )
    hmr = HMR(tracker, project)
    keep_source = hmr.sources.captured
    is_tracked = tracker.is_tracked
    note_read = project.note_read

    def captured(name: str, source: bytes, stat: tuple[int, int], path: str | None) -> None:
        # Judged as its loader runs its file, before its code runs: the file
        # is this module's (an alias made later never takes it), and the
        # graph's own bookkeeping of the import can wait (ImportTracker._defer).
        # ``path`` is the file's real path when the read showed it is no symlink.
        if path is not None:
            note_read(path, name, stat)
        is_tracked(name)
        keep_source(name, source, stat)

    # The bytes each project module runs, taken by its loader as it is imported.
    capture = SourceCapture(project.project_path, captured, chosen)
    capture.listeners.append(hmr.sources.code_loaded)
    _installed = _Installation(hmr, tracker, capture, original_import, original_import_module)
    builtins.__import__ = tracker.import_hook()
    importlib.import_module = tracker.import_module_hook()
    builtins.__hmr__ = hmr  # type: ignore[attr-defined]
    capture.install()
    _watch_lazy_imports_filter(_installed)
    return hmr


def _watch_lazy_imports_filter(installed: _Installation) -> None:
    """Python 3.15+ (PEP 810): see the imports a lazy-imports filter makes eager.

    A potentially lazy import that the program's filter turns down is run at
    once, and CPython runs it without ``builtins.__import__``: the hook never
    sees it.  The program's filter is wrapped (``sys.get_lazy_imports_filter``
    still answers with its own) and each import it turns down is recorded.
    """
    set_filter = getattr(sys, "set_lazy_imports_filter", None)
    get_filter = getattr(sys, "get_lazy_imports_filter", None)
    if set_filter is None or get_filter is None:
        return
    tracker = installed.tracker
    chosen: list[LazyFilter | None] = [get_filter()]

    def recording(importer: str, name: str, fromlist: object) -> bool:
        program_filter = chosen[0]
        # None: the filter was just taken away (set_lazy_imports_filter).
        lazy = program_filter is None or bool(program_filter(importer, name, fromlist))
        if not lazy:
            if isinstance(fromlist, str):  # PEP 810 allows one name as a string
                fromlist = (fromlist,)
            with contextlib.suppress(Exception):  # never the program's import
                tracker.record_import(importer, name, fromlist)
        return lazy

    def set_lazy_imports_filter(found: LazyFilter | None) -> None:
        set_filter(None if found is None else recording)
        chosen[0] = found

    def get_lazy_imports_filter() -> LazyFilter | None:
        return chosen[0]

    installed.set_filter, installed.get_filter = set_filter, get_filter
    # setattr: the names exist on 3.15+ only.
    setattr(sys, "set_lazy_imports_filter", set_lazy_imports_filter)  # noqa: B010
    setattr(sys, "get_lazy_imports_filter", get_lazy_imports_filter)  # noqa: B010
    if chosen[0] is not None:
        set_filter(recording)


def capture() -> SourceCapture | None:
    """The installation's source capture (its ``listeners`` see each project module's code)."""
    return None if _installed is None else _installed.capture


def uninstall() -> None:
    """Undo :func:`install` exactly: the original functions are put back."""
    global _installed
    installed = _installed
    if installed is None:
        return
    installed.hmr.close()
    reloader = installed.hmr._reloader  # (not made here when no reload made it)
    if reloader is not None:
        reloader.stop_threads()
    installed.capture.uninstall()
    if installed.set_filter is not None:
        found = getattr(sys, "get_lazy_imports_filter")()  # noqa: B009
        setattr(sys, "set_lazy_imports_filter", installed.set_filter)  # noqa: B010
        setattr(sys, "get_lazy_imports_filter", installed.get_filter)  # noqa: B010
        installed.set_filter(found)
    builtins.__import__ = installed.original_import
    importlib.import_module = installed.original_import_module
    if installed.had_hmr:
        builtins.__hmr__ = installed.previous_hmr  # type: ignore[attr-defined]
    elif hasattr(builtins, "__hmr__"):
        del builtins.__hmr__
    _installed = None


def roots_for_script(script: str | os.PathLike[str]) -> list[str]:
    """The default project root for ``python -m muckrack.hmr script.py`` (or a folder
    with a ``__main__.py``: the folder itself)."""
    real = os.path.realpath(script)
    return [real if os.path.isdir(real) else os.path.dirname(real)]
