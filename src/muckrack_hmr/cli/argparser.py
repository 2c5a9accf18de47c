"""The argparse parser of the command line, made from the options :class:`Settings` declares.

Imported only when the command line has options of ours (or asks for help):
``python -m muckrack.hmr script.py`` starts without argparse.
"""

from __future__ import annotations

import argparse
import os

from ..settings import OPTIONS, Option
from .running import PROG, UsageError

__all__ = ["build"]


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


def _add_option(container: argparse._ActionsContainer, option: Option) -> None:
    """One declared option on the command line; every one defaults to None (not given).

    ``container`` is the parser or one of its exclusive groups: their common
    base, argparse's own (private) ``_ActionsContainer``.
    """
    if option.kind in ("flag", "switch"):
        container.add_argument(
            *option.flags,
            dest=option.name,
            default=None,
            help=option.help,
            action="store_true" if option.kind == "flag" else argparse.BooleanOptionalAction,
        )
        return
    container.add_argument(
        *option.flags,
        dest=option.name,
        default=None,
        help=option.help,
        metavar=option.metavar,
        choices=option.choices,
        action="append" if option.kind == "list" else "store",
        nargs="?" if option.kind == "optional" else None,
        const=option.const,
        type=option.parse,
    )


def build() -> argparse.ArgumentParser:
    """The command line's parser: ours (-h, --version, -m, the target) and every option."""
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
    groups: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for option in OPTIONS:
        if option.group is None:
            _add_option(parser, option)
            continue
        if option.group not in groups:
            groups[option.group] = parser.add_mutually_exclusive_group()
        _add_option(groups[option.group], option)
    parser.add_argument("target", nargs="?", help="the script to run")
    return parser
