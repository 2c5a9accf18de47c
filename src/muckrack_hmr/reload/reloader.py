"""The reload transaction: re-execute a module and its dependents, atomically.

A call to :meth:`Reloader.reload` is one transaction:

1. the requested modules that are project code are the *roots*;
2. the affected set is the roots plus their transitive dependents
   (``__main__`` excepted: the script is never re-executed);
3. the affected set is run in topological order, dependencies first, each
   module once, every import cycle as one group;
4. each module's re-execution is all-or-nothing: when its new code fails to
   compile or raises, its namespace and its import edges are restored
   exactly, and every module that depends on it is left alone;
5. modules that are not re-executed (``__main__``) get their
   ``from module import name`` bindings pointed at the new objects.
"""

from __future__ import annotations

import ast
import collections
import contextlib
import gc
import heapq
import importlib.util
import linecache
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from itertools import compress, repeat
from operator import is_
from types import CodeType, FrameType, FunctionType, ModuleType
from typing import TYPE_CHECKING, TypeGuard

from .. import collector
from ..capture import being_written, read_steady
from ..capture import digest as source_digest
from ..errors import first_line, location_of, user_traceback
from ..hooks import CASCADES, ErrorHandler, Hook, Hooks
from ..project import loaded_modules
from ..threads import signals_to_main_thread
from .analysis import (
    ModuleSummary,
    class_bodies,
    optional_imports,
    static_imports,
    summarize,
)
from .incremental import (
    Changes,
    ChangeSet,
    StatementError,
    bindings_of,
    bound_names,
    consumption_of,
    match_statements,
    passed_methods,
    plan_and_run,
    read_by_paused,
    refill_containers,
    removed_calls,
    run_all,
    spelled_names,
    translate_incoming,
    translate_kept_classes,
    undo_run,
)
from .kinds import is_a
from .mentions import spelling_any
from .patching import (
    PatchReport,
    clear_abc_caches,
    clear_caches_of,
    defines,
    invalidate_abc_negative_caches,
    patch_bodies,
    patch_namespace,
    refill,
)
from .reach import clear_cache
from .rebinding import GONE, bind_added_names, rebind_importers
from .refusals import Refusal, RefusedEdit, locate
from .running import read_by_running_code
from .sources import SETTLE_AT_MOST, SourceStore, StillWritten, read_settled
from .watchdog import Ended, Watchdog

if TYPE_CHECKING:
    from .._core import ImportTracker
    from .._core_py import Dependencies
    from ..project import LoadedModules

__all__ = [
    "CASCADES",
    "ErrorHandler",
    "Hook",
    "Hooks",
    "ReloadResult",
    "Reloader",
]

log = logging.getLogger(__name__)


# Names the import system put in a module namespace; they survive the
# clearing that makes names deleted from the source disappear.
_MODULE_METADATA = frozenset(
    {
        "__name__",
        "__file__",
        "__spec__",
        "__loader__",
        "__package__",
        "__path__",
        "__builtins__",
        "__cached__",
    }
)


_GONE = object()

#: The interpreter's switch interval while a module's new code is applied: the
#: program's other threads wait (unless a statement blocks) instead of running
#: between a function's patch and its undo when a later statement fails.  A
#: module's code goes in within a millisecond or two; a thread of the program that
#: computes holds the interpreter this long once before (see _applied_at_once):
#: 100 ms made each module of a reload cost that in a busy program.
_APPLYING_SWITCH_INTERVAL = 0.02


# Lets the other threads have the interpreter once (it is released around the
# call).  sched_yield takes a microsecond, where time.sleep(0) sleeps for the
# kernel's timer slack (50 us or more on Linux).
_yield_interpreter: Callable[[], object] = getattr(os, "sched_yield", None) or (
    lambda: time.sleep(0)
)


@dataclass(frozen=True, slots=True)
class _Blame:
    """What a failed reload came from: the modules and files in its error, and the
    names it missed.  Plain values: the exception and its frames are not kept."""

    modules: frozenset[str]
    files: frozenset[str]
    names: frozenset[str]
    message: str

    @classmethod
    def of(cls, exc: BaseException) -> _Blame:
        modules: set[str] = set()
        names: set[str] = set()
        if isinstance(exc, ImportError) and isinstance(exc.name, str):
            modules.add(exc.name)  # cannot import name X from it; no module of that name
            if not isinstance(exc, ModuleNotFoundError):
                missing = getattr(exc, "name_from", None)  # 3.12 and later
                if not isinstance(missing, str) and exc.args and isinstance(exc.args[0], str):
                    quoted = exc.args[0].partition("cannot import name '")[2]
                    missing = quoted.partition("'")[0] if quoted else None
                if missing:
                    names.add(missing)
        if isinstance(exc, AttributeError):
            owner = getattr(exc, "obj", None)
            if isinstance(owner, ModuleType) and isinstance(owner.__name__, str):
                modules.add(owner.__name__)
        if isinstance(exc, NameError | AttributeError):
            missing = getattr(exc, "name", None)
            if isinstance(missing, str):
                names.add(missing)
        files = set()
        tb = exc.__traceback__
        while tb is not None:
            files.add(tb.tb_frame.f_code.co_filename)
            tb = tb.tb_next
        return cls(
            frozenset(modules),
            frozenset(files),
            frozenset(names),
            # ``KeyboardInterrupt``, not ``KeyboardInterrupt: `` (a bare raise).
            ": ".join(filter(None, (type(exc).__name__, first_line(exc)))),
        )

    def awaits(self, module: str) -> bool:
        """Did it fail for want of ``module`` (no such module, or no such name in its
        package), or of a package that ``module`` makes exist (a file in the new folder
        of a namespace package)?"""
        package, _, last = module.rpartition(".")
        if module in self.modules or (package in self.modules and last in self.names):
            return True
        return any(
            module.startswith(wanted + ".") and wanted not in sys.modules for wanted in self.modules
        )

    def concerns(self, module: str, filename: object, new: set[str]) -> bool:
        """May a reload of ``module`` (its file; the names it bound anew) mend it?"""
        return (
            module in self.modules
            or (isinstance(filename, str) and filename in self.files)
            or not self.names.isdisjoint(new)
        )


# How often, and at most how long, a removed name that running code may read is kept.
_LINGER_LOOK = 0.02
_LINGER_LONGEST = 5.0
# How often the names paused generators and coroutines read are looked at after that.
_PAUSED_LOOK = 1.0


def _running_line(module: str) -> str:
    """``file:line`` of the innermost frame running ``module``'s code (its statement that
    declares a refusal, or calls what does), or nothing."""
    namespace = getattr(sys.modules.get(module), "__dict__", None)
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_globals is namespace:
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return ""


def _module_names_of(path: str) -> list[str]:
    """The names a module in the file ``path`` would be imported as, by ``sys.path``."""
    stem, suffix = os.path.splitext(os.path.abspath(path))
    if suffix not in (".py", ".pyw"):
        return []
    if os.path.basename(stem) == "__init__":
        stem = os.path.dirname(stem)
    found = []
    for entry in sys.path:
        folder = os.path.abspath(entry or os.curdir)
        if not stem.startswith(folder + os.sep):
            continue
        parts = stem[len(folder) + 1 :].split(os.sep)
        if all(part.isidentifier() for part in parts):
            found.append(".".join(parts))
    return found


def _findable(name: str) -> bool:
    """Would an import of the module ``name`` find it now?  Without importing anything:
    False when its package is not loaded."""
    parent = name.rpartition(".")[0]
    if parent and parent not in sys.modules:
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError, AttributeError):
        return False


def _since(changes: ChangeSet, start: int, module: str) -> ChangeSet:
    """The changes set since ``changes`` had ``start`` of them (see ChangeSet.order), but
    ``module``'s own."""
    newer = ChangeSet()
    for name in dict.fromkeys(changes.order[start:]):
        if name != module:
            newer[name] = changes[name]
    return newer


def _own_modules(names: list[str]) -> list[str]:
    """The modules of ``names`` under their own names: not the script (``__main__``), nor
    another name for a module (``__mp_main__``, which ``import multiprocessing`` makes
    the script's, or any ``sys.modules`` alias): each is indexed under its own name."""
    modules = sys.modules
    script = modules.get("__main__")
    own = []
    for name in names:
        module = modules.get(name)
        if name == "__main__" or (module is script and module is not None):
            continue
        # (Its namespace as it is: a lazy module would run at a look at an attribute.)
        namespace = object.__getattribute__(module, "__dict__") if is_a(module, ModuleType) else {}
        real = namespace.get("__name__", name)
        if real != name and isinstance(real, str) and modules.get(real) is module:
            continue
        own.append(name)
    return own


# A function whose references the reload could not give the new code.
_NEW_OBJECT = (
    "%s is a new function object (%s): the name runs the new code, references taken "
    "before it (a callback stored) keep the old"
)


def _last_parts(name: str) -> set[str]:
    """The last part of the names ``sys.modules`` holds module ``name`` under (its own,
    and a second name: ``sys.modules["legacy"] = module``)."""
    parts = {name.rpartition(".")[2]}
    module = sys.modules.get(name)
    if module is not None:
        modules = loaded_modules()
        # (In C: at 5,000 modules, a walk in Python cost a reload 0.3 ms.)
        for alias in compress(modules.keys(), map(is_, modules.values(), repeat(module))):
            parts.add(alias.rpartition(".")[2])
    return parts


def _nobody(module: str) -> bool:
    return False


def _never() -> bool:
    return False


def _deleted(name: str) -> bool:
    """Was the file of module ``name`` deleted?"""
    filename = getattr(sys.modules.get(name), "__file__", None)
    return isinstance(filename, str) and not os.path.exists(filename)


