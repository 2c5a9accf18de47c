"""``python -m muckrack.hmr [options] (script.py | -m module) [args...]``.

Argument parsing and process plumbing only: :func:`main` is testable
in-process and returns the exit code.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from types import CodeType, ModuleType
from typing import ClassVar

from . import _core
from ._version import __version__
from .config import ConfigError, find_pyproject, load_settings
from .hooks import CASCADES
from .watch.backends import BACKENDS, DEFAULT_POLL_INTERVAL, BackendUnavailable

__all__ = ["console_main", "main"]

log = logging.getLogger(__name__)

PROG = "python -m muckrack.hmr"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Options that take a value: needed to find where our options end and the
# target (script or -m module) begins.
_VALUE_OPTIONS = {
    "--root",
    "--debounce",
    "--cascade",
    "--watch",
    "--include",
    "--exclude",
    "--backend",
}
# Takes a value only when one follows (``--poll``, ``--poll 0.5``).
_OPTIONAL_NUMBER_OPTIONS = {"--poll"}
DEFAULT_DEBOUNCE_MS = 5.0


class UsageError(Exception):
    """A bad command line: one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's formatter, told the terminal's width.

    Left to itself, it imports ``shutil`` (and with it bz2, lzma...) to ask,
    each time an option is added: a cost every start paid for a help text
    that is almost never printed.
    """
    try:
        columns = int(os.environ.get("COLUMNS", "")) or os.get_terminal_size().columns
    except (ValueError, OSError):
        columns = 80
    return argparse.HelpFormatter(prog, width=max(columns - 2, 20))


def _parser() -> _Parser:
    parser = _Parser(
        prog=PROG,
        description=(
            "Run a Python program like `python` does, and hot-reload its modules "
            "in place when you save them."
        ),
        epilog=(
            "Everything after the script (or -m module) is passed to the program. "
            "Options can also be set in [tool.muckrack-hmr] of the nearest pyproject.toml "
            "(the command line wins)."
        ),
        add_help=False,
        allow_abbrev=False,
        formatter_class=_formatter,
    )
    parser.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    parser.add_argument(
        "--version", action="store_true", help="print the version and which core runs"
    )
    parser.add_argument(
        "-m", dest="module", metavar="MODULE", help="run a library module as a script"
    )
    parser.add_argument(
        "--root",
        action="append",
        default=None,
        metavar="DIR",
        help="a project folder whose modules are tracked and reloaded (repeatable; "
        "default: the script's folder, or the current folder with -m)",
    )
    parser.add_argument(
        "--watch",
        action="append",
        default=None,
        metavar="DIR",
        help="also track, watch and reload the modules under DIR (repeatable; "
        "the default root stays)",
    )
    parser.add_argument(
        "--include",
        action="append",
        default=None,
        metavar="GLOB",
        help="also reload a module when a matching file it read at import time changes "
        "(repeatable)",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=None,
        metavar="GLOB",
        help="never reload matching modules, nor watch matching files (repeatable)",
    )
    parser.add_argument(
        "--no-watch",
        action="store_true",
        default=None,
        help="don't watch files (reload only via __hmr__)",
    )
    parser.add_argument(
        "--cascade",
        choices=CASCADES,
        default=None,
        help="which dependents run again after an edit: auto (the statements that consumed "
        "what changed; default), always (every dependent, whole) or never",
    )
    parser.add_argument(
        "--poll",
        nargs="?",
        type=float,
        const=DEFAULT_POLL_INTERVAL,
        default=None,
        metavar="SECONDS",
        help=f"poll for changes every SECONDS (default {DEFAULT_POLL_INTERVAL:g}) instead of "
        "OS events: network drives, containers, VMs",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="where file events come from: auto (watchdog, or polling where events can't be "
        "had; default), watchdog, polling or watchfiles (if installed)",
    )
    parser.add_argument(
        "--debounce",
        type=float,
        default=None,
        metavar="MS",
        help=f"quiet time after a save before reloading (default: {DEFAULT_DEBOUNCE_MS:g} ms, "
        "longer for a burst of many files)",
    )
    parser.add_argument(
        "--watch-data",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="reload a module when a data file it read at import time (JSON, TOML, YAML, "
        "INI, templates...) changes (default: off)",
    )
    parser.add_argument(
        "--clear",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="clear the terminal before each reload's output",
    )
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=None,
        help="log debug details (the watched folders)",
    )
    verbosity.add_argument(
        "-q", "--quiet", action="store_true", default=None, help="log only errors"
    )
    parser.add_argument(
        "--no-color", action="store_true", default=None, help="no colours in log lines"
    )
    return parser


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _split(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Our options, and the target with the program's arguments."""
    argv = list(argv)
    ours: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            # As for python: the argument after ``--`` is the script.
            rest = argv[index + 1 :]
            return ([*ours, "--", rest[0]], rest[1:]) if rest else (ours, [])
        if arg == "-m" or (arg.startswith("-m") and not arg.startswith("--")):
            if arg == "-m":
                return ours + argv[index : index + 2], list(argv[index + 2 :])
            return [*ours, "-m", arg[2:]], list(argv[index + 1 :])
        if not arg.startswith("-") or arg == "-":
            # ``--`` first: an option that takes an optional value (--poll)
            # must not take the script as its value.
            return [*ours, "--", arg], list(argv[index + 1 :])
        ours.append(arg)
        if arg in _VALUE_OPTIONS:
            if index + 1 < len(argv):
                ours.append(argv[index + 1])
            index += 1
        elif (
            arg in _OPTIONAL_NUMBER_OPTIONS
            and index + 1 < len(argv)
            and _is_number(argv[index + 1])
        ):
            ours.append(argv[index + 1])
            index += 1
        index += 1
    return ours, []


