"""Shared fixtures: both cores, a throwaway project, an installed HMR."""

from __future__ import annotations

import faulthandler
import importlib
import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import muckrack_hmr

from .cores import CORE_PARAMS, core_module
from .subprocesses import PLUGIN, Child, Reaper, Watch


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-c-extensions",
        action="store_true",
        default=False,
        help="run the tests against the pure-Python core only",
    )


# What a test starts real processes with: its fixtures, or its whole module.
_E2E_FIXTURES = frozenset({"spawn", "watch", "core_env", "proj"})
_E2E_MODULES = frozenset(
    {
        "test_build",
        "test_cli",
        "test_differential",
        "test_everyday_edits",
        "test_frameworks",
        "test_real_suites",
    }
)


# pytest-timeout fails a test that runs too long by interrupting its main thread
# (SIGALRM); a thread stuck where no signal reaches it (a lock taken in C, say)
# would hang the whole run.  A watchdog behind it dumps every thread's stack and
# ends the worker: the run goes on (xdist replaces it) and says where it hung.
_WATCHDOG_SLACK = 60.0
_watchdog_fd: list[int] = []


def pytest_configure(config: pytest.Config) -> None:
    if sys.__stderr__ is not None:  # the real stderr, not a test's capture
        _watchdog_fd.append(os.dup(sys.__stderr__.fileno()))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    if not _watchdog_fd:
        yield
        return
    marker = item.get_closest_marker("timeout")
    limit = marker.args[0] if marker is not None and marker.args else None
    limit = float(limit or item.config.getini("timeout") or 0) or 120.0
    faulthandler.dump_traceback_later(limit + _WATCHDOG_SLACK, exit=True, file=_watchdog_fd[0])
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & _E2E_FIXTURES or getattr(module, "__name__", "").split(".")[-1] in (
            _E2E_MODULES
        ):
            item.add_marker(pytest.mark.e2e)
    if not config.getoption("--no-c-extensions"):
        return
    kept, deselected = [], []
    for item in items:
        (deselected if item.get_closest_marker("c_extension") else kept).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(scope="session", params=CORE_PARAMS)
def core_name(request: pytest.FixtureRequest) -> str:
    """``"c"`` or ``"py"``: every test that uses it runs once per core."""
    core_module(request.param)
    return str(request.param)


@pytest.fixture(scope="session")
def core(core_name: str) -> ModuleType:
    """The core module itself (compiled ``_hmr_core`` or pure ``_core_py``)."""
    return core_module(core_name)


@pytest.fixture(scope="session")
def compiled_core() -> ModuleType:
    """The compiled core alone (for tests that compare it with the pure twin)."""
    return core_module("c")


@pytest.fixture
def core_env(core_name: str) -> dict[str, str]:
    """Environment for a subprocess that must run on the same core."""
    env = dict(os.environ)
    env.pop("MUCKRACK_HMR_NO_EXTENSIONS", None)
    if core_name == "py":
        env["MUCKRACK_HMR_NO_EXTENSIONS"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # A child that hangs is sent SIGABRT: it then prints where its threads are.
    env["PYTHONFAULTHANDLER"] = "1"
    env["NO_COLOR"] = "1"
    env.pop("FORCE_COLOR", None)
    return env


class Project:
    """A throwaway folder of modules, importable while the test runs."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, relpath: str, source: str) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return path

    def module_names(self) -> list[str]:
        # A prefix test, not a resolve() of every module's file: that was most of
        # each test's teardown.  The modules' files are named through sys.path's
        # entry for the root, or the root's real path.
        prefixes = tuple({str(self.root) + os.sep, os.path.realpath(self.root) + os.sep})
        names = []
        for name, module in list(sys.modules.items()):
            filename = getattr(module, "__file__", None)
            if filename is None:
                # A namespace package (no file): by its folders.
                folders = list(getattr(module, "__path__", None) or ())
                ours = any(isinstance(each, str) and each.startswith(prefixes) for each in folders)
            else:
                ours = isinstance(filename, str) and filename.startswith(prefixes)
            if ours:
                names.append(name)
        return names


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """A project folder on ``sys.path``; its modules are unloaded afterwards."""
    root = tmp_path / "proj"
    root.mkdir()
    proj = Project(root)
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        yield proj
    finally:
        for name in proj.module_names():
            sys.modules.pop(name, None)
        sys.path.remove(str(root))
        importlib.invalidate_caches()


@pytest.fixture
def hmr(project: Project, core: ModuleType) -> Iterator[Any]:
    """HMR installed on ``project`` with the core under test; uninstalled after."""
    muckrack_hmr.uninstall()
    installed = muckrack_hmr.install([project.root], core=core)
    assert type(installed.tracker).__module__ == core.__name__
    try:
        yield installed
    finally:
        muckrack_hmr.uninstall()


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    """An empty project folder, for the end-to-end tests."""
    root = tmp_path / "proj"
    root.mkdir()
    return root


@pytest.fixture
def spawn(core_env: dict[str, str]) -> Iterator[Callable[..., Child]]:
    """Start ``python -u -m muckrack.hmr *args`` in the background; killed after the test."""
    children: list[Child] = []

    def start(
        args: list[str],
        *,
        cwd: Path,
        env: dict[str, str] | None = None,
        stdin: bool = False,
        new_session: bool = False,
    ) -> Child:
        child = Child(
            args,
            cwd=cwd,
            env=core_env if env is None else env,
            stdin=stdin,
            new_session=new_session,
        )
        children.append(child)
        return child

    try:
        yield start
    finally:
        for child in children:
            child.close()


@pytest.fixture
def reap() -> Iterator[Reaper]:
    """Kill what a test leaves: a failed test must not hang on the workers' copies of the
    CLI's output pipes."""
    reaper = Reaper()
    yield reaper
    reaper.kill()


@pytest.fixture
def watch(core_env: dict[str, str]) -> Iterator[Callable[..., Watch]]:
    """Starts ``pytest --hmr`` children on the test's core; they are closed after it."""
    children: list[Child] = []

    def start(
        proj: Path,
        *args: str,
        cli: bool = False,
        autoload: bool = False,
        stdin: bool = False,
        flag: str = "--hmr",
        env: dict[str, str] | None = None,
    ) -> Watch:
        """``python -m pytest --hmr -v ARGS`` in ``proj`` (``env``: more variables)."""
        env = dict(core_env, **(env or {}))
        if autoload or cli:
            env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
            plugin: list[str] = []
        else:
            env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
            plugin = PLUGIN
        command = ("-u", "-m", "muckrack.hmr", "-m", "pytest") if cli else ("-u", "-m", "pytest")
        child = Child(
            [*plugin, flag, "-v", "-p", "no:cacheprovider", *args],
            cwd=proj,
            env=env,
            command=command,
            stdin=stdin,
        )
        children.append(child)
        return Watch(child)

    try:
        yield start
    finally:
        for child in children:
            child.close()


def leases_tell(folder: Path | str) -> bool:
    """Can this system tell a file open for writing (Linux's read leases)?"""
    from muckrack_hmr.capture import being_written

    probe = os.path.join(str(folder), ".probe")
    with open(probe, "w"):
        held = being_written(probe)
    closed = being_written(probe)
    os.unlink(probe)
    return held and not closed
