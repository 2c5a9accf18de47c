"""What a burst of settled saves changed, and the tests it affects.

Saved files are sorted by kind (project code, test files, conftests, new
test files), by the content the save pipeline judged finished: a touch, or
a save of the same content, changes nothing, and the code reloaded is that
content (the file is not read again).  The affected test files are those
whose module imports changed code, directly or not (the dependency graph
says), the saved test files, and those whose tests use fixtures of a
conftest (or project plugin) that changed or imports changed code: run
whole, or only for the tests that use the fixtures that changed.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

from ...capture import digest, file_digest
from ...watch.bursts import SettledSaves
from .reimport import Reimporter
from .suite import Suite, file_of, real
from .toplevel import TopLevels
from .wakeups import Wakeups

if TYPE_CHECKING:
    from ...api import HMR

__all__ = ["Changes", "Classifier", "Selection"]


# An empty file: truncated, with the content still to come.
_EMPTY = digest(b"")


def _has_hooks(module: ModuleType) -> bool:
    """Does a plugin module define hooks (which can change any test's run)?"""
    return any(
        name.startswith("pytest_") and (callable(value) or name == "pytest_plugins")
        for name, value in vars(module).items()
    )


@dataclass
class Changes:
    """What a burst of saves changed, by kind."""

    paths: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    #: changed module -> its new source, as judged finished: what the reload applies
    sources: dict[str, bytes] = field(default_factory=dict)
    deleted_code: list[str] = field(default_factory=list)
    tests: set[str] = field(default_factory=set)
    deleted_tests: set[str] = field(default_factory=set)
    conftests: set[str] = field(default_factory=set)
    new_conftests: set[str] = field(default_factory=set)
    candidates: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.paths)

    def describe(self, relative: Callable[[str], str]) -> str:
        """The line that says what changed (paths shown by ``relative``)."""
        deleted = self.deleted_tests | {path for path in self.paths if not os.path.exists(path)}
        changed = [relative(path) for path in self.paths if path not in deleted]
        parts = []
        if changed:
            parts.append(f"changed {', '.join(changed)}")
        if deleted:
            parts.append(f"deleted {', '.join(relative(path) for path in sorted(deleted))}")
        return f"hmr: {'; '.join(parts)}"


class Classifier:
    """Sorts saved files by kind, comparing each one with the content last seen."""

    def __init__(
        self,
        config: pytest.Config,
        hmr: HMR,
        suite: Suite,
        reimport: Reimporter,
        wakeups: Wakeups,
    ) -> None:
        self.config = config
        self.hmr = hmr
        self.suite = suite
        self.reimport = reimport
        self.wakeups = wakeups
        #: path -> digest of its content last seen (None: not a regular file, or gone)
        self.digests: dict[str, bytes | None] = {}
        #: test file -> digest of its content as it was collected, until it is watched
        self._collected: dict[str, bytes | None] = {}

    def note(self, paths: Iterable[str]) -> None:
        """Note the content of the ``paths`` not seen yet: a save is compared with it.

        A project module's is the source it ran: one saved since its import (while
        pytest collected the tests, before the files were watched) is looked at as
        a save now.  It was taken for the code that runs, and its save was lost.
        """
        paths = list(dict.fromkeys(paths))
        new = [path for path in paths if path not in self.digests]
        collected = [path for path in paths if path in self._collected]
        loaded = self.hmr.project.loaded
        saved = [path for path in collected if self._collected.pop(path) != file_digest(path)]
        for path in new:
            now = file_digest(path)
            entry = loaded.get(path)
            ran = None if entry is None else self.hmr.sources.ran(entry[0])
            if ran is not None and digest(ran) != now:
                self.digests[path] = digest(ran)
                saved.append(path)
            else:
                self.digests[path] = now
        self.wakeups.track([*new, *collected])
        self.wakeups.look_at(saved)

    def note_collected(self, path: str) -> None:
        """Test file ``path`` is about to be imported (collected): its content now is what
        runs, and a save made before its folder is watched is looked at (see note)."""
        if path not in self.digests:
            self.digests[path] = self._collected[path] = file_digest(path)

    def classify(self, saves: SettledSaves) -> Changes:
        """Sort the saved files by kind; those saved unchanged are left out."""
        changes = Changes()
        loaded = self.hmr.project.loaded
        contents = {os.path.realpath(save.path): save.source for save in saves.files}
        for folder in sorted({os.path.realpath(path) for path in saves.folders}):
            if self.suite.wanted(folder):
                # A new folder: watch it, and look at what it already holds.
                self.wakeups.watch([folder])
                for inner, _, names in os.walk(folder):
                    self.wakeups.watch([inner])
                    changes.candidates.update(
                        os.path.join(inner, name) for name in names if self.test_file_name(name)
                    )
        changes.paths.extend(sorted(changes.candidates))
        for path, source in sorted(contents.items()):
            if path in changes.candidates:
                continue  # found in a new folder
            known = path in self.digests
            if not known and path not in loaded and not path.endswith((".py", ".pyw")):
                continue  # a log, a data file, a pipe: nothing the tests import
            exists = source is not None
            content = None if source is None else digest(source)
            if known and content == self.digests[path]:
                continue  # touched, or saved unchanged
            if content == _EMPTY and known:
                # Emptied, and still empty once the save settled: a file
                # truncated for good is left alone, as the CLI leaves it.
                continue
            self.digests[path] = content
            if not known:
                self.wakeups.track([path])  # its deletion counts from now on
            doctests = self.suite.files.get(path)
            if path in self.reimport.conftests:
                changes.conftests.add(path)
            elif doctests is not None and doctests.doctests_only() and path in loaded:
                # A module of the project collected for its doctests: code, whose
                # doctests run again as the tests of a module it imports do.
                name = loaded[path][0]
                (changes.code if exists else changes.deleted_code).append(name)
                if source is not None:
                    changes.sources[name] = source
                else:
                    changes.deleted_tests.add(path)
            elif path in self.suite.files:
                (changes.tests if exists else changes.deleted_tests).add(path)
            elif path in loaded and loaded[path][0] != "__main__":
                name = loaded[path][0]
                (changes.code if exists else changes.deleted_code).append(name)
                if source is not None:
                    changes.sources[name] = source
            elif exists and self.suite.wanted(path) and self.test_file_name(path):
                changes.candidates.add(path)
            elif (
                exists
                and os.path.basename(path) == "conftest.py"
                and (os.path.dirname(path) in self.suite.dirs or self.suite.wanted(path))
            ):
                changes.new_conftests.add(path)
            else:
                continue
            changes.paths.append(path)
        return changes

    def test_file_name(self, path: str) -> bool:
        """Is ``path`` named as a test file (``python_files``)?"""
        name = os.path.basename(path)
        return name.endswith(".py") and any(
            fnmatch.fnmatch(name, pattern) for pattern in self.config.getini("python_files")
        )