def _holds(filename: str, source: bytes) -> bool:
    """Does the file hold exactly ``source`` (read with no write overlapping)?"""
    try:
        content, _, steady = read_steady(filename, tries=1)
    except OSError:
        return False
    return steady and content == source


def _from_one_of(module: str, attr: str | None, modules: set[str]) -> bool:
    """Does an import of ``attr`` from ``module`` (``import module`` when None) bind
    something of one of ``modules``: the module, a submodule, or a package above?"""
    if module in modules or (attr is not None and f"{module}.{attr}" in modules):
        return True
    prefix = module + "."
    return any(other.startswith(prefix) for other in modules)


def _forget_lines(filename: str) -> None:
    """Drop what ``linecache`` keeps of ``filename`` (read again at the next traceback):
    ``linecache.checkcache`` without its look at the file, which would let the
    program's other threads in mid-reload (see _applied_at_once)."""
    entry = linecache.cache.get(filename)
    if entry is not None and len(entry) == 4 and entry[1] is not None:
        linecache.cache.pop(filename, None)  # (a lazy entry, or the loader's, stays)


def _undone(
    name: str, namespace: dict[str, object], snapshot: dict[str, object]
) -> dict[str, object]:
    """What the namespace of ``name`` holds once a run of its new code is undone: what it
    held before (``snapshot``), and the submodules the run imported for the first time.

    The import system sets a package's attribute for a submodule once, as the submodule
    is loaded; it stays in ``sys.modules`` when the run fails.  Without its attribute, the
    fixed save's ``from .newmod import helper`` found it loaded and never set it again:
    ``pkg.newmod`` was missing for good, where a fresh start has it."""
    kept: dict[str, object] | None = None
    for key, value in namespace.items():
        if (
            key not in snapshot
            and issubclass(type(value), ModuleType)
            and sys.modules.get(f"{name}.{key}") is value
        ):
            kept = kept if kept is not None else dict(snapshot)
            kept[key] = value
    return kept if kept is not None else snapshot


def _brief(node: ast.AST, width: int = 60) -> str:
    """A statement's code on one short line, for a log line."""
    lines = ast.unparse(node).splitlines()
    line = lines[0] if lines else ""
    if len(lines) > 1 or len(line) > width:
        return line[: width - 3].rstrip() + "..."
    return line


_holding = threading.local()  # .depth: this thread's _applied_at_once, nested


def applying() -> bool:
    """Does this thread apply new code now (within a reload's hold)?"""
    return bool(getattr(_holding, "depth", 0))


@contextlib.contextmanager
def _applied_at_once() -> Iterator[None]:
    """Keep the program's other threads out while new code goes in.

    A reload patches functions in place, then runs the statements after
    them; if one raises, the patches are undone.  With the interpreter's
    usual 5 ms switches another thread could call a patched function in
    between, and see code that is never applied.  The same holds between the
    modules of one reload (the edited module's new code beside its
    dependent's old values): the transaction holds them off as a whole, and
    the modules' own holds within it change nothing.  A statement that
    blocks (I/O, a lock) still lets the others run: nothing waits on a reload.
    """
    depth = getattr(_holding, "depth", 0)
    if depth:
        _holding.depth = depth + 1
        try:
            yield
        finally:
            _holding.depth = depth
        return
    previous = sys.getswitchinterval()
    sys.setswitchinterval(max(previous, _APPLYING_SWITCH_INTERVAL))
    # A thread already waiting for the interpreter counts down the old
    # interval: one switch to it (nothing to do when none waits) and it waits
    # again with the new one.  A thread busy computing may hold on to the
    # interpreter for up to the new interval before the reload goes on.
    _yield_interpreter()
    _holding.depth = 1
    try:
        yield
    finally:
        _holding.depth = 0
        sys.setswitchinterval(previous)


# Below this many modules not indexed yet, _reached looks at each of them.
_FEW = 64


def _count_starred(outcome: Changes, held: dict[str, object], namespace: dict[str, object]) -> None:
    """Names a module's ``from x import *`` took from ``x`` before it ran (see
    rebind_importers) changed in it: its own importers follow them, as they follow
    what its run changed (``from pkg import *`` of a package that takes ``*`` from
    ``pkg.core``)."""
    for attr, value in held.items():
        if value is GONE:
            outcome.old.pop(attr, None)  # new to the module: its ``import *`` takes it
            outcome.added.add(attr)
        else:
            outcome.old[attr] = value
            if attr not in namespace:
                outcome.removed.add(attr)
        outcome.values.add(attr)


# What the reloader keeps of a removed name that held no function or class (see
# Reloader._removed): not the value, which nothing should keep alive.
_A_VALUE = object()
# What a statement that ran again may have made anew, with what calls had put in it.
_CONTAINERS = frozenset(
    {list, dict, set, collections.OrderedDict, collections.defaultdict, collections.deque}
)


def _in_the_file(exc: BaseException, filename: str, source: bytes) -> BaseException:
    """The error of a source that cannot be read as code, located in its file.

    Bytes that are not the text their encoding says (UTF-8 by default), or a
    ``coding:`` line naming no codec, fail where the text is decoded: as
    python says it, a SyntaxError at the line (``<unknown>`` or tokenize's
    own file otherwise).
    """
    if isinstance(exc, SyntaxError) and exc.filename == filename and exc.lineno:
        return exc
    if not isinstance(exc, SyntaxError | UnicodeError):
        return exc
    try:
        ast.parse(source, filename)
    except SyntaxError as located:
        if not located.lineno:
            # An unknown encoding: the line of the ``coding:`` comment (1 or 2).
            lines = source.splitlines()[:2]
            located.lineno = next((at for at, line in enumerate(lines, 1) if b"coding" in line), 1)
        return located
    except Exception:  # only a better message was looked for
        return exc
    return exc


def _interrupts(exc: BaseException | None) -> TypeGuard[KeyboardInterrupt]:
    """Is ``exc`` the user's Ctrl-C, which a reload passes on?  A KeyboardInterrupt
    on the main thread.  On another (the watcher's), it can only be the module's own
    ``raise KeyboardInterrupt``: a failure of the edit, like SystemExit."""
    return (
        isinstance(exc, KeyboardInterrupt) and threading.current_thread() is threading.main_thread()
    )


# The saved modules a reload's log line names (the others are counted).
_NAMED = 3


@dataclass
class ReloadResult:
    """Everything one reload did (``HMR.reload``); ``reload_module`` returns the short form."""

    reloaded: list[str] = field(default_factory=list)
    """Modules whose code ran again, in the order they ran."""
    edited: list[str] = field(default_factory=list)
    """The modules asked for whose file held new code (applied, failed or refused)."""
    patched: list[str] = field(default_factory=list)
    """Functions and classes given new definitions in place (``module.qualname``)."""
    rebound: list[str] = field(default_factory=list)
    """``importer.name`` bindings pointed at a new object (modules that did not run again)."""
    failed: dict[str, BaseException] = field(default_factory=dict)
    """Modules whose new code failed: they keep their old namespace."""
    left_alone: list[str] = field(default_factory=list)
    """Dependents not run because a module they import failed."""
    refused: list[Refusal] = field(default_factory=list)
    """Edits that need a restart (a class whose bases changed...): their modules kept
    their old code."""
    recovered: list[str] = field(default_factory=list)
    """Modules that had failed before and run their new code now."""
    module_ms: dict[str, float] = field(default_factory=dict)
    """Time spent on each module that ran again."""
    total_ms: float = 0.0
    """Wall time of the whole call."""

    def summary(self) -> str:
        """The log line: ``a (+2 dependents, 3 patched)``; ``a, b (...)`` when both were saved,
        ``a, b, c and 5 more (...)`` for a checkout."""
        if not self.reloaded:
            return ""
        edited = set(self.edited)
        named = [name for name in self.reloaded if name in edited] or self.reloaded[:1]
        more = len(self.reloaded) - len(named)
        details = [f"+{more} dependent{'s' if more != 1 else ''}"] if more else []
        if self.patched:
            details.append(f"{len(self.patched)} patched")
        if self.rebound:
            details.append(f"{len(self.rebound)} rebound")
        if self.failed:
            details.append(f"{len(self.failed)} failed")
        extra = f" ({', '.join(details)})" if details else ""
        shown = ", ".join(named[:_NAMED])
        if len(named) > _NAMED:
            shown += f" and {len(named) - _NAMED} more"
        return f"{shown}{extra}"


