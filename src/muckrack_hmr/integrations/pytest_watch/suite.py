"""The test files of a pytest session: what each one holds, and collecting one again.

pytest's collection tree is kept (its folders carry the conftest fixtures);
a test file is collected again under its folder's node, so its module is
imported afresh and its items are new.  Items are kept only if the command
line selected them (``pytest tests/test_x.py::test_y`` keeps ``test_y``);
``-k``, ``-m`` and ``--deselect`` are applied by pytest's own
``pytest_collection_modifyitems`` when a run starts.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from _pytest.nodes import Node

__all__ = ["Suite", "TestFile", "file_of", "real"]


def real(path: str | os.PathLike[str]) -> str:
    """The key of a file or folder: its real path."""
    return _real(os.fspath(path))


@functools.lru_cache(maxsize=8192)
def _real(path: str) -> str:
    # Paths come back run after run, and resolving one costs a system call per folder.
    return os.path.realpath(path)


@dataclass
class TestFile:
    """One collected file: its collectors (a module, a doctest file...) and items."""

    path: Path
    collectors: list[pytest.File] = field(default_factory=list)
    items: list[pytest.Item] = field(default_factory=list)
    #: the collectors inside it (classes...), those that gave no item included
    inner: list[pytest.Collector] = field(default_factory=list)

    def module(self) -> ModuleType | None:
        """The imported test module, if the file is one and it imported."""
        for collector in self.collectors:
            if isinstance(collector, pytest.Module):
                obj = collector.__dict__.get("_obj")
                if isinstance(obj, ModuleType):
                    return obj
        return None

    def module_name(self) -> str | None:
        module = self.module()
        return None if module is None else module.__name__

    def doctests_only(self) -> bool:
        """Is it a module of the project collected for its doctests alone
        (``--doctest-modules``)?  Code: hot-reloaded in place by the engine, its
        doctests collected again from the live module, never imported afresh (a
        package imported again has lost its submodules)."""
        return bool(self.collectors) and all(_is_doctests(c) for c in self.collectors)

    def text_doctests(self) -> bool:
        """Is it a text file of doctests (``--doctest-glob``, a README)?  What its examples
        import is known only as they run."""
        return bool(self.collectors) and all(
            _DoctestTextfile is not None and isinstance(c, _DoctestTextfile)
            for c in self.collectors
        )

    def nodes(self) -> list[Node]:
        """Every node of the file: collectors, classes, items (for forgetting them)."""
        found: dict[int, Node] = {id(node): node for node in [*self.collectors, *self.inner]}
        for item in self.items:
            for node in item.listchain():
                if node.path == self.path or isinstance(node, pytest.Item):
                    found.setdefault(id(node), node)
        return list(found.values())


def _is_doctests(collector: pytest.Collector) -> bool:
    return _DoctestModule is not None and isinstance(collector, _DoctestModule)


try:  # (pytest's own plugin, loaded with it)
    from _pytest.doctest import DoctestModule as _DoctestModule
    from _pytest.doctest import DoctestTextfile as _DoctestTextfile
except ImportError:  # (another pytest's internals)
    _DoctestModule = None  # type: ignore[assignment,misc]
    _DoctestTextfile = None  # type: ignore[assignment,misc]


def file_of(item: pytest.Item | pytest.Collector) -> pytest.File | None:
    """The file node an item (or a collector inside a file) belongs to."""
    for node in reversed(item.listchain()):
        if isinstance(node, pytest.File):
            return node
    return None


class _Argument:
    """One file-or-folder argument of the command line, as a filter on items."""

    def __init__(self, path: Path, names: list[str]) -> None:
        self.path = real(path)
        self.names = names

    def contains(self, path: str) -> bool:
        return path == self.path or path.startswith(self.path.rstrip(os.sep) + os.sep)

    def selects(self, item: pytest.Item, file: str) -> bool:
        if not self.contains(file):
            return False
        if not self.names:
            return True
        chain = [node for node in item.listchain() if real(node.path) == file][1:]
        if len(chain) < len(self.names):
            return False
        for node, wanted in zip(chain, self.names, strict=False):
            if node.name != wanted and getattr(node, "originalname", None) != wanted:
                return False
        return True


class Suite:
    """The collected test files, their folders, and re-collection."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.files: dict[str, TestFile] = {}
        self.dirs: dict[str, pytest.Directory] = {}
        self._args = self._parse_args(config)

    @staticmethod
    def _parse_args(config: pytest.Config) -> list[_Argument] | None:
        if config.option.pyargs:
            return None  # module names, not paths: every collected item counts
        arguments = []
        base = config.invocation_params.dir
        for arg in config.args:
            path, *names = arg.split("::")
            names = [name for name in names if name]
            arguments.append(_Argument(base / path, names))
        return arguments

    # -- what pytest collects (fed by the plugin's pytest_collectstart) -----------

    def saw(self, collector: pytest.Collector) -> None:
        """A collector starts: remember folders and files."""
        if isinstance(collector, pytest.Directory):
            self.dirs[real(collector.path)] = collector
        elif isinstance(collector, pytest.File):
            key = real(collector.path)
            test_file = self.files.get(key)
            if test_file is None:
                test_file = self.files[key] = TestFile(collector.path)
            test_file.collectors.append(collector)
        else:
            # A class with no test (``from unittest import TestCase``, collected
            # as a test class) is on no item's chain: it is remembered here, or
            # what pytest registered for it (its class fixtures, keyed by the
            # node) would keep every earlier import of the module alive.
            owner = file_of(collector)
            test_file = self.files.get(real(owner.path)) if owner is not None else None
            if test_file is not None:
                test_file.inner.append(collector)

    def assign(self, items: list[pytest.Item]) -> None:
        """Attach the items of the first collection to their files."""
        for test_file in self.files.values():
            test_file.items = []
        for item in items:
            owner = file_of(item)
            if owner is None:
                continue
            known = self.files.get(real(owner.path))
            if known is not None:
                known.items.append(item)

    def selected(self, item: pytest.Item, file: str) -> bool:
        """Did the command line's arguments select ``item``?"""
        return self._args is None or any(arg.selects(item, file) for arg in self._args)

    def wanted(self, path: str) -> bool:
        """Would the command line collect a new file at ``path``?"""
        return self._args is not None and any(
            arg.contains(path) and not arg.names for arg in self._args
        )

    def order(self, key: str) -> tuple[int, tuple[str, ...]]:
        """Where a file's tests run: argument order, then folder by folder by name."""
        if self._args is not None:
            for index, arg in enumerate(self._args):
                if arg.contains(key):
                    return index, Path(key).parts
        return len(self._args or ()), Path(key).parts

    def under(self, folder: str) -> list[str]:
        """The test files in ``folder`` and below."""
        prefix = folder.rstrip(os.sep) + os.sep
        return [key for key in self.files if key.startswith(prefix)]

    # -- collecting again ----------------------------------------------------------

    def collect(self, session: pytest.Session, key: str) -> list[pytest.Item]:
        """Collect the file at ``key`` again (or for the first time); its selected items.

        Collection errors are reported by pytest's hooks, as in a normal run.
        """
        known = self.files.get(key)
        path = known.path if known is not None else Path(key)
        if known is not None:
            known.collectors = []
            known.items = []
            known.inner = []
        parent, target = self._parent_of(path)
        if parent is None or target is None:
            return []
        ihook = parent.ihook
        if not session.isinitpath(target) and ihook.pytest_ignore_collect(
            collection_path=target, config=self.config
        ):
            return []
        if target == path:
            collectors: list[pytest.Collector] = list(
                ihook.pytest_collect_file(file_path=path, parent=parent)
            )
        else:
            folder = ihook.pytest_collect_directory(path=target, parent=parent)
            collectors = [] if folder is None else [folder]
        items: list[pytest.Item] = []
        for collector in collectors:
            items.extend(session.genitems(collector))
        cache = getattr(session, "_collection_cache", None)
        if isinstance(cache, dict):
            cache.clear()  # it would keep every collected node alive
        kept = []
        for item in items:
            owner = file_of(item)
            file = real(owner.path) if owner is not None else key
            if not self.selected(item, file):
                continue
            kept.append(item)
            test_file = self.files.get(file)
            if test_file is not None:
                test_file.items.append(item)
        return kept

    def _parent_of(self, path: Path) -> tuple[pytest.Directory | None, Path | None]:
        """The collected folder to collect ``path`` under, and what to collect there.

        A file in a new folder is collected with the new folder, under the
        nearest folder pytest collected.
        """
        target = path
        for folder in path.parents:
            node = self.dirs.get(real(folder))
            if node is not None:
                return node, target
            target = folder
        return None, None

    def forget(self, key: str) -> TestFile | None:
        """A test file was deleted: drop it."""
        return self.files.pop(key, None)
