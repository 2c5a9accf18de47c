"""The CLI's run: logging, hot reload installed first thing, the program run as ``__main__``."""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import sys
import threading
import traceback
from types import CodeType, ModuleType
from typing import TYPE_CHECKING, ClassVar

from .. import _core
from .._version import __version__
from ..settings import Settings
from ..threads import hide_ours

if TYPE_CHECKING:
    from ..api import HMR

__all__ = ["EXIT_USAGE", "PROG", "Target", "UsageError", "run", "version_line"]

log = logging.getLogger(__name__)

PROG = "python -m muckrack.hmr"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: Set when the program ended with an uncaught KeyboardInterrupt (shown already).
interrupted = threading.Event()
#: Set when the program ended with an uncaught exception (shown already).
uncaught = threading.Event()


class UsageError(Exception):
    """A bad command line: one line on stderr, exit code 2."""


def print_error(message: object) -> int:
    """Show one of our errors as one line on stderr; the exit code for it."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


class Target:
    """What to run: a script or a module (``-m``), and the program's arguments."""

    __slots__ = ("args", "module", "script")

    def __init__(self, script: str | None, module: str | None, args: tuple[str, ...] = ()) -> None:
        self.script = script
        self.module = module
        self.args = args

    def __str__(self) -> str:
        return f"-m {self.module}" if self.module else str(self.script)

    def folder(self) -> str:
        """Where its ``pyproject.toml`` is looked for: the script's folder (the current one
        with -m)."""
        if self.module or self.script is None:
            return os.getcwd()
        return os.path.dirname(os.path.abspath(self.script))


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


def setup_logging(settings: Settings) -> None:
    """Log the library's records to stderr (or ``--log-file``), prefixed ``hmr: ``,
    coloured on a terminal unless told not."""
    logger = logging.getLogger("muckrack_hmr")
    handler: logging.Handler
    if settings.log_file is not None:
        try:
            handler = logging.FileHandler(settings.log_file, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--log-file {settings.log_file!r}: {exc.strerror}") from None
        handler.setFormatter(_Formatter(color=False))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter(_use_color(settings.no_color)))
    logger.addHandler(handler)
    if settings.verbose:
        logger.setLevel(logging.DEBUG)
    else:
        logger.setLevel(logging.ERROR if settings.quiet else logging.INFO)
    logger.propagate = False
    _never_disabled(logger.name)


class _Ours(logging.Logger):
    """A logger of ours: the program's ``logging.config.dictConfig`` (or ``fileConfig``),
    which disables the loggers it does not name (``disable_existing_loggers``, true by
    default), left every later ``hmr:`` line unsaid, a failed save's too."""

    @property
    def disabled(self) -> bool:
        return False

    @disabled.setter
    def disabled(self, value: bool) -> None:
        del value


def _never_disabled(prefix: str) -> None:
    """Make the loggers under ``prefix``, and those made later, :class:`_Ours`."""
    manager = logging.Logger.manager

    def ours(logger: object) -> None:
        # (Not one of a class the program chose with ``logging.setLoggerClass``.)
        if type(logger) is logging.Logger:
            logger.__class__ = _Ours

    for name, logger in list(manager.loggerDict.items()):
        if name == prefix or name.startswith(prefix + "."):
            ours(logger)
    get = manager.getLogger

    def get_logger(name: str) -> logging.Logger:
        logger = get(name)
        if name == prefix or name.startswith(prefix + "."):
            ours(logger)
        return logger

    manager.getLogger = get_logger  # type: ignore[method-assign]


def version_line() -> str:
    """What ``--version`` prints: our version, the core that runs, Python's version."""
    core = "compiled core (Cython)" if _core.USING_EXTENSION else "pure-Python core"
    return f"muckrack-python-hmr {__version__}, {core}, Python {sys.version.split()[0]}"


