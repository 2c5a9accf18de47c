"""The command line: our options, the target, the program's arguments.

The parser is made from the options :class:`~muckrack_hmr.settings.Settings`
declares; :func:`main` parses, builds the settings, and hands over to
:func:`.running.run`.  It is testable in-process and returns the exit code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..config import ConfigError, settings_for
from ..settings import OPTIONS
from . import running
from .running import Target, UsageError, print_error, run, version_line

if TYPE_CHECKING:
    import argparse

__all__ = ["Invocation", "console_main", "main", "parse", "split_argv"]

# The options whose next word is their value: where our options end and the
# target (script or -m module) begins depends on them.
_VALUE_OPTIONS = frozenset(
    flag for option in OPTIONS if option.takes_value for flag in option.flags
)
# Those that take a value only when a number follows (``--poll``, ``--poll 0.5``).
_OPTIONAL_NUMBER_OPTIONS = frozenset(
    flag for option in OPTIONS if option.kind == "optional" for flag in option.flags
)


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser (:mod:`.argparser`), imported only when needed."""
    from .argparser import build

    return build()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def split_argv(argv: Sequence[str]) -> tuple[list[str], list[str]]:
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


class Invocation:
    """A parsed command line: what to do, and the options it gave."""

    __slots__ = ("given", "help", "target", "version")

    def __init__(
        self, target: Target | None, given: dict[str, object], *, help: bool, version: bool
    ) -> None:
        self.target = target
        #: The options the command line gave, checked (option name -> value).
        self.given = given
        self.help = help
        self.version = version


def parse(argv: Sequence[str]) -> Invocation:
    """Parse a command line (without the program's name); raises :class:`UsageError`."""
    ours, program_args = split_argv(argv)
    if (
        len(ours) == 2
        and ours[1]
        and (ours[0] == "--" or (ours[0] == "-m" and not ours[1].startswith("-")))
    ):
        # Nothing of ours before the program (``script.py ...``, ``-m module ...``):
        # the parser, argparse and its gettext, a few ms of every start, is not needed.
        # (Two items may also be one option of ours with its value and no target.)
        if ours[0] == "--":
            target = Target(script=ours[1], module=None, args=tuple(program_args))
        else:
            target = Target(script=None, module=ours[1], args=tuple(program_args))
        return Invocation(target, {}, help=False, version=False)
    try:
        namespace = build_parser().parse_args(ours)
    except UsageError as exc:
        raise UsageError(f"{exc} (see --help)") from None
    if namespace.help or namespace.version:
        return Invocation(None, {}, help=namespace.help, version=namespace.version)
    module, script = namespace.module, namespace.target
    if module and script:
        program_args = [script, *program_args]
        script = None
    if not module and not script:
        raise UsageError("give a script to run, or -m MODULE (see --help)")
    given: dict[str, object] = {}
    for option in OPTIONS:
        value = getattr(namespace, option.name)
        if value is None:
            continue
        try:
            given[option.name] = option.check(value)
        except ValueError as exc:
            raise UsageError(f"{option.flag} {exc}") from None
    target = Target(script=script, module=module, args=tuple(program_args))
    return Invocation(target, given, help=False, version=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the program's, or 2 for our errors)."""
    try:
        invocation = parse(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        return print_error(exc)
    if invocation.help:
        build_parser().print_help()
        return 0
    if invocation.version:
        print(version_line())
        return 0
    target = invocation.target
    assert target is not None
    try:
        settings, config_path = settings_for(target.folder(), invocation.given)
    except (ConfigError, ValueError) as exc:
        return print_error(exc)
    return run(target, settings, config_path)


def console_main() -> None:
    """Entry point of the ``muckrack-hmr`` script and ``python -m muckrack.hmr``."""
    code = main()
    if running.interrupted.is_set():
        # As python does for an uncaught KeyboardInterrupt: after the clean-up, the
        # process ends by SIGINT itself, so that a shell loop running it stops too
        # (an exit code of 130 would let it go on).  The traceback was shown.
        sys.excepthook = _shown_already
        raise KeyboardInterrupt
    if sys.flags.inspect:
        # ``python -i`` (or PYTHONINSPECT with a terminal): the prompt comes, whatever the
        # end, as after ``python -i app.py``; after an uncaught exception with
        # ``sys.last_value`` the program's (``pdb.pm()`` goes to where it was raised).  A
        # SystemExit of ours showed a traceback of the CLI's frames first.
        if not (sys.flags.interactive or _a_terminal(0)) and running.uncaught.is_set():
            # PYTHONINSPECT and no terminal: no prompt, and python ends with 1 after the
            # program's exception (shown already), whatever it was.
            last = getattr(sys, "last_value", None)
            if isinstance(last, BaseException):
                sys.excepthook = _shown_already
                raise last
        return
    sys.exit(code)


def _a_terminal(descriptor: int) -> bool:
    try:
        return os.isatty(descriptor)
    except OSError:
        return False


def _shown_already(*_: object) -> None:
    pass
