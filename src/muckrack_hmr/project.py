"""What counts as project code: ``.py`` files under the project's roots, and nothing else.

The standard library, site-packages (also a virtualenv kept inside the
project) and this package itself are never project code.  Only project
modules are tracked, kept and reloaded.
"""

from __future__ import annotations

import contextlib
import os
import site
import sys
from collections.abc import Callable, Iterable
from operator import itemgetter
from stat import S_ISLNK
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Protocol

    #: A project file's real path -> (its module, its (mtime_ns, size) when classified).
    Loaded = Mapping[str, tuple[str, tuple[int, int] | None]]

    class LoadedModules(Protocol):
        """What the source store needs of a project filter: the modules loaded so far."""

        @property
        def loaded(self) -> Loaded: ...


__all__ = ["ProjectFilter", "loaded_modules"]

_PACKAGE_DIR = os.path.dirname(os.path.realpath(__file__))
# The ``python -m muckrack.hmr`` shim lives beside the package.
_SHIM_DIR = os.path.join(os.path.dirname(_PACKAGE_DIR), "muckrack")


def _excluded_dirs(never: set[str]) -> list[str]:
    """Folders whose modules are never project code, even under a project root.

    A virtualenv made inside the project folder is the usual reason: its
    site-packages lies under the root but must never be reloaded.
    """
    dirs = {
        sys.prefix,
        sys.exec_prefix,
        sys.base_prefix,
        sys.base_exec_prefix,
        *never,
        *_standard_library_dirs(),
    }
    return sorted({os.path.realpath(path) for path in dirs if path})


def _standard_library_dirs() -> set[str]:
    """Where the standard library lives: the folder of ``os`` and the one above
    ``lib-dynload``.  Asked of the interpreter itself, not of ``sysconfig``, whose
    import and path expansion cost every start about 2 ms."""
    dirs: set[str] = set()
    standard = getattr(os, "__file__", None)  # unset in some embedded interpreters
    if standard:
        dirs.add(os.path.dirname(standard))
    for entry in sys.path:
        if os.path.basename(entry) == "lib-dynload":
            dirs.add(os.path.dirname(entry))
    return dirs


def _never_project_dirs() -> set[str]:
    """site-packages and this package: excluded even when a root lies inside them."""
    dirs = {_PACKAGE_DIR, _SHIM_DIR}
    with contextlib.suppress(AttributeError):  # some embedded interpreters lack it
        dirs.update(site.getsitepackages())
    user_site = site.getusersitepackages() if hasattr(site, "getusersitepackages") else None
    if user_site:
        dirs.add(user_site)
    # Any other installation folder on the path (a PYTHONPATH into another
    # environment, a system Python's dist-packages).
    dirs.update(
        entry
        for entry in sys.path
        if os.path.basename(entry.rstrip(os.sep)) in ("site-packages", "dist-packages")
    )
    return {os.path.realpath(path) for path in dirs}


_SOURCE_SUFFIXES = (".py", ".pyw")
# Paths have one separator, "/" (not Windows).
_ONE_SEPARATOR = os.sep == "/" and os.altsep is None


def loaded_modules() -> dict[str, ModuleType]:
    """``sys.modules`` as it is, copied in one step (no Python code runs during a dict's
    copy).  A walk over the live mapping builds a tuple per entry: a garbage collection
    it sets off runs finalizers and gc callbacks, and another thread of the program (a
    kernel's, a server's) gets the interpreter and imports, which broke the walk with
    "dictionary changed size during iteration" (3.10, 3.11)."""
    return sys.modules.copy()


def _is_under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


