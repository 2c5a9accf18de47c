"""Hot module replacement for Python: save a file, the running program runs the new code.

Programmatic use::

    import muckrack_hmr
    hmr = muckrack_hmr.install(["/path/to/project"])   # first thing in the process
    ...
    hmr.reload_module("app.views")                    # or __hmr__.reload_module(...)

Most users run ``python -m muckrack.hmr script.py`` instead.

PYTEST_DONT_REWRITE: pytest marks plugin packages for assert rewriting, and
this one is already imported under ``python -m muckrack.hmr -m pytest``.
"""

from __future__ import annotations

import os
import sys

# The modules loaded before this package's own imports: the CLI runs a program as python
# would, and a module of the program's folder named like a standard module that only
# these imports loaded (``token.py``, ``signal.py``) is the program's (see runner).
_LOADED_BEFORE = frozenset(sys.modules)
# Imported while python looks for the module of ``python -m muckrack_hmr`` (or of a
# package that imports this one): the working folder is first on sys.path, for the
# program; this package's own imports must not take a token.py or logging.py there.
_HELD_BACK = (
    sys.path.pop(0)
    if sys.argv[:1] == ["-m"] and sys.path and sys.path[0] in ("", os.getcwd())
    else None
)

try:
    import logging
    from typing import TYPE_CHECKING

    from ._core import USING_EXTENSION
    from ._version import __version__
    from .api import HMR
    from .tracking import active, install, uninstall
finally:
    if _HELD_BACK is not None:
        sys.path.insert(0, _HELD_BACK)

if TYPE_CHECKING:
    from .integrations.ipython import Shell
    from .reload.reloader import ReloadResult


def load_ipython_extension(ipython: Shell) -> None:
    """``%load_ext muckrack_hmr`` in IPython or Jupyter: saves are applied between cells."""
    from .integrations import ipython as extension

    extension.load(ipython)


def unload_ipython_extension(ipython: Shell) -> None:
    """``%unload_ext muckrack_hmr``: stop watching; the import hook goes if the extension put it."""
    from .integrations import ipython as extension

    extension.unload(ipython)


def __getattr__(name: str) -> object:
    # The engine is imported when first needed, not when the program starts.
    if name == "ReloadResult":
        from .reload.reloader import ReloadResult

        return ReloadResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "HMR",
    "USING_EXTENSION",
    "ReloadResult",
    "__version__",
    "active",
    "install",
    "load_ipython_extension",
    "uninstall",
    "unload_ipython_extension",
]

logging.getLogger("muckrack_hmr").addHandler(logging.NullHandler())
