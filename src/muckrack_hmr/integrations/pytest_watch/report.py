"""What ``pytest --hmr`` tells the user: its own lines, and pytest's report of each run.

pytest's terminal reporter is kept with the session; its statistics and
timers are reset before each run, so that the summary line it writes after
the run is that run's.  The outcome of every test's latest run is kept for
the ``f`` command and the "failing tests not re-run" note.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from _pytest.terminal import TerminalReporter

from .suite import real

__all__ = ["CONTROLS", "Report"]

CONTROLS = "type f Enter to re-run failed tests, a Enter for all, q Enter to quit"
_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


_FAILED = frozenset({"failed", "error"})


class Report:
    """The loop's terminal output, and the outcomes of the tests it ran."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        #: pytest's terminal reporter, once the loop starts (None without one)
        self.reporter: TerminalReporter | None = None
        #: test id -> outcome of its latest run ("passed", "failed", "error", "skipped")
        self.outcomes: dict[str, str] = {}
        #: the same, for the tests of the current run
        self.ran: dict[str, str] = {}
        #: files that failed to collect in the current run
        self.collect_errors = 0

    def line(self, text: str, **markup: bool) -> None:
        """Write a line of the loop's own."""
        if self.reporter is not None:
            self.reporter.write_line(text, **markup)
        else:
            print(text, flush=True)

    def relative(self, path: str) -> str:
        """``path`` as shown: relative to the rootdir when it is under it."""
        root = str(self.config.rootpath)
        try:
            return os.path.relpath(path, root) if real(path).startswith(real(root)) else path
        except ValueError:  # another drive
            return path

    def stats(self, key: str) -> list[object]:
        """The terminal reporter's reports of kind ``key`` ("error", "failed"...)."""
        stats = getattr(self.reporter, "stats", None)
        return list(stats.get(key, ())) if isinstance(stats, dict) else []

    def record(self, report: pytest.TestReport) -> None:
        """Note a test's outcome: the worst of its setup, call and teardown."""
        if report.failed:
            outcome = "failed" if report.when == "call" else "error"
        else:
            outcome = "skipped" if report.skipped else "passed"
        before = self.ran.get(report.nodeid)
        if before is None or _RANK[outcome] > _RANK[before]:
            self.ran[report.nodeid] = outcome

    def failing(self) -> set[str]:
        """The tests whose last outcome is a failure or an error (by node ID)."""
        return {nodeid for nodeid, outcome in self.outcomes.items() if outcome in _FAILED}

    def reset(self) -> None:
        """Forget the previous run's counts and the reporter's statistics."""
        self.collect_errors = 0
        self.ran = {}
        reporter = self.reporter
        if reporter is None:
            return
        reporter.stats = {}
        reporter._main_color = None
        reporter._known_types = None
        reporter.currentfspath = None
        if hasattr(reporter, "_progress_nodeids_reported"):
            reporter._progress_nodeids_reported = set()
        for attr in ("_session_start", "_collect_report_last_write"):
            instant = getattr(reporter, attr, None)
            if instant is not None and not isinstance(instant, float):
                setattr(reporter, attr, type(instant)())  # timing.Instant: now
        if isinstance(getattr(reporter, "_sessionstarttime", None), float):  # pytest < 8.4
            setattr(reporter, "_sessionstarttime", time.time())  # noqa: B010

    def summary(
        self, session: pytest.Session, items: list[pytest.Item], interrupted: str | None
    ) -> None:
        """pytest's end-of-run report: the terminal summary and the statistics line."""
        reporter = self.reporter
        if reporter is None:
            return
        # reported_progress is pytest 9's; pytest 8 has only the set it counts.
        reported = getattr(reporter, "reported_progress", None)
        if reported is None:
            reported = len(getattr(reporter, "_progress_nodeids_reported", ()))
        if (
            getattr(reporter, "_show_progress_info", False)
            and reporter.verbosity <= 0
            and reported
            and hasattr(reporter, "_write_progress_information_filling_space")
        ):
            reporter._write_progress_information_filling_space()
        reporter.line("")
        if interrupted:
            status = pytest.ExitCode.INTERRUPTED
        elif session.testsfailed:
            status = pytest.ExitCode.TESTS_FAILED
        elif not items:
            status = pytest.ExitCode.NO_TESTS_COLLECTED
        else:
            status = pytest.ExitCode.OK
        self.config.hook.pytest_terminal_summary(
            terminalreporter=reporter, exitstatus=status, config=self.config
        )
        if interrupted:
            reporter.write_sep("!", interrupted, red=True)
        elif session.shouldfail:
            reporter.write_sep("!", str(session.shouldfail), red=True)
        reporter.summary_stats()

    def interrupted(self, session: pytest.Session) -> None:
        """A run was interrupted: pytest's own end of an interrupted session reports it
        (what ran of it, the failures among those, where it stopped)."""
        if self.collect_errors and not session.testsfailed:
            session.testsfailed = self.collect_errors

    def hand_back(self, session: pytest.Session, broken: int = 0) -> None:
        """Hand the session back to pytest: its final summary is the last run's line.

        Its exit code says the state the session quits in: tests failing that the last
        run did not run again, or ``broken`` modules that do not load (the last save
        ran no test), end with 1, not with the last run's 0."""
        self.config.option.no_summary = True
        if self.reporter is not None and hasattr(self.reporter, "_progress_nodeids_reported"):
            self.reporter._progress_nodeids_reported = set()
        if self.collect_errors and not session.testsfailed:
            session.testsfailed = self.collect_errors
        if not session.testsfailed:
            session.testsfailed = len(self.failing()) or broken
