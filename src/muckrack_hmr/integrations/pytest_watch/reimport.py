"""Importing conftests and test modules afresh in the session that ``pytest --hmr`` keeps.

Test modules and conftests are not hot-reloaded by the engine: each is
imported again (a conftest in place of the old one in pytest's plugin
manager, a test file collected again under its folder's node), its import
statements forgotten first so that the dependency graph learns them anew.
The fixtures they define are handed over: a session fixture whose
definition is unchanged keeps its cached value, the others are torn down.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import fractions
import inspect
import os
import sys
import types
import uuid
from pathlib import Path, PurePath
from types import ModuleType
from typing import TYPE_CHECKING, TypedDict

import pytest

from .report import Report
from .suite import Suite, real

if TYPE_CHECKING:
    from collections.abc import Callable

    from _pytest.nodes import Node
    from _pytest.pathlib import ImportMode

    from ...api import HMR
    from .fixtures import Definition, Fixtures

__all__ = ["Reimporter"]

# What a conftest's import may raise: an error, or a pytest outcome (``pytest.skip``,
# ``pytest.importorskip``, ``pytest.fail``), which are BaseExceptions.
_FAILURES = (Exception, pytest.skip.Exception, pytest.fail.Exception)


# Values no test can change in place: kept with their tests from run to run.  (Functions
# and classes too: what a test could change of one is no value it was given.)
_FIXED = (
    int,
    float,
    complex,
    str,
    bytes,
    bool,
    type(None),
    type(...),
    range,
    enum.Enum,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    decimal.Decimal,
    fractions.Fraction,
    PurePath,
    uuid.UUID,
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
)


def _params_fixed(item: pytest.Item) -> bool:
    """Are the values ``item`` is parametrized with (``@pytest.mark.parametrize``) none that
    a test can change in place (a list, a dict, an object)?"""
    callspec = getattr(item, "callspec", None)
    params = getattr(callspec, "params", None)
    return not params or all(_fixed(value) for value in params.values())


def _hypothesis_test(item: pytest.Item) -> bool:
    return bool(getattr(getattr(item, "obj", None), "is_hypothesis_test", False))


def _fixed(value: object) -> bool:
    if isinstance(value, tuple | frozenset):
        return all(_fixed(each) for each in value)
    return isinstance(value, _FIXED)


class _ConftestOptions(TypedDict, total=False):
    """The keyword arguments of pytest's ``_importconftest`` (they vary by version)."""

    importmode: str | ImportMode
    rootpath: Path
    consider_namespace_packages: bool


# What an import sets before a module runs, kept when it runs again.
_IMPORT_STATE = (
    "__name__",
    "__file__",
    "__cached__",
    "__loader__",
    "__spec__",
    "__package__",
    "__path__",
    "__builtins__",
)


def _capture_rewritten(
    compiled: dict[str, tuple[tuple[int, int], types.CodeType | None]],
) -> Callable[[], None]:
    """Keep each test module's code as pytest's assertion rewriting makes it (or reads
    its pyc) at import, by file, with the file's figures from before it was read.

    :meth:`Reimporter.refresh` runs a module again from it: the first save that kept a
    file's tests compiled it anew, rewriting its asserts from the source where no pyc is
    written (``PYTHONDONTWRITEBYTECODE``, a read-only tree: 130-300 ms on boltons'
    ``test_strutils.py``), unless the idle time had got to that file first.  Returns
    what undoes it.
    """
    try:
        from _pytest.assertion import rewrite
    except ImportError:  # another pytest's internals: compiled when needed, as before
        return lambda: None
    # (Its private functions, looked up as its exec_module calls them.)
    rewrite_test: Callable[..., object] | None = getattr(rewrite, "_rewrite_test", None)
    read_pyc: Callable[..., object] | None = getattr(rewrite, "_read_pyc", None)
    if not callable(rewrite_test) or not callable(read_pyc):
        return lambda: None

    def keep(path: str | os.PathLike[str], figures: tuple[int, int] | None, code: object) -> None:
        if figures is not None and isinstance(code, types.CodeType):
            compiled[real(path)] = (figures, code)

    def figures_of(path: str | os.PathLike[str]) -> tuple[int, int] | None:
        try:
            stat = os.stat(path)
        except (OSError, TypeError):
            return None
        return stat.st_mtime_ns, stat.st_size

    def rewriting(path: str | os.PathLike[str], *args: object, **kwargs: object) -> object:
        figures = figures_of(path)
        made = rewrite_test(path, *args, **kwargs)
        if isinstance(made, tuple) and len(made) == 2:
            keep(path, figures, made[1])
        return made

    def reading(path: str | os.PathLike[str], *args: object, **kwargs: object) -> object:
        figures = figures_of(path)
        code = read_pyc(path, *args, **kwargs)
        keep(path, figures, code)
        return code

    setattr(rewrite, "_rewrite_test", rewriting)  # noqa: B010
    setattr(rewrite, "_read_pyc", reading)  # noqa: B010

    def undo() -> None:
        if getattr(rewrite, "_rewrite_test", None) is rewriting:
            setattr(rewrite, "_rewrite_test", rewrite_test)  # noqa: B010
        if getattr(rewrite, "_read_pyc", None) is reading:
            setattr(rewrite, "_read_pyc", read_pyc)  # noqa: B010

    return undo


