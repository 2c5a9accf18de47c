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
4. the affected test files are collected again (fresh modules, fresh items,
   pytest's ``pytest_collection_modifyitems`` applied), and run with pytest's
   own ``pytest_runtest_protocol``; the terminal reporter's statistics are
   reset before each run so that its summary line is the run's.

The session node is never torn down between runs: session-scoped fixtures
live on until their code, or code they import, changes.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib
import inspect
import logging
import os
import stat
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .events import Batch, Events
from .fixtures import Fixtures
from .suite import Suite, file_of, real

__all__ = ["CONTROLS", "WatchLoop"]

log = logging.getLogger("muckrack_hmr")

CONTROLS = "type f Enter to re-run failed tests, a Enter for all, q Enter to quit"
_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
# Background analysis for early cutoff, modules per idle tick.
_WARM_BATCH = 8


def _digest(path: str) -> bytes | None:
    """The content's digest, for a regular file only: opening a FIFO would block."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with open(path, "rb") as handle:
            return hashlib.blake2b(handle.read(), digest_size=16).digest()
    except OSError:
        return None


def _has_hooks(module: ModuleType) -> bool:
    """Does a plugin module define hooks (which can change any test's run)?"""
    return any(
        name.startswith("pytest_") and (callable(value) or name == "pytest_plugins")
        for name, value in vars(module).items()
    )


@dataclass
class _Changes:
    """What a batch of saves changed, by kind."""

    paths: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    deleted_code: list[str] = field(default_factory=list)
    tests: set[str] = field(default_factory=set)
    deleted_tests: set[str] = field(default_factory=set)
    conftests: set[str] = field(default_factory=set)
    candidates: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.paths)


class _Messages(logging.Handler):
    """Collects the engine's warnings and errors during a reload, to print them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class WatchLoop:
    """The plugin behind ``--hmr`` (registered as ``hmr-watch``)."""

    def __init__(self, config: pytest.Config, hmr: Any, commands: int | None) -> None:
        self.config = config
        self.hmr = hmr
        self.commands = commands
        self.suite = Suite(config)
        self.run_all = bool(config.getoption("hmr_all"))
        self.events = Events(float(config.getoption("hmr_debounce")) / 1000.0)
        self.session: Any = None
        self.fixtures: Any = None
        self.reporter: Any = None
        self.conftests: dict[str, ModuleType] = {}
        self.digests: dict[str, bytes | None] = {}
        #: test id -> outcome of its latest run ("passed", "failed", "error", "skipped")
        self.outcomes: dict[str, str] = {}
        #: test files whose run waits for a module that failed to reload
        self.pending: set[str] = set()
        self._ran: dict[str, str] = {}
        self._collect_errors = 0
        self._fresh: set[str] = set()
        self._quit = False
        self._whole: set[str] = set()
        self._partial: dict[str, set[str]] = {}
        self._broken: set[str] = set()

    # -- pytest hooks ----------------------------------------------------------

    def pytest_collectstart(self, collector: pytest.Collector) -> None:
        self.suite.saw(collector)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._collect_errors += 1
            # A file that failed to import is retried with every change: what
            # it imports is not in the graph.
            self._broken.add(real(self.config.rootpath / report.fspath))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            outcome = "failed" if report.when == "call" else "error"
        else:
            outcome = "skipped" if report.skipped else "passed"
        before = self._ran.get(report.nodeid)
        if before is None or _RANK[outcome] > _RANK[before]:
            self._ran[report.nodeid] = outcome

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        self.session = session
        self.fixtures = Fixtures(session)
        self.reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        self.suite.assign(list(session.items))
        self._index_conftests()
        self.hmr.remember_sources()
        self._refresh()
        if self.commands is not None:
            self.events.read_commands(self.commands)
            self.commands = None
        self._collect_errors = sum(1 for _ in self._stats("error"))
        self._run(list(session.items), time.perf_counter(), [], modify=False)
        try:
            while not self._quit:
                batch = self.events.next_batch(self._idle)
                if batch.command is not None:
                    self._command(batch.command)
                else:
                    self._changed(batch)
        except KeyboardInterrupt:
            self._line("hmr: interrupted, stopping")
        finally:
            self.events.close()
            self._leave()
        return True

    def pytest_unconfigure(self) -> None:
        self.events.close()

    # -- output ----------------------------------------------------------------------

    def _line(self, text: str, **markup: bool) -> None:
        if self.reporter is not None:
            self.reporter.write_line(text, **markup)
        else:
            print(text, flush=True)

    def _relative(self, path: str) -> str:
        root = str(self.config.rootpath)
        try:
            return os.path.relpath(path, root) if real(path).startswith(real(root)) else path
        except ValueError:  # another drive
            return path

    def _stats(self, key: str) -> list[Any]:
        stats = getattr(self.reporter, "stats", None)
        return list(stats.get(key, ())) if isinstance(stats, dict) else []

    # -- one run ---------------------------------------------------------------------

    def _start_run(self) -> None:
        """Forget the previous run's counts (before collecting: its errors count)."""
        session, reporter = self.session, self.reporter
        session.testsfailed = 0
        session._shouldfail = False
        session._shouldstop = False
        self._collect_errors = 0
        self._ran = {}
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
            reporter._sessionstarttime = time.time()

    def _run(
        self,
        items: list[pytest.Item],
        started: float,
        lines: list[str],
        *,
        modify: bool = True,
        since: str = "the save",
    ) -> None:
        session, config = self.session, self.config
        for text in lines:
            self._line(text)
        if modify and items:
            # -k, -m, --deselect, fixture-scope ordering: as pytest does after collecting.
            config.hook.pytest_collection_modifyitems(session=session, config=config, items=items)
        session.items = items
        session.testscollected = len(items)
        interrupted = None
        run_ms = 0.0
        if self._collect_errors and not config.option.continue_on_collection_errors:
            count = self._collect_errors
            interrupted = f"Interrupted: {count} error{'s' if count != 1 else ''} during collection"
        else:
            began = time.perf_counter()
            for index, item in enumerate(items):
                # The session stays set up after the last test: session-scoped
                # fixtures outlive the run.
                nextitem = items[index + 1] if index + 1 < len(items) else session
                item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
                if session.shouldfail or session.shouldstop:
                    break
            run_ms = (time.perf_counter() - began) * 1000.0
        self.outcomes.update(self._ran)
        self._summary(items, interrupted)
        total = (time.perf_counter() - started) * 1000.0
        if lines:
            self._line(
                f"hmr: {len(self._ran)} test{'s' if len(self._ran) != 1 else ''} ran in "
                f"{run_ms:.1f} ms; results {total:.1f} ms after {since}"
            )
        failing = [
            nodeid
            for nodeid, outcome in self.outcomes.items()
            if outcome in ("failed", "error") and nodeid not in self._ran
        ]
        elsewhere = f"; {len(failing)} failing test(s) not re-run" if failing else ""
        self._line(f"hmr: watching for changes{elsewhere} ({CONTROLS})")

    def _summary(self, items: list[pytest.Item], interrupted: str | None) -> None:
        reporter, session = self.reporter, self.session
        if reporter is None:
            return
        if (
            getattr(reporter, "_show_progress_info", False)
            and reporter.verbosity <= 0
            and reporter.reported_progress
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

    def _leave(self) -> None:
        """Hand the session back to pytest: its final summary is the last run's line."""
        self.config.option.no_summary = True
        if self.reporter is not None and hasattr(self.reporter, "_progress_nodeids_reported"):
            self.reporter._progress_nodeids_reported = set()
        if self._collect_errors and not self.session.testsfailed:
            self.session.testsfailed = self._collect_errors

    # -- waiting ---------------------------------------------------------------------

    def _idle(self) -> bool:
        """Analyze a few modules for early cutoff; True while some are left."""
        try:
            return bool(self.hmr.reloader.warm(limit=_WARM_BATCH))
        except Exception:
            log.exception("hmr: analyzing modules failed; reloads still work")
            return False

    def _refresh(self) -> None:
        """Watch the folders of every project module and test file; note their content."""
        loaded = self.hmr.project.loaded
        folders = {os.path.dirname(path) for path in loaded}
        folders.update(self.suite.dirs)
        self.events.watch(sorted(folders))
        for path in [*loaded, *self.suite.files, *self.conftests]:
            if path not in self.digests:
                self.digests[path] = _digest(path)

    def _index_conftests(self) -> None:
        self.conftests = {}
        for name, plugin in self.config.pluginmanager.list_name_plugin():
            if isinstance(plugin, ModuleType) and str(name).endswith("conftest.py"):
                self.conftests[real(name)] = plugin

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
            failing = {
                nodeid
                for nodeid, outcome in self.outcomes.items()
                if outcome in ("failed", "error")
            }
            if not failing:
                self._line("hmr: no failing tests")
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
        self._line(f"hmr: unknown command {text!r} ({CONTROLS})")

    def _rerun(
        self, files: set[str], started: float, lines: list[str], only: set[str] | None = None
    ) -> None:
        collected = time.perf_counter()
        self._finish_reached_fixtures(set())  # cached setup errors are retried
        self._collect(files, keep=set(files))
        items = self._items(files)
        if only is not None:
            items = [item for item in items if item.nodeid in only]
        lines.append(self._selection_line(items, files, collected))
        self._run(items, started, lines, since="the command")

    # -- a batch of saves ------------------------------------------------------------

    def _classify(self, paths: Iterable[str]) -> _Changes:
        changes = _Changes()
        loaded = self.hmr.project.loaded
        for path in sorted(paths):
            if os.path.isdir(path):
                if self.suite.wanted(path):
                    # A new folder: watch it, and look at what it already holds.
                    self.events.watch([path])
                    for folder, _, names in os.walk(path):
                        self.events.watch([folder])
                        changes.candidates.update(
                            os.path.join(folder, name)
                            for name in names
                            if self._test_file_name(name)
                        )
                    changes.paths.extend(sorted(changes.candidates))
                continue
            known = path in self.digests
            if not known and path not in loaded and not path.endswith((".py", ".pyw")):
                continue  # a log, a data file, a pipe: nothing the tests import
            exists = os.path.exists(path)
            digest = _digest(path) if exists else None
            if known and digest == self.digests[path]:
                continue  # touched, or saved unchanged
            if exists and digest is not None and os.path.getsize(path) == 0 and known:
                continue  # truncated: the write that follows brings the content
            self.digests[path] = digest
            if path in self.conftests:
                changes.conftests.add(path)
            elif path in self.suite.files:
                (changes.tests if exists else changes.deleted_tests).add(path)
            elif path in loaded and loaded[path][0] != "__main__":
                name = loaded[path][0]
                (changes.code if exists else changes.deleted_code).append(name)
            elif exists and self.suite.wanted(path) and self._test_file_name(path):
                changes.candidates.add(path)
            else:
                continue
            changes.paths.append(path)
        return changes

    def _test_file_name(self, path: str) -> bool:
        name = os.path.basename(path)
        return name.endswith(".py") and any(
            fnmatch.fnmatch(name, pattern) for pattern in self.config.getini("python_files")
        )

    def _changed(self, batch: Batch) -> None:
        changes = self._classify(batch.paths)
        if not changes:
            return
        self._start_run()
        self._line(self._changed_line(changes))
        code_reached = set(changes.code) | set(changes.deleted_code)
        for name in list(code_reached):
            code_reached.update(self.hmr.dependents_of(name, transitive=True))
        self._affected(changes, code_reached)
        files = self._whole | set(self._partial)

        if changes.code:
            result, messages = self._reload(changes.code)
            if result.reloaded:
                self._line(f"hmr: reloaded {result.summary()} in {result.total_ms:.1f} ms")
            for message in messages:
                self._line(message, red=True)
            if result.failed:
                self._wait_for_fix(files, list(result.failed))
                return
            if result.refused:
                # The engine kept the old definitions: the tests would not see the save.
                self.pending |= files
                self._line(
                    f"hmr: not running tests: {len(result.refused)} change(s) need a restart "
                    "of pytest --hmr (see above)",
                    red=True,
                )
                return
        if changes.deleted_code or changes.candidates or changes.deleted_tests:
            importlib.invalidate_caches()
        for name in changes.deleted_code:
            self._drop_code(name)
        conftests = changes.conftests | {
            key for key, module in self.conftests.items() if module.__name__ in code_reached
        }
        for key in sorted(conftests, key=lambda key: len(Path(key).parts)):
            edited_only = key not in self._reached(code_reached)
            reimported = self._reimport_conftest(key, keep=edited_only)
            if reimported is None:
                self._wait_for_fix(files, [self._relative(key)])
                return
            module, changed = reimported
            # Edited alone: the tests using what changed; reached by a change
            # of code it imports: the tests using any of its fixtures.
            names = changed if edited_only else None
            self._plugin_users(module, os.path.dirname(key), names)
        self._finish_reached_fixtures(code_reached)
        for key in changes.deleted_tests:
            self._drop_test_file(key)
        self._whole |= changes.candidates | self.pending
        self.pending = set()
        files = (self._whole | set(self._partial)) - changes.deleted_tests

        collected = time.perf_counter()
        before = set(self.suite.files)
        keep = {key for key in files if key in changes.tests} - self._reached_files(code_reached)
        self._collect(files, keep)
        self._whole |= set(self.suite.files) - before
        files = {key for key in files | self._whole if key in self.suite.files}
        items = [item for item in self._items(files) if self._wanted(item, files)]
        self._run(items, batch.first_event, [self._selection_line(items, files, collected)])

    def _reached(self, code_reached: set[str]) -> set[str]:
        """Conftests reached by a change of code they import."""
        return {key for key, module in self.conftests.items() if module.__name__ in code_reached}

    def _reached_files(self, code_reached: set[str]) -> set[str]:
        return {
            key
            for key, test_file in self.suite.files.items()
            if test_file.module_name() in code_reached
        }

    def _affected(self, changes: _Changes, code_reached: set[str]) -> None:
        """The test files to run after ``changes``, before conftests are imported again.

        Files are run whole (``self._whole``: their module imports what
        changed), or only for the tests that use certain fixtures
        (``self._partial``: a conftest changed).
        """
        self._whole = set()
        self._partial = {}
        if self.run_all:
            self._whole = set(self.suite.files) | changes.tests
            return
        self._whole |= changes.tests | (self._broken & set(self.suite.files))
        reached = set(code_reached)
        for key in changes.tests:
            test_file = self.suite.files.get(key)
            name = test_file.module_name() if test_file is not None else None
            if name is not None:
                # Test modules that import the saved one (a shared base class...).
                reached.update(self.hmr.dependents_of(name, transitive=True))
        for key, test_file in self.suite.files.items():
            if test_file.module_name() in reached:
                self._whole.add(key)
        for key, module in self.conftests.items():
            if key in changes.conftests and not os.path.exists(key):
                self._whole |= set(self.suite.under(os.path.dirname(key)))
            elif module.__name__ in code_reached:
                self._plugin_users(module, os.path.dirname(key))
        # Project modules loaded as plugins (``pytest_plugins``) serve every test.
        for name, plugin in self.config.pluginmanager.list_name_plugin():
            if (
                isinstance(plugin, ModuleType)
                and plugin.__name__ in code_reached
                and not str(name).endswith("conftest.py")
            ):
                self._plugin_users(plugin, str(self.config.rootpath))

    def _plugin_users(self, module: ModuleType, folder: str, names: set[str] | None = None) -> None:
        """Select the tests under ``folder`` that use fixtures ``module`` defines.

        Those named ``names`` (default: all of them); every test file there
        when the module defines hooks, or one of the fixtures is autouse.
        """
        under = self.suite.under(real(folder))
        defs = self.fixtures.defined_in(module.__dict__)
        if names is None:
            names = {fixturedef.argname for fixturedef in defs}
        if _has_hooks(module) or any(
            getattr(d, "_autouse", False) for d in defs if d.argname in names
        ):
            self._whole |= set(under)
            return
        for key in under:
            if any(
                names.intersection(getattr(item, "fixturenames", ()))
                for item in self.suite.files[key].items
            ):
                self._partial.setdefault(key, set()).update(names)

    def _wanted(self, item: pytest.Item, files: set[str]) -> bool:
        """Run ``item``? All of a file run whole; the users of the fixtures otherwise."""
        owner = file_of(item)
        key = real(owner.path) if owner is not None else ""
        if key in self._whole or key not in self._partial:
            return True
        return bool(self._partial[key].intersection(getattr(item, "fixturenames", ())))

    def _changed_line(self, changes: _Changes) -> str:
        deleted = changes.deleted_tests | {
            path for path in changes.paths if not os.path.exists(path)
        }
        changed = [self._relative(path) for path in changes.paths if path not in deleted]
        parts = []
        if changed:
            parts.append(f"changed {', '.join(changed)}")
        if deleted:
            parts.append(f"deleted {', '.join(self._relative(path) for path in sorted(deleted))}")
        return f"hmr: {'; '.join(parts)}"

    def _wait_for_fix(self, files: set[str], broken: list[str]) -> None:
        self.pending |= files
        self._line(
            f"hmr: not running tests until {', '.join(broken)} loads again "
            f"({len(files)} test file(s) waiting); fix it and save"
        )

    # -- reloading code ----------------------------------------------------------------

    def _test_modules(self) -> list[ModuleType]:
        modules = [module for module in self.conftests.values()]
        for test_file in self.suite.files.values():
            module = test_file.module()
            if module is not None:
                modules.append(module)
        return modules

    def _reload(self, names: list[str]) -> tuple[Any, list[str]]:
        """Hot-reload ``names`` with the engine; test modules and conftests are hidden from it."""
        hidden: dict[str, ModuleType] = {}
        for module in self._test_modules():
            if sys.modules.get(module.__name__) is module:
                hidden[module.__name__] = sys.modules.pop(module.__name__)
        # The loop prints what the reload did itself: the engine's own log
        # lines (the CLI's handler, under ``python -m muckrack.hmr``) would
        # say it a second time.
        messages = _Messages()
        handlers, propagate = log.handlers, log.propagate
        log.handlers, log.propagate = [messages], False
        try:
            result = self.hmr.reloader.reload_result(names)
        finally:
            log.handlers, log.propagate = handlers, propagate
            for name, module in hidden.items():
                sys.modules.setdefault(name, module)
        return result, messages.lines

    def _forget_imports(self, name: str) -> None:
        """``name`` is about to be imported afresh: its import statements run again."""
        tracker = self.hmr.tracker
        # Conftests of folders without __init__.py share the name "conftest":
        # the graph's node then stands for all of them, and keeps their edges.
        shared = sum(1 for module in self.conftests.values() if module.__name__ == name) > 1
        with tracker.lock:
            if not shared:
                self.hmr.graph.clear_dependencies(name)
            tracker.forget_statements(name)

    def _drop_code(self, name: str) -> None:
        """A project module was deleted: it and the project modules importing it go.

        The tests that import them import them again, and fail as in a fresh run.
        """
        tests = {module.__name__ for module in self._test_modules()}
        for doomed in [name, *self.hmr.dependents_of(name, transitive=True)]:
            if doomed in tests or doomed not in sys.modules:
                continue
            del sys.modules[doomed]
            parent, _, attr = doomed.rpartition(".")
            package = sys.modules.get(parent)
            if package is not None and isinstance(getattr(package, attr, None), ModuleType):
                # Or ``from package import module`` would still find it there.
                delattr(package, attr)
            self._forget_imports(doomed)
            self._fresh.add(doomed)

    def _finish_reached_fixtures(self, code_reached: set[str]) -> None:
        """Tear down cached session fixtures of project plugins that a change reached.

        Also cached setup errors, which a fresh run would retry.
        """
        for fixturedef in self.fixtures.cached():
            func = getattr(fixturedef, "func", None)
            module = getattr(func, "__module__", None)
            failed = fixturedef.cached_result[2] is not None
            if failed or (module in code_reached and module not in self._conftest_names()):
                self._finish(fixturedef)

    def _conftest_names(self) -> set[str]:
        return {module.__name__ for module in self.conftests.values()}

    def _finish(self, fixturedef: Any) -> None:
        try:
            self.fixtures.finish(fixturedef)
        except Exception as exc:
            self._line(
                f"hmr: tearing down fixture {fixturedef.argname!r} raised "
                f"{type(exc).__name__}: {exc}",
                red=True,
            )

    # -- conftests ---------------------------------------------------------------------

    def _reimport_conftest(self, key: str, keep: bool) -> tuple[ModuleType, set[str]] | None:
        """Import a conftest afresh in place of the old one; None if it fails to import.

        Returns the new module and the names of the fixtures that changed.
        Its cached session fixtures are kept when ``keep`` and their code is
        unchanged.  A deleted conftest is unregistered (its old module is
        returned, for the selection).
        """
        pm = self.config.pluginmanager
        old = self.conftests[key]
        name = pm.get_name(old) or key
        path = Path(name)
        old_defs = self.fixtures.defined_in(old.__dict__)
        places = [
            (mods, index)
            for mods in pm._dirpath2confmods.values()
            for index, module in enumerate(mods)
            if module is old
        ]
        pm.unregister(old)
        pm._conftest_plugins.discard(old)
        if sys.modules.get(old.__name__) is old:
            del sys.modules[old.__name__]
        self._forget_imports(old.__name__)
        if not os.path.exists(key):
            for mods, _ in places:
                mods.remove(old)
            for fixturedef in old_defs:
                self._finish(fixturedef)
            self.fixtures.remove(old_defs)
            del self.conftests[key]
            return old, {fixturedef.argname for fixturedef in old_defs}
        try:
            new = pm._importconftest(path, **self._importconftest_options())
        except Exception as exc:
            pm.register(old, name)
            pm._conftest_plugins.add(old)
            cause = exc.__cause__ or exc
            from ...errors import location_of, user_traceback

            self._line(
                f"hmr: {self._relative(key)} failed to import ({location_of(cause)}): "
                f"{type(cause).__name__}: {cause}; the old one stays\n{user_traceback(cause)}",
                red=True,
            )
            return None
        for mods in pm._dirpath2confmods.values():
            while new in mods:
                mods.remove(new)
        for mods, index in places:
            mods[index] = new
        self.fixtures.parse_conftest(new, path.parent, self.suite.dirs.get(real(path.parent)))
        new_defs = self.fixtures.defined_in(new.__dict__)
        changed = self.fixtures.changed(old_defs, new_defs, old.__dict__)
        kept, _ = self.fixtures.carry_over(old_defs, new_defs, old.__dict__, keep)
        self.fixtures.remove([d for d in old_defs if d.argname not in kept])
        self.conftests[key] = new
        return new, changed

    def _importconftest_options(self) -> dict[str, Any]:
        pm = self.config.pluginmanager
        parameters = inspect.signature(pm._importconftest).parameters
        options: dict[str, Any] = {
            "importmode": self.config.getoption("importmode"),
            "rootpath": self.config.rootpath,
        }
        if "consider_namespace_packages" in parameters:
            options["consider_namespace_packages"] = self.config.getini(
                "consider_namespace_packages"
            )
        return options

    # -- test files --------------------------------------------------------------------

    def _drop_test_file(self, key: str) -> None:
        test_file = self.suite.forget(key)
        if test_file is None:
            return
        module = test_file.module()
        if module is not None:
            old_defs = self.fixtures.defined_in(module.__dict__)
            for fixturedef in old_defs:
                self._finish(fixturedef)
            self.fixtures.remove(old_defs)
            if sys.modules.get(module.__name__) is module:
                del sys.modules[module.__name__]
            with self.hmr.tracker.lock:
                self.hmr.graph.remove_module(module.__name__)
        self.fixtures.forget_nodes(test_file.nodes())
        for item in test_file.items:
            self.outcomes.pop(item.nodeid, None)

    def _collect(self, files: set[str], keep: set[str]) -> None:
        """Collect ``files`` again, each module imported afresh.

        Every module goes first, so that a test module importing another one
        (a shared base class) imports the new one.
        """
        old: dict[str, tuple[ModuleType | None, list[Any], list[Any]]] = {}
        defined = self.fixtures.by_module()
        for key in files:
            test_file = self.suite.files.get(key)
            if test_file is None:
                continue
            module = test_file.module()
            defs = defined.get(id(module.__dict__), []) if module is not None else []
            old[key] = (module, defs, test_file.nodes())
            for item in test_file.items:
                self.outcomes.pop(item.nodeid, None)
            if module is not None:
                if sys.modules.get(module.__name__) is module:
                    del sys.modules[module.__name__]
                self._forget_imports(module.__name__)
        for key in sorted(files, key=self.suite.order):
            self._broken.discard(key)
            self.suite.collect(self.session, key)
        defined = self.fixtures.by_module()
        doomed: list[Any] = []
        gone: list[Any] = []
        for key, (module, old_defs, old_nodes) in old.items():
            test_file = self.suite.files.get(key)
            new = test_file.module() if test_file is not None else None
            new_defs = defined.get(id(new.__dict__), []) if new is not None else []
            kept: list[str] = []
            if module is not None and old_defs:
                kept, _ = self.fixtures.carry_over(old_defs, new_defs, module.__dict__, key in keep)
            doomed.extend(d for d in old_defs if d.argname not in kept)
            gone.extend(old_nodes)
        self.fixtures.remove(doomed)
        self.fixtures.forget_nodes(gone)
        self._after_imports()

    def _after_imports(self) -> None:
        """Keep what ran as the engine's reference, and watch new folders."""
        for name in list(self._fresh):
            module = sys.modules.get(name)
            filename = getattr(module, "__file__", None)
            if isinstance(filename, str):
                try:
                    with open(filename, "rb") as handle:
                        self.hmr.reloader.sources.remember(name, handle.read())
                except OSError:
                    continue
                self._fresh.discard(name)
        self.hmr.remember_sources()
        self._refresh()

    def _items(self, files: set[str]) -> list[pytest.Item]:
        return [
            item
            for key in sorted(files, key=self.suite.order)
            if key in self.suite.files
            for item in self.suite.files[key].items
        ]

    def _selection_line(self, items: list[pytest.Item], files: set[str], collected: float) -> str:
        now = time.perf_counter()
        names = sorted(self._relative(key) for key in files if key in self.suite.files)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        count = len(items)
        return (
            f"hmr: selected {count} test{'s' if count != 1 else ''} in "
            f"{len(names)} file{'s' if len(names) != 1 else ''}"
            f"{': ' + shown if shown else ''}; collected in {(now - collected) * 1000.0:.1f} ms"
        )
