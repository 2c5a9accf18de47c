"""``python -m muckrack.hmr [options] (script.py | -m module) [args...]``.

Three steps, a module each: :mod:`.parsing` turns the command line into the
target and the options given (:func:`main` is testable in-process and
returns the exit code); :mod:`muckrack_hmr.settings` and
:mod:`muckrack_hmr.config` make them one :class:`~muckrack_hmr.settings.Settings`
with ``pyproject.toml``; :mod:`.running` installs hot reload and runs the
program.
"""

from __future__ import annotations

from .parsing import console_main, main

__all__ = ["console_main", "main"]
