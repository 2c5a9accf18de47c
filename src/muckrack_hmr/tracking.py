"""Installing the import hooks (project code is what :mod:`.project` says it is)."""

from __future__ import annotations

import builtins
import contextlib
import importlib
import os
import sys
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from . import _core
from .api import HMR
from .capture import Captured, SourceCapture
from .project import ProjectFilter

__all__ = ["ProjectFilter", "active", "capture", "install", "uninstall", "unsupported"]


# The one installation per process, and what it replaced.
_state: dict[str, Any] = {}


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


def active() -> Any:
    """The installed :class:`~muckrack_hmr.api.HMR`, or None."""
    return _state.get("hmr")


def install(
    roots: Iterable[str | os.PathLike[str]] | None = None,
    *,
    core: ModuleType | None = None,
) -> Any:
    """Wrap ``builtins.__import__`` and ``importlib.import_module``.

    ``roots`` are the project folders (default: the current folder).  Returns
    the :class:`~muckrack_hmr.api.HMR` object, also set as ``builtins.__hmr__``.
    ``core`` picks the core module (tests and benchmarks use it to compare the
    compiled core with the pure twin).  Installing twice returns the first
    installation.
    """
    current = _state.get("hmr")
    if current is not None:
        return current
    reason = unsupported()
    if reason is not None:
        raise RuntimeError(reason)
    chosen = core if core is not None else _core.core
    project = ProjectFilter(roots if roots is not None else [os.getcwd()])
    graph = chosen.DependencyGraph()
    original_import = builtins.__import__
    original_import_module = importlib.import_module
    tracker = chosen.ImportTracker(graph, project, original_import, original_import_module)
    hmr = HMR(tracker, project)
    keep_source = hmr.sources.captured
    is_tracked = tracker.is_tracked
    note_read = project.note_read

    def captured(name: str, kept: Captured) -> None:
        # Judged as its loader runs its file, before its code runs: the file
        # is this module's (an alias made later never takes it), and the
        # graph's own bookkeeping of the import can wait (ImportTracker._defer).
        if kept.path is not None:
            note_read(kept.path, name, kept.stat)
        is_tracked(name)
        keep_source(name, kept)

    # The bytes each project module runs, taken by its loader as it is imported.
    capture = SourceCapture(project.project_path, captured)
    _state.update(
        capture=capture,
        hmr=hmr,
        tracker=tracker,
        original_import=original_import,
        original_import_module=original_import_module,
        had_hmr=hasattr(builtins, "__hmr__"),
        previous_hmr=getattr(builtins, "__hmr__", None),
    )
    builtins.__import__ = tracker.import_hook()
    importlib.import_module = tracker.import_module
    builtins.__hmr__ = hmr  # type: ignore[attr-defined]
    capture.install()
    _watch_lazy_imports_filter(tracker)
    return hmr


def _watch_lazy_imports_filter(tracker: Any) -> None:
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
    chosen: list[Any] = [get_filter()]

    def recording(importer: str, name: str, fromlist: Any) -> bool:
        lazy = bool(chosen[0](importer, name, fromlist))
        if not lazy:
            if isinstance(fromlist, str):  # PEP 810 allows one name as a string
                fromlist = (fromlist,)
            with contextlib.suppress(Exception):  # never the program's import
                tracker.record_import(importer, name, fromlist)
        return lazy

    def set_lazy_imports_filter(found: Any) -> None:
        set_filter(None if found is None else recording)
        chosen[0] = found

    def get_lazy_imports_filter() -> Any:
        return chosen[0]

    _state.update(set_filter=set_filter, get_filter=get_filter)
    # setattr: the names exist on 3.15+ only.
    setattr(sys, "set_lazy_imports_filter", set_lazy_imports_filter)  # noqa: B010
    setattr(sys, "get_lazy_imports_filter", get_lazy_imports_filter)  # noqa: B010
    if chosen[0] is not None:
        set_filter(recording)


def capture() -> SourceCapture | None:
    """The installation's source capture (its ``listeners`` see each project module's code)."""
    found: SourceCapture | None = _state.get("capture")
    return found


def uninstall() -> None:
    """Undo :func:`install` exactly: the original functions are put back."""
    hmr = _state.get("hmr")
    if hmr is None:
        return
    hmr.close()
    _state["capture"].uninstall()
    if "set_filter" in _state:
        found = getattr(sys, "get_lazy_imports_filter")()  # noqa: B009
        setattr(sys, "set_lazy_imports_filter", _state["set_filter"])  # noqa: B010
        setattr(sys, "get_lazy_imports_filter", _state["get_filter"])  # noqa: B010
        _state["set_filter"](found)
    builtins.__import__ = _state["original_import"]
    importlib.import_module = _state["original_import_module"]
    if _state["had_hmr"]:
        builtins.__hmr__ = _state["previous_hmr"]  # type: ignore[attr-defined]
    elif hasattr(builtins, "__hmr__"):
        del builtins.__hmr__
    _state.clear()


def roots_for_script(script: str | os.PathLike[str]) -> list[str]:
    """The default project root for ``python -m muckrack.hmr script.py``."""
    return [os.path.dirname(os.path.realpath(script))]
