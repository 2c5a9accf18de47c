"""The watch loop of ``pytest --hmr``: run, wait for a save, reload, collect again, run again.

It takes over ``pytest_runtestloop`` and keeps pytest's session: its
collection tree, its fixture manager and its setup state.  After each batch
of saves:

1. the saved project modules are hot-reloaded in place by the engine (test
   modules and conftests are hidden from it: they are imported afresh);
2. the affected test files are those whose module, or a conftest (or a
   project plugin) whose fixtures their tests use, imports a saved module,
   directly or not (the dependency graph says), plus the saved test files;
3. conftests reached are imported afresh and their fixtures registered again;
4. the affected test files are collected again (fresh modules, fresh items),
   except those whose tests only ran functions that were patched in place
   (selecting by imports: those importing code whose function bodies alone
   were patched, and whose top level runs no project code, see
   :mod:`.toplevel`): their module runs again for fresh state, and their
   collected items are kept (``a`` and ``f`` keep every file's items the
   same way); pytest's
   ``pytest_collection_modifyitems`` is applied, and the tests run with
   pytest's own ``pytest_runtest_protocol``; the terminal reporter's
   statistics are reset before each run so that its summary line is the run's.

The session node is never torn down between runs: session-scoped fixtures
live on until their code, or code they import, changes.

Saves come settled from the package's save pipeline (:mod:`.wakeups`);
sorting them and selecting the tests is :mod:`.affected`'s job; importing
conftests and test files afresh, :mod:`.reimport`'s; the terminal output and
the tests' outcomes, :mod:`.report`'s.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from ...watch.bursts import SettledSaves
from .affected import Classifier, Selection
from .executed import Executed
from .fixtures import Fixtures
from .reimport import Reimporter
from .report import CONTROLS, Report
from .suite import Suite, real
from .toplevel import TopLevels
from .wakeups import Wakeups

if TYPE_CHECKING:
    from ...api import HMR

__all__ = ["WatchLoop"]

log = logging.getLogger(__name__)

# Background analysis for early cutoff, modules per idle tick.
_WARM_BATCH = 8
# Test files whose top level is parsed ahead of need, per idle tick.
_PARSE_BATCH = 8


class _Messages(logging.Handler):
    """Collects the engine's warnings and errors during a reload, to print them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append("hmr: " + record.getMessage())  # as the CLI's formatter says it