def roots(settings: Settings, target: Target) -> list[str]:
    """The project roots: --root (or the default) and every --watch folder."""
    from .. import tracking

    for option, folders in (("--root", settings.root), ("--watch", settings.watch)):
        for folder in folders:
            if not os.path.isdir(folder):
                raise UsageError(f"{option} {folder!r} is not a folder")
    if settings.root:
        found = list(settings.root)
    elif target.module or target.script is None or _a_virtualenvs_script(target.script):
        found = [os.getcwd()]
    else:
        found = tracking.roots_for_script(target.script)
    return found + list(settings.watch)


def _a_virtualenvs_script(script: str) -> bool:
    """Is ``script`` in a virtualenv's ``bin`` folder (a console script, ``.venv/bin/app``),
    which holds no code of the project?"""
    folder = os.path.dirname(os.path.realpath(script))
    return os.path.isfile(os.path.join(os.path.dirname(folder), "pyvenv.cfg"))


def run(target: Target, settings: Settings, config_path: str | None = None) -> int:
    """Install hot reload, start the watcher, run the program; its exit code (2 for ours)."""
    from .. import integrations, tracking
    from ..watch.backends import BackendUnavailable

    try:
        project_roots = roots(settings, target)
    except UsageError as exc:
        return print_error(exc)
    if settings.restart_on_refused and not settings.no_watch:
        from . import restart

        if restart.CHANNEL not in os.environ:
            # This process stays a parent; the program runs in its child.
            return restart.supervise()
    try:
        setup_logging(settings)
    except UsageError as exc:
        return print_error(exc)
    if config_path is not None:
        log.debug("settings from %s", config_path)
    if not settings.root and target.script is not None and _a_virtualenvs_script(target.script):
        log.info(
            "%s is a virtualenv's script: the project is taken to be the current folder (%s); "
            "--root sets it",
            target.script,
            os.getcwd(),
        )

    reason = tracking.unsupported()
    if reason is not None:
        print(f"hmr: {reason}; running {target} without it", file=sys.stderr)
        return _run_plain(target)

    # First thing: from here on every import is tracked.
    hmr = tracking.install(project_roots)
    # (Registered before the program's own: run after them.)
    atexit.register(_let_go, hmr)
    hide_ours()  # (the program sees the threads python would run: its own)
    hmr.cascade = settings.cascade
    # Before the target is even found: `-m uvicorn` imports uvicorn to find it.
    integrations.activate(hmr, browser=settings.reload_browser)
    # Before the target is found too: `-m app` runs app/__init__.py (and what it
    # imports) to find app.__main__, and a data file read there is watched.
    if settings.no_watch:
        # No saves to wait for, but the same bookkeeping while the program
        # rests: its first reload costs what a later one does.
        hmr.work_when_idle()
    else:
        try:
            hmr.watch(settings)
        except BackendUnavailable as exc:
            tracking.uninstall()
            return print_error(exc)
    prepared = _prepare(target)
    if isinstance(prepared, int):
        hmr.close()
        tracking.uninstall()
        return prepared
    code, main_module = prepared

    if not settings.no_watch:
        _workers_reload_too(hmr)
        if settings.restart_on_refused:
            from . import restart

            restart.supervised(hmr, getattr(main_module, "__file__", None))
        if settings.graph is not None:
            from ..graph import GraphFile

            GraphFile(hmr, settings.graph).follow()
    code_of_exit = _run(code, main_module)
    if interrupted.is_set():
        # The process ends by SIGINT (console_main) if no code runs from a string
        # (``exec`` or ``eval`` of a str: a dataclass or named tuple made) once the
        # KeyboardInterrupt has left the program: CPython forgets it then, and exits
        # 1.  Our threads' work at exit did (the idle work importing the engine: 1 run
        # in 6 of a program that computes): they stop first.
        hmr.close()
    elif not settings.no_watch:
        _before_the_interpreter_waits(hmr)
    return code_of_exit


#: How long the end of a script waits for the watcher to start its file events.
_EVENTS_PATIENCE = 5.0