class _Formatter(logging.Formatter):
    COLORS: ClassVar[dict[int, str]] = {
        logging.ERROR: "\033[31m",
        logging.WARNING: "\033[33m",
        logging.INFO: "\033[32m",
    }

    def __init__(self, color: bool) -> None:
        super().__init__("%(message)s")
        self.color = color

    def format(self, record: logging.LogRecord) -> str:
        # The prefix is the CLI's: the library's messages carry none (their logger's
        # name, muckrack_hmr.watch.watcher say, tells where they come from).
        text = "hmr: " + super().format(record)
        if not self.color:
            return text
        color = self.COLORS.get(record.levelno)
        if color is None:
            return text
        first, sep, rest = text.partition("\n")
        return f"{color}{first}\033[0m{sep}{rest}"


def _use_color(disabled: bool) -> bool:
    if disabled or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR", "") not in ("", "0"):
        return True
    return hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


def _setup_logging(verbose: bool, quiet: bool, no_color: bool) -> None:
    logger = logging.getLogger("muckrack_hmr")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(_use_color(no_color)))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.ERROR if quiet else logging.INFO)
    logger.propagate = False


def _version_line() -> str:
    core = "compiled core (Cython)" if _core.USING_EXTENSION else "pure-Python core"
    return f"muckrack-python-hmr {__version__}, {core}, Python {sys.version.split()[0]}"


# Built-in values of the options that [tool.muckrack-hmr] can also set.
_DEFAULTS: dict[str, object] = {
    "root": [],
    "watch": [],
    "include": [],
    "exclude": [],
    "poll": None,
    "backend": "auto",
    "debounce": DEFAULT_DEBOUNCE_MS,
    "cascade": "auto",
    "watch_data": False,
    "clear": False,
    "no_watch": False,
    "verbose": False,
    "quiet": False,
    "no_color": False,
}


def _apply_config(options: argparse.Namespace) -> str | None:
    """Fill the options not given on the command line from pyproject.toml, then defaults.

    The nearest pyproject.toml above the script's folder (the current folder
    with -m); returns its path if it has a [tool.muckrack-hmr] table.
    """
    start = os.getcwd() if options.module else os.path.dirname(os.path.abspath(options.target))
    path = find_pyproject(start)
    settings = load_settings(path) if path is not None else {}
    if settings.get("verbose") and settings.get("quiet"):
        raise ConfigError(f"{path}: [tool.muckrack-hmr] sets both verbose and quiet")
    if options.verbose or options.quiet:
        settings.pop("verbose", None)
        settings.pop("quiet", None)
    for attribute, default in _DEFAULTS.items():
        if getattr(options, attribute) is None:
            value = settings.get(attribute, default)
            setattr(options, attribute, list(value) if isinstance(value, list) else value)
    if options.debounce < 0:
        raise UsageError("--debounce must be >= 0 ms")
    if options.poll is not None and options.poll <= 0:
        raise UsageError("--poll must be > 0 seconds")
    return path if settings else None