class WatchLoop:
    """The plugin behind ``--hmr`` (registered as ``hmr-watch``)."""

    def __init__(
        self,
        config: pytest.Config,
        hmr: HMR,
        commands: int | None,
        recorder: Any = None,
        *,
        wakeups: Wakeups | None = None,
    ) -> None:
        self.config = config
        self.hmr = hmr
        self.commands = commands
        self.suite = Suite(config)
        self.run_all = bool(config.getoption("hmr_all"))
        self.wakeups = wakeups or Wakeups(hmr, float(config.getoption("hmr_debounce")) / 1000.0)
        self.session: Any = None
        self.report = Report(config)
        self.reimport = Reimporter(config, hmr, self.suite, self.report)
        self.classifier = Classifier(config, hmr, self.suite, self.reimport, self.wakeups)
        self.selection = Selection(config, hmr, self.suite, self.reimport, self.run_all)
        #: test files whose run waits for a module that failed to reload
        self.pending: set[str] = set()
        self._quit = False
        self._working = False  # a run (or its reload and collection) is under way
        self._quitting = False  # Ctrl-C came while it waited: it stops
        self._handling = False  # SIGINT is this loop's (_interrupt)
        #: the line that says the loop waits for saves, once it does
        self._watching: str | None = None
        #: what each test, shared fixture and test file collection executed
        self.executed = Executed(recorder, hmr, self.suite, self.reimport)
        #: what test files' top levels read: kept collections when selecting by imports
        self.toplevels = TopLevels()

    # -- pytest hooks ----------------------------------------------------------

    def pytest_collectstart(self, collector: pytest.Collector) -> None:
        self.suite.saw(collector)
        if isinstance(collector, pytest.Module):
            self.classifier.note_collected(real(collector.path))

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Any:
        with self.executed.collecting(collector):
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Any:
        with self.executed.running(item):
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any) -> Any:
        # Not in a fixture's error: its traceback starts at the fixture, as without us.
        __tracebackhide__ = True
        with self.executed.setting_up(fixturedef):
            return (yield)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.report.collect_errors += 1
            self.reimport.broken.add(real(self.config.rootpath / report.fspath))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.report.record(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        self.session = session
        self.report.reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        self.suite.assign(list(session.items))
        self.reimport.begin(session, Fixtures(session))
        self.hmr.remember_sources()
        self.executed.arm_loaded()
        self._refresh()
        if self.wakeups.why != "the default":
            # Saves are found another way than the OS's file events: say how.
            self.report.line(
                f"hmr: finding saves by {self.wakeups.backend.describe()} ({self.wakeups.why})"
            )
        if self.commands is not None:
            self.wakeups.read_commands(self.commands)
            self.commands = None
        self.report.collect_errors = len(self.report.stats("error"))
        working = self._working = True
        # Ctrl-C pressed twice while it waits: the second lets the stop the first asked
        # for finish (at most a few seconds), rather than making it pytest's report of a
        # session interrupted in the watcher's stop, with its code (2).
        if (
            signal.getsignal(signal.SIGINT) is signal.default_int_handler
            and threading.current_thread() is threading.main_thread()
        ):
            signal.signal(signal.SIGINT, self._interrupt)
            self._handling = True
        try:
            self._run(list(session.items), time.perf_counter(), [])
            while True:
                working = self._working = False
                if self._watching is not None:
                    # Said once the loop waits: a Ctrl-C after it quits as `q` does.
                    self.report.line(self._watching)
                    self._watching = None
                # The run's results are out: what the earlier imports of the test
                # modules left (cycles of classes, functions and their module) goes
                # now, while the loop waits, rather than piling up run after run.
                gc.collect()
                if self._quit:
                    break
                wakeup = self.wakeups.next_wakeup(self._idle)
                working = self._working = True
                if wakeup.notice is not None:
                    self.report.line(wakeup.notice, red=True)
                elif wakeup.command is not None:
                    self._command(wakeup.command)
                elif wakeup.saves is not None:
                    self._changed(wakeup.saves)
        except KeyboardInterrupt:
            if working:
                # A run interrupted (or the reload and collection before it): pytest
                # reports it as its own, with what ran of it, and ends with its code for
                # an interrupted session (2).  It ended with the code of the last run
                # that completed: 0 after a green one, as if the tests had passed.
                raise
            self.report.line("hmr: interrupted, stopping")  # waiting: as `q`
        finally:
            try:
                self.wakeups.close()
            finally:
                if self._handling:
                    # A Ctrl-C that came as it stopped is handled (and let go) before
                    # Python's handler is back: the interpreter runs a signal's handler at
                    # a jump back, such as this loop's.
                    for _ in range(2):
                        pass
                    signal.signal(signal.SIGINT, signal.default_int_handler)
                    self._handling = False
            if working:
                self.report.interrupted(session)
            else:
                self.report.hand_back(session, broken=len(self.hmr.reloader.failing))
        return True

    def _interrupt(self, signum: int, frame: object) -> None:
        """SIGINT while the loop runs: KeyboardInterrupt, as Python's own handler raises,
        but not again once one came while it waited (it stops).  Hidden from pytest's
        tracebacks: the interrupted test's line is the one to show."""
        __tracebackhide__ = True
        if self._quitting:
            return
        if not self._working:
            self._quitting = True
        raise KeyboardInterrupt

    def pytest_unconfigure(self) -> None:
        self.wakeups.close()
        self.executed.close()
        self.reimport.close()

    # -- one run ---------------------------------------------------------------------

    def _start_run(self) -> None:
        """Forget the previous run's counts (before collecting: its errors count)."""
        session = self.session
        session.testsfailed = 0
        session._shouldfail = False
        session._shouldstop = False
        self.report.reset()

    def _run(
        self,
        items: list[pytest.Item],
        started: float,
        lines: list[str],
        *,
        since: str = "the save",
    ) -> None:
        session, config = self.session, self.config
        for text in lines:
            self.report.line(text)
        session.items = items
        session.testscollected = len(items)
        interrupted = None
        run_ms = 0.0
        if self.report.collect_errors and not config.option.continue_on_collection_errors:
            count = self.report.collect_errors
            interrupted = f"Interrupted: {count} error{'s' if count != 1 else ''} during collection"
        else:
            began = time.perf_counter()
            for item in items:
                _again(item)
            for index, item in enumerate(items):
                # The session stays set up after the last test: session-scoped
                # fixtures outlive the run.
                nextitem = items[index + 1] if index + 1 < len(items) else session
                item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
                if session.shouldfail or session.shouldstop:
                    break
            run_ms = (time.perf_counter() - began) * 1000.0
        ran, outcomes = self.report.ran, self.report.outcomes
        outcomes.update(ran)
        self.report.summary(session, items, interrupted)
        total = (time.perf_counter() - started) * 1000.0
        if lines:
            self.report.line(
                f"hmr: {len(ran)} test{'s' if len(ran) != 1 else ''} ran in "
                f"{run_ms:.1f} ms; results {total:.1f} ms after {since}"
            )
        self._watching = self._watching_line(self.report.failing() - ran.keys())

    # -- waiting ---------------------------------------------------------------------

    def _idle(self) -> bool:
        """Analyze a few modules for early cutoff, then compile a test module; True while
        some are left."""
        try:
            reloader = self.hmr.reloader
            if reloader.index_reach(limit=_WARM_BATCH * 16) or reloader.warm(limit=_WARM_BATCH):
                return True
        except Exception:
            log.exception("analyzing modules failed; reloads still work")
        if self.reimport.prepare():
            return True
        if self.executed.recorder is None:  # selecting by imports: see _kept_collections
            return self.toplevels.prepare(self.suite.files, _PARSE_BATCH)
        return False

    def _refresh(self) -> None:
        """Watch the folders of every project module and test file; note their content
        (a save is compared with it)."""
        loaded = self.hmr.project.loaded
        folders = {os.path.dirname(path) for path in loaded}
        folders.update(self.suite.dirs)
        self.wakeups.watch(sorted(folders))
        self.classifier.note([*loaded, *self.suite.files, *self.reimport.conftests])

    # -- commands --------------------------------------------------------------------

    def _command(self, text: str) -> None:
        started = time.perf_counter()
        command = text.strip().lower()
        if command in ("q", "quit", "exit"):
            self._quit = True
            return
        if command in ("a", "all"):
            self._start_run()
            self._rerun(set(self.suite.files), started, ["hmr: running all tests"])
            return
        if command in ("f", "failed"):
            failing = self.report.failing()
            if not failing:
                self.report.line("hmr: no failing tests")
                return
            files = {
                key
                for key, test_file in self.suite.files.items()
                if any(item.nodeid in failing for item in test_file.items)
            }
            self._start_run()
            self._rerun(
                files, started, [f"hmr: re-running {len(failing)} failing test(s)"], failing
            )
            return
        self.report.line(f"hmr: unknown command {text!r} ({CONTROLS})")

    def _rerun(
        self, files: set[str], started: float, lines: list[str], only: set[str] | None = None
    ) -> None:
        collected = time.perf_counter()
        failing = sorted(self.hmr.reloader.failing)
        if failing:
            # Asked for all the same: said, as a cold run would fail to import it.
            lines.append(
                f"hmr: {', '.join(failing)} did not load its last save: the tests run the "
                "code that runs (fix it and save)"
            )
        self.reimport.finish_reached_fixtures(set())  # cached setup errors are retried
        # What is collected is current: only files that failed to collect, or
        # wait for a module to load again, are imported again.
        stale = files & (self.reimport.broken | self.pending)
        self._collect(files, keep=set(files), reuse=files - stale)
        items = self._items(files)
        if only is not None:
            items = [item for item in items if item.nodeid in only]
        items, deselected = self._deselect(items)
        lines.append(self._selection_line(items, deselected, files, collected))
        if self._nothing_to_run(items, deselected, lines):
            return
        self._run(items, started, lines, since="the command")

    # -- a batch of saves ------------------------------------------------------------

    def _changed(self, saves: SettledSaves) -> None:
        changes = self.classifier.classify(saves)
        if not changes:
            return
        self._start_run()
        self.report.line(changes.describe(self.report.relative))
        for path in changes.paths:
            if path.endswith(".py"):
                self.reimport.forget_pyc(path)
        code_reached = set(changes.code) | set(changes.deleted_code)
        for name in list(code_reached):
            code_reached.update(self.hmr.dependents_of(name, transitive=True))
        selection = self.selection
        selection.affected(changes, code_reached)
        files = selection.files()

        edits = (
            self.executed.edits(changes.code, changes.sources) if not changes.deleted_code else None
        )
        held = self.executed.held(edits) if edits is not None else []
        # Selecting by imports: an edit of function bodies alone, once patched in
        # place, leaves the collected tests of the importing files valid.
        bodies: list[tuple[str, str, list[object]]] | None = None
        if edits is None and changes.code and not changes.deleted_code:
            told = self.executed.told(changes.code, changes.sources)
            if told is not None and Executed.bodies_only(told):
                bodies = Executed.held(told)
        patched_in_place = False
        #: test files whose collected tests run as they are, not imported again
        reuse: set[str] = set()
        if changes.code:
            failing = set(self.hmr.reloader.failing)
            result, messages = self._reload(changes.code, changes.sources)
            if result.reloaded:
                self.report.line(f"hmr: reloaded {result.summary()} in {result.total_ms:.1f} ms")
                self.executed.arm_modules(sys.modules.get(name) for name in result.reloaded)
            # As the CLI says it (the engine's own line is not printed here).
            for name in sorted(failing - self.hmr.reloader.failing):
                self.report.line(f"hmr: {name} recovered")
            for message in messages:
                self.report.line(message, red=True)
            if result.failed:
                applied = bool(result.reloaded) or not set(result.failed) <= set(changes.code)
                # Nothing of the save applied (its modules failed, and kept their code):
                # the tests would see what they saw, and the fix is judged on its own
                # (saved back as it ran, it runs nothing).  Before, each test file
                # importing the module waited, and ran whole after the fix.
                self._wait_for_fix(files, list(result.failed), pending=applied)
                return
            if result.refused:
                # The engine kept the old definitions: the tests would not see the save.
                self.pending |= files
                self.report.line(
                    f"hmr: not running tests: {len(result.refused)} change(s) need a restart "
                    "of pytest --hmr (see above)",
                    red=True,
                )
                return
            if not result.reloaded and set(changes.code) <= set(result.recovered):
                # Saved back as it runs (after a save that did not apply): no code the
                # tests ran changed.  Before, every test file importing it ran whole.
                code_reached = set()
                selection.affected(changes, code_reached)
            # No dependent ran again, and the functions are the objects they were.
            patched_in_place = (
                bodies is not None
                and set(result.reloaded) <= set(changes.code)
                and Executed.kept(bodies)
            )
            if edits is not None and self.executed.dependents_ran(edits, result.reloaded):
                # What the edits changed (and the dependents that ran again
                # rebound) is told in functions and names: the tests that
                # executed those are selected, not every test importing them.
                found = self.executed.select(edits)
                if found is not None:
                    # (And the conftests whose import read what they import: again.)
                    reading = selection.conftests_reading(code_reached, self.toplevels)
                    code_reached = {self.reimport.conftests[key].__name__ for key in reading}
                    selection.affected(changes, code_reached)
                    selection.add_executed(*found)
                    if self.executed.kept(held):
                        # Only tests that ran a function patched in place:
                        # their files are not imported nor collected again.
                        reuse = set(selection.tests)
        if changes.deleted_code or changes.candidates or changes.deleted_tests:
            importlib.invalidate_caches()
        for name in changes.deleted_code:
            self.reimport.drop_code(name)
        reached = selection.reached_conftests(code_reached)
        for key in sorted(changes.conftests | reached, key=lambda key: len(Path(key).parts)):
            edited_only = key not in reached
            old = self.reimport.conftests.get(key)
            reach = selection.plugin_reach(old) if old is not None else (False, set[str]())
            reimported = self.reimport.reimport_conftest(key, keep=edited_only)
            if reimported is None:
                # Which fixtures the fix will change is known only once it
                # imports: the tests using any of the old module's wait, as
                # the dependents of a module that failed to reload do.
                selection.plugin_users(self.reimport.conftests[key], os.path.dirname(key))
                self._wait_for_fix(selection.files(), [self.report.relative(key)])
                return
            module, changed = reimported
            self.executed.arm_modules([module])
            # Edited alone: the tests using what changed; reached by a change
            # of code it imports: the tests using any of its fixtures.
            names = changed if edited_only else None
            # (As it was before too: a hook or an autouse fixture it removed.)
            selection.plugin_users(module, os.path.dirname(key), names, reach)
        for key in sorted(changes.new_conftests, key=lambda key: len(Path(key).parts)):
            added = self.reimport.add_conftest(key)
            if added is None:
                self._wait_for_fix(selection.files(), [self.report.relative(key)])
                return
            self.executed.arm_modules([added])
            # Its fixtures and hooks may change any test below it.
            selection.whole |= set(self.suite.under(os.path.dirname(key)))
        self.reimport.finish_reached_fixtures(code_reached)
        dropped = 0
        for key in changes.deleted_tests:
            test_file = self.suite.files.get(key)
            dropped += len(test_file.items) if test_file is not None else 0
            self.reimport.drop_test_file(key)
        waiting = self.pending
        selection.whole |= changes.candidates | self.pending
        self.pending = set()
        files = selection.files() - changes.deleted_tests
        reuse -= selection.whole | set(selection.partial) | self.reimport.broken
        if patched_in_place:
            reuse |= selection.kept_collections(changes, code_reached, waiting, self.toplevels)

        collected = time.perf_counter()
        before = set(self.suite.files)
        keep = {key for key in files if key in changes.tests} - selection.reached_files(
            code_reached
        )
        self._collect(files, keep, reuse)
        selection.whole |= set(self.suite.files) - before
        files = {key for key in files | selection.whole if key in self.suite.files}
        items = [item for item in self._items(files) if selection.wanted(item, files)]
        items, deselected = self._deselect(items)
        lines = [self._selection_line(items, deselected, files, collected)]
        if dropped and not (items or deselected or self.report.collect_errors):
            # (Nothing imports a test file: "none imports what changed" said nothing.)
            s = "s" if dropped != 1 else ""
            lines = [f"hmr: no test to run: the deleted file's {dropped} test{s} dropped"]
        if self._nothing_to_run(items, deselected, lines):
            return
        self._run(items, saves.first_event, lines)

    def _wait_for_fix(self, files: set[str], broken: list[str], *, pending: bool = True) -> None:
        """Say that ``files`` wait for ``broken`` to load again; with ``pending``, they run
        once it does."""
        if pending:
            self.pending |= files
        self.report.line(
            f"hmr: not running tests until {', '.join(broken)} loads again "
            f"({len(files)} test file(s) waiting); fix it and save"
        )
        self._watching = f"hmr: watching for changes ({CONTROLS})"

    # -- reloading code ----------------------------------------------------------------

    def _reload(self, names: list[str], sources: dict[str, bytes]) -> tuple[Any, list[str]]:
        """Hot-reload ``names`` with the engine, applying ``sources`` (the saves as judged);
        test modules and conftests are hidden from it."""
        hidden: dict[str, ModuleType] = {}
        for module in self.reimport.test_modules():
            if sys.modules.get(module.__name__) is module:
                hidden[module.__name__] = sys.modules.pop(module.__name__)
        # The loop prints what the reload did itself: the engine's own log
        # lines (the CLI's handler, under ``python -m muckrack.hmr``) would
        # say it a second time.
        messages = _Messages()
        package = logging.getLogger("muckrack_hmr")  # every logger of ours is below it
        handlers, propagate = package.handlers, package.propagate
        package.handlers, package.propagate = [messages], False
        try:
            result = self.hmr.reloader.reload_result(names, sources=sources)
        finally:
            package.handlers, package.propagate = handlers, propagate
            for name, module in hidden.items():
                sys.modules.setdefault(name, module)
        return result, messages.lines

    def _collect(self, files: set[str], keep: set[str], reuse: set[str]) -> None:
        """Collect ``files`` again (see :meth:`.Reimporter.collect`); watch new folders.

        Those in ``reuse`` keep their collected tests, with fresh module
        state (:meth:`.Reimporter.refresh`) where that can be done.
        """
        reuse = reuse & files
        again = (files - reuse) | self.reimport.refresh(reuse)
        self.executed.arm_modules(
            self.suite.files[key].module() for key in reuse - again if key in self.suite.files
        )
        self.executed.recollecting(again)
        self.reimport.collect(again, keep)
        self._refresh()

    def _items(self, files: set[str]) -> list[pytest.Item]:
        return [
            item
            for key in sorted(files, key=self.suite.order)
            if key in self.suite.files
            for item in self.suite.files[key].items
        ]

    def _deselect(self, items: list[pytest.Item]) -> tuple[list[pytest.Item], list[pytest.Item]]:
        """The items left after pytest's own deselection, and those it deselected.

        -k, -m, --deselect, fixture-scope ordering: as pytest does after
        collecting, and before the selection line, which counts what runs.
        """
        if not items:
            return items, []
        session, config = self.session, self.config
        kept = list(items)
        config.hook.pytest_collection_modifyitems(session=session, config=config, items=kept)
        left = {id(item) for item in kept}
        return kept, [item for item in items if id(item) not in left]

    def _nothing_to_run(
        self, items: list[pytest.Item], deselected: list[pytest.Item], lines: list[str]
    ) -> bool:
        """Say so when no test is affected, or pytest deselected every one: no empty run.

        A collection error still gets its run, which reports it.
        """
        if items or self.report.collect_errors:
            return False
        for text in lines:
            self.report.line(text)
        self._watching = self._watching_line(self.report.failing())
        return True

    @staticmethod
    def _watching_line(failing: set[str]) -> str:
        """The line said as the loop waits, with the failing tests the last run left alone."""
        elsewhere = f"; {len(failing)} failing test(s) not re-run" if failing else ""
        return f"hmr: watching for changes{elsewhere} ({CONTROLS})"

    def _selection_line(
        self,
        items: list[pytest.Item],
        deselected: list[pytest.Item],
        files: set[str],
        collected: float,
    ) -> str:
        now = time.perf_counter()
        elapsed = f"collected in {(now - collected) * 1000.0:.1f} ms"
        count = len(items)
        errors = self.report.collect_errors
        if not count and not deselected and errors:
            # A saved test file that does not import: its error is what the run shows.
            return (
                f"hmr: no test to run: {errors} collection error{'s' if errors != 1 else ''} "
                f"(below); {elapsed}"
            )
        if not count and not deselected:
            # (Selecting by the functions tests executed, 3.12+; else by their imports.)
            none = "ran" if self.executed.recorder is not None else "imports"
            return f"hmr: no test is affected: none {none} what changed; {elapsed}"
        if deselected and not count:
            gone = len(deselected)
            return (
                f"hmr: no tests to run: {gone} affected test{'s' if gone != 1 else ''} "
                f"deselected; {elapsed}"
            )
        # A file whose every test was deselected is not shown; one that
        # failed to collect (no tests) is.
        running = {id(item) for item in items}
        names = sorted(
            self.report.relative(key)
            for key in files
            if key in self.suite.files
            and (
                not self.suite.files[key].items
                or any(id(item) in running for item in self.suite.files[key].items)
            )
        )
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        aside = f" ({len(deselected)} deselected)" if deselected else ""
        return (
            f"hmr: selected {count} test{'s' if count != 1 else ''}{aside} in "
            f"{len(names)} file{'s' if len(names) != 1 else ''}"
            f"{': ' + shown if shown else ''}; {elapsed}"
        )


def _again(item: pytest.Item) -> None:
    """Ready an item that ran before to run again, as a freshly collected one would.

    pytest's own protocol makes its fixture request anew; what it leaves
    from the last run is the captured output (which a report would show
    again), the recorded properties, and the instance of a test class.
    """
    if getattr(item, "_request", None) is not False:
        return  # never ran
    item._report_sections = []
    item.user_properties = []
    if isinstance(item.parent, pytest.Class):
        # Each run of a test method gets a new instance of its class.
        item.__dict__.pop("_instance", None)
        item.__dict__.pop("_obj", None)
