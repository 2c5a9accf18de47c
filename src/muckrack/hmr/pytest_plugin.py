"""The ``pytest --hmr`` plugin's entry point (``pytest11``): options only, inert without ``--hmr``.

pytest imports every installed plugin on every run, so this module imports
nothing of muckrack_hmr: the watch mode in
:mod:`muckrack_hmr.integrations.pytest_watch` is imported only when ``--hmr``
is given.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

# muckrack_hmr.watch.backends' BACKENDS and DEFAULT_POLL_INTERVAL, and the CLI's default
# --debounce, spelled here: without --hmr, this module imports nothing of the package (a
# test keeps them equal).
BACKENDS = ("auto", "inotify", "watchdog", "polling", "watchfiles")
POLL_INTERVAL = 0.1
DEBOUNCE_MS = 5.0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hmr", "hot module replacement (muckrack-python-hmr)")
    group.addoption(
        "--hmr",
        action="store_true",
        default=False,
        help="run the tests, then watch: on each save hot-reload the changed modules and "
        "re-run only the tests that depend on them, in the same process",
    )
    group.addoption(
        "--hmr-all",
        action="store_true",
        default=False,
        help="--hmr, re-running every test after each change",
    )
    group.addoption(
        "--hmr-by-imports",
        action="store_true",
        default=False,
        help="with --hmr: select the tests whose files import changed code, not the tests "
        "that executed it (the only way before Python 3.12)",
    )
    group.addoption(
        "--hmr-debounce",
        type=float,
        default=DEBOUNCE_MS,
        metavar="MS",
        help=f"with --hmr: quiet time after a save before reloading (default: {DEBOUNCE_MS:g} "
        "ms, as the CLI's --debounce; longer for a burst of many files)",
    )
    group.addoption(
        "--hmr-poll",
        type=float,
        nargs="?",
        const=POLL_INTERVAL,
        default=None,
        metavar="SECONDS",
        help="with --hmr: find saves by polling (default every 0.1 s), for network drives, "
        "bind mounts and WSL's Windows drives where file events never come; "
        "MUCKRACK_HMR_FORCE_POLLING=1 does the same",
    )
    group.addoption(
        "--hmr-backend",
        choices=BACKENDS,
        default=None,
        help="with --hmr: how saves are found (default: auto, as the CLI's --backend)",
    )
    group.addoption(
        "--hmr-root",
        action="append",
        default=[],
        metavar="DIR",
        help="with --hmr: another folder of project code to track and reload (repeatable; "
        "the rootdir always is one)",
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Generator[None, None, None]:
    # Outside pytest's capturing (it starts in a wrapper of this hook too),
    # and before the conftests, the test modules and the code under test are
    # imported: from here on every import is tracked.
    known = early_config.known_args_namespace
    if getattr(known, "hmr", False) or getattr(known, "hmr_all", False):
        from muckrack_hmr.integrations import pytest_watch

        pytest_watch.install(early_config)
    return (yield)


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("hmr", False) or config.getoption("hmr_all", False):
        from muckrack_hmr.integrations import pytest_watch

        pytest_watch.configure(config)
