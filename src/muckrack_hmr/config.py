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
from collections.abc import Callable
from typing import Any

from .hooks import CASCADES
from .watch.backends import BACKENDS, DEFAULT_POLL_INTERVAL

__all__ = ["TABLE", "ConfigError", "find_pyproject", "load_settings"]

TABLE = "muckrack-hmr"


class ConfigError(Exception):
    """A bad ``[tool.muckrack-hmr]`` table: one line that names the file and line."""


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError("must be true or false")


def _choice(choices: tuple[str, ...]) -> Callable[[object], str]:
    def convert(value: object) -> str:
        if isinstance(value, str) and value in choices:
            return value
        raise TypeError(f"must be one of {', '.join(repr(choice) for choice in choices)}")

    return convert


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("must be a number")
    return float(value)


def _milliseconds(value: object) -> float:
    number = _number(value)
    if number < 0:
        raise TypeError("must be >= 0 (milliseconds)")
    return number


def _poll(value: object) -> float | None:
    """``true`` (the default interval), ``false``, or seconds."""
    if isinstance(value, bool):
        return DEFAULT_POLL_INTERVAL if value else None
    try:
        seconds = _number(value)
    except TypeError:
        raise TypeError("must be true, false or a number of seconds") from None
    if seconds <= 0:
        raise TypeError("must be a number of seconds > 0")
    return seconds


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise TypeError("must be a string or a list of strings")


# key -> (converter, attribute of the CLI's options)
KEYS: dict[str, tuple[Callable[[object], Any], str]] = {
    "root": (_strings, "root"),
    "watch": (_strings, "watch"),
    "include": (_strings, "include"),
    "exclude": (_strings, "exclude"),
    "poll": (_poll, "poll"),
    "backend": (_choice(BACKENDS), "backend"),
    "debounce": (_milliseconds, "debounce"),
    "cascade": (_choice(CASCADES), "cascade"),
    "watch-data": (_bool, "watch_data"),
    "clear": (_bool, "clear"),
    "no-watch": (_bool, "no_watch"),
    "verbose": (_bool, "verbose"),
    "quiet": (_bool, "quiet"),
    "no-color": (_bool, "no_color"),
}
_PATH_KEYS = ("root", "watch")


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
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("["):
            in_table = bool(header.match(line))
            continue
        if in_table and assignment.match(line):
            return number
    return None


def load_settings(path: str) -> dict[str, Any]:
    """The settings of ``path``'s ``[tool.muckrack-hmr]``, by CLI attribute name.

    Paths (``root``, ``watch``) are made absolute against the file's folder.
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
    settings: dict[str, Any] = {}
    base = os.path.dirname(os.path.abspath(path))
    for key, value in table.items():
        line = _line_of(text, key)
        where = f"{path}:{line}" if line is not None else path
        spec = KEYS.get(key)
        if spec is None:
            raise ConfigError(
                f"{where}: unknown key {key!r} in [tool.{TABLE}] (known: {', '.join(KEYS)})"
            )
        convert, attribute = spec
        try:
            converted = convert(value)
        except TypeError as exc:
            raise ConfigError(f"{where}: [tool.{TABLE}] {key} {exc}, not {value!r}") from None
        if key in _PATH_KEYS:
            converted = [os.path.join(base, folder) for folder in converted]
        settings[attribute] = converted
    return settings