class Reimporter:
    """Imports conftests and test files afresh, and hands their fixtures over."""

    def __init__(self, config: pytest.Config, hmr: HMR, suite: Suite, report: Report) -> None:
        self.config = config
        self.hmr = hmr
        self.suite = suite
        self.report = report
        self._session: pytest.Session | None = None
        self._fixtures: Fixtures | None = None
        #: real path -> the conftest module registered for it
        self.conftests: dict[str, ModuleType] = {}
        #: test files that failed to collect: retried with every change, as
        #: what they import is not in the graph
        self.broken: set[str] = set()
        self._fresh: set[str] = set()
        #: test file -> (mtime and size, its module's code), for :meth:`refresh`
        self._compiled: dict[str, tuple[tuple[int, int], types.CodeType | None]] = {}
        #: test files :meth:`prepare` found nothing to compile for
        self._unprepared: set[str] = set()
        self._failed_conftests: set[str] = set()
        self._uncapture = _capture_rewritten(self._compiled)

    def close(self) -> None:
        """Give pytest's assertion rewriting its own functions back."""
        self._uncapture()

    def begin(self, session: pytest.Session, fixtures: Fixtures) -> None:
        """The loop starts: note the session's conftests."""
        self._session = session
        self._fixtures = fixtures
        self.conftests = {}
        for name, plugin in self.config.pluginmanager.list_name_plugin():
            if isinstance(plugin, ModuleType) and str(name).endswith("conftest.py"):
                self.conftests[real(name)] = plugin

    @property
    def session(self) -> pytest.Session:
        """The session the loop keeps (from :meth:`begin` on)."""
        if self._session is None:
            raise RuntimeError("the loop has not begun")
        return self._session

    @property
    def fixtures(self) -> Fixtures:
        """The session's fixture definitions (from :meth:`begin` on)."""
        if self._fixtures is None:
            raise RuntimeError("the loop has not begun")
        return self._fixtures

    def test_modules(self) -> list[ModuleType]:
        """The conftests and test modules: imported afresh, never hot-reloaded."""
        modules = [module for module in self.conftests.values()]
        for test_file in self.suite.files.values():
            module = test_file.module()
            if module is not None and not test_file.doctests_only():
                modules.append(module)
        return modules

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

    def drop_code(self, name: str) -> None:
        """A project module was deleted: it and the project modules importing it go.

        The tests that import them import them again, and fail as in a fresh run.
        """
        tests = {module.__name__ for module in self.test_modules()}
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

    def finish_reached_fixtures(self, code_reached: set[str]) -> None:
        """Tear down cached session fixtures of project plugins that a change reached.

        Also cached setup errors, which a fresh run would retry.
        """
        for fixturedef in self.fixtures.cached():
            func = getattr(fixturedef, "func", None)
            module = getattr(func, "__module__", None)
            result = fixturedef.cached_result  # cached() gave it: never None
            failed = result is not None and result[2] is not None
            if failed or (module in code_reached and module not in self._conftest_names()):
                self._finish(fixturedef)

    def _conftest_names(self) -> set[str]:
        return {module.__name__ for module in self.conftests.values()}

    def _finish(self, fixturedef: Definition) -> None:
        try:
            self.fixtures.finish(fixturedef)
        except Exception as exc:
            self.report.line(
                f"hmr: tearing down fixture {fixturedef.argname!r} raised "
                f"{type(exc).__name__}: {exc}",
                red=True,
            )

    # -- conftests ---------------------------------------------------------------------

    def reimport_conftest(self, key: str, keep: bool) -> tuple[ModuleType, set[str]] | None:
        """Import a conftest afresh in place of the old one; None if it fails to import.

        Returns the new module and the names of the fixtures that changed.
        Its cached session fixtures are kept when ``keep`` and their code is
        unchanged.  A deleted conftest is unregistered (its old module is
        returned, for the selection).  One that failed to import and now
        imports is said to have recovered.
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
            self._failed_conftests.discard(key)
            return old, {fixturedef.argname for fixturedef in old_defs}
        try:
            new = self._import_conftest(path, again=True)
        except _FAILURES as exc:
            pm.register(old, name)
            pm._conftest_plugins.add(old)
            self._import_failed(key, exc, "; the old one stays")
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
        if key in self._failed_conftests:
            self._failed_conftests.discard(key)
            self.report.line(f"hmr: {self.report.relative(key)} recovered")
        return new, changed

    def add_conftest(self, key: str) -> ModuleType | None:
        """Import and register a new conftest; None (and a line saying why) if it fails."""
        try:
            module = self._import_conftest(Path(key), again=False)
        except _FAILURES as exc:
            self._import_failed(key, exc, "")
            return None
        folder = Path(key).parent
        self.fixtures.parse_conftest(module, folder, self.suite.dirs.get(real(folder)))
        self.conftests[key] = module
        self._failed_conftests.discard(key)
        return module

    def _import_conftest(self, path: Path, *, again: bool) -> ModuleType:
        """pytest's import of the conftest at ``path``; ``again``: one it imported before.

        pytest refuses ``pytest_plugins`` in a conftest imported once it is configured
        (not a top-level one, as it sees it): one it took at start-up is taken again.
        """
        pm = self.config.pluginmanager
        configured = getattr(pm, "_configured", None)
        if again and configured:
            pm._configured = False
        try:
            module: ModuleType = pm._importconftest(path, **self._importconftest_options())
        finally:
            if again and configured:
                pm._configured = configured
        return module

    def _import_failed(self, key: str, exc: BaseException, aside: str) -> None:
        """Say that the conftest at ``key`` failed to import: where, and the user's traceback."""
        from ...errors import location_of, user_traceback

        cause = exc.__cause__ or exc
        self.report.line(
            f"hmr: {self.report.relative(key)} failed to import ({location_of(cause)}): "
            f"{type(cause).__name__}: {cause}{aside}\n{user_traceback(cause)}",
            red=True,
        )
        self._failed_conftests.add(key)

    def _importconftest_options(self) -> _ConftestOptions:
        pm = self.config.pluginmanager
        parameters = inspect.signature(pm._importconftest).parameters
        options: _ConftestOptions = {
            "importmode": self.config.getoption("importmode"),
            "rootpath": self.config.rootpath,
        }
        if "consider_namespace_packages" in parameters:
            options["consider_namespace_packages"] = self.config.getini(
                "consider_namespace_packages"
            )
        return options

    # -- test files --------------------------------------------------------------------

    def drop_test_file(self, key: str) -> None:
        """A test file was deleted: its module, fixtures, nodes and outcomes go."""
        test_file = self.suite.forget(key)
        self._compiled.pop(key, None)
        self._unprepared.discard(key)
        if test_file is None:
            return
        module = test_file.module()
        if module is not None and not test_file.doctests_only():
            old_defs = self.fixtures.defined_in(module.__dict__)
            for fixturedef in old_defs:
                self._finish(fixturedef)
            self.fixtures.remove(old_defs)
            if sys.modules.get(module.__name__) is module:
                del sys.modules[module.__name__]
            with self.hmr.tracker.lock:
                self.hmr.graph.remove_module(module.__name__)
        nodes = test_file.nodes()
        self.fixtures.remove(self.fixtures.under_nodeids(nodes))
        self.fixtures.forget_nodes(nodes)
        for item in test_file.items:
            self.report.outcomes.pop(item.nodeid, None)

    def refresh(self, files: set[str]) -> set[str]:
        """Give unchanged test files fresh module state, keeping their collected tests.

        Each module runs again in its own namespace, as a new import would,
        from code compiled once (with pytest's assertion rewriting): its
        data (lists, counters, caches) starts afresh.  The functions and
        classes it defines are then put back as the ones its tests, fixtures
        and ``setup_*`` functions were collected with; their code is the
        same, and they read the fresh globals.  Returns the files that
        cannot be refreshed (a file of other items than test functions, a
        module that fails to run again, one whose tests pytest deselected when
        the session began, one whose tests are parametrized with a value a test
        may have changed in place): those are to be collected again.
        """
        left: set[str] = set()
        for key in files:
            test_file = self.suite.files.get(key)
            module = test_file.module() if test_file is not None else None
            if (
                test_file is None
                or module is None
                or len(test_file.collectors) != 1
                or not test_file.items  # all deselected at the start: none kept
                or not all(isinstance(item, pytest.Function) for item in test_file.items)
                # A value a test may have changed in place (``args[0] *= -1``): a fresh
                # run starts from the one its module makes again.
                or not all(_params_fixed(item) for item in test_file.items)
                # Hypothesis' ``@given`` keeps the instance its method first ran on, and
                # fails on another ("called from multiple different executors"): the
                # functions are made again, as in a fresh run.
                or any(_hypothesis_test(item) for item in test_file.items)
            ):
                left.add(key)
                continue
            code = self._code(key, module)
            if code is None or not self._run_again(module, code):
                left.add(key)
        return left

    def prepare(self) -> bool:
        """Compile one test module for :meth:`refresh` ahead of need; True while some are left.

        Called while the loop waits: the first save that keeps a file's
        tests does not pay for rewriting its asserts.
        """
        for key, test_file in self.suite.files.items():
            if key in self._compiled or key in self._unprepared:
                continue
            module = test_file.module()
            if module is None or test_file.doctests_only() or self._code(key, module) is None:
                self._unprepared.add(key)
            return True
        return False

    def _code(self, key: str, module: ModuleType) -> types.CodeType | None:
        """The code of a test module, compiled once per content of its file."""
        try:
            stat = os.stat(key)
        except OSError:
            return None
        signature = (stat.st_mtime_ns, stat.st_size)
        cached = self._compiled.get(key)
        if cached is not None and cached[0] == signature:
            return cached[1]
        spec = getattr(module, "__spec__", None)
        loader = getattr(spec, "loader", None)
        try:
            if type(loader).__name__ == "AssertionRewritingHook":
                code = self._rewritten(Path(key))
            else:
                code = loader.get_code(module.__name__)  # type: ignore[union-attr]
        except Exception:
            return None
        self._compiled[key] = (signature, code)
        return code

    @staticmethod
    def forget_pyc(path: str) -> None:
        """Delete the pyc pytest cached of ``path`` rewritten, if any (``path`` was saved).

        pytest 8 checks it by the file's mtime in whole seconds and its size:
        a same-size save within the second would import the old code.
        """
        try:
            from _pytest.assertion import rewrite

            name = os.path.basename(path)
            os.unlink(rewrite.get_cache_dir(Path(path)) / (name[:-3] + rewrite.PYC_TAIL))
        except Exception:  # none cached, or another pytest's internals
            pass

    def _rewritten(self, path: Path) -> types.CodeType:
        """A test module's code with pytest's asserts: from the pyc pytest cached, if current.

        Reading it spares parsing and rewriting the module again, and the
        parsed tree of a large test file (many times its size) with it.
        """
        from _pytest.assertion import rewrite

        code = None
        try:
            pyc = rewrite.get_cache_dir(path) / (path.name[:-3] + rewrite.PYC_TAIL)
            with open(pyc, "rb") as handle:
                flags = handle.read(8)[4:]
            # Only a pyc checked by the source's hash (pytest 9): one checked by
            # mtime in seconds and size misses a same-size save within a second.
            if flags == b"\x03\x00\x00\x00":
                code = rewrite._read_pyc(path, pyc)
        except Exception:  # no pyc, or another pytest's internals: rewrite as below
            code = None
        return code if code is not None else rewrite._rewrite_test(path, self.config)[-1]

    def _run_again(self, module: ModuleType, code: types.CodeType) -> bool:
        namespace = module.__dict__
        old = dict(namespace)
        namespace.clear()
        namespace.update({name: old[name] for name in _IMPORT_STATE if name in old})
        self._forget_imports(module.__name__)
        try:
            exec(code, namespace)
        except BaseException as exc:  # pytest.skip at import too: collected afresh
            namespace.clear()
            namespace.update(old)
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            return False
        for name, value in list(namespace.items()):
            before = old.get(name)
            if (
                before is not None
                and before is not value
                and type(before) is type(value)
                and isinstance(value, (types.FunctionType, type))
                and getattr(value, "__module__", None) == module.__name__
                and getattr(before, "__qualname__", None) == getattr(value, "__qualname__", "")
            ):
                namespace[name] = before
        return True

    def collect(self, files: set[str], keep: set[str]) -> None:
        """Collect ``files`` again, each module imported afresh.

        Every module goes first, so that a test module importing another one
        (a shared base class) imports the new one.  The fixtures of the files
        in ``keep`` keep their cached values if their code is unchanged.  A
        file that failed to collect and now collects is said to have recovered.
        """
        old: dict[str, tuple[ModuleType | None, list[Definition], list[Node]]] = {}
        made_for_nodes: list[Definition] = []
        dropped: dict[str, str] = {}  # the outcomes of the tests collected again
        defined = self.fixtures.by_module()
        for key in files:
            test_file = self.suite.files.get(key)
            if test_file is None:
                continue
            # (A module collected for its doctests alone is the project's: it stays.)
            module = None if test_file.doctests_only() else test_file.module()
            defs = defined.get(id(module.__dict__), []) if module is not None else []
            nodes = test_file.nodes()
            # Made by pytest for the nodes (setup_class, setUpClass...), not
            # defined in the module: the new collection makes its own.
            made = [d for d in self.fixtures.under_nodeids(nodes) if d not in defs]
            old[key] = (module, defs, nodes)
            made_for_nodes.extend(made)
            for item in test_file.items:
                outcome = self.report.outcomes.pop(item.nodeid, None)
                if outcome is not None:
                    dropped[item.nodeid] = outcome
            if module is not None:
                if sys.modules.get(module.__name__) is module:
                    del sys.modules[module.__name__]
                self._forget_imports(module.__name__)
        for key in sorted(files, key=self.suite.order):
            was_broken = key in self.broken
            self.broken.discard(key)
            self.suite.collect(self.session, key)
            if was_broken and key not in self.broken and key in self.suite.files:
                self.report.line(f"hmr: {self.report.relative(key)} recovered")
            again = self.suite.files.get(key)
            # A test collected again keeps its outcome until it runs again (a conftest
            # save runs the users of its fixture: a failing test beside them was
            # forgotten, not counted, not re-run by ``f``); one that is gone, goes.
            for item in again.items if again is not None else ():
                if item.nodeid in dropped:
                    self.report.outcomes.setdefault(item.nodeid, dropped[item.nodeid])
        defined = self.fixtures.by_module()
        doomed: list[Definition] = list(made_for_nodes)
        gone: list[Node] = []
        for key, (module, old_defs, old_nodes) in old.items():
            test_file = self.suite.files.get(key)
            new = test_file.module() if test_file is not None and module is not None else None
            new_defs = defined.get(id(new.__dict__), []) if new is not None else []
            kept: list[str] = []
            if module is not None and old_defs:
                kept, _ = self.fixtures.carry_over(old_defs, new_defs, module.__dict__, key in keep)
            doomed.extend(d for d in old_defs if d.argname not in kept)
            gone.extend(old_nodes)
        self.fixtures.remove(doomed)
        self.fixtures.forget_nodes(gone)
        self._remember_fresh()

    def _remember_fresh(self) -> None:
        """Keep what ran as the engine's reference."""
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