def _before_the_interpreter_waits(hmr: HMR) -> None:
    """The script ended, and threads it started go on (``Thread(target=loop).start()``
    as its last line: a bot, a worker): the interpreter waits for them, and from 3.12
    starts no thread meanwhile ("can't create new thread at interpreter shutdown").
    The watcher's threads start now, not once it sees the start-up over: before, the
    file events never came on, and no save applied."""
    main = threading.current_thread()
    if not any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate()):
        return
    watcher = hmr.watcher
    if watcher is None:
        return
    watcher.hurry()
    if not watcher.started.wait(_EVENTS_PATIENCE):
        log.debug("the file events did not start before the script's end")
    hmr.reloader.start_threads()


def _let_go(hmr: HMR) -> None:
    """At exit: what the program leaves is collected as under python.  Frozen for the
    start-up (a program that ends before the watcher saw it settle), or held by the
    import hook's fast path, its ``__main__`` was never freed, nor what it held: no
    ``__del__`` ran (a ``NamedTemporaryFile`` stayed on disk)."""
    from .. import collector

    collector.thaw()
    hmr.tracker.let_go()


def _workers_reload_too(hmr: HMR) -> None:
    """The processes the program makes (pools, pre-fork servers) reload with it.

    Nothing is imported here: :mod:`muckrack_hmr.processes` is, once the
    program forks, or imports multiprocessing's means of spawning.
    """
    from ..integrations._imports import when_imported

    def joining() -> ModuleType:
        return importlib.import_module("muckrack_hmr.processes.joining")

    os.register_at_fork(
        before=lambda: joining().before_fork(hmr),
        after_in_parent=lambda: joining().after_fork_in_parent(),
        after_in_child=lambda: joining().after_fork_in_child(),
    )
    when_imported("multiprocessing.util", lambda util: joining().patch_spawning(util, hmr))


def _run(code: CodeType, main_module: ModuleType) -> int:
    """Run the program's code as ``__main__``; its exit code."""
    from .. import runner

    try:
        runner.run_code(code, main_module)
    except SystemExit as exc:
        if not sys.flags.inspect:
            raise
        # ``python -i``: shown as an uncaught exception (the program's frames only), and
        # the prompt comes, as after ``python -i app.py`` whose app calls sys.exit.
        _print_user_exception(exc)
        return exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt as exc:
        if not _restarting():
            _print_user_exception(exc)
            interrupted.set()  # console_main ends the process as python would
        return EXIT_INTERRUPTED
    except BaseException as exc:
        _print_user_exception(exc)
        return 1
    return 0


def _restarting() -> bool:
    """Is the interrupt ours (``--restart-on-refused``), not the user's?"""
    restart = sys.modules.get("muckrack_hmr.cli.restart")
    return restart is not None and bool(restart.restarting())


def _prepare(target: Target) -> tuple[CodeType, ModuleType] | int:
    """The program's code and ``__main__``, or the exit code of an error already shown."""
    from .. import runner

    args = list(target.args)
    try:
        if target.module:
            return runner.prepare_module(target.module, args)
        return runner.prepare_script(str(target.script), args)
    except runner.TargetError as exc:
        print_error(exc)
        return exc.exit_code
    except SyntaxError as exc:
        traceback.print_exception(type(exc), exc, None)
        return 1


def _run_plain(target: Target) -> int:
    """Run the program as ``python`` would, with no hot reload."""
    prepared = _prepare(target)
    return prepared if isinstance(prepared, int) else _run(*prepared)


def _print_user_exception(exc: BaseException) -> None:
    """Show the program's uncaught exception as python does, and keep it where python
    does (``sys.last_value``...: for ``pdb.pm()`` after ``python -i``, an exit handler)."""
    from ..errors import strip_own_frames

    tb = strip_own_frames(exc.__traceback__)
    exc = exc.with_traceback(tb)
    sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, tb
    if sys.version_info >= (3, 12):
        sys.last_exc = exc
    uncaught.set()
    sys.excepthook(type(exc), exc, tb)