class ProjectFilter:
    """Says whether a module is project code: a ``.py`` file under a root.

    Built-in, frozen and extension modules, the standard library and
    site-packages are never project code, wherever they lie.
    """

    def __init__(self, roots: Iterable[str | os.PathLike[str]]) -> None:
        self.roots = [os.path.realpath(os.fspath(root)) for root in roots]
        never = _never_project_dirs()
        self.excluded = [
            path
            for path in _excluded_dirs(never)
            # A root inside an excluded folder (a project kept under the
            # interpreter's prefix) still counts: its excluded parent doesn't.
            # site-packages never does: its modules are never reloaded.
            if not any(_is_under(root, path) and root != path for root in self.roots)
            or path in never
        ]
        self._root_prefixes = tuple(root.rstrip(os.sep) + os.sep for root in self.roots)
        self._excluded_prefixes = tuple(path.rstrip(os.sep) + os.sep for path in self.excluded)
        # folder as written -> its real path if project files can live there, else None.
        self._folders: dict[str, str | None] = {}
        #: real path -> (module name, (mtime_ns, size) when it was classified),
        #: for every project module seen so far: the watcher's baseline, so
        #: that a save between the import and the first watch is not lost.
        self.loaded: dict[str, tuple[str, tuple[int, int] | None]] = {}
        # Module name -> the namespace that counts as a project importer
        # though no file of the project holds it (an IPython user namespace).
        self._namespaces: dict[str, Mapping[str, object]] = {}
        #: Called before a folder outside the roots is judged for the first time (an
        #: import from it): IPython's extension adds a folder the notebook put on
        #: ``sys.path`` in the cell that imports from it (see follow_the_notebook).
        self.before_new_folder: Callable[[], None] | None = None

    def add_root(self, root: str | os.PathLike[str]) -> str:
        """Count the modules under ``root`` as project code from now on; its real path.

        Modules already classified keep their verdict: only those imported
        afterwards are tracked.
        """
        real = os.path.realpath(os.fspath(root))
        if real not in self.roots:
            self.roots.append(real)
            self._root_prefixes = (*self._root_prefixes, real.rstrip(os.sep) + os.sep)
            # Folders judged outside the project may lie under it now.  In place:
            # the compiled core holds this dict (see verdicts).
            for folder in [key for key, verdict in self._folders.items() if verdict is None]:
                del self._folders[folder]
        return real

    def add_importer(self, name: str, namespace: Mapping[str, object]) -> None:
        """Count the module ``name`` whose globals are ``namespace`` as a project importer.

        For a namespace no project file holds (IPython's user namespace): the
        ``from module import name`` bindings it makes are recorded, and a
        reload rebinds them as it does the script's.  It is never re-executed.
        """
        self._namespaces[name] = namespace

    def project_path(self, filename: str) -> str | None:
        """The real path of ``filename`` if it is a Python source file in a project
        folder (the file itself not resolved: it may be a symlink), else None.

        Resolving symlinks costs a system call per path component, and
        modules come many to a folder: each folder is resolved and judged
        once.  A symlinked file is resolved on its own (callers lstat it).
        """
        if not filename.endswith(_SOURCE_SUFFIXES):
            return None
        if _ONE_SEPARATOR:
            # (What os.path.split does, for the folder's key here, without its calls: a
            # call for every module imported.)
            slash = filename.rfind("/")
            folder, base = filename[: slash or 1] if slash >= 0 else "", filename[slash + 1 :]
        else:
            folder, base = os.path.split(filename)
        try:
            resolved = self._folders[folder]
        except KeyError:
            real = os.path.realpath(folder or os.curdir)
            if self.before_new_folder is not None and not self._is_project_dir(real + os.sep):
                self.before_new_folder()
            # Not a folder: a zip file on sys.path (a zipapp), whose modules' files
            # are no files to read or watch.
            inside = self._is_project_dir(real + os.sep) and os.path.isdir(real)
            resolved = self._folders[folder] = real + os.sep if inside else None
        return None if resolved is None else resolved + base

    def _is_project_dir(self, prefix: str) -> bool:
        return prefix.startswith(self._root_prefixes) and not prefix.startswith(
            self._excluded_prefixes
        )

    def may_hold_projects(self, folder: str) -> bool:
        """Could a root at ``folder`` (a real path) hold project code: it lies in no folder
        whose modules never are (site-packages, the interpreter's, the standard library)?"""
        return not (folder.rstrip(os.sep) + os.sep).startswith(self._excluded_prefixes)

    def covers(self, folder: str) -> bool:
        """Is ``folder`` (a real path) a root, or inside one?"""
        return (folder.rstrip(os.sep) + os.sep).startswith(self._root_prefixes)

    def verdicts(
        self,
    ) -> tuple[dict[str, str | None], dict[str, tuple[str, tuple[int, int] | None]]] | None:
        """The folder verdicts and the baselines, for the compiled core's fast path.

        With them the core classifies a module whose folder was judged
        already without calling this filter: the folder is the file name up
        to its last ``/``, a project file is recorded in ``loaded`` with its
        ``lstat`` exactly as :meth:`__call__` records it, and anything else
        (a new folder, a symlink) still comes here.  None where paths may use
        another separator (Windows): the core then always calls.
        """
        if os.sep != "/" or os.altsep is not None:
            return None
        return self._folders, self.loaded

    def note_read(self, path: str, name: str, stat: tuple[int, int]) -> None:
        """Module ``name`` is being loaded from ``path``, a project file that is no
        symlink, with these (mtime_ns, size): its baseline, recorded here as the
        classifier would (which then needs no lstat of its own).  A file another
        module claims already is left to the classifier (an alias?)."""
        previous = self.loaded.get(path)
        if previous is None or previous[0] == name:
            self.loaded[path] = (name, stat)

    def judge_folders(self) -> None:
        """Judge the folder of every module loaded now (the standard library's, ours):
        a module of them that imports something for the first time later (``ast.walk``'s
        ``from collections import deque``, during a reload) is judged without a system
        call.  Under a reload, each one lets a thread of the program that computes
        hold the interpreter for 20 ms.

        A project module's folder was judged as it was loaded (it has its record in
        ``loaded``): only the others are looked at (a walk of a big start-up's
        modules cost its first edit 5-10 ms)."""
        modules = loaded_modules()
        judged = set(map(itemgetter(0), dict(self.loaded).values()))
        for name in modules.keys() - judged:
            module = modules[name]
            try:
                # (Not a look at an attribute: a lazy module would run.)
                namespace = object.__getattribute__(module, "__dict__")
            except (AttributeError, TypeError):
                continue  # (cffi's Lib, say: a module type with no __dict__)
            filename = namespace.get("__file__") if isinstance(namespace, dict) else None
            if isinstance(filename, str):
                self.project_path(filename)

    def is_project_path(self, filename: str) -> bool:
        """Is ``filename`` a Python source file in a project folder (symlinks not followed)?"""
        return self.project_path(filename) is not None

    def contains_file(self, filename: str) -> bool:
        """Is ``filename`` a Python source file of the project?"""
        path = self.project_path(filename)
        if path is not None and os.path.islink(path):
            path = self.project_path(os.path.realpath(path))
        return path is not None

    def __call__(self, name: str, namespace: Mapping[str, object]) -> bool:
        """The core's classifier: ``namespace`` is the module's globals."""
        if self._namespaces and self._namespaces.get(name) is namespace:
            return True
        try:
            filename = namespace.get("__file__")
        except AttributeError:
            return False
        if not isinstance(filename, str):
            return False
        path = self.project_path(filename)
        if path is None:
            return False
        previous = self.loaded.get(path)
        if previous is not None and previous[0] == name:
            return True  # recorded as its loader read it (note_read)
        # One lstat: it says whether the file is a symlink, and otherwise
        # gives the watcher's baseline.
        stat = _stat(path, os.lstat)
        if stat is not None and S_ISLNK(stat.st_mode):
            real = self.project_path(os.path.realpath(path))
            if real is None:
                return False  # a link that leads out of the project
            path = real
            stat = _stat(path, os.stat)
        previous = self.loaded.get(path)
        if (
            previous is not None
            and previous[0] != name
            and not self._ran_from(namespace, path)
            and self._ran_from(getattr(sys.modules.get(previous[0]), "__dict__", None), path)
        ):
            # An alias that claims the file (toolz's ``tlz.itertoolz`` copies
            # ``toolz.itertoolz`` and its ``__file__``): the file stays with
            # the module whose code it is, the one a save must reload.
            return True
        self.loaded[path] = (name, None if stat is None else (stat.st_mtime_ns, stat.st_size))
        return True

    def _ran_from(self, namespace: object, path: str) -> bool:
        """Was the module of ``namespace`` loaded from the project file ``path`` (its spec says)?"""
        spec = namespace.get("__spec__") if isinstance(namespace, dict) else None
        origin = getattr(spec, "origin", None)
        if not isinstance(origin, str):
            return False
        found = self.project_path(origin)
        if found is not None and found != path and os.path.islink(found):
            found = self.project_path(os.path.realpath(found))
        return found == path


def _stat(path: str, how: Callable[[str], os.stat_result]) -> os.stat_result | None:
    try:
        return how(path)
    except OSError:
        return None
