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

import logging
from typing import TYPE_CHECKING

from ._core import USING_EXTENSION
from ._version import __version__
from .api import HMR
from .tracking import active, install, uninstall

if TYPE_CHECKING:
    from .reload.reloader import ReloadResult


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
    "uninstall",
]

logging.getLogger("muckrack_hmr").addHandler(logging.NullHandler())
