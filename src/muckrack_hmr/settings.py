"""The settings of a run: one frozen :class:`Settings`, each option declared once.

A field of :class:`Settings` is an option: the field gives its name, type and
default, and :func:`_option` gives the rest (help, how the command line takes
it, the check of its value).  Everything else is made from these fields: the
command-line parser (:mod:`muckrack_hmr.cli.parsing`), the keys
``[tool.muckrack-hmr]`` accepts (:mod:`muckrack_hmr.config`) and the defaults.
:func:`merge` layers them: defaults, then ``pyproject.toml``, then the
command line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, ClassVar, Literal, TypeVar, cast

from .hooks import CASCADES
from .watch.backends import BACKENDS, DEFAULT_POLL_INTERVAL

__all__ = ["DEFAULT_DEBOUNCE_MS", "OPTIONS", "Option", "Settings", "group_of", "merge"]

T = TypeVar("T")
_C = TypeVar("_C", bound=type)

DEFAULT_DEBOUNCE_MS = 5.0

#: How the command line takes an option: a flag (``--no-watch``), a switch with a
#: ``--no-`` twin (``--clear``/``--no-clear``), one value, a repeatable value, or a
#: value that may be left out (``--poll``, ``--poll 0.5``).
Kind = Literal["flag", "switch", "value", "list", "optional"]


# -- the checks: one per option, for the command line, the file and the API alike ------
# Each returns the value as Settings keeps it, or raises ValueError with the reason
# ("must be ..."), which the caller puts after the option's name.


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError("must be true or false")


def _choice(choices: tuple[str, ...]) -> Callable[[object], str]:
    def check(value: object) -> str:
        if isinstance(value, str) and value in choices:
            return value
        raise ValueError(f"must be one of {', '.join(repr(choice) for choice in choices)}")

    return check


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number")
    return float(value)


# The longest quiet time and polling interval taken: past them a save never applies, or
# the watcher's waits fail (an infinite one overflows the clock's type).
_LONGEST_DEBOUNCE_MS = 60_000.0
_LONGEST_POLL = 3600.0


def _milliseconds(value: object) -> float:
    number = _number(value)
    if number < 0:
        raise ValueError("must be >= 0 ms")
    if not number <= _LONGEST_DEBOUNCE_MS:  # NaN too
        raise ValueError(f"must be at most {_LONGEST_DEBOUNCE_MS:g} ms")
    return number


def _poll(value: object) -> float | None:
    """``None`` or ``false`` (no polling), ``true`` (the default interval), or seconds."""
    if value is None or value is False:
        return None
    if value is True:
        return DEFAULT_POLL_INTERVAL
    try:
        seconds = _number(value)
    except ValueError:
        raise ValueError("must be true, false or a number of seconds") from None
    if seconds <= 0:
        raise ValueError("must be a number of seconds > 0")
    if not seconds <= _LONGEST_POLL:  # NaN too
        raise ValueError(f"must be at most {_LONGEST_POLL:g} seconds")
    return seconds


def _file_or_none(value: object) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    raise ValueError("must be a file name")


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ValueError("must be a string or a list of strings")


class Option:
    """One option, as a field of :class:`Settings` declares it.

    A plain class, not a dataclass: this module is imported at start-up, and
    each dataclass made costs a compile of its generated methods.
    """

    __slots__ = (
        "check",
        "choices",
        "const",
        "default",
        "flags",
        "group",
        "help",
        "kind",
        "metavar",
        "name",
        "parse",
        "paths",
    )

    def __init__(
        self,
        name: str,
        default: object,
        help: str,
        *,
        kind: Kind,
        check: Callable[[object], object],
        flags: tuple[str, ...],
        metavar: str | None = None,
        parse: Callable[[str], object] = str,
        choices: tuple[str, ...] | None = None,
        const: object = None,
        paths: bool = False,
        group: str | None = None,
    ) -> None:
        #: The attribute of :class:`Settings` (``watch_data``).
        self.name = name
        self.default = default
        self.help = help
        self.kind = kind
        #: Returns the value as Settings keeps it, or raises ValueError("must be ...").
        self.check = check
        #: The command line's flags (``("-v", "--verbose")``); the long one is :attr:`flag`.
        self.flags = flags
        self.metavar = metavar
        #: What the command line converts its text with (``float``; ``str``: as it is).
        self.parse = parse
        self.choices = choices
        #: The value of an optional-value option given without one.
        self.const = const
        #: Folders, made absolute against the folder of the pyproject.toml that names them.
        self.paths = paths
        #: Options of one group exclude each other (``--verbose``, ``--quiet``).
        self.group = group

    def __repr__(self) -> str:
        return f"<Option {self.flag}>"

    @property
    def key(self) -> str:
        """Its key in ``[tool.muckrack-hmr]`` (``watch-data``)."""
        return self.name.replace("_", "-")

    @property
    def flag(self) -> str:
        """Its long option on the command line (``--watch-data``)."""
        return "--" + self.key

    @property
    def takes_value(self) -> bool:
        """Whether the command line's next word is always its value."""
        return self.kind in ("value", "list")


