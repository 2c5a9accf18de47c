"""Selects the core: the compiled ``_hmr_core`` when built, else the pure twin.

The rest of the package imports the core only from here.
``MUCKRACK_HMR_NO_EXTENSIONS=1`` forces the pure twin.

The two cores have the same public names, signatures and answers; the one
deliberate exception is private and compiled-only: ``_classify_module``, a
shortcut that classifies a new importer from the project filter's tables
without calling it (see :mod:`._core_py`).
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING

NO_EXTENSIONS = os.environ.get("MUCKRACK_HMR_NO_EXTENSIONS", "") not in ("", "0")

if TYPE_CHECKING:
    from . import _core_py
    from ._core_py import DependencyGraph, ImportTracker, add_open_audit_hook, resolve_relative

    USING_EXTENSION = False
    core: ModuleType = _core_py
else:
    USING_EXTENSION = False
    core = None
    if not NO_EXTENSIONS:
        try:
            from . import _hmr_core as core
        except ImportError:
            pass
        else:
            USING_EXTENSION = True
    if core is None:
        # Imported only when it runs: start-up does not pay for both cores.
        from . import _core_py as core
    DependencyGraph = core.DependencyGraph
    ImportTracker = core.ImportTracker
    resolve_relative = core.resolve_relative
    add_open_audit_hook = core.add_open_audit_hook

__all__ = [
    "USING_EXTENSION",
    "DependencyGraph",
    "ImportTracker",
    "add_open_audit_hook",
    "core",
    "resolve_relative",
]
