"""``pytest --hmr``: run the tests once, then re-run only the affected ones after each save.

The entry point (:mod:`muckrack.hmr.pytest_plugin`) calls :func:`install`
before the conftests are imported, and :func:`configure` once pytest is
configured; the watch loop itself is :class:`~.loop.WatchLoop`, a plugin
that takes over ``pytest_runtestloop``.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from .wakeups import Wakeups

if TYPE_CHECKING:
    from ...api import HMR

__all__ = ["configure", "install"]

_HMR = pytest.StashKey[Any]()
_COMMANDS = pytest.StashKey[int | None]()
_RECORDER = pytest.StashKey[Any]()
#: the CLI's --backend and --poll, under ``python -m muckrack.hmr -m pytest --hmr``
_CLI_BACKEND = pytest.StashKey[tuple[str, float | None]]()


def install(config: pytest.Config) -> None:
    """Track imports from now on: the rootdir (and ``--hmr-root`` folders) is project code.

    Under ``python -m muckrack.hmr -m pytest --hmr`` the HMR is already
    installed: it is reused, and its watcher stopped, because reloads must
    happen between runs, never during one.
    """
    from ... import tracking

    hmr = tracking.active()
    if hmr is None:
        roots = [str(config.rootpath), *config.known_args_namespace.hmr_root]
        missing = [root for root in roots if not os.path.isdir(root)]
        if missing:
            raise pytest.UsageError(f"--hmr-root {missing[0]!r} is not a folder")
        reason = tracking.unsupported()
        if reason is not None:
            raise pytest.UsageError(f"--hmr: {reason}")
        hmr = tracking.install(roots)
        _edges_of_modules_imported_before(hmr)
    else:
        if hmr.watcher is not None:
            config.stash[_CLI_BACKEND] = hmr.watcher.backend_choice()
        hmr.close()
    config.stash[_HMR] = hmr
    config.stash[_COMMANDS] = _command_input(config)
    by_imports = getattr(config.known_args_namespace, "hmr_by_imports", False)
    config.stash[_RECORDER] = None if by_imports else _recorder()


def _edges_of_modules_imported_before(hmr: HMR) -> None:
    """The project's modules imported before the import hook was (by another plugin:
    anyio's imports trio, which imports attrs): their imports of each other were not
    seen, and a change of one (``attr._funcs``) reached no test file (they import
    ``attr``).  What each one's namespace holds tells them: a module of the project, or
    a function or class one defined (``from ._funcs import has``)."""
    tracker, graph = hmr.tracker, hmr.graph
    modules = {
        name: module
        for name, module in list(sys.modules.items())
        if isinstance(module, ModuleType) and tracker.is_tracked(name)
    }
    if not modules:
        return
    with tracker.lock:
        for name, module in modules.items():
            for value in list(vars(module).values()):
                if isinstance(value, ModuleType):
                    target = getattr(value, "__name__", None)
                elif isinstance(value, type) or callable(value):
                    target = getattr(value, "__module__", None)
                else:
                    continue
                if isinstance(target, str) and target != name and target in modules:
                    graph.add_edge(name, target)


def _recorder() -> Any:
    """What each test executes, recorded from now on (None before Python 3.12).

    Started before the conftests are imported: every project module imported
    from here on has its functions armed as its code is loaded.
    """
    from ... import tracking
    from .executed import Recorder

    recorder = Recorder.start()
    capture = tracking.capture()
    if recorder is not None and capture is not None:
        capture.listeners.append(recorder.arm_module)
    return recorder


def configure(config: pytest.Config) -> None:
    """Check the options and register the watch loop."""
    from .loop import WatchLoop

    if config.option.collectonly:
        raise pytest.UsageError("--hmr runs tests: it cannot be combined with --collect-only")
    workers = getattr(config.option, "numprocesses", None)
    if workers not in (None, 0, "0"):
        raise pytest.UsageError(
            "--hmr runs the tests in its own process: it cannot be combined with -n"
        )
    if config.getoption("hmr_debounce") < 0:
        raise pytest.UsageError("--hmr-debounce must be >= 0 ms")
    if _HMR not in config.stash:  # the plugin was registered after the conftests were loaded
        install(config)
    loop = WatchLoop(
        config,
        config.stash[_HMR],
        config.stash[_COMMANDS],
        config.stash.get(_RECORDER, None),
        wakeups=_wakeups(config),
    )
    config.pluginmanager.register(loop, "hmr-watch")


def _wakeups(config: pytest.Config) -> Wakeups:
    """The loop's saves and commands; files watched as ``--hmr-backend`` and ``--hmr-poll`` say.

    Under ``python -m muckrack.hmr -m pytest --hmr``, the CLI's ``--backend``
    and ``--poll`` apply where these are not given; ``MUCKRACK_HMR_FORCE_POLLING``
    applies as it does to the CLI.
    """
    from ...watch.backends import BackendUnavailable

    backend, poll = config.stash.get(_CLI_BACKEND, ("auto", None))
    if config.getoption("hmr_backend") is not None:
        backend = config.getoption("hmr_backend")
    if config.getoption("hmr_poll") is not None:
        poll = config.getoption("hmr_poll")
        if poll <= 0:
            raise pytest.UsageError("--hmr-poll must be > 0 seconds")
    hmr = config.stash[_HMR]
    try:
        return Wakeups(
            hmr,
            float(config.getoption("hmr_debounce")) / 1000.0,
            backend=backend,
            poll=poll,
        )
    except (BackendUnavailable, ValueError) as exc:
        raise pytest.UsageError(f"--hmr-backend: {exc}") from None


def _command_input(config: pytest.Config) -> int | None:
    """A private duplicate of standard input for the commands, or None.

    Made before pytest's capturing starts: it points descriptor 0 at
    /dev/null while tests run (and while conftests load); the duplicate
    keeps reading the terminal (or pipe).  None with a debugger, which reads
    standard input too.
    """
    options = config.known_args_namespace
    if getattr(options, "usepdb", False) or getattr(options, "trace", False):
        return None
    try:
        fd = sys.stdin.fileno()
        os.fstat(fd)
        return os.dup(fd)
    except (AttributeError, OSError, ValueError):
        return None