class _Declared:
    """A field of :class:`Settings` as :func:`_option` declares it (the class names it)."""

    __slots__ = ("default", "spec")

    def __init__(self, default: object, spec: dict[str, object]) -> None:
        self.default = default
        self.spec = spec


def _declared(name: str, field: _Declared) -> Option:
    spec = dict(field.spec)
    short = spec.pop("short")
    flag = "--" + name.replace("_", "-")
    flags = (short, flag) if short else (flag,)
    return Option(name=name, default=field.default, flags=flags, **spec)  # type: ignore[arg-type]  # the spec of _option


def _option(
    *,
    default: T,
    help: str,
    kind: Kind,
    check: Callable[[object], T],
    short: str | None = None,
    metavar: str | None = None,
    parse: Callable[[str], object] = str,
    choices: tuple[str, ...] | None = None,
    const: object = None,
    paths: bool = False,
    group: str | None = None,
) -> T:
    """Declare a field of :class:`Settings` as an option (its name is the field's)."""
    spec = {
        "help": help,
        "kind": kind,
        "check": check,
        "short": short,
        "metavar": metavar,
        "parse": parse,
        "choices": choices,
        "const": const,
        "paths": paths,
        "group": group,
    }
    # (The class's decorator turns it into an Option; the type checker sees the default.)
    return cast("T", _Declared(default, spec))


if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_: object) -> Callable[[T], T]:
        return lambda decorated: decorated


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(_option,))
def _options_class(cls: _C) -> _C:
    """Make ``cls`` a frozen record of the options its fields declare (see Settings).

    What ``@dataclass(frozen=True, kw_only=True)`` would make, without the compile of
    its generated methods, nor the import of dataclasses and inspect: the CLI makes
    one at each start, and a small script paid several milliseconds for them.
    """
    declared = [(name, value) for name, value in vars(cls).items() if isinstance(value, _Declared)]
    for name, _ in declared:
        delattr(cls, name)  # (an instance holds every value)
    setattr(cls, "_options", tuple(_declared(name, field) for name, field in declared))  # noqa: B010
    return cls


