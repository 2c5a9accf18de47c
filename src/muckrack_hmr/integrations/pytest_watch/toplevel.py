"""Does a test file's collection outlive an edit that only patched functions in place?

Before Python 3.12 (and with ``--hmr-by-imports``) the tests are selected
by imports: every test file importing changed code, directly or not, runs.
When the reload only patched function bodies in place (no name was bound
anew, no dependent ran again), what those files' tests call is the new code
already: their collected items are still right, unless the collection
itself ran project code.  That happens at a test module's top level, outside
function bodies: decorators (``parametrize`` values, fixture ``params``),
defaults, class bodies, module statements, and the ``pytest_*`` hooks a
test module may define (``pytest_generate_tests``).

:class:`TopLevels` tells it from the test file's source, conservatively:
the names the file binds from project modules (or from modules it cannot
tell) are suspect, and so are its functions and classes that read a suspect
name; a top level that reads a suspect name, a star import, a hook, or a
dynamic lookup (``eval``, ``globals``, ``import_module``...) means the
file is collected again.  Anything that does not parse: collected again.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType

__all__ = ["TopLevels"]

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
# Top-level reads through which code is reached by a string, not a name.
_DYNAMIC = frozenset(
    {"eval", "exec", "__import__", "globals", "vars", "locals", "import_module", "getattr"}
)


@dataclass(frozen=True)
class _Import:
    """One name an import statement binds: ``import a.b`` binds ``a``."""

    bound: str
    #: the module imported (absolute, or relative to the file's package with ``level``)
    module: str
    level: int
    #: for ``from module import name``: the name (maybe a submodule); None for ``import``
    name: str | None
    #: ``import a.b`` (no ``as``): the name is the top package, its attributes lead anywhere below
    whole_package: bool


@dataclass(frozen=True)
class _Source:
    """What a test module's top level reads, and what it binds by imports."""

    imports: tuple[_Import, ...]
    #: names read outside function bodies (decorators, defaults, class bodies, statements)
    reads: frozenset[str]
    #: top-level function or class name -> the names its whole definition reads
    definitions: tuple[tuple[str, frozenset[str]], ...]
    #: a star import, a pytest hook or a dynamic lookup at the top level
    doubt: bool


class TopLevels:
    """The top levels of test files, parsed once per content of each file."""

    def __init__(self) -> None:
        #: file -> ((mtime_ns, size), what its source says; None if it does not parse)
        self._cache: dict[str, tuple[tuple[int, int], _Source | None]] = {}

    def prepare(self, keys: Iterable[str], limit: int) -> bool:
        """Parse up to ``limit`` files not parsed yet (while the loop waits); True if any was."""
        done = 0
        for key in keys:
            if key in self._cache:
                continue
            self._source(key)
            done += 1
            if done >= limit:
                break
        return done > 0

    def keeps_collection(
        self, key: str, module: ModuleType | None, is_project: Callable[[str], bool]
    ) -> bool:
        """Can the tests collected from ``key`` (its module ``module``) run on after the edit?

        ``is_project(name)``: is the module ``name``, or a module below it,
        project code (which the edit may have changed)?  False on any doubt.
        """
        if module is None:
            return False
        source = self._source(key)
        if source is None or source.doubt:
            return False
        package = getattr(module, "__package__", None) or ""
        suspect = {entry.bound for entry in source.imports if _suspect(entry, package, is_project)}
        if not suspect:
            return True
        # A function or class whose code reads a suspect name is suspect: a
        # top level that calls it runs project code at collection.
        grew = True
        while grew:
            grew = False
            for name, reads in source.definitions:
                if name not in suspect and not reads.isdisjoint(suspect):
                    suspect.add(name)
                    grew = True
        return source.reads.isdisjoint(suspect)

    def forget(self, key: str) -> None:
        self._cache.pop(key, None)

    def _source(self, key: str) -> _Source | None:
        try:
            stat = os.stat(key)
        except OSError:
            return None
        signature = (stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == signature:
            return cached[1]
        try:
            with open(key, "rb") as handle:
                tree = ast.parse(handle.read())
        except (OSError, SyntaxError, ValueError):
            found = None
        else:
            found = _read(tree)
        self._cache[key] = (signature, found)
        return found


def _suspect(entry: _Import, package: str, is_project: Callable[[str], bool]) -> bool:
    """Could the name ``entry`` binds lead to project code?  True when it cannot be told."""
    try:
        module = (
            importlib.util.resolve_name("." * entry.level + entry.module, package)
            if entry.level
            else entry.module
        )
    except (ImportError, ValueError):
        return True
    if entry.name is not None:
        # ``from module import name``: an attribute of the module, or a submodule.
        return is_project(module) or is_project(f"{module}.{entry.name}") or not _known(module)
    top = module.partition(".")[0] if entry.whole_package else module
    return is_project(top) or not _known(top)


def _known(name: str) -> bool:
    """Was the module imported (so that what it is can be told)?"""
    return name in sys.modules


def _read(tree: ast.Module) -> _Source:
    imports: list[_Import] = []
    reads: set[str] = set()
    definitions: list[tuple[str, frozenset[str]]] = []
    doubt = False
    for statement in tree.body:
        if isinstance(statement, (*_FUNCTIONS, ast.ClassDef)):
            definitions.append((statement.name, frozenset(_names(statement))))
            if isinstance(statement, _FUNCTIONS) and statement.name.startswith("pytest_"):
                doubt = True  # a hook: pytest calls it at collection (pytest_generate_tests)
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, _FUNCTIONS):
            # What runs when the ``def`` does; the body runs when it is called.
            pending.extend(node.decorator_list)
            pending.extend(_signature(node))
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                imports.append(
                    _Import(
                        bound=alias.asname or alias.name.partition(".")[0],
                        module=alias.name,
                        level=0,
                        name=None,
                        whole_package=alias.asname is None,
                    )
                )
            continue
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    doubt = True  # binds what it finds: not told here
                    continue
                imports.append(
                    _Import(
                        bound=alias.asname or alias.name,
                        module=node.module or "",
                        level=node.level,
                        name=alias.name,
                        whole_package=False,
                    )
                )
            continue
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                reads.add(node.id)
            elif node.id == "pytest_plugins":
                doubt = True  # plugins loaded for this module
        elif isinstance(node, ast.Attribute) and node.attr in _DYNAMIC:
            doubt = True
        pending.extend(ast.iter_child_nodes(node))
    if not reads.isdisjoint(_DYNAMIC):
        doubt = True
    return _Source(tuple(imports), frozenset(reads), tuple(definitions), doubt)


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterable[ast.AST]:
    """The parts of a ``def`` evaluated when it runs: defaults and annotations."""
    arguments = node.args
    yield from arguments.defaults
    yield from (default for default in arguments.kw_defaults if default is not None)
    every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    every.extend(arg for arg in (arguments.vararg, arguments.kwarg) if arg is not None)
    yield from (arg.annotation for arg in every if arg.annotation is not None)
    if node.returns is not None:
        yield node.returns


def _names(node: ast.AST) -> set[str]:
    """Every name read anywhere in ``node``."""
    return {
        child.id
        for child in ast.walk(node)
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load)
    }