def _roots(options: argparse.Namespace) -> list[str]:
    """The project roots: --root (or the default) and every --watch folder."""
    from . import tracking

    for option, folders in (("--root", options.root), ("--watch", options.watch)):
        for folder in folders:
            if not os.path.isdir(folder):
                raise UsageError(f"{option} {folder!r} is not a folder")
    if options.root:
        roots = list(options.root)
    elif options.module:
        roots = [os.getcwd()]
    else:
        roots = tracking.roots_for_script(options.target)
    return roots + list(options.watch)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the program's, or 2 for our errors)."""
    from . import integrations, tracking

    args_list = list(sys.argv[1:] if argv is None else argv)
    ours, program_args = _split(args_list)
    parser = _parser()
    parser.add_argument("target", nargs="?", help="the script to run")
    try:
        options = parser.parse_args(ours)
    except UsageError as exc:
        print(f"{PROG}: error: {exc} (see --help)", file=sys.stderr)
        return EXIT_USAGE
    if options.help:
        parser.print_help()
        return 0
    if options.version:
        print(_version_line())
        return 0
    if options.module and options.target:
        program_args = [options.target, *program_args]
        options.target = None
    if not options.module and not options.target:
        print(f"{PROG}: error: give a script to run, or -m MODULE (see --help)", file=sys.stderr)
        return EXIT_USAGE
    try:
        config_path = _apply_config(options)
        roots = _roots(options)
    except (ConfigError, UsageError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _setup_logging(options.verbose, options.quiet, options.no_color)
    if config_path is not None:
        log.debug("settings from %s", config_path)

    reason = tracking.unsupported()
    if reason is not None:
        target = f"-m {options.module}" if options.module else options.target
        print(f"hmr: {reason}; running {target} without it", file=sys.stderr)
        return _run_plain(options, program_args)

    # First thing: from here on every import is tracked.
    hmr = tracking.install(roots)
    hmr.cascade = options.cascade
    # Before the target is even found: `-m uvicorn` imports uvicorn to find it.
    integrations.activate(hmr)
    prepared = _prepare(options, program_args)
    if isinstance(prepared, int):
        tracking.uninstall()
        return prepared
    code, main_module = prepared

    if not options.no_watch:
        try:
            hmr.watch(
                options.debounce,
                backend=options.backend,
                poll=options.poll,
                include=options.include,
                exclude=options.exclude,
                watch_data=options.watch_data,
                clear=options.clear,
            )
        except BackendUnavailable as exc:
            tracking.uninstall()
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    return _run(code, main_module)


def _run(code: CodeType, main_module: ModuleType) -> int:
    """Run the program's code as ``__main__``; its exit code."""
    from . import runner

    try:
        runner.run_code(code, main_module)
    except SystemExit:
        raise
    except KeyboardInterrupt as exc:
        _print_user_exception(exc)
        return EXIT_INTERRUPTED
    except BaseException as exc:
        _print_user_exception(exc)
        return 1
    return 0


def _prepare(
    options: argparse.Namespace, program_args: list[str]
) -> tuple[CodeType, ModuleType] | int:
    """The program's code and ``__main__``, or the exit code of an error already shown."""
    from . import runner

    try:
        if options.module:
            return runner.prepare_module(options.module, program_args)
        return runner.prepare_script(options.target, program_args)
    except runner.TargetError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SyntaxError as exc:
        traceback.print_exception(type(exc), exc, None)
        return 1


def _run_plain(options: argparse.Namespace, program_args: list[str]) -> int:
    """Run the program as ``python`` would, with no hot reload."""
    prepared = _prepare(options, program_args)
    return prepared if isinstance(prepared, int) else _run(*prepared)


def _print_user_exception(exc: BaseException) -> None:
    from .errors import strip_own_frames

    tb = strip_own_frames(exc.__traceback__)
    sys.excepthook(type(exc), exc.with_traceback(tb), tb)


def console_main() -> None:
    """Entry point of the ``muckrack-hmr`` script and ``python -m muckrack.hmr``."""
    sys.exit(main())