@_options_class
class Settings:
    """Everything a run of ``python -m muckrack.hmr`` (or :meth:`HMR.watch`) is told.

    Built from the defaults, then ``[tool.muckrack-hmr]`` of the nearest
    ``pyproject.toml``, then the command line; frozen, and passed whole.
    Values are checked when it is made (a :class:`ValueError` names the
    option); lists of folders and globs are kept as tuples.
    """

    root: tuple[str, ...] = _option(
        default=(),
        help="a project folder whose modules are tracked and reloaded (repeatable; "
        "default: the script's folder, or the current folder with -m)",
        kind="list",
        check=_strings,
        metavar="DIR",
        paths=True,
    )
    watch: tuple[str, ...] = _option(
        default=(),
        help="also track, watch and reload the modules under DIR (repeatable; the default "
        "root stays)",
        kind="list",
        check=_strings,
        metavar="DIR",
        paths=True,
    )
    include: tuple[str, ...] = _option(
        default=(),
        help="also reload a module when a matching file it read at import time changes "
        "(repeatable)",
        kind="list",
        check=_strings,
        metavar="GLOB",
    )
    exclude: tuple[str, ...] = _option(
        default=(),
        help="never reload matching modules, nor watch matching files (repeatable)",
        kind="list",
        check=_strings,
        metavar="GLOB",
    )
    no_watch: bool = _option(
        default=False, help="don't watch files (reload only via __hmr__)", kind="flag", check=_bool
    )
    cascade: str = _option(
        default="auto",
        help="which dependents run again after an edit: auto (the statements that consumed "
        "what changed; default), always (every dependent, whole) or never",
        kind="value",
        check=_choice(CASCADES),
        choices=CASCADES,
    )
    poll: float | None = _option(
        default=None,
        help=f"poll for changes every SECONDS (default {DEFAULT_POLL_INTERVAL:g}) instead of "
        "OS events: network drives, containers, VMs",
        kind="optional",
        check=_poll,
        parse=float,
        const=DEFAULT_POLL_INTERVAL,
        metavar="SECONDS",
    )
    backend: str = _option(
        default="auto",
        help="where file events come from: auto (inotify on Linux, watchdog elsewhere, or "
        "polling where events can't be had; default), inotify, watchdog, polling or "
        "watchfiles (if installed)",
        kind="value",
        check=_choice(BACKENDS),
        choices=BACKENDS,
    )
    debounce: float = _option(
        default=DEFAULT_DEBOUNCE_MS,
        help=f"quiet time after a save before reloading (default: {DEFAULT_DEBOUNCE_MS:g} ms, "
        "longer for a burst of many files)",
        kind="value",
        check=_milliseconds,
        parse=float,
        metavar="MS",
    )
    watch_data: bool = _option(
        default=False,
        help="reload a module when a data file it read at import time (JSON, TOML, YAML, "
        "INI, templates...) changes (default: off)",
        kind="switch",
        check=_bool,
    )
    reload_browser: bool = _option(
        default=False,
        help="open pages of a Flask, Django or FastAPI/Starlette development server reload "
        "after each applied save, swap saved stylesheets in place, and show a failed "
        "reload over the page (loopback clients only; default: off)",
        kind="switch",
        check=_bool,
    )
    clear: bool = _option(
        default=False,
        help="clear the terminal before each reload's output",
        kind="switch",
        check=_bool,
    )
    restart_on_refused: bool = _option(
        default=False,
        help="restart the program (same command, environment and port) when a saved edit "
        "cannot apply in place, such as a Django model's fields (default: off)",
        kind="switch",
        check=_bool,
    )
    graph: str | None = _option(
        default=None,
        help="write the program's import graph to FILE (DOT; SVG too when Graphviz's dot is "
        "installed) and refresh it after each reload",
        kind="value",
        check=_file_or_none,
        metavar="FILE",
    )
    verbose: bool = _option(
        default=False,
        help="log debug details (the watched folders)",
        kind="flag",
        check=_bool,
        short="-v",
        group="verbosity",
    )
    quiet: bool = _option(
        default=False,
        help="log only errors",
        kind="flag",
        check=_bool,
        short="-q",
        group="verbosity",
    )
    no_color: bool = _option(
        default=False, help="no colours in log lines", kind="flag", check=_bool
    )
    log_file: str | None = _option(
        default=None,
        help="write the log lines to FILE (appended) instead of stderr: for a full-screen "
        "terminal program (Textual, curses) whose screen they would be drawn over",
        kind="value",
        check=_file_or_none,
        metavar="FILE",
    )

    _options: ClassVar[tuple[Option, ...]]  # (set by _options_class: OPTIONS)

    if not TYPE_CHECKING:  # (the type checker sees the fields' own: see _options_class)

        def __init__(self, **values: object) -> None:
            for option in self._options:
                value = values.pop(option.name, option.default)
                try:
                    checked = option.check(value)
                except ValueError as exc:
                    raise ValueError(f"{option.name} {exc}, not {value!r}") from None
                object.__setattr__(self, option.name, checked)
            if values:
                unknown = next(iter(values))
                raise TypeError(f"Settings() got an unexpected keyword argument {unknown!r}")
            for group, members in _GROUPS.items():
                chosen = [name for name in members if getattr(self, name)]
                if len(chosen) > 1:
                    raise ValueError(f"{' and '.join(chosen)} exclude each other ({group})")

        def __setattr__(self, name: str, value: object) -> None:
            raise AttributeError(f"Settings are frozen: cannot set {name!r} (see Settings.replace)")

        def __delattr__(self, name: str) -> None:
            raise AttributeError(f"Settings are frozen: cannot delete {name!r}")

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, option.name) for option in self._options)

    def __eq__(self, other: object) -> bool:
        if type(other) is not Settings:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = (f"{option.name}={getattr(self, option.name)!r}" for option in self._options)
        return f"Settings({', '.join(shown)})"

    def replace(self, **changes: object) -> Settings:
        """A copy with ``changes`` (checked like a new one)."""
        values = {option.name: getattr(self, option.name) for option in self._options}
        values.update(changes)
        return Settings(**values)


#: Every option, in the order ``--help`` lists them.
OPTIONS: tuple[Option, ...] = Settings._options
_GROUPS: dict[str, tuple[str, ...]] = {}
for _each in OPTIONS:
    if _each.group is not None:
        _GROUPS[_each.group] = (*_GROUPS.get(_each.group, ()), _each.name)
del _each


def group_of(name: str) -> tuple[str, ...]:
    """The options that exclude ``name`` or are it (just ``(name,)`` outside a group)."""
    for members in _GROUPS.values():
        if name in members:
            return members
    return (name,)


def merge(*layers: Mapping[str, object]) -> Settings:
    """The defaults, overridden by each layer in turn (option name -> value).

    An option a later layer sets takes with it the earlier layers' values of
    the options it excludes: ``-q`` on the command line wins over
    ``verbose = true`` in the file.
    """
    values: dict[str, object] = {}
    for layer in layers:
        for name, value in layer.items():
            for other in group_of(name):
                values.pop(other, None)
            values[name] = value
    return Settings(**values)  # type: ignore[arg-type]  # Settings checks each value itself