class Selection:
    """The test files a burst of saves affects: run whole, or for some fixtures' users."""

    def __init__(
        self, config: pytest.Config, hmr: HMR, suite: Suite, reimport: Reimporter, run_all: bool
    ) -> None:
        self.config = config
        self.hmr = hmr
        self.suite = suite
        self.reimport = reimport
        self.run_all = run_all
        #: test files run whole
        self.whole: set[str] = set()
        #: test file -> the fixtures whose users in it are run
        self.partial: dict[str, set[str]] = {}
        #: test file -> the tests in it that executed what changed
        self.tests: dict[str, set[str]] = {}
        #: test files run whole for a conftest or plugin (hooks, autouse fixtures, deleted)
        self.by_plugins: set[str] = set()

    def files(self) -> set[str]:
        """Every test file selected, whole or in part."""
        return self.whole | set(self.partial) | set(self.tests)

    def add_executed(self, whole: set[str], tests: dict[str, set[str]]) -> None:
        """Add what executed the changed code: files to run whole, single tests."""
        self.whole |= whole
        for key, nodeids in tests.items():
            self.tests.setdefault(key, set()).update(nodeids)

    def reached_conftests(self, code_reached: set[str]) -> set[str]:
        """Conftests reached by a change of code they import."""
        return {
            key
            for key, module in self.reimport.conftests.items()
            if module.__name__ in code_reached
        }

    def reached_files(self, code_reached: set[str]) -> set[str]:
        """Test files whose module is reached by a change."""
        return {
            key
            for key, test_file in self.suite.files.items()
            if test_file.module_name() in code_reached
        }

    def kept_collections(
        self, changes: Changes, code_reached: set[str], waiting: set[str], toplevels: TopLevels
    ) -> set[str]:
        """The test files selected by imports whose collected tests outlive a body edit.

        The edit only patched functions in place.  Kept: the files whose
        module imports the changed code, and whose top level (decorators,
        class bodies, statements) reads no name that leads to project code
        (see :mod:`.toplevel`): their collection ran none, so it would give
        the same tests again.  Collected again, as they would be anyway:
        saved, new, broken and waiting files, the users of a conftest's
        fixtures defined again, the files below a conftest that has hooks
        or was saved, and the test modules importing a saved one.
        """
        excluded = changes.tests | changes.candidates | waiting | self.reimport.broken
        excluded |= set(self.partial) | self.by_plugins
        for key in changes.conftests | changes.new_conftests:
            excluded.update(self.suite.under(os.path.dirname(key)))
        for key in changes.tests:
            test_file = self.suite.files.get(key)
            name = test_file.module_name() if test_file is not None else None
            if name is not None:
                dependents = set(self.hmr.dependents_of(name, transitive=True))
                excluded |= self.reached_files(dependents)
        candidates = self.reached_files(code_reached) - excluded
        if not candidates:
            return set()
        project = self._project_names()
        return {
            key
            for key in candidates
            if toplevels.keeps_collection(key, self.suite.files[key].module(), project.__contains__)
        }

    def conftests_reading(self, code_reached: set[str], toplevels: TopLevels) -> set[str]:
        """The conftests reached by a change of code they import whose top level reads
        project code (``@pytest.fixture(params=cfg.MODES)``, ``FIRST = cfg.MODES[0]``): what
        they made as they were imported may have changed.  (The tests that ran what
        changed do not tell it: none ran the conftest's import.)"""
        reached = self.reached_conftests(code_reached)
        if not reached:
            return set()
        project = self._project_names()
        return {
            key
            for key in reached
            if not toplevels.keeps_collection(
                key, self.reimport.conftests[key], project.__contains__
            )
        }

    def _project_names(self) -> set[str]:
        """The project modules loaded, and the packages above them (``import pkg`` leads
        to them)."""
        project: set[str] = set()
        for name, _ in self.hmr.project.loaded.values():
            while name and name not in project:
                project.add(name)
                name = name.rpartition(".")[0]
        return project

    def affected(self, changes: Changes, code_reached: set[str]) -> None:
        """The test files to run after ``changes``, before conftests are imported again.

        Files are run whole (``whole``: their module imports what
        changed), or only for the tests that use certain fixtures
        (``partial``: a conftest changed).
        """
        self.whole = set()
        self.partial = {}
        self.tests = {}
        self.by_plugins = set()
        if self.run_all:
            self.whole = set(self.suite.files) | changes.tests
            return
        self.whole |= changes.tests | (self.reimport.broken & set(self.suite.files))
        reached = set(code_reached)
        for key in changes.tests:
            test_file = self.suite.files.get(key)
            name = test_file.module_name() if test_file is not None else None
            if name is not None:
                # Test modules that import the saved one (a shared base class...).
                reached.update(self.hmr.dependents_of(name, transitive=True))
        for key, test_file in self.suite.files.items():
            if test_file.module_name() in reached:
                self.whole.add(key)
            elif code_reached and test_file.text_doctests():
                # A text file of doctests (``--doctest-glob=README.rst``) imports what its
                # examples import as they run, unknown here: it runs again for every
                # change of the code (it was never selected, and stayed green).
                self.whole.add(key)
        for key, module in self.reimport.conftests.items():
            if key in changes.conftests and not os.path.exists(key):
                self.by_plugins |= set(self.suite.under(os.path.dirname(key)))
                self.whole |= self.by_plugins
            elif module.__name__ in code_reached:
                self.plugin_users(module, os.path.dirname(key))
        # Project modules loaded as plugins (``pytest_plugins``) serve every test.
        for name, plugin in self.config.pluginmanager.list_name_plugin():
            if (
                isinstance(plugin, ModuleType)
                and plugin.__name__ in code_reached
                and not str(name).endswith("conftest.py")
            ):
                self.plugin_users(plugin, str(self.config.rootpath))

    def plugin_reach(self, module: ModuleType) -> tuple[bool, set[str]]:
        """Whether ``module`` defines hooks, and the names of its autouse fixtures: what
        changes every test below it (looked at before an edit, for what it removes)."""
        defs = self.reimport.fixtures.defined_in(module.__dict__)
        return _has_hooks(module), {d.argname for d in defs if getattr(d, "_autouse", False)}

    def plugin_users(
        self,
        module: ModuleType,
        folder: str,
        names: set[str] | None = None,
        before: tuple[bool, set[str]] = (False, set()),
    ) -> None:
        """Select the tests under ``folder`` that use fixtures ``module`` defines.

        Those named ``names`` (default: all of them); every test file there
        when the module defines hooks, or one of the fixtures is autouse, now or
        ``before`` the edit (see plugin_reach: a hook or an autouse fixture removed).
        """
        under = self.suite.under(real(folder))
        defs = self.reimport.fixtures.defined_in(module.__dict__)
        if names is None:
            names = {fixturedef.argname for fixturedef in defs}
        hooks, autouse = before
        if (
            hooks
            or _has_hooks(module)
            or not autouse.isdisjoint(names)
            or any(getattr(d, "_autouse", False) for d in defs if d.argname in names)
        ):
            self.by_plugins |= set(under)
            self.whole |= set(under)
            return
        for key in under:
            if any(
                names.intersection(getattr(item, "fixturenames", ()))
                for item in self.suite.files[key].items
            ):
                self.partial.setdefault(key, set()).update(names)

    def wanted(self, item: pytest.Item, files: set[str]) -> bool:
        """Run ``item``? All of a file run whole; the users of the fixtures otherwise."""
        owner = file_of(item)
        key = real(owner.path) if owner is not None else ""
        if key in self.whole or key not in self.files():
            return True
        if item.nodeid in self.tests.get(key, ()):
            return True
        return bool(self.partial.get(key, set()).intersection(getattr(item, "fixturenames", ())))