class Reloader:
    """Runs reload transactions over the modules an import tracker knows."""

    def __init__(
        self,
        tracker: ImportTracker,
        hooks: Hooks,
        project: LoadedModules | None = None,
        sources: SourceStore | None = None,
    ) -> None:
        self.tracker = tracker
        self.graph = tracker.graph
        self.hooks = hooks
        #: "auto": re-run only what consumed a change; "always": re-execute every
        #: transitive dependent whole; "never": re-run only the saved modules.
        self.cascade = "auto"
        self.sources = sources if sources is not None else SourceStore(project, tracker.is_tracked)
        self._positions: dict[str, tuple[int, int]] = {}
        self._positions_version = -1
        # Reentrant, so that a hook or a module that asks for a reload while
        # one runs gets its request queued instead of deadlocking.
        self._lock = threading.RLock()
        self._running = False
        self._queued: list[tuple[list[str], set[str], dict[str, bytes]]] = []
        self._result = ReloadResult()  # what the running reload did
        # filename -> (digest of the source, its code): a dependent re-executed
        # again and again is compiled once, not on every reload.
        self._code_cache: dict[str, tuple[bytes, CodeType]] = {}
        # (len(sys.modules), the index's version) when every project module was analyzed.
        self._all_known = (0, 0)
        # The project's modules (but __main__), when sys.modules had _project_at.
        self._project: list[str] = []
        self._project_at = -1
        # ... and the names sys.modules had then (None: not looked at yet).
        self._project_seen: set[str] | None = None
        # Says which line a long run is on, and stops it when its file is saved again.
        self._watchdog = Watchdog()
        # Are the folders of the modules loaded judged (see _judge_folders)?
        self._folders_judged = False
        # module -> the bytes to apply (the watcher's judged saves), per transaction.
        self._given: dict[str, bytes] = {}
        #: Does a watcher apply every save on its own (see _read)?  The API sets it.
        self.saves_come: Callable[[], bool] = _never
        # module -> the bytes this transaction applies, once read or confirmed.
        self._fixed: dict[str, bytes] = {}
        # module -> its file held open for writing past the wait, per transaction (the
        # read ahead waited already: a second wait would double it).
        self._held: dict[str, StillWritten] = {}
        # The modules a transaction was asked for (saved, or named in a request).
        self._roots: set[str] = set()
        # Modules whose file was found empty (said once until it holds code again).
        self._empty: set[str] = set()
        # How many project modules were loaded when the tracker's record was trimmed.
        self._trimmed_at = 0
        #: Modules whose last reload failed: the next one that succeeds says so.
        self.failing: set[str] = set()
        #: Modules whose last edit was refused (they run their old code): the same
        #: content saved again is not tried again, and an undo of the edit says so.
        self.refused: set[str] = set()
        # Refused modules whose file held the code that runs (the change of a module
        # they import was refused in them): their file being that code says nothing.
        self._refused_following: set[str] = set()
        # failing module -> what its failure came from (see _Blame): a reload of one
        # of those modules tries its edit again.
        self._blamed: dict[str, _Blame] = {}
        # Of those, the ones the running reload tries again.
        self._again: set[str] = set()
        # module -> its statements whose optional import (see analysis.optional_imports)
        # missed as they ran and would find its module now: they run again.
        self._optional_found: dict[str, frozenset[int]] = {}
        # Of those, the ones that failed to follow an imported module's change, not an
        # edit of their own: module -> the modules whose change it failed to follow.
        self._failed_to_follow: dict[str, set[str]] = {}
        # module -> {name: the function or class an edit removed}: put back, given
        # the new definition, when a later edit binds the name again (an undo), so
        # that what still holds it (an importer, an instance) runs the new code.  A
        # removed value is _A_VALUE: bound again, it is a changed value.
        self._removed: dict[str, dict[str, object]] = {}
        #: The last reload that had something to apply (``__hmr__.write_graph`` marks it).
        self.last_result: ReloadResult | None = None
        # module -> the refusals declared (``refuse``) while its new code ran.
        self._declared: dict[str, list[Refusal]] = {}

    def remember_sources(self, untrusted: Iterable[str] = (), *, compress: bool = True) -> int:
        """Keep the sources of modules still as imported (see SourceStore.remember_all).

        Sources taken at import are kept already; with ``compress``, they
        move out of memory into the spill file.  Returns how many were added.
        """
        added, _ = self._keep(untrusted, None if compress else 0)
        return added

    def keep_sources(self, limit: int | None = None) -> int:
        """Like remember_sources, compressing at most ``limit`` (the watcher's idle steps)."""
        return sum(self._keep((), limit))

    def _keep(
        self, untrusted: Iterable[str], limit: int | None, *, trim: bool = True
    ) -> tuple[int, int]:
        """(sources added, sources compressed); the tracker's record trimmed if need be."""
        with self._lock:
            added = self.sources.remember_all(untrusted)
            compressed = self.sources.compress(limit) if limit != 0 else 0
        loaded = len(getattr(self.sources.project, "loaded", ()))
        if loaded != self._trimmed_at and trim:
            # Modules were imported since the last look: what the tracker
            # recorded of their top-level imports is no longer needed.
            self._trimmed_at = loaded
            self.tracker.trim_statements()
        return added, compressed

    def start_threads(self) -> None:
        """Start the threads a reload would start (the watchdog's) now: the program's main
        thread ends, and the interpreter starts no thread while it waits for the others."""
        self._watchdog.start()

    def stop_threads(self) -> None:
        """Stop the threads of :meth:`start_threads` (the engine is taken out)."""
        self._watchdog.stop()

    def warm_up(self) -> None:
        """Run the parsing and matching code once on a small module (the watcher, when idle).

        The interpreter specializes code as it runs it: the first edit of a
        session would otherwise pay for that, on top of its own work.
        """
        before = b"import os\n\n@staticmethod\ndef f(x=1):\n    return os.sep * x\n"
        after = before.replace(b"* x", b"* x * 2")
        after += b"\n\nclass C:\n    def m(self):\n        pass\n"
        self._watchdog.start()  # (a thread started costs the first reload otherwise)
        being_written(os.devnull)  # (what it asks the system with is imported once)
        self._judge_folders()
        with self._lock:
            new = summarize(after, "<warm-up>", None)
            old = summarize(before, "<warm-up>", None, new)
            match_statements(old, new)
            consumption_of(new)

    def _judge_folders(self) -> None:
        """Have the project filter judge the folder of every module loaded (once; the
        first reload does it when the watcher's idle work has not).  A module of the
        standard library that imports when a reload calls it (``ast.walk``'s ``from
        collections import deque``) has its folder judged then, a system call per
        component of its path: inside the reload's hold, each one let a thread of the
        program that computes in, between the edited module's new code and its
        dependent's run."""
        if not self._folders_judged:
            self._folders_judged = True
            judge = getattr(self.sources.project, "judge_folders", None)
            if judge is not None:
                judge()

    def index_mentions(self, limit: int | None = None) -> int:
        """Index what up to ``limit`` modules spell after a dot (see Mentions); how many."""
        with self._lock:
            return self.sources.index_mentions(limit)

    def index_reach(self, limit: int | None = None) -> int:
        """Index what the code of up to ``limit`` modules imported calls (see
        ImportReach.add_code); how many."""
        with self._lock:
            done = self.sources.index_reach(limit)
            if not done:
                self._index_complete()  # (its answer is kept: the next edit pays nothing)
            return done

    def warm(self, limit: int | None = None) -> int:
        """Analyze up to ``limit`` remembered modules for early cutoff (all with None)."""
        with self._lock:
            return self.sources.warm(limit)

    def check_source(self, name: str, source: bytes) -> Exception | None:
        """Parse ``source`` as the next code of ``name``: the error, or None.

        The watcher asks before a reload, to give a file still being written
        time to be complete; the parse is kept for the reload that follows.
        """
        module = sys.modules.get(name)
        filename = getattr(module, "__file__", None)
        if module is None or not isinstance(filename, str):
            return None
        with self._lock:
            try:
                if self.cascade == "always" or name not in self.sources:
                    self._compile(filename, source)  # what _reexecute runs
                else:
                    package = module.__dict__.get("__package__")
                    self.sources.summary_of_next(name, filename, source, package)
            except Exception as exc:
                return exc
        return None

    def parsed_edit(self, name: str, old: bytes, new: bytes) -> tuple[ModuleSummary, ModuleSummary]:
        """The summaries of ``old`` and ``new`` sources of module ``name`` (SyntaxError...).

        Parsed as the reload of that edit parses them, and kept for it: a
        caller comparing the two before the reload costs it nothing more.
        """
        module = sys.modules.get(name)
        filename = getattr(module, "__file__", None)
        if module is None or not isinstance(filename, str):
            raise LookupError(name)
        package = module.__dict__.get("__package__")
        with self._lock:
            after = self.sources.summary(filename, new, package)
            before = self.sources.summary(filename, old, package, after, new)
        return before, after

    def _compile(self, filename: str, source: bytes) -> CodeType:
        """Compile ``source``; the same bytes read again reuse the code object."""
        digest = source_digest(source)
        cached = self._code_cache.get(filename)
        if cached is not None and cached[0] == digest:
            return cached[1]
        code = compile(source, filename, "exec", dont_inherit=True)
        self._code_cache[filename] = (digest, code)
        return code

    # -- what can be reloaded -----------------------------------------------

    def why_not_reloadable(self, name: str) -> str | None:
        """None if ``name`` is a project module that can be re-executed, else why not."""
        if name == "__main__":
            return "the main script is never re-executed (its imported names are updated)"
        module: object = sys.modules.get(name)
        if module is None:
            return "it was never imported"
        if not isinstance(module, ModuleType):
            return "sys.modules holds a non-module object under that name"
        if not self.tracker.is_tracked(name):
            return (
                "it is not a project module (standard library, site-packages or outside the roots)"
            )
        if not isinstance(getattr(module, "__file__", None), str):
            # Tracked without a file: a namespace counted as an importer (IPython's).
            return "it has no source file (its imported names are updated)"
        return None

    # -- the transaction ----------------------------------------------------

    def reload(
        self, names: Iterable[str], *, force: bool | Iterable[str] = False
    ) -> tuple[list[str], float]:
        """Apply what changed on disk in ``names``, and follow it; ``(modules run, ms)``."""
        result = self.reload_result(names, force=force)
        return result.reloaded, result.total_ms

    def reload_result(
        self,
        names: Iterable[str],
        *,
        force: bool | Iterable[str] = False,
        sources: Mapping[str, bytes] | None = None,
    ) -> ReloadResult:
        """Like :meth:`reload`, with everything the reload did.

        A module whose file holds the code that runs is left alone: asking
        twice, or after the watcher applied the same save, runs nothing.
        ``force`` (True, or the names to force) re-executes modules whole
        even so.  ``sources`` are the bytes to apply instead of reading the
        files (the watcher passes what it judged finished).
        """
        start = time.perf_counter()
        result = ReloadResult()
        names = list(names)
        forced = set(names) if force is True else set(force or ())
        with self._lock:
            if self._running:
                # A reload asked for from inside a reload: run it afterwards.
                self._queued.append((names, forced, dict(sources or {})))
                result.total_ms = (time.perf_counter() - start) * 1000.0
                return result
            self._running = True
            self._result = result
            # No garbage collection while the new code goes in: a collection
            # would run the program's finalizers on half-patched modules, and a
            # full one due since start-up (100+ ms with a big heap) would hold
            # the new code back.  A collection the reload makes due runs at the
            # program's next allocation, the new code in place.
            collecting = gc.isenabled()
            gc.disable()
            # A registry that took a class is found by gc.get_referrers: nothing may be
            # frozen.  (Thawed with the collector off: the full collection a thaw makes
            # due comes after the reload, not in it.)
            collector.thaw()
            try:
                self._transaction(names, forced, dict(sources or {}))
                while self._queued:
                    queued, self._queued = self._queued, []
                    for more in queued:
                        self._transaction(*more)
            finally:
                try:
                    self._running = False
                    self._queued = []
                    self._given = {}
                    self._fixed = {}
                    self.sources.forget_ahead()
                    self._held = {}
                    self._roots = set()
                    self._again = set()
                    self._optional_found = {}
                    self._declared = {}
                    # Parsed trees are many times the size of their source: none
                    # outlives the save it was parsed for, but those of the code a
                    # few reloaded modules run now (the next edit of one of them
                    # parses only its own lines, see summarize_before).
                    self.sources.forget_parses()
                finally:
                    if collecting:
                        gc.enable()
        result.total_ms = (time.perf_counter() - start) * 1000.0
        if result.edited or result.reloaded:
            self.last_result = result
        if result.reloaded or result.failed or result.recovered:
            # Outside the lock: a hook may ask for the graph, or reload.
            self.hooks.report_result(result)
        return result

    def _transaction(
        self, names: list[str], forced: set[str], given: dict[str, bytes]
    ) -> list[str]:
        started = time.perf_counter()
        roots: list[str] = []
        for name in names:
            reason = self.why_not_reloadable(name)
            if reason is not None:
                log.info("not reloading %s: %s", name, reason)
            elif name not in roots:
                roots.append(name)
        if not roots:
            return []
        self._given, self._fixed = given, {}
        root_set = self._roots = set(roots)
        self._watchdog.saves(
            [
                filename
                for name in roots
                if isinstance(filename := getattr(sys.modules.get(name), "__file__", None), str)
            ]
        )
        result = self._result
        first = len(result.reloaded)
        # (Not the trim of the tracker's record: memory alone, a walk of every module
        # imported, which the program's idle time does.)
        self._keep(root_set, 0, trim=False)
        positions: dict[str, tuple[int, int]] | None = None

        def position(name: str) -> tuple[int, int]:
            # The order of the whole graph is made only when a second module
            # joins the queue: a reload that reaches no dependent never pays
            # for it (the graph changes with every new import).
            nonlocal positions
            if positions is None:
                positions = self._topological_positions()
            return positions.get(name, (-1, 0))

        # Modules run in dependency order; a dependent joins the queue only
        # when a module it imports changed (early cutoff), so the work follows
        # the size of the change, not of the codebase.
        if len(roots) == 1:
            queue = [((-1, 0), roots[0])]
        else:
            queue = [(position(name), name) for name in roots]
            heapq.heapify(queue)
        queued = set(root_set)
        reloaded: list[str] = []
        recovered: list[str] = []
        broken: set[str] = set()  # failed, or left alone because a dependency failed
        changes = ChangeSet()
        # module -> {name: what it held}: its ``import *`` names rebound before its run
        starred: dict[str, dict[str, object]] = {}

        done: set[str] = set()  # ran (or looked at) in this transaction
        # Of those, the ones that follow once more: in an import cycle, a module that ran
        # before another it imports from (``a``: ``A = 1``, ``from b import B``; ``b``:
        # ``from a import A``, ``B = A * 10``) follows what that one's run changed.
        cycled: set[str] = set()
        # What each module that ran saw of the changes: once more, it follows only the
        # changes made since (it applied the others: a ``value = make()`` that a
        # function's run-time import brought into a cycle ran twice for one save).
        seen: dict[str, int] = {}

        def enqueue(dependents: Iterable[str]) -> None:
            for dependent in dependents:
                if dependent in done:
                    if self.cascade == "auto" and dependent not in cycled | broken:
                        cycled.add(dependent)
                        heapq.heappush(queue, (position(dependent), dependent))
                elif dependent not in queued and self.why_not_reloadable(dependent) is None:
                    queued.add(dependent)
                    heapq.heappush(queue, (position(dependent), dependent))

        # The program's other threads are held off for the whole transaction, not
        # module by module: none sees the edited module's new code beside the old
        # values of a dependent that follows it.  What looks at the files comes
        # first: while they are held off, each blocking call could hand a thread
        # that computes the interpreter for the whole 20 ms.  (The watchdog's thread
        # starts first too: see _reexecute.)
        self._read_ahead(roots)
        self.sources.read_ahead(roots)
        self._judge_folders()
        deleted = {name: _deleted(name) for name in roots}
        self._watchdog.start()
        with _applied_at_once():
            while queue:
                _, name = heapq.heappop(queue)
                done.add(name)
                # (once more in a cycle: as a dependent, its own edit applied already)
                is_root = name in root_set and name not in cycled
                if not is_root and any(dep in broken for dep in self.graph.dependencies_of(name)):
                    broken.add(name)
                    result.left_alone.append(name)
                    log.warning("left %s alone: a module it imports failed to reload", name)
                    continue
                module_started = time.perf_counter()
                if (
                    is_root
                    and name not in forced
                    and not self._optional_found.get(name)
                    and self._unchanged(name)
                ):
                    # The code that runs: nothing to apply.  A failed or refused edit
                    # undone is fine again (the watcher says so for a file saved back).
                    if self.back_to_the_code_that_runs(name):
                        result.recovered.append(name)
                    continue
                if is_root and (deleted[name] if name in deleted else _deleted(name)):
                    log.warning(
                        "%s was deleted; %s keeps running its old code",
                        sys.modules[name].__file__,
                        name,
                    )
                    continue
                if is_root:
                    result.edited.append(name)
                earlier_changes = seen.get(name)
                seen[name] = len(changes.order)
                if self.cascade == "always" or name in forced:
                    outcome = self._reexecute(name, forced=name in forced)
                elif is_root:
                    outcome = self._incremental(name, changes, asked_for=True)
                elif earlier_changes is not None:
                    outcome = self._follow(name, _since(changes, earlier_changes, name))
                else:
                    outcome = self._follow(name, changes)
                earlier = starred.pop(name, None)
                if earlier and outcome is not None:
                    _count_starred(outcome, earlier, sys.modules[name].__dict__)
                if outcome is None:
                    if not is_root:
                        # It failed to follow a change that its importers would have
                        # followed too: they are left alone, and say so.
                        broken.add(name)
                        enqueue(self.graph.dependents_of(name))
                        if name in self.failing:
                            self._failed_to_follow.setdefault(name, set()).update(changes)
                    else:
                        self._failed_to_follow.pop(name, None)
                    # An edited module that failed is as it was: its importers have
                    # nothing to follow (the error line said the old code runs on).
                    continue
                if name in self.failing and (is_root or outcome.applied):
                    self.failing.discard(name)
                    self._failed_to_follow.pop(name, None)
                    self._blamed.pop(name, None)
                    recovered.append(name)
                elif (
                    name in self.refused
                    and is_root
                    and not outcome.applied
                    and name not in self._refused_following
                    and self._same_code_as_runs(name)
                ):
                    # Saved as the code that runs, but for a blank line or a comment:
                    # the refused edit is undone, as a save back byte for byte says.
                    self.refused.discard(name)
                    recovered.append(name)
                if is_root and not outcome.applied and name not in recovered:
                    # (Said with -v: a save of comments or blank lines, lines moved.)
                    log.debug("saved %s: nothing to run (its statements are as they ran)", name)
                if outcome.applied and name not in reloaded:
                    self.refused.discard(name)
                    self._refused_following.discard(name)
                    reloaded.append(name)
                    result.reloaded.append(name)
                    result.module_ms[name] = (time.perf_counter() - module_started) * 1000.0
                if self.failing:
                    for again in self._tried_again(name, outcome):
                        if (
                            again in root_set
                            or self.why_not_reloadable(again) is not None
                            or self._unchanged(again)  # failed to follow: it follows again
                        ):
                            continue
                        # Its edit, on disk, is applied as if saved again (also when
                        # it follows ``name``'s change: it is queued once).
                        root_set.add(again)
                        self._again.add(again)
                        if again not in queued:
                            queued.add(again)
                            heapq.heappush(queue, (position(again), again))
                if outcome.behaviors:
                    # A cache of results that read what changed holds the old ones.
                    clear_caches_of(name, sys.modules[name].__dict__, outcome.behaviors)
                if not outcome:
                    if outcome.added:
                        # New names alone: only ``import *`` takes them.
                        if self.graph.pending:
                            self.tracker.apply_pending_of(_nobody, ())
                        bind_added_names(
                            self.graph,
                            name,
                            outcome.old,
                            sys.modules[name].__dict__,
                            skip=self.failing,
                            rebound=result.rebound,
                        )
                    continue
                changes[name] = outcome
                reached = self._indexed_followers(name, outcome)
                if (
                    reached is None
                    and self._walk_looks_wide(outcome)
                    and self.sources.index_reach()
                ):
                    # The index of what import-time code calls lacks modules (moments
                    # after start-up): taking their code in now costs less than walking
                    # the many modules that use what changed.
                    reached = self._indexed_followers(name, outcome)
                if reached is None:
                    reached = self._reached(name, outcome)
                    if len(reached) > _FEW and self.sources.index_reach():
                        # Many use what changed, and the index of what import-time code
                        # calls was not complete (moments after start-up): the code of
                        # the modules it lacked, taken in now, costs far less than
                        # following each of them.
                        indexed = self._indexed_followers(name, outcome)
                        if indexed is not None:
                            reached = indexed
                enqueue(reached)
                # Importers that will not run again (the script, say) follow by rebinding.
                rebound = rebind_importers(
                    self.graph,
                    name,
                    outcome.old,
                    sys.modules[name].__dict__,
                    skip=queued,
                    rebound=result.rebound,
                )
                for importer, held in rebound.items():
                    for attr, value in held.items():
                        starred.setdefault(importer, {}).setdefault(attr, value)
        if reloaded:
            self._clear_abc_caches(reloaded, changes)
        elapsed = (time.perf_counter() - started) * 1000.0
        if len(result.reloaded) > first:
            log.info("reloaded %s in %.1f ms", result.summary(), elapsed)
        for name in recovered:
            log.info("%s recovered", name)
        result.recovered.extend(recovered)
        return reloaded

    def _read(self, module: ModuleType, *, following: bool = False) -> tuple[str, bytes]:
        """The file of ``module`` and the bytes to apply: given by the watcher, or read
        (``following``: it runs again as a dependent)."""
        name = module.__name__
        filename = getattr(module, "__file__", None)
        fixed = self._fixed.get(name)
        if fixed is not None and isinstance(filename, str):
            return filename, fixed
        held = self._held.get(name)
        if held is not None:
            raise held
        given = self._given.get(name)
        # Bytes given are applied while the file holds them.  When it moved on since
        # they were judged (a later save, which the program may have applied
        # already: ``reload_module`` while the watcher waited for the engine), what
        # it holds now is read, as for a request: older bytes never go over newer.
        if given is not None and isinstance(filename, str) and _holds(filename, given):
            self._fixed[name] = given
            return filename, given
        if (
            following
            and given is None
            and (self._given or self.saves_come())
            and name not in self._roots
            and name not in self.failing
            and name not in self.refused
        ):
            # A dependent, in a reload of the watcher's saves or of a request while a
            # watcher runs: the code it runs is what its file holds, as far as the
            # watcher knows (a save of it that comes is applied on its own; one that
            # failed or was refused is read).  Not read: a read lets the program's
            # other threads in, between the edited module's new code and this
            # module's run.
            ran = self.sources.ran(name)
            if ran is not None and isinstance(filename, str):
                return filename, ran
        try:
            # A module asked for is given time to be closed; a dependent is not waited
            # for: it runs again from the code that runs (its save comes on its own).
            patience = SETTLE_AT_MOST if name in self._roots else 0.0
            filename, source = read_settled(module, self._parses, patience)
        except StillWritten as exc:
            # A writer holds it open: what it holds is no save yet.  The module keeps
            # its code (the watcher applies the save once the file is closed).
            ran = self.sources.ran(name)
            if ran is None:
                self._held[name] = exc
                raise
            log.warning("%s; %s keeps running its code", exc, name)
            self._fixed[name] = ran
            return str(filename), ran
        if not source.strip() and (ran := self.sources.ran(name)) and ran.strip():
            # Emptied: an editor's truncate whose write has not come (a loaded
            # machine), far more often than a module meant to be empty.  As the
            # watcher does, the module keeps its code.
            if name not in self._empty:
                self._empty.add(name)
                log.warning("%s is empty; %s keeps running its old code", filename, name)
            source = ran
        else:
            self._empty.discard(name)
        # The same bytes for the rest of the transaction, whatever the disk does.
        self._fixed[name] = source
        return filename, source

    def applying(self, name: str) -> bytes | None:
        """The source of ``name`` this reload applies (None: none, or not read yet); its
        old one is ``sources.ran(name)`` until the reload is over."""
        return self._fixed.get(name)

    def _read_ahead(self, names: list[str]) -> None:
        """Read the files of ``names`` for the transaction (see _read); what cannot be
        read is read again, and said, where the transaction needs it."""
        modules = sys.modules
        for name in names:
            module = modules.get(name)
            if not is_a(module, ModuleType):
                continue
            if name not in self._fixed:
                with contextlib.suppress(Exception):
                    self._read(module)
            with contextlib.suppress(Exception):
                found = self._optional_now_found(module)
                if found:
                    self._optional_found[name] = found

    def _optional_now_found(self, module: ModuleType) -> frozenset[int]:
        """The statements of ``module``'s file whose optional import missed as the module
        ran (``try: from .local import *`` / ``except ImportError: pass``) and would find
        its module now (its file came since): they run again, as a fresh start runs them,
        though their text did not change.  Looked for before the transaction (the system
        calls would let the program's threads in)."""
        filename, source = self._read(module)
        if b"except" not in source:
            return frozenset()
        package = module.__dict__.get("__package__")
        # (Parsed as the reload parses it: only the edit's lines, and kept for it.)
        summary = self.sources.summary_of_next(module.__name__, filename, source, package)
        found = []
        invalidated = False
        for index, modules in enumerate(optional_imports(summary.statements, package)):
            missing = [name for name in modules if name not in sys.modules]
            if missing and not invalidated:
                importlib.invalidate_caches()  # (a folder's listing cached before the file)
                invalidated = True
            if any(_findable(name) for name in missing):
                found.append(index)
        return frozenset(found)

    def _parses(self, module: ModuleType, filename: str, source: bytes) -> bool:
        package = module.__dict__.get("__package__")
        try:
            self.sources.summary_of_next(module.__name__, filename, source, package)
        except (SyntaxError, ValueError):
            return False
        return True

    def _same_code_as_runs(self, name: str) -> bool:
        """Does the source this transaction applies to ``name`` hold the code that runs,
        but for comments and blank lines (the same tree)?"""
        ran, given = self.sources.ran(name), self._fixed.get(name)
        if ran is None or given is None:
            return False
        try:
            return ast.dump(ast.parse(ran)) == ast.dump(ast.parse(given))
        except (SyntaxError, ValueError):
            return False

    def _unchanged(self, name: str) -> bool:
        """Does the file of ``name`` hold the code that runs?  (Unknown counts as no.)"""
        ran = self.sources.ran(name)
        if ran is None:
            return False
        try:
            _, source = self._read(sys.modules[name])
        except (OSError, ImportError):
            return False
        return bool(source == ran)

    def _topological_positions(self) -> dict[str, tuple[int, int]]:
        """Each module's place in dependency order; recomputed when the graph changed."""
        graph = self.graph
        with self.tracker.lock:
            if self._positions_version != graph.version:
                groups = graph.topological_order(graph.modules())
                self._positions = {
                    name: (group_index, member_index)
                    for group_index, group in enumerate(groups)
                    for member_index, name in enumerate(group)
                }
                self._positions_version = graph.version
            return self._positions

    def _reached(self, name: str, outcome: Changes) -> set[str]:
        """The dependents of ``name`` that its changes can reach.

        A module reaches ``name.X`` through a ``from name import X`` (the
        graph's bindings) or an attribute access spelled ``.X`` in its source
        (the index of mentions): only those are looked at, so the work
        follows the change, not the number of modules that import ``name``.
        """
        if self.cascade == "never":
            return set()
        graph = self.graph
        if self.cascade == "always":
            return set(graph.dependents_of(name))
        # (``K.build``, a method whose body changed: a module that spells ``.build``.)
        changed = (
            outcome.values
            | outcome.mutated
            | {each.rpartition(".")[2] for each in outcome.behaviors}
        )
        if not changed:
            return set()
        sources = self.sources
        settle = True
        pending = set(sources.mentions.pending)  # a copy: imports add to it meanwhile
        pattern = spelling_any(changed) if pending or graph.pending else None
        users = sources.mentions.users(changed)
        # Modules not indexed yet (imported moments ago, or the program has not
        # been idle) that spell ``.name``: the ones that import ``name`` follow.
        spelling: set[str] = set()
        few = len(pending) <= _FEW
        if pattern is not None and pending:
            if few:
                pool: Iterable[str] = pending
            else:
                # Of those, the ones that may import it: what the graph recorded, and
                # the importers of the statements waiting that spell its name.
                pool = pending.intersection(graph.dependents_of(name, settle=False))
                if graph.pending:
                    found = self.tracker.pending_importers_of(_last_parts(name))
                    pool.update(pending.intersection(found))
            spelling = {other for other in pool if sources.spells(other, pattern)}
        if pattern is not None and graph.pending:
            # Imports not recorded in the graph yet (moments after start-up, or
            # the program has not been idle).  Only a ``from`` import of a name
            # that changed binds it, and only a module that spells ``.name`` uses
            # it as an attribute: their imports are recorded now, the rest when
            # the program is idle, and the graph is read as it is.
            wanted = users | spelling
            self.tracker.apply_pending_of(wanted.__contains__, changed)
            settle = False
        reached = set(graph.binders(name, changed, settle=settle))
        if spelling:
            if few:
                reached.update(other for other in spelling if self._imports(other, name, settle))
            else:
                reached.update(spelling.intersection(graph.dependents_of(name, settle=settle)))
        for other in users:
            if other != name and self._imports(other, name, settle):
                reached.add(other)
        return reached

    def _indexed_followers(self, name: str, outcome: Changes) -> set[str] | None:
        """For new behaviour of functions alone (their bodies were edited), the modules
        that must follow, as the index of what import-time code and caches may call
        tells (see :mod:`.reach`), without walking the modules that call them in their
        functions; None when the index cannot tell: a module of the program is not in
        it yet (an unknown one may call them), or other changes came with them."""
        if not self._bodies_alone(outcome):
            return None
        reach = self.sources.reach
        functions = {behavior for behavior in outcome.behaviors if "." not in behavior}
        modules, caches = reach.followers(name, functions)
        methods = outcome.behaviors - functions
        if methods:
            # ``K.build`` (a method whose body changed): the index knows the class's
            # node, which every subclass names; of the modules that follow it, those
            # that spell ``.build``.
            classes = {method.partition(".")[0] for method in methods}
            through_class, more_caches = reach.followers(name, classes)
            caches = [*caches, *more_caches]
            attrs = {method.rpartition(".")[2] for method in methods}
            mentions = self.sources.mentions
            users = mentions.users(attrs)
            pattern = None
            for other in through_class:
                if other in users:
                    modules.add(other)
                elif other not in mentions:  # not indexed yet: its source tells
                    pattern = pattern or spelling_any(attrs)
                    if self.sources.spells(other, pattern):
                        modules.add(other)
        for node in caches:
            # (A module that follows may compute nothing of its own.  Those the index
            # knows already, also while it is not whole: a walk finds no cached method.)
            clear_cache(node)
        if not self._index_complete():
            return None
        return self._with_holders(name, outcome, modules) if modules else modules

    def _with_holders(self, name: str, outcome: Changes, modules: set[str]) -> set[str]:
        """``modules``, and the modules they import (and those import, on) that hold one
        of the changed functions: ``pkg/__init__``'s ``from .kernel import helper``
        passes the change on to ``from pkg import helper`` and ``pkg.helper()``.  The
        index of what import-time code calls knows the callers from their code, not
        which module they took the function from (the analysis of the package tells,
        later)."""
        namespace = sys.modules[name].__dict__
        # (A method that changed, ``K.build``: a module that holds ``K`` passes it on.)
        changed = {
            id(value)
            for key in outcome.behaviors
            if (value := namespace.get(key.partition(".")[0]))
        }
        seen, pending = {name, *modules}, list(modules)
        while pending:
            for other in self.graph.dependencies_of(pending.pop()):
                if other in seen:
                    continue
                seen.add(other)
                held = getattr(sys.modules.get(other), "__dict__", None)
                if isinstance(held, dict) and any(
                    id(value) in changed for value in list(held.values())
                ):
                    modules.add(other)
                    pending.append(other)
        return modules

    def _bodies_alone(self, outcome: Changes) -> bool:
        """Did only functions' behaviour change (no value, container, name added or
        removed), with the cascade left to the engine?"""
        return not (
            outcome.values
            or outcome.mutated
            or outcome.removed
            or outcome.added
            or self.cascade != "auto"
        )

    def _walk_looks_wide(self, outcome: Changes) -> bool:
        """Would walking the users of this change of function bodies alone cost more than
        indexing the modules the index lacks?  Few of those (under 0.1 ms each), or many
        modules that spell a changed name after a dot."""
        if not self._bodies_alone(outcome):
            return False
        if self.sources.unindexed() <= _FEW * 4:
            return True
        spelled = {behavior.rpartition(".")[2] for behavior in outcome.behaviors}
        return len(self.sources.mentions.users(spelled)) > _FEW

    def _index_complete(self) -> bool:
        """Is every project module in the index of what import-time code calls?"""
        reach = self.sources.reach
        known = reach.known
        if len(known) < self.sources.count():
            return False  # modules whose sources are kept wait for their analysis
        # Looked at again only when modules were imported or indexed since the last
        # time it was so; the project's modules only when modules were imported.
        count = len(sys.modules)
        mark = (count, reach.version)
        if mark != self._all_known:
            if self._project_at != count:
                self._project_at = count
                names = sys.modules.keys()
                seen = self._project_seen
                if seen is not None and names >= seen:
                    # Modules were imported since, none taken out: only those are judged.
                    # (An import in a request's code made the next reload walk every
                    # module: 9-17 ms at 5,000 modules, on either core.)
                    is_tracked = self.tracker.is_tracked
                    self._project += _own_modules([m for m in names - seen if is_tracked(m)])
                else:
                    self._project = _own_modules(self.tracker.tracked_modules())
                self._project_seen = set(names)
            if not known.issuperset(self._project):
                return False
            self._all_known = mark
        return True

    def awaiting(self, path: str) -> list[str]:
        """The modules that want the module of the new file ``path``, to reload: those
        whose edit failed for want of it (``from helpers import f`` saved before
        helpers.py), and those whose optional import of it missed as they ran (``try:
        from .local import *`` / ``except ImportError: pass``: see _optional_now_found)."""
        wanted = _module_names_of(path)
        if not wanted:
            return []
        found = [
            name
            for name in sorted(self.failing)
            if (blame := self._blamed.get(name)) is not None
            and any(blame.awaits(module) for module in wanted)
        ]
        with self._lock:
            optional = self.sources.optional_importers(wanted)
        return found + [name for name in optional if name not in found]

    def _tried_again(self, name: str, outcome: Changes) -> list[str]:
        """The failing modules whose failure ``name``'s reload may have mended.

        An edit that failed for want of something ``name`` now has (a name it
        imports, an attribute, a function that raised when called at import
        time) is tried again, as if saved again: saving the helper after the
        module that uses it is the order of many edits.
        """
        module = sys.modules.get(name)
        filename = getattr(module, "__file__", None)
        new = outcome.added | outcome.values
        return [
            other
            for other in sorted(self.failing)
            if other != name
            and (blame := self._blamed.get(other)) is not None
            and blame.concerns(name, filename, new)
        ]

    def _clear_abc_caches(self, reloaded: list[str], changes: ChangeSet) -> None:
        """ABCs and protocols answer ``isinstance`` from caches of the old code.

        Those of the reloaded modules are emptied.  When a class statement ran
        again (a class that gained or lost a method), every ABC's answers "no"
        are dropped (abc's own invalidation), and the caches of the ABCs in the
        modules the reloaded ones import are emptied: a protocol is usually
        declared there.  Not every project module's: that would cost a walk of
        them all, on every such edit.
        """
        names = set(reloaded)
        if any(outcome.live_patches for outcome in changes.values()):
            invalidate_abc_negative_caches()
            for name in reloaded:
                names.update(self.graph.dependencies_of(name, settle=False))
        modules = sys.modules
        clear_abc_caches(
            (name, module.__dict__) for name in names if (module := modules.get(name)) is not None
        )

    def _imports(self, importer: str, name: str, settle: bool = True) -> bool:
        """Does ``importer`` import ``name``, or a package that holds it?"""
        for imported in self.graph.dependencies_of(importer, settle=settle):
            if imported == name or name.startswith(imported + "."):
                return True
        return False

    def _follow(self, name: str, changes: ChangeSet) -> Changes | None:
        """A dependent: run what consumed the changes of its imports, if anything."""
        consumption = self.sources.consumption(name)
        if consumption is None:
            return self._incremental(name, changes)
        values, behaviors, _, mutated = translate_incoming(
            consumption.imports, changes, consumption.references
        )
        values |= mutated  # (what reads a container changed in place may derive from it)
        if consumption.touched_by(values, behaviors):
            return self._incremental(name, changes)
        # Nothing runs again; its functions that use what changed now behave
        # differently, which matters to whoever calls them at import time.
        through = consumption.behaviors_through(values, behaviors)
        # A function it binds by ``from x import f`` behaves differently for its own
        # importers too (``from pkg import helper`` of pkg's ``from .kernel import
        # helper``), as when its statements run.
        through.update(name for name in behaviors if "." not in name)
        through |= passed_methods(behaviors, sys.modules[name].__dict__)
        # Nothing of its namespace changed: no ``old`` to rebind importers from.
        return Changes(behaviors=through)

    def _reexecute(self, name: str, *, forced: bool = False) -> Changes | None:
        """Re-execute ``name`` whole: everything it binds counts as changed.

        Its dispose callbacks run first (once the new code compiles); a
        forced reload also drops the values it kept.  When the new code then
        fails, the old version runs again whole (see :meth:`_set_up_again`).
        """
        module = sys.modules[name]
        self.hooks.run(self.hooks.pre_reload, name, "pre-reload")
        try:
            filename, source = self._read(module)
        except (OSError, SyntaxError, ValueError, ImportError) as exc:
            self._fail(name, exc)
            return None
        try:
            code = self._compile(filename, source)
        except (SyntaxError, ValueError) as exc:
            self._fail(name, _in_the_file(exc, filename, source))
            return None
        namespace = module.__dict__
        snapshot = dict(namespace)
        self._removed.pop(name, None)  # run whole: what it binds now is all there is
        tracker = self.tracker
        with tracker.lock:
            saved_edges = self.graph.clear_dependencies(name)
            tracker.forget_statements(name)
        disposed = self.hooks.dispose(name)
        if forced:
            self.hooks.kept.pop(name, None)
        # The new code runs in the live namespace, which keeps every name
        # until the run is over: the program's other threads never see the
        # module without a name it has (``importlib.reload`` does the same).
        # Names the new source no longer binds are dropped afterwards.
        _forget_lines(filename)
        package = snapshot.get("__package__")
        # (The watchdog's thread starts first: a thread started while the interpreter
        # switches every 0.1 s waits for a busy thread of the program, twice.)
        with self._watchdog.running(name, filename, source), _applied_at_once():
            try:
                summary = self.sources.summary(filename, source, package)
                ran = self._run_whole(
                    name, namespace, filename, summary=summary, code=code, snapshot=snapshot
                )
                refusals = self._refusals(name, ran)
                report = None
                if not refusals:
                    self._drop_leftovers(name, bound_names(summary, package), snapshot, namespace)
                    report = patch_namespace(
                        name, snapshot, namespace, bodies=self._class_bodies_ran(name, filename)
                    )
                    refusals = report.refused
                if refusals:
                    if ran is not None:
                        undo_run(ran)
                    raise RefusedEdit(refusals)
            except BaseException as exc:  # SystemExit from module code must not end the program
                # What the failed run started goes, while its names are still bound.
                self.hooks.dispose(name)
                self._restore(name, namespace, snapshot, saved_edges)
                if _interrupts(exc):
                    raise
                cause = exc.__cause__ if isinstance(exc, StatementError) else exc
                if _interrupts(cause):
                    raise cause from None
                if isinstance(exc, RefusedEdit):
                    self._refuse(name, exc, filename, source)
                else:
                    self._fail(name, cause if cause is not None else exc)
                if disposed:
                    self._set_up_again(name, namespace, filename, snapshot)
                # A refused edit changed nothing: its dependents have nothing to follow.
                return Changes() if isinstance(exc, RefusedEdit) else None
            if ran is not None:
                for patched, _ in ran.live_patches:
                    self._report(patched)
            self._report(report)
            self.sources.remember(name, source)
            self.hooks.run(self.hooks.post_reload, name, "post-reload")
            everything = {key for key in {*snapshot, *namespace} if key not in _MODULE_METADATA}
            return Changes(
                values=set(everything), behaviors=everything, old=snapshot, executed=1, applied=True
            )

    def _run_whole(
        self,
        name: str,
        namespace: dict[str, object],
        filename: str,
        *,
        summary: ModuleSummary,
        code: CodeType,
        snapshot: dict[str, object],
    ) -> Changes | None:
        """Run a module's code whole in its live namespace; the class patches it made."""
        # A module that defines classes runs statement by statement: each live
        # class takes its new definition before the statements after it run.
        defines_classes = any(
            is_a(value, type) and value.__module__ == name for value in snapshot.values()
        )
        if defines_classes:
            return run_all(
                namespace, filename, summary, snapshot, self._class_bodies_ran(name, filename)
            )
        exec(code, namespace)
        return None

    def _set_up_again(
        self, name: str, namespace: dict[str, object], filename: str, snapshot: dict[str, object]
    ) -> None:
        """The new code of ``name`` failed after its dispose callbacks ran: run the old again.

        The callbacks stopped what the old version started; the old version,
        whose namespace is back, runs whole once more so that it starts it
        again (what it kept and handed over in ``data`` survives).  Its
        functions and classes keep their identity, as in any reload.
        """
        old = self.sources.ran(name)
        if old is None:
            log.error("%s: its old code is unknown, and cannot set itself up again", name)
            return
        found = snapshot.get("__package__")
        package = found if isinstance(found, str) else None
        try:
            code = self._compile(filename, old)
            summary = self.sources.summary(filename, old, package)
            ran = self._run_whole(
                name, namespace, filename, summary=summary, code=code, snapshot=snapshot
            )
            for report, _ in ran.live_patches if ran is not None else ():
                self._report(report)
        except BaseException as exc:
            refill(namespace, _undone(name, namespace, snapshot))
            log.error(
                "the old code of %s failed to set itself up again: %s: %s",
                name,
                type(exc).__name__,
                first_line(exc),
            )
            return
        self._patch(name, snapshot, namespace)
        log.info("%s: the old code set itself up again", name)

    @staticmethod
    def _drop_leftovers(
        name: str, bound: set[str] | None, snapshot: dict[str, object], namespace: dict[str, object]
    ) -> None:
        """Names of the old run that the new source does not bind disappear.

        A name stays when the run gave it another object, when the module may
        bind names in ways its source does not show (``bound`` is None), and
        when it is a submodule: the import system set it and will not again.
        """
        if bound is None:
            return
        prefix = name + "."
        for key, value in snapshot.items():
            if key in bound or key in _MODULE_METADATA or namespace.get(key, _GONE) is not value:
                continue
            if is_a(value, ModuleType) and value.__name__ == prefix + key:
                continue
            del namespace[key]

    def _class_bodies_ran(
        self, name: str, filename: str
    ) -> Callable[[], dict[str, frozenset[str]] | None]:
        """What the class statements of the code ``name`` ran bound in their bodies (see
        analysis.class_bodies), when asked for; None when that code is unknown."""

        def bodies() -> dict[str, frozenset[str]] | None:
            try:
                ran = self.sources.ran(name)
                if ran is None:
                    return None
                package = sys.modules[name].__dict__.get("__package__")
                summary = self.sources.running_summary(name, ran)
                if summary is None:
                    summary = summarize(ran, filename, package)
                return class_bodies(summary)
            except Exception:  # (zlib.error, SyntaxError: as if unknown)
                return None

        return bodies

    def _patch(self, name: str, snapshot: dict[str, object], namespace: dict[str, object]) -> None:
        self._report(patch_namespace(name, snapshot, namespace))

    def _report(self, report: PatchReport | None) -> None:
        if report is None:
            return
        self._result.patched.extend(report.patched)
        if report.lingering:
            self._drop_members_when_unread(report.module, report.lingering)
        for qualname, why in report.replaced:
            log.warning(_NEW_OBJECT, qualname, why)

    def _incremental(
        self, name: str, changes: ChangeSet, *, asked_for: bool = False
    ) -> Changes | None:
        """Re-run the statements of ``name`` that its edit or its imports' changes touched.

        A module ``asked_for`` by name whose source that ran is unknown
        re-executes whole.
        """
        if name in self.hooks.disposers:
            # It said how to stop what it started: it starts it again, whole.
            return self._reexecute(name)
        module = sys.modules[name]
        namespace = module.__dict__
        package = namespace.get("__package__")
        try:
            filename, source = self._read(module, following=not asked_for)
        except FileNotFoundError:
            # Its file was deleted (a branch switched): it keeps running its code, and
            # nothing of it changed for the modules that import it.  (The watcher says
            # so as it sees the delete, a request before it gets here.)
            return Changes()
        except (OSError, ImportError) as exc:
            self._fail(name, exc)
            return None
        old_source = self.sources.ran(name)
        if old_source is None and asked_for:
            # What ran is unknown (a module imported before install()): run it whole.
            return self._reexecute(name)
        if old_source is None or old_source == source:
            old_source = source
        try:
            if old_source is source:
                old = new = self.sources.summary(filename, source, package)
            elif (kept := self.sources.running_summary(name, old_source)) is not None:
                # Reloaded before: what runs is parsed, and the edit parses only its lines.
                old = kept
                new = self.sources.summary(filename, source, package, kept, old_source)
            else:
                # The new source first: it is often parsed already (the watcher
                # and a request check that it parses); the old one, not cached
                # on a module's first edit, then reuses its unchanged statements.
                new = self.sources.summary(filename, source, package)
                old = self.sources.summary(filename, old_source, package, new, source)
        except (OSError, SyntaxError, ValueError, ImportError) as exc:
            self._fail(name, _in_the_file(exc, filename, source))
            return None

        def before_first() -> None:
            self.hooks.run(self.hooks.pre_reload, name, "pre-reload")
            _forget_lines(filename)

        bindings = bindings_of(new.imports)
        incoming = translate_incoming(bindings, changes, lambda: spelled_names(new))
        failed_from = self._failed_to_follow.get(name)
        if failed_from:
            # It kept the old values of what it imports from the modules whose change it
            # failed to follow (an earlier reload): what reads them runs again, as it
            # would have.  (Not what reads other imports: ``app = Flask(__name__)``.)
            incoming[0].update(
                local for local, module, attr in bindings if _from_one_of(module, attr, failed_from)
            )
        # (The watchdog's thread starts first: a thread started while the interpreter
        # switches every 0.1 s waits for a busy thread of the program, twice.)
        with self._watchdog.running(name, filename, source), _applied_at_once():
            snapshot = dict(namespace)
            try:
                outcome = plan_and_run(
                    namespace,
                    filename,
                    (old, new),
                    incoming,
                    before_first,
                    classes_kept=translate_kept_classes(bindings, changes),
                    again=self._optional_found.pop(name, frozenset()),
                    gone=self._removed.get(name),
                )
            except StatementError as error:
                # Callbacks the failed run registered (it had none before): they go with it.
                self.hooks.dispose(name)
                refill(namespace, _undone(name, namespace, snapshot))
                cause = error.__cause__
                if _interrupts(cause):
                    raise cause from None
                self._fail(name, cause if cause is not None else error)
                return None
            refusals = self._refusals(name, outcome)
            report = None
            removed = self._removed.get(name, {})
            back = removed.keys() & namespace.keys() - snapshot.keys()
            revived = {key: removed[key] for key in back if removed[key] is not _A_VALUE}
            if not refusals and outcome.applied:
                report = patch_namespace(
                    name,
                    {**snapshot, **revived},
                    namespace,
                    outcome.shared,
                    bodies=lambda: class_bodies(old),
                )
                refusals = report.refused
            if refusals:
                # Nothing of the edit stays: as for a failure, but the code was fine.
                undo_run(outcome)
                self.hooks.dispose(name)
                refill(namespace, _undone(name, namespace, snapshot))
                self._refuse(name, RefusedEdit(refusals), filename, source)
                return Changes()
            refill_containers(outcome, namespace)
            for key in back:
                del removed[key]
            # A name put back counts as changed: a module that failed to import it
            # while it was gone, or takes it with ``import *``, follows.  (A name new
            # to the module does not: nothing could have read it.)
            outcome.values |= back
            outcome.added = namespace.keys() - snapshot.keys() - back
            for key in outcome.removed:
                value = outcome.old.get(key)
                removed[key] = value if isinstance(value, type | FunctionType) else _A_VALUE
            if removed:
                self._removed[name] = removed
            else:
                self._removed.pop(name, None)
            if old is not new:
                self._forget_removed_imports(name, old, new, package)
                # (A call on a container its maker made again went with its items.)
                made_again = {
                    key
                    for key in outcome.values
                    if type(outcome.old.get(key)) in _CONTAINERS and key in namespace
                }
                for gone in removed_calls(old, new, made_again):
                    log.warning(
                        "%s:%d: %s is no longer in the file; what it did when it ran "
                        "stays until a restart",
                        filename,
                        gone.node.lineno,
                        _brief(gone.node),
                    )
            self.sources.remember(name, source, new)
            rebuilt = [model for each in (report,) if each is not None for model in each.rebuilt]
            for patched, _ in outcome.live_patches:
                self._report(patched)
                rebuilt += patched.rebuilt
            if rebuilt:
                # A model rebuilt for a patched one its schema holds (named by a string):
                # what read it (``TypeAdapter(Order)``) follows, as had its class
                # statement run again.
                outcome.values |= {
                    key
                    for key, value in namespace.copy().items()
                    if any(value is each for each in rebuilt)
                }
            if outcome.applied:
                self._report(report)
                if outcome.body_patches:
                    self._report(patch_bodies(name, outcome.body_patches, namespace))
                # A function that could not be patched in place is a new object.
                outcome.values |= {
                    key
                    for key in outcome.behaviors
                    if key in snapshot and namespace.get(key) is not snapshot[key]
                }
            if outcome.applied:
                self.hooks.run(self.hooks.post_reload, name, "post-reload")
            if outcome.lingering:
                self._drop_when_unread(name, namespace, outcome.lingering, outcome.paused)
            return outcome

    def _drop_when_unread(
        self,
        name: str,
        namespace: dict[str, object],
        names: dict[str, object],
        paused: list[weakref.ref[object]],
    ) -> None:
        """Delete the names an edit removed that code running in other threads may still
        read, once none does (at most _LINGER_LONGEST later), and that none of the module's
        ``paused`` generators and coroutines still alive may read when it resumes (however
        long that is: a request awaiting I/O, a stream between two items).  A name that the
        code the module runs by then binds (a later edit put it back) stays."""
        left = dict(names)

        def look(busy: set[str], late: bool) -> float | None:
            source = self.sources.ran(name)
            summary = None if source is None else self.sources.running_summary(name, source)
            package = namespace.get("__package__")
            bound = (
                None
                if summary is None
                else bound_names(summary, package if isinstance(package, str) else None)
            )
            held = read_by_paused(paused) or set()
            for attr, value in list(left.items()):
                if bound is None or attr in bound or namespace.get(attr, left) is not value:
                    del left[attr]  # bound again (or cannot be told): it stays
                elif attr in held:
                    continue  # what a paused generator or coroutine reads when resumed
                elif late or attr not in busy:
                    del namespace[attr]
                    del left[attr]
            if not left:
                return None
            return _PAUSED_LOOK if late else _LINGER_LOOK  # late: only paused code waits

        self._while_read(namespace, look, "muckrack-hmr-removed-names")

    def _drop_members_when_unread(
        self, module: str, members: list[tuple[type, str, object]]
    ) -> None:
        """Delete the class members an edit removed that code running in other threads may
        still look up (``self.finish_1()``, renamed by the save), once none does (at most
        _LINGER_LONGEST later).  A member the class statement defines again by then (a
        later edit put it back) stays."""
        namespace = getattr(sys.modules.get(module), "__dict__", None)
        if not isinstance(namespace, dict):
            return
        left = list(members)

        def look(busy: set[str], late: bool) -> float | None:
            waiting = []
            for cls, key, value in left:
                if cls.__dict__.get(key, _GONE) is not value or defines(cls, key):
                    continue  # replaced, or defined again: it stays
                if late or key not in busy:
                    with contextlib.suppress(AttributeError, TypeError):
                        delattr(cls, key)
                else:
                    waiting.append((cls, key, value))
            left[:] = waiting
            return _LINGER_LOOK if left else None

        self._while_read(namespace, look, "muckrack-hmr-removed-members")

    def _while_read(
        self,
        namespace: dict[str, object],
        look: Callable[[set[str], bool], float | None],
        thread: str,
    ) -> None:
        """In a thread of ours, ``look(busy, late)`` under the engine's lock until it
        returns None, else the pause before the next look: ``busy``, what the module's
        code running in other threads reads now; ``late``, _LINGER_LONGEST has passed."""

        def run() -> None:
            deadline = time.monotonic() + _LINGER_LONGEST
            pause: float | None = _LINGER_LOOK
            while pause is not None:
                time.sleep(pause)
                with self._lock:
                    busy = read_by_running_code(namespace)
                    pause = look(busy, time.monotonic() >= deadline)

        with signals_to_main_thread():
            try:
                threading.Thread(target=collector.ours(run), name=thread, daemon=True).start()
            except RuntimeError:
                # The interpreter shuts down (it waits for the program's threads): what
                # was removed stays readable until the program ends.
                log.debug("%s: no thread at interpreter shutdown", thread)

    def _forget_removed_imports(
        self, name: str, old: ModuleSummary, new: ModuleSummary, package: str | None
    ) -> None:
        """Edges and ``from`` bindings of import statements the edit removed go.

        Only what the old source imported and the new one imports nowhere
        (functions included): edges from ``importlib.import_module`` calls,
        which no statement shows, stay.
        """
        kept = {statement.text for statement in new.statements}
        gone = [statement for statement in old.statements if statement.text not in kept]
        if not gone:
            return
        old_modules, old_names = static_imports(gone, package)
        if not old_modules:
            return
        new_modules, new_names = static_imports(new.statements, package)
        modules, names = old_modules - new_modules, old_names - new_names
        if not modules and not names:
            return
        with self.tracker.lock:
            edges, bindings = self.graph.clear_dependencies(name)
            edges = [target for target in edges if target not in modules]
            bindings = {
                imported: [bound for bound in bound_names if (imported, bound) not in names]
                for imported, bound_names in bindings.items()
            }
            self.graph.restore_dependencies(name, (edges, bindings))

    def _restore(
        self,
        name: str,
        namespace: dict[str, object],
        snapshot: dict[str, object],
        saved_edges: Dependencies,
    ) -> None:
        refill(namespace, _undone(name, namespace, snapshot))
        with self.tracker.lock:
            self.graph.restore_dependencies(name, saved_edges)
            self.tracker.forget_statements(name)

    # -- edits that cannot apply in place -------------------------------------

    def refuse(self, refusal: Refusal) -> bool:
        """Refuse the edit of ``refusal.module``, whose new code runs now; False outside it.

        For the module's own code (``__hmr__.refuse``) and an integration's
        refusal check: when the module's run is over, nothing of it applies.
        """
        with self._lock:
            if not self._running:
                return False
            if not refusal.location:
                refusal = replace(refusal, location=_running_line(refusal.module))
            self._declared.setdefault(refusal.module, []).append(refusal)
            return True

    def _refusals(self, name: str, ran: Changes | None) -> list[Refusal]:
        """Why the new code of ``name``, which ran, cannot stay (an empty list: it can)."""
        patches = ran.live_patches if ran is not None else []
        found = [each for report, _ in patches for each in report.refused]
        self.hooks.run(self.hooks.checks, name, "refusal check")
        found.extend(self._declared.pop(name, ()))
        return found

    def back_to_the_code_that_runs(self, name: str) -> bool:
        """The file of ``name``, whose last edit failed or was refused, holds the code that
        runs again: it is fine again (logged).  False when it was fine already."""
        if name not in self.failing and name not in self.refused:
            return False
        if name in self._failed_to_follow or name in self._refused_following:
            return False  # its file never held another code: a change it imports failed it
        self.failing.discard(name)
        self.refused.discard(name)
        self._blamed.pop(name, None)
        log.info("%s recovered (its file is back to the code that runs)", name)
        return True

    def _refuse(self, name: str, refused: RefusedEdit, filename: str, source: bytes) -> None:
        refused.refusals[:] = locate(refused.refusals, filename, source)
        refused.args = ("; ".join(str(refusal) for refusal in refused.refusals),)
        # The edit ran and was fine, but cannot stay: no failure stands any more (no
        # "recovered" either: its new code does not run).
        self.failing.discard(name)
        self._failed_to_follow.pop(name, None)
        self._blamed.pop(name, None)
        self.refused.add(name)
        if source == self.sources.ran(name):
            # Its own file holds the code that runs: a change it follows was refused.
            self._refused_following.add(name)
        else:
            self._refused_following.discard(name)
        self._result.refused.extend(refused.refusals)
        # The handlers put back what the run changed outside the module (routes).
        self.hooks.report_error(name, refused)
        for refusal in refused.refusals:
            log.warning("%s", refusal)

    def end_running(self) -> bool:
        """The program ends: a module's new code that runs now stops (see Watchdog.end_run);
        whether one ran."""
        return self._watchdog.end_run()

    def _fail(self, name: str, exc: BaseException) -> None:
        if isinstance(exc, Ended):
            # Stopped as the program ends: it left nothing, and nothing is to be said.
            self._result.failed[name] = exc
            log.debug("%s: its reload stopped, the program ends", name)
            return
        self._result.failed[name] = exc
        self.failing.add(name)
        before = self._blamed.get(name)
        blame = self._blamed[name] = _Blame.of(exc)
        # The handlers first: an integration's undo (a route table put back)
        # belongs to the reload, before the line that lets the program run on
        # (writing it may hand the interpreter to another thread).
        self.hooks.report_error(name, exc)
        if name in self._again and before is not None and before.message == blame.message:
            # Tried again after a module it needs was reloaded: the error was shown.
            log.warning(
                "%s still fails (%s): %s; the old code keeps running",
                name,
                location_of(exc),
                blame.message,
            )
            return
        log.error(
            "failed to reload %s (%s): %s; the old code keeps running\n%s",
            name,
            location_of(exc),
            blame.message,
            user_traceback(exc),
        )
