"""Settings from ``[tool.muckrack-hmr]`` in the nearest ``pyproject.toml``.

The keys are the CLI's long options without the dashes (``debounce = 10``,
``watch = ["../lib"]``, ``watch-data = true``); an option given on the
command line wins over the file.  Unknown keys and values of the wrong type
are errors that name the file and the line.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping

from .settings import OPTIONS, Settings, group_of, merge

__all__ = ["KEYS", "TABLE", "ConfigError", "find_pyproject", "load_settings", "settings_for"]

TABLE = "muckrack-hmr"

#: The keys the table accepts: every option of :class:`~muckrack_hmr.settings.Settings`.
KEYS = {option.key: option for option in OPTIONS}


class ConfigError(Exception):
    """A bad ``[tool.muckrack-hmr]`` table: one line that names the file and line."""


def find_pyproject(start: str) -> str | None:
    """The nearest ``pyproject.toml`` in ``start`` or a folder above it."""
    folder = os.path.abspath(start)
    while True:
        candidate = os.path.join(folder, "pyproject.toml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _line_of(text: str, key: str) -> int | None:
    """The line of ``key = ...`` inside the table (for the error message)."""
    in_table = False
    header = re.compile(r"^\s*\[\s*tool\s*\.\s*(\"?)muckrack-hmr\1\s*\]")
    assignment = re.compile(rf"^\s*(\"?){re.escape(key)}\1\s*=")
    # A sub-table: [tool.muckrack-hmr.key]
    below = re.compile(
        rf"^\s*\[\s*tool\s*\.\s*(\"?)muckrack-hmr\1\s*\.\s*(\"?){re.escape(key)}\2\s*\]"
    )
    # Or the table written inline, under [tool]: muckrack-hmr = { key = ... }
    inline = re.compile(rf"^\s*(\"?)muckrack-hmr\1\s*=.*[{{,]\s*(\"?){re.escape(key)}\2\s*=")
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("["):
            if below.match(line):
                return number
            in_table = bool(header.match(line))
            continue
        if (in_table and assignment.match(line)) or inline.match(line):
            return number
    return None


def load_settings(path: str) -> dict[str, object]:
    """The settings of ``path``'s ``[tool.muckrack-hmr]``, checked, by option name.

    Folders (``root``, ``watch``) are made absolute against the file's folder.
    Raises :class:`ConfigError`.
    """
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from None
    text = raw.decode("utf-8", errors="replace")
    if sys.version_info >= (3, 11):
        import tomllib  # only where a pyproject.toml is read
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    tool = document.get("tool", {})
    table = tool.get(TABLE) if isinstance(tool, dict) else None
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.{TABLE}] must be a table")
    settings: dict[str, object] = {}
    base = os.path.dirname(os.path.abspath(path))
    for key, value in table.items():
        line = _line_of(text, key)
        where = f"{path}:{line}" if line is not None else path
        option = KEYS.get(key)
        if option is None:
            raise ConfigError(
                f"{where}: unknown key {key!r} in [tool.{TABLE}] (known: {', '.join(KEYS)})"
            )
        try:
            checked = option.check(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: [tool.{TABLE}] {key} {exc}, not {value!r}") from None
        if option.paths and isinstance(checked, tuple):
            checked = tuple(os.path.join(base, folder) for folder in checked)
            for folder in checked:
                if not os.path.isdir(folder):
                    raise ConfigError(f"{where}: [tool.{TABLE}] {key}: {folder!r} is not a folder")
        settings[option.name] = checked
    for name in settings:
        both = [other for other in group_of(name) if settings.get(other)]
        if len(both) > 1:
            line = _line_of(text, both[-1])
            where = f"{path}:{line}" if line is not None else path
            raise ConfigError(f"{where}: [tool.{TABLE}] sets both {' and '.join(both)}")
    return settings


def settings_for(start: str, given: Mapping[str, object]) -> tuple[Settings, str | None]:
    """The defaults, then the nearest ``pyproject.toml`` at or above ``start``, then ``given``.

    Also the path of that file if its ``[tool.muckrack-hmr]`` set anything.
    Raises :class:`ConfigError` for a bad file.
    """
    path = find_pyproject(start)
    from_file = load_settings(path) if path is not None else {}
    return merge(from_file, given), path if from_file else None
