"""The pure-Python core: the reference implementation of the hot paths.

``src/_hmr_core.pyx`` is its compiled twin.  Behaviour changes land here first,
with a test; the twin follows with the same public names, signatures,
exceptions and iteration order (``tests/test_core_parity.py`` checks it).

Two classes live here:

* :class:`DependencyGraph` - which project module imported which, and which
  names each importer bound with ``from X import name``;
* :class:`ImportTracker` - the replacement for ``builtins.__import__`` and
  ``importlib.import_module`` that feeds the graph.

Both trackers answer "is this new importer project code?" from the
classifier's own tables (``ProjectFilter.verdicts``) when its loader's read
recorded it already (``ImportTracker._classify_module``).  One deliberate
difference: for a file not recorded yet, the compiled one takes the ``lstat``
itself, without a Python call; here the classifier is asked, which does the
same.  The answers are the same, only the cost differs.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from itertools import compress, repeat
from operator import eq, itemgetter, not_
from types import CodeType, ModuleType, TracebackType
from typing import TYPE_CHECKING, cast

from .capture import READ_FLAGS, READ_TRIES, read_open, read_whole

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec, SourceFileLoader

__all__ = [
    "OP_EXTENDED",
    "OP_IMPORT",
    "OP_LOADS",
    "OP_LOAD_NAME",
    "OP_MAKES",
    "OP_PUSH_NULL",
    "OP_SHIFT",
    "WAITS_WITHOUT_GIL",
    "DependencyGraph",
    "GcGate",
    "ImportTracker",
    "add_open_audit_hook",
    "all_names",
    "called_names",
    "capture_sources",
    "loaded_names",
    "resolve_relative",
    "scan_module",
    "wait_for_quiet",
]

#: ``classify(name, module) -> bool``: is this module project code?
Classifier = Callable[[str, Mapping[str, object]], bool]

#: What :meth:`DependencyGraph.clear_dependencies` returns: (imported modules,
#: {imported module: names bound from it}).
Dependencies = tuple[list[str], dict[str, list[str]]]

#: A module's globals as the import hook receives them.
Globals = Mapping[str, object]

#: An import seen and not recorded yet: (importer, its package for a
#: relative import, name, fromlist, level, the imported module's name).
# One waiting import statement: importer, package, name, fromlist, level, target,
# side by side in the graph's flat list of them (see DependencyGraph._pending).
_FIELDS = 6
# The fromlists a waiting statement holds that are none or names (see ImportTracker._wait).
_PLAIN_FROMLISTS = frozenset((str, type(None)))

# What the import-statement cache holds for an importer that is not project
# code.  A distinct object, so one dict lookup answers "unknown, untracked or
# tracked".
_UNTRACKED: dict[str, object] = {}
# The record shared by every project module that has remembered no statement yet
# (its top-level ones are not remembered: see ImportTracker._defer), replaced by a
# dict of its own at its first: a dict per module, kept for the whole run, would
# count towards the garbage collector's next collection at each import.  Never
# written to.
_NONE_YET: dict[str, object] = {}
_MISSING = object()
# The files a module's code comes from that the classifier's tables know (project.py's).
_SOURCE_SUFFIXES = (".py", ".pyw")
# The first item of a module's record of several statements importing one name:
# ``(_MANY, level, fromlist, level, fromlist, ...)``.  One flat tuple, not a list of
# pairs: one object made per statement, and the garbage collector stops tracking a
# tuple of strings, ints and tuples of them after its first look (a list it walks in
# every collection while the imports go on).
_MANY = "\0several statements"
# Waiting statements past which the importing thread records them itself: a
# program that never rests and runs an import statement in a loop at a module's
# top level (not remembered, see ImportTracker._defer) keeps the list bounded.
_PENDING_LIMIT = 65536 * _FIELDS


def _no_submodules(name: str, fromlist: object, module: ModuleType) -> bool:
    """Can an import statement of ``name`` that returned ``module`` (a module of no
    project) have imported no other module: nothing for the graph to record?

    ``import a.b`` may import a project's ``a.b`` under a package of another
    (a namespace package), and ``from pkg import sub`` a submodule: only a
    plain ``import name`` and a ``from`` import of a module that is no package
    are left out.
    """
    if not fromlist:
        return "." not in name
    namespace = getattr(module, "__dict__", None)
    return type(namespace) is dict and "__path__" not in namespace


def _leave_out_this_frame(error: BaseException) -> None:
    """Take the hook's own frame out of the traceback of ``error``, which an import it
    passes on raised: a traceback the program prints (``traceback.print_exc()``, a
    framework's error page) shows the import statement, then the imported module's
    line, as under ``python``.  Its first entry is the frame that caught it; a bare
    ``raise`` passes it on with no entry of its own (3.11 and later: on 3.10 the
    interpreter re-raises what it caught, the frame stays)."""
    tb = error.__traceback__
    if tb is not None and tb.tb_frame is sys._getframe(1):
        error.__traceback__ = tb.tb_next
    if isinstance(error, SyntaxError):
        _leave_out_the_loader(error, globals())


# The import system's own frames (``importlib._bootstrap``, ``_bootstrap_external``).
_IMPORTLIB = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


def _leave_out_the_loader(error: SyntaxError, own: dict[str, object]) -> None:
    """Take the import system's frames (and the capture's, whose frames have the globals
    ``own``) out of the end of the traceback of ``error``, a module's source that did
    not compile: the capture compiles it, where the loader's compile is called so that
    the interpreter leaves them out (``_call_with_frames_removed``).  The traceback a
    program prints is then python's: the import statement, then the error's line."""
    link: TracebackType | None = None  # the last entry that stays
    # (An ``importlib.import_module`` call: python shows the import system's frames there.)
    tb = error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "_gcd_import" and code.co_filename in _IMPORTLIB:
            return
        if code.co_filename not in _IMPORTLIB and tb.tb_frame.f_globals is not own:
            link = tb
        tb = tb.tb_next
    if link is None:
        error.__traceback__ = None
    else:
        link.tb_next = None


def _several(found: object) -> bool:
    """Is this record of a name several statements (see _MANY), not one fromlist?"""
    return type(found) is tuple and len(found) > 1 and found[0] is _MANY


def resolve_relative(name: str, package: str | None, level: int) -> str:
    """Resolve ``from .name import ...`` issued by ``package`` at ``level``."""
    if not package:
        raise ImportError("attempted relative import with no known parent package")
    bits = package.rsplit(".", level - 1)
    if len(bits) < level:
        raise ImportError("attempted relative import beyond top-level package")
    base = bits[0]
    return f"{base}.{name}" if name else base


# What a module's loader opens: no data file.
_MODULE_FILES = (".py", ".pyc")


class GcGate:
    """The collector's callback that makes a collection due in a thread of ours look at
    nothing (see :func:`muckrack_hmr.collector.ours`): as it starts in one of the
    ``ours`` threads, and nothing but what the interpreter froze itself
    (``interpreter_froze``) is frozen, everything is frozen (``freeze``); as it stops,
    thawed again (``unfreeze``).

    The compiled twin runs no Python code: CPython 3.11's conversion of a parse into
    ``ast`` objects keeps its depth in state shared by the threads, and Python code run
    by a collection in the middle of one (which allocates) lets another thread in, whose
    parse makes the first fail with ``SystemError: AST constructor recursion depth
    mismatch``.  So this one is not installed on 3.11 (see the collector).
    """

    __slots__ = (
        "freeze",
        "frozen_count",
        "held",
        "interpreter_froze",
        "ours",
        "skipping",
        "unfreeze",
    )

    def __init__(
        self,
        ours: set[int],
        freeze: Callable[[], None],
        unfreeze: Callable[[], None],
        frozen_count: Callable[[], int],
        interpreter_froze: int,
    ) -> None:
        self.ours = ours
        self.freeze = freeze
        self.unfreeze = unfreeze
        self.frozen_count = frozen_count
        self.interpreter_froze = interpreter_froze
        self.skipping = False
        #: Everything old is frozen (collector.hold) until the thaw: what is new is
        #: frozen with it (the count below would walk all of it, and thawing would
        #: undo the hold), and the program's garbage among it waits for the thaw.
        self.held = False

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            if threading.get_ident() not in self.ours:
                return  # (first: the count below walks what is frozen, 12,000 objects and more)
            if self.held:
                self.freeze()
                return
            frozen = self.frozen_count()
            # (A thaw thaws what the interpreter froze too: the start-up's, the program's.)
            self.interpreter_froze = min(self.interpreter_froze, frozen)
            if frozen == self.interpreter_froze:
                self.freeze()
                self.skipping = True
        elif self.skipping:
            self.skipping = False
            self.unfreeze()
            self.interpreter_froze = 0  # (thawed with the rest)


def add_open_audit_hook(listener: Callable[[tuple[object, ...]], object]) -> None:
    """Call ``listener(args)`` for each ``open`` audit event of the process (PEP 578),
    but those of a path ending in ``.py`` or ``.pyc`` (the import system's).

    For the process's life: an audit hook cannot be removed.  What
    ``listener`` raises is the event's (the ``open`` fails with it).  The
    compiled twin's hook is C: the process's other events (tens of
    thousands at a big app's start-up: every ``exec``, ``compile`` and
    ``import``) cost it a string comparison, where this one is a call.
    """

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event != "open":
            return
        path = args[0] if args else None
        if type(path) is str and path.endswith(_MODULE_FILES):
            return
        listener(args)

    sys.addaudithook(hook)


#: ``sink(name, source, (mtime_ns, size), real_path)``: a project module's source,
#: taken by its loader before its code runs (``real_path`` when the open showed it is
#: no symlink).
SourceSink = Callable[[str, bytes, tuple[int, int], "str | None"], object]
#: ``listener(code, cached)``: a project module's code, as its loader made it, and the
#: bytes of the bytecode cache it made it of (None: it compiled the source).
CodeListener = Callable[[CodeType, "bytes | None"], object]

#: ``SourceFileLoader``'s three steps that :func:`capture_sources` replaces.
GetCode = Callable[["SourceFileLoader", str], "CodeType | None"]
PathStats = Callable[["SourceFileLoader", str], Mapping[str, object]]
GetData = Callable[["SourceFileLoader", str], bytes]

# Opening a module's source without following a link tells, for free, that the
# file is not a symlink: the classifier then needs no lstat of its own.
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)


class _Reading:
    """The source of one module being loaded, handed to the loader's own steps.

    ``unlinked`` is true when the file was opened without following a
    symlink: it is a plain file, and its figures are its own.
    """

    __slots__ = ("cached", "path", "source", "stat", "unlinked")

    def __init__(self, path: str) -> None:
        self.path = path
        self.unlinked = False
        # The bytecode cache the loader read for it (None once it read the source instead).
        self.cached: bytes | None = None
        descriptor = -1
        if _NO_FOLLOW:
            try:
                descriptor = os.open(path, READ_FLAGS | _NO_FOLLOW)
                self.unlinked = True
            except OSError:
                pass  # a symlink (ELOOP), or an error the plain open reports
        if descriptor < 0:
            descriptor = os.open(path, READ_FLAGS)
        self.source, self.stat, _ = read_open(descriptor, READ_TRIES)


def capture_sources(
    project_path: Callable[[str], str | None],
    sink: SourceSink,
    listeners: list[CodeListener],
    failed: Callable[[str, str], object],
    *,
    get_code: GetCode,
    path_stats: PathStats,
    get_data: GetData,
) -> tuple[GetCode, PathStats, GetData]:
    """``SourceFileLoader``'s ``get_code``, ``path_stats`` and ``get_data`` for keeping
    the exact bytes each project module runs (see :mod:`muckrack_hmr.capture`).

    Given the loader's own three, returns their replacements.  A project
    module's file (``project_path`` of its path is not None) is read once;
    the loader checks its bytecode cache against the figures of those bytes
    and compiles exactly them; ``sink`` then gets them, and each of
    ``listeners`` the code (see CodeListener).  What ``sink`` or a listener raises is never the
    import's: ``failed(message, name)`` is called in its ``except`` block.
    The compiled twin's are C functions that read with plain system calls.
    """
    local = threading.local()

    def current() -> _Reading | None:
        stack: list[_Reading] | None = getattr(local, "stack", None)
        return stack[-1] if stack else None

    def captured_get_code(loader: SourceFileLoader, fullname: str) -> CodeType | None:
        path = getattr(loader, "path", None)
        real = project_path(path) if isinstance(path, str) else None
        if real is None or not isinstance(path, str):
            return get_code(loader, fullname)
        try:
            reading = _Reading(path)
        except OSError:
            return get_code(loader, fullname)
        stack = local.__dict__.setdefault("stack", [])
        stack.append(reading)
        try:
            code = get_code(loader, fullname)
        finally:
            stack.pop()
        stat = reading.stat
        try:
            # Plain values, no object of ours: thousands of modules are
            # imported at start-up, and each tracked object kept costs the
            # garbage collector's passes until the program ends.
            figures = (stat.st_mtime_ns, stat.st_size)
            sink(fullname, reading.source, figures, real if reading.unlinked else None)
        except Exception:
            # Never the program's import: without its source, the module's
            # first reload runs it whole.
            failed("could not keep the source of %s", fullname)
        for listener in listeners:
            if code is None:  # typeshed allows it; a source file always has code
                break
            try:
                listener(code, reading.cached)
            except Exception:
                failed("a listener failed on the code of %s", fullname)
        return code

    def captured_path_stats(loader: SourceFileLoader, path: str) -> Mapping[str, object]:
        reading = current()
        if reading is None or reading.path != path:
            return path_stats(loader, path)
        return {"mtime": reading.stat.st_mtime, "size": reading.stat.st_size}

    def captured_get_data(loader: SourceFileLoader, path: str) -> bytes:
        reading = current()
        if reading is None:
            return get_data(loader, path)
        if reading.path == path:
            reading.cached = None  # the cache did not do: the loader compiles the source
            return reading.source
        # The bytecode cache of the module being read.
        reading.cached = read_whole(path)
        return reading.cached

    return captured_get_code, captured_path_stats, captured_get_data


#: Does :func:`wait_for_quiet` look at the program without holding the GIL?  Not
#: here: each look takes the interpreter from the program's threads, so the
#: watcher does not have it look while the program starts (see watch.idle.Activity).
WAITS_WITHOUT_GIL = False


def wait_for_quiet(longest: float, look: float, share: float, needed: float) -> bool:
    """Wait until the process's other threads have used less than ``share`` of a core
    for ``needed`` seconds in a row, looking every ``look`` seconds (True), or for
    ``longest`` seconds at most (False).

    Their use is the process's CPU time less the calling thread's, against the
    wall clock (see watch.idle.Activity).  The compiled twin sleeps and looks
    without the GIL.
    """
    started = last_wall = time.monotonic()
    last_process, last_ours = time.process_time(), time.thread_time()
    quiet_for = 0.0
    while True:
        remaining = started + longest - last_wall
        if remaining <= 0:
            return False
        time.sleep(min(look, remaining))
        wall, process, ours = time.monotonic(), time.process_time(), time.thread_time()
        elapsed = wall - last_wall
        others = (process - last_process) - (ours - last_ours)
        last_wall, last_process, last_ours = wall, process, ours
        if elapsed > 0 and others < share * elapsed:
            quiet_for += elapsed
            if quiet_for >= needed:
                return True
        else:
            quiet_for = 0.0


# The table scan_module reads a Python's bytecode with: a byte for each opcode, of
# these flags and (in OP_SHIFT) how far its argument is shifted to index
# ``co_names``.  Learned from ``dis`` by reload.reach, which builds it.
#: the opcode loads a name, a global or an attribute (or imports, with OP_IMPORT)
OP_LOADS = 0x04
#: the opcode imports (IMPORT_NAME, IMPORT_FROM)
OP_IMPORT = 0x08
#: the opcode makes a function or a class (what a decorator is applied to next)
OP_MAKES = 0x10
#: PUSH_NULL: what the interpreter pushes beside a callable it calls
OP_PUSH_NULL = 0x20
#: LOAD_NAME (a name at a module's or a class body's level)
OP_LOAD_NAME = 0x40
#: EXTENDED_ARG
OP_EXTENDED = 0x80
#: the bits of the shift of a loading opcode's argument
OP_SHIFT = 0x03
# A code object of a function (or a comprehension, a lambda); a class body's has not.
_CO_OPTIMIZED = 0x1


def loaded_names(code: CodeType, table: bytes, imports: bool) -> set[str]:
    """The names ``code`` loads (a global, a name, an attribute), and with ``imports``
    the ones it imports: not those it only stores (``def f`` at a module's top level
    stores ``f`` and calls nothing).  ``table``: see OP_LOADS.  (Found here by
    searching the opcodes for each loading one: faster in Python than decoding
    each instruction, as the compiled twin does.)"""
    if type(code) is not CodeType:
        raise TypeError("loaded_names reads a code object")
    raw = code.co_code
    ops, args, names = raw[0::2], raw[1::2], code.co_names
    found: set[str] = set()
    opcodes = _opcodes(table)
    extended = opcodes.extended_in(ops)
    add, find = found.add, ops.find
    for op, shift, imported in opcodes.loads:
        if imported and not imports:
            continue
        at = find(op)
        while at >= 0:
            add(names[(_arg(ops, args, at, table) if extended else args[at]) >> shift])
            at = find(op, at + 1)
    return found


def called_names(code: CodeType, names: set[str], table: bytes, null_after: int) -> set[str]:
    """Which of ``names``, loaded by ``code`` at a module's (or a class body's) level, it
    may call: called by name (the interpreter pushes a NULL beside the callable, before
    it up to 3.12 and after it since: ``null_after`` 0 or 1), or applied as a
    decorator (a function or class made in the next five instructions).  Without
    that NULL (3.10: ``null_after`` -1), all of them."""
    if type(code) is not CodeType:
        raise TypeError("called_names reads a code object")
    if null_after < 0:
        return set(names)
    raw = code.co_code
    ops, args, table_names = raw[0::2], raw[1::2], code.co_names
    opcodes = _opcodes(table)
    load = opcodes.load_name
    extended = opcodes.extended_in(ops)
    found: set[str] = set()
    at = ops.find(load)
    while at >= 0:
        name = table_names[_arg(ops, args, at, table) if extended else args[at]]
        if name in names and name not in found:
            beside = at + 1 if null_after else at - 1
            while not null_after and beside >= 0 and table[ops[beside]] & OP_EXTENDED:
                beside -= 1  # (the NULL comes before the prefixes of a name's index over 255)
            if 0 <= beside < len(ops) and table[ops[beside]] & OP_PUSH_NULL:
                found.add(name)
            elif any(table[op] & OP_MAKES for op in ops[at + 1 : at + 6]):
                found.add(name)  # ``@name`` (stacked decorators come one after another)
        at = ops.find(load, at + 1)
    return found


class _Opcodes:
    """A table's opcodes, as the searches above use them."""

    def __init__(self, table: bytes) -> None:
        #: (opcode, shift, imports?) of each opcode that loads a name
        self.loads = [
            (op, flags & OP_SHIFT, bool(flags & OP_IMPORT))
            for op, flags in enumerate(table)
            if flags & OP_LOADS
        ]
        self.load_name = next((op for op, flags in enumerate(table) if flags & OP_LOAD_NAME), -1)
        #: EXTENDED_ARG (-1: none in the table)
        self.extended = next((op for op, flags in enumerate(table) if flags & OP_EXTENDED), -1)

    def extended_in(self, ops: bytes) -> bool:
        """Do these opcodes hold an EXTENDED_ARG?  Most code has none: then each
        instruction's argument is the byte after its opcode (no _arg needed)."""
        return self.extended >= 0 and ops.find(self.extended) >= 0


_OPCODES: dict[bytes, _Opcodes] = {}


def _opcodes(table: bytes) -> _Opcodes:
    found = _OPCODES.get(table)
    if found is None:
        found = _OPCODES[table] = _Opcodes(table)
    return found


def _arg(ops: bytes, args: bytes, at: int, table: bytes) -> int:
    """The argument of the instruction at ``at``, with its EXTENDED_ARG prefixes."""
    arg, before, scale = args[at], at - 1, 8
    while before >= 0 and table[ops[before]] & OP_EXTENDED:
        arg |= args[before] << scale
        before, scale = before - 1, scale + 8
    return arg


def all_names(code: CodeType, into: set[str]) -> None:
    """Every name ``code`` and the code objects it holds hold, into ``into``."""
    if type(code) is not CodeType:
        raise TypeError("all_names reads a code object")
    _all_names(code, into)


def _all_names(code: CodeType, into: set[str]) -> None:
    into.update(code.co_names)
    for const in code.co_consts:
        if type(const) is CodeType:
            _all_names(const, into)


def scan_module(
    code: CodeType, table: bytes, null_after: int
) -> tuple[tuple[str, ...], tuple[str | CodeType, ...]]:
    """The names a module's code loads at its level (its class bodies', comprehensions'
    and lambdas' too), and the code of each function it defines after the name it
    defines, flat (``name, code, name, code``): what reload.reach indexes.

    Taken as the module is imported, and kept until the index takes it in: in tuples,
    which the garbage collector stops looking at once it has seen them, where a set
    or a dict for every module imported would be looked at again and again (and the
    module's code object kept, all the tuples it holds).

    A function of the module only read there (put in a table, ``ROUTES = {"/":
    index}``) is left out: only one called there (or applied as a decorator) runs.
    A top-level import calls nothing of the module it imports: what it binds is
    loaded where it is used.  ``table`` and ``null_after``: see OP_LOADS and
    called_names.
    """
    if type(code) is not CodeType:
        raise TypeError("scan_module reads a code object")
    defs = _defined_here(code)
    at_import: set[str] = set()
    bodies: list[str | CodeType] = []
    _level(code, at_import, defs, bodies, table=table, null_after=null_after)
    return tuple(at_import), tuple(bodies)


def _level(
    code: CodeType,
    at_import: set[str],
    defs: set[str],
    bodies: list[str | CodeType] | None,
    *,
    table: bytes,
    null_after: int,
) -> None:
    """The module's level, or (no ``bodies``) a class body's, which runs now too: its
    methods are left out (an instance made at import time is kept when a method
    changes, see reload.kept_classes; a class named there, a base say, calls none),
    but for one the class body calls itself (``v = _make()``, run as it is defined)."""
    loaded = loaded_names(code, table, False)
    own = set() if bodies is not None else _defined_here(code)
    read = loaded & (defs | own)
    called = called_names(code, read, table, null_after) if read else read
    loaded -= read - called
    at_import |= loaded
    for const in code.co_consts:
        if type(const) is not CodeType:
            continue
        if not const.co_flags & _CO_OPTIMIZED:
            _level(const, at_import, defs, None, table=table, null_after=null_after)
        elif const.co_name.startswith("<"):
            _all_names(const, at_import)  # a comprehension runs now (a lambda may)
        elif bodies is not None:
            bodies += (const.co_name, const)
        elif const.co_name in called:
            _all_names(const, at_import)


def _defined_here(code: CodeType) -> set[str]:
    """The functions ``code`` defines (not its lambdas or comprehensions)."""
    return {
        const.co_name
        for const in code.co_consts
        if type(const) is CodeType
        and const.co_flags & _CO_OPTIMIZED
        and not const.co_name.startswith("<")
    }


def _package_of(globals: Globals) -> str | None:
    package = globals.get("__package__")
    if package is None:
        spec = globals.get("__spec__")
        if spec is not None:
            package = cast("ModuleSpec", spec).parent
        else:
            name = globals.get("__name__")
            if not isinstance(name, str):
                return None
            package = name if "__path__" in globals else name.rpartition(".")[0]
    return package if isinstance(package, str) else None


def _spelling(joined: str, part: str) -> list[int]:
    """The indices of the lines of ``joined`` (texts joined by newlines) that hold
    ``part`` (no newline): one search, in C, and a count of the lines between two
    finds."""
    found: list[int] = []
    index = line = 0  # the line that starts at ``line`` is the index-th
    at = joined.find(part)
    while at >= 0:
        index += joined.count("\n", line, at)
        found.append(index)
        end = joined.find("\n", at + len(part))
        if end < 0:
            break
        index += 1
        line = end + 1
        at = joined.find(part, line)
    return found


class DependencyGraph:
    """Import edges between project modules, importer -> imported.

    Nodes are module names.  Every query answers in a deterministic order:
    the order in which modules and edges were first recorded.
    """

    __slots__ = (
        "_bindings",
        "_bound_counts",
        "_ids",
        "_in",
        "_names",
        "_out",
        "_pending",
        "_record_pending",
        "_version",
        "_waiting_modules",
    )

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._names: list[str] = []
        # Adjacency lists, not sets or dicts: the graph is kept for the whole
        # run, and a list of shared ints is several times smaller.  Membership
        # is checked only in a module's own (short) list of imports.
        self._out: list[list[int]] = []
        self._in: list[list[int]] = []
        # importer -> [imported, name, imported, name, ...] for each
        # ``from imported import name`` it ran, flat for the same reason.
        self._bindings: dict[str, list[str]] = {}
        # imported -> {name: how many importers bound it}, kept up to date as
        # bindings come and go: a change of names nobody bound costs a few
        # lookups, not a look at every importer (also right after start-up).
        self._bound_counts: dict[str, dict[str, int]] = {}
        self._version = 0
        # Imports seen but not recorded yet (see ImportTracker._defer): the
        # tracker's ``apply_pending`` records them before anything reads the
        # graph, so start-up pays a list extend per import statement.  Flat,
        # _FIELDS items a statement, not a tuple each: tens of thousands of
        # tuples alive at once would each count towards the garbage
        # collector's next collection while the program imports.
        self._pending: list[object] = []
        # Modules classified as project code and not yet nodes: a node is two
        # lists (its edges either way) that the garbage collector would walk
        # in every collection of a start-up, 10,000 of them at 5,000 modules,
        # while they would stay empty until the imports are recorded.  Made,
        # in order, when the graph is first read (with the imports).
        self._waiting_modules: list[str] = []
        self._record_pending: Callable[[], int] | None = None

    def _settle(self) -> None:
        """Record the imports still pending, before the graph is read or edited."""
        if (self._pending or self._waiting_modules) and self._record_pending is not None:
            self._record_pending()

    @property
    def pending(self) -> int:
        """How many import statements wait to be recorded (see ImportTracker.apply_pending)."""
        return len(self._pending) // _FIELDS

    @property
    def version(self) -> int:
        """Grows whenever a module or an edge is added or removed (not bindings):
        what was derived from the graph is stale when it changed."""
        self._settle()
        return self._version

    def _node(self, name: str) -> int:
        node = self._ids.get(name)
        if node is None:
            self._version += 1
            node = len(self._names)
            self._ids[name] = node
            self._names.append(name)
            self._out.append([])
            self._in.append([])
        return node

    def __len__(self) -> int:
        self._settle()
        return len(self._ids)

    def __contains__(self, name: object) -> bool:
        self._settle()
        return name in self._ids

    def modules(self) -> list[str]:
        """Every module in the graph, in the order it was first seen."""
        self._settle()
        return list(self._ids)

    def add_module(self, name: str) -> None:
        """Add ``name`` as a node with no edges (no-op if present)."""
        self._node(name)

    def add_edge(self, importer: str, imported: str) -> bool:
        """Record that ``importer`` imports ``imported``; True if the edge is new."""
        if importer == imported:
            return False
        source = self._node(importer)
        target = self._node(imported)
        out, into = self._out[source], self._in[target]
        # An edge is in both lists: look in the shorter (``main`` imports
        # hundreds of modules, hundreds import the core one).
        if (target in out) if len(out) <= len(into) else (source in into):
            return False
        out.append(target)
        into.append(source)
        self._version += 1
        return True

    def add_binding(self, importer: str, imported: str, name: str) -> None:
        """Record that ``importer`` ran ``from imported import name``."""
        # Interned: module names recur in every importer's list, and lookups
        # compare by identity first.
        imported, name = sys.intern(imported), sys.intern(name)
        flat = self._bindings.get(importer)
        if flat is None:
            self._bindings[importer] = [imported, name]
        else:
            for index in range(0, len(flat), 2):
                if flat[index + 1] == name and flat[index] == imported:
                    return
            flat.append(imported)
            flat.append(name)
        counts = self._bound_counts.setdefault(imported, {})
        counts[name] = counts.get(name, 0) + 1

    def _unbind(self, flat: list[str]) -> None:
        """The bindings ``flat`` (an importer's) are gone: count them out."""
        for index in range(0, len(flat), 2):
            counts = self._bound_counts.get(flat[index])
            if counts is None:
                continue
            name = flat[index + 1]
            left = counts.get(name, 0) - 1
            if left > 0:
                counts[name] = left
            else:
                counts.pop(name, None)
                if not counts:
                    del self._bound_counts[flat[index]]

    def bound_names(self, importer: str, imported: str) -> list[str]:
        """Names that ``importer`` bound with ``from imported import ...``."""
        self._settle()
        flat = self._bindings.get(importer, ())
        return [flat[index + 1] for index in range(0, len(flat), 2) if flat[index] == imported]

    def binders(self, imported: str, names: Iterable[str], *, settle: bool = True) -> list[str]:
        """Direct importers of ``imported`` that bound one of ``names`` (or ``*``) from it.

        In dependents order: the importers whose ``from imported import ...``
        bindings a change of those names concerns.  ``settle=False``: from the
        imports recorded so far (see ImportTracker.apply_pending_of).
        """
        if settle:
            self._settle()
        node = self._ids.get(imported)
        if node is None:
            return []
        counts = self._bound_counts.get(imported)
        if counts is None:
            return []
        wanted = set(names)
        wanted.add("*")
        if counts.keys().isdisjoint(wanted):
            return []
        found = []
        names_list = self._names
        bindings = self._bindings
        for source in self._in[node]:
            importer = names_list[source]
            flat = bindings.get(importer)
            if flat is None:
                continue
            for index in range(0, len(flat), 2):
                if flat[index] == imported and flat[index + 1] in wanted:
                    found.append(importer)
                    break
        return found

    def clear_dependencies(self, importer: str) -> Dependencies:
        """Drop the outgoing edges and bindings of ``importer``; return them."""
        self._settle()
        node = self._ids.get(importer)
        if node is None:
            return [], {}
        names = self._names
        out = self._out[node]
        previous = [names[target] for target in out]
        if out:
            self._version += 1
        for target in out:
            self._in[target].remove(node)
        out.clear()
        bindings: dict[str, list[str]] = {}
        flat = self._bindings.pop(importer, [])
        self._unbind(flat)
        for index in range(0, len(flat), 2):
            bindings.setdefault(flat[index], []).append(flat[index + 1])
        return previous, bindings

    def restore_dependencies(self, importer: str, saved: Dependencies) -> None:
        """Put back exactly what :meth:`clear_dependencies` returned."""
        self._settle()
        self.clear_dependencies(importer)
        edges, bindings = saved
        self._node(importer)
        for imported in edges:
            self.add_edge(importer, imported)
        for imported, bound in bindings.items():
            for name in bound:
                self.add_binding(importer, imported, name)

    def remove_module(self, name: str) -> None:
        """Forget ``name`` and every edge that touches it."""
        self._settle()
        node = self._ids.pop(name, None)
        if node is None:
            return
        self._version += 1
        for target in self._out[node]:
            self._in[target].remove(node)
        for source in self._in[node]:
            self._out[source].remove(node)
        self._out[node] = []
        self._in[node] = []
        self._unbind(self._bindings.pop(name, []))
        self._bound_counts.pop(name, None)
        for importer, flat in list(self._bindings.items()):
            if name in flat:
                kept = [
                    item
                    for index in range(0, len(flat), 2)
                    if flat[index] != name
                    for item in flat[index : index + 2]
                ]
                if kept:
                    self._bindings[importer] = kept
                else:
                    del self._bindings[importer]

    def dependencies_of(self, name: str, *, settle: bool = True) -> list[str]:
        """Modules that ``name`` imports directly (``settle``: see :meth:`binders`)."""
        if settle:
            self._settle()
        node = self._ids.get(name)
        if node is None:
            return []
        names = self._names
        return [names[target] for target in self._out[node]]

    def dependents_of(self, name: str, *, settle: bool = True) -> list[str]:
        """Modules that import ``name`` directly (``settle``: see :meth:`binders`)."""
        if settle:
            self._settle()
        node = self._ids.get(name)
        if node is None:
            return []
        names = self._names
        return [names[source] for source in self._in[node]]

    def _reach(self, starts: Iterable[str], edges: list[list[int]]) -> list[str]:
        seen: set[int] = set()
        queue: list[int] = []
        for name in starts:
            node = self._ids.get(name)
            if node is not None and node not in seen:
                seen.add(node)
                queue.append(node)
        start_count = len(queue)
        index = 0
        while index < len(queue):
            for nxt in edges[queue[index]]:
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
            index += 1
        names = self._names
        return [names[node] for node in queue[start_count:]]

    def transitive_dependencies(self, name: str) -> list[str]:
        """Everything ``name`` imports, directly or not (breadth-first)."""
        self._settle()
        return self._reach((name,), self._out)

    def transitive_dependents(self, names: Iterable[str]) -> list[str]:
        """Everything that imports one of ``names``, directly or not.

        Breadth-first; the starting modules themselves are never included.
        """
        self._settle()
        return self._reach(names, self._in)

    def topological_order(self, names: Iterable[str]) -> list[list[str]]:
        """Order ``names`` so that dependencies come before their dependents.

        Only edges between members of ``names`` count.  Each import cycle is
        collapsed into one group; a module outside any cycle is a group of
        one.  Members of a group are in first-seen order.  Unknown names are
        placed first, each alone.
        """
        self._settle()
        ids = self._ids
        members: dict[int, None] = {}
        unknown: list[list[str]] = []
        for name in names:
            node = ids.get(name)
            if node is None:
                unknown.append([name])
            else:
                members[node] = None
        # Iterative Tarjan: an SCC is emitted once everything it imports has
        # been, which is exactly "dependencies first".
        out = self._out
        index_of: dict[int, int] = {}
        lowlink: dict[int, int] = {}
        on_stack: set[int] = set()
        stack: list[int] = []
        groups: list[list[str]] = unknown
        names_list = self._names
        counter = 0
        for root in sorted(members):
            if root in index_of:
                continue
            work: list[tuple[int, list[int], int]] = []
            index_of[root] = lowlink[root] = counter
            counter += 1
            stack.append(root)
            on_stack.add(root)
            work.append((root, [t for t in out[root] if t in members], 0))
            while work:
                node, succ, pos = work[-1]
                if pos < len(succ):
                    work[-1] = (node, succ, pos + 1)
                    nxt = succ[pos]
                    if nxt not in index_of:
                        index_of[nxt] = lowlink[nxt] = counter
                        counter += 1
                        stack.append(nxt)
                        on_stack.add(nxt)
                        work.append((nxt, [t for t in out[nxt] if t in members], 0))
                    elif nxt in on_stack and index_of[nxt] < lowlink[node]:
                        lowlink[node] = index_of[nxt]
                    continue
                work.pop()
                if work:
                    parent = work[-1][0]
                    lowlink[parent] = min(lowlink[parent], lowlink[node])
                if lowlink[node] == index_of[node]:
                    component: list[int] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    component.sort()
                    groups.append([names_list[member] for member in component])
        return groups


class ImportTracker:
    """Stands in for ``builtins.__import__`` and ``importlib.import_module``.

    Every import still goes through the original function first; the tracker
    only records what happened.  A repeated import statement costs one call
    to the original plus three dict lookups: no lock, no allocation.
    """

    __slots__ = (
        "_classify",
        "_original_import",
        "_original_import_module",
        "_seen",
        "_tables",
        "graph",
        "lock",
    )

    def __init__(
        self,
        graph: DependencyGraph,
        classify: Classifier,
        original_import: Callable[..., ModuleType],
        original_import_module: Callable[..., ModuleType],
    ) -> None:
        self.graph = graph
        self._classify = classify
        self._original_import = original_import
        self._original_import_module = original_import_module
        #: importer -> {name: statements} for the import statements in its
        #: functions and class bodies already recorded (top-level ones are not:
        #: see _defer), _NONE_YET for a project module with none yet, or
        #: _UNTRACKED for a module that is not ours.  For the usual single
        #: ``import name`` / ``from name import ...`` at level 0, ``statements``
        #: is the fromlist itself (None or the code's constant tuple: nothing
        #: allocated); otherwise a flat ``(_MANY, level, fromlist, ...)`` tuple.
        self._seen: dict[str, dict[str, object]] = {}
        # The classifier's own tables, when it offers them (ProjectFilter.verdicts).
        verdicts = getattr(classify, "verdicts", None)
        self._tables: tuple[dict[str, str | None], Mapping[str, tuple[object, ...]]] | None = (
            verdicts() if verdicts is not None else None
        )
        self.lock = threading.RLock()
        graph._record_pending = self.apply_pending

    # -- the hot path ---------------------------------------------------------

    def import_(
        self,
        name: str,
        globals: Globals | None = None,
        locals: Globals | None = None,
        fromlist: Iterable[object] | None = (),
        level: int = 0,
    ) -> ModuleType:
        """The replacement for ``builtins.__import__``."""
        # pytest leaves this frame, which stands between an import statement
        # and the module imported, out of its tracebacks, as a plain run has
        # no such frame.  Only the hook's frames: the rest of the twin is
        # what a failing core test needs to show.  The compiled core, whose
        # frames have no locals, marks its whole module.
        __tracebackhide__ = True
        try:
            module = self._original_import(name, globals, locals, fromlist, level)
        except BaseException as error:
            _leave_out_this_frame(error)
            raise
        if globals is None:
            # An explicit ``__import__("x")``: credit the calling module.
            globals = sys._getframe(1).f_globals
        # What _statements_of says, without the call: this path runs for every
        # import statement of a start-up, and in the twin a Python call costs
        # about as much as the rest of it.
        try:
            seen = self._seen[globals["__name__"]]  # type: ignore[index]
        except (KeyError, TypeError):
            seen = self._classify_importer(globals)
        if seen is _UNTRACKED:
            return module
        if locals is not None and locals is globals:
            # A module's top level (its import, a reload's run): the statement runs
            # once, and is not remembered (see _defer).
            self._wait(globals, name, fromlist, level, module)
            return module
        found = seen.get(name, _MISSING)
        if found is not _MISSING:
            if _several(found):
                statements: tuple[object, ...] = found  # type: ignore[assignment]
                for at in range(1, len(statements), 2):
                    seen_fromlist = statements[at + 1]
                    if statements[at] == level and (
                        seen_fromlist is fromlist or seen_fromlist == fromlist
                    ):
                        return module
            elif level == 0 and (found is fromlist or found == fromlist):
                return module
        self._defer(globals, name, fromlist, level, module)
        return module

    def import_hook(self) -> Callable[..., ModuleType]:
        """The function to install as ``builtins.__import__``.

        It behaves as :meth:`import_`; here it is that bound method itself.
        """
        return self.import_

    def import_module_hook(self) -> Callable[..., ModuleType]:
        """The function to install as ``importlib.import_module``: :meth:`import_module`."""
        return self.import_module

    def import_module(self, name: str, package: str | None = None) -> ModuleType:
        """The replacement for ``importlib.import_module``."""
        __tracebackhide__ = True  # for pytest, as in import_
        try:
            module = self._original_import_module(name, package)
        except BaseException as error:
            _leave_out_this_frame(error)
            raise
        globals = sys._getframe(1).f_globals
        seen = self._statements_of(globals)
        if seen is _UNTRACKED:
            # The importer is not ours (a framework loading the user's app,
            # say), but the imported module may be: classify it now.
            self._is_tracked(getattr(module, "__name__", name))
            return module
        found = seen.get(name)
        if _several(found):
            statements = cast("tuple[object, ...]", found)
            for at in range(1, len(statements), 2):
                if statements[at] == -1 and statements[at + 1] == package:
                    return module
        self._defer(globals, name, package, -1, module)
        return module

    def _statements_of(self, globals: Globals) -> dict[str, object]:
        """The import statements already recorded for the module of ``globals``.

        _UNTRACKED if that module is not project code.
        """
        try:
            # Whatever a program put there: a name that is not a str raises
            # as a missing one does, and the slow path classifies it.
            return self._seen[globals["__name__"]]  # type: ignore[index]
        except (KeyError, TypeError):
            return self._classify_importer(globals)

    # -- the slow path: first time an importer runs a given statement --------

    def _classify_importer(self, globals: Globals) -> dict[str, object]:
        try:
            importer = globals["__name__"]
        except (KeyError, TypeError):
            return _UNTRACKED
        if not isinstance(importer, str):
            return _UNTRACKED
        with self.lock:
            seen = self._seen.get(importer)
            if seen is None:
                seen = _NONE_YET if self._classify_module(importer, globals) else _UNTRACKED
                self._seen[importer] = seen
                if seen is not _UNTRACKED:
                    # A node once something reads the graph (see DependencyGraph).
                    self.graph._waiting_modules.append(importer)
            return seen

    def _classify_module(self, importer: str, globals: Globals) -> bool:
        """What the classifier says of the module; from its tables when they tell.

        A module whose file its loader's read recorded (``ProjectFilter.note_read``)
        is project code, and one in a folder judged outside the project is not, as
        :meth:`ProjectFilter.__call__` would say; anything else goes to it.
        """
        tables = self._tables
        if tables is not None and type(globals) is dict:
            filename = globals.get("__file__")
            if type(filename) is str:
                slash = filename.rfind("/")
                if slash > 0 and filename.endswith(_SOURCE_SUFFIXES):
                    folders, loaded = tables
                    verdict = folders.get(filename[:slash], _MISSING)
                    if verdict is None:
                        return False
                    if verdict is not _MISSING:
                        found = loaded.get(cast("str", verdict) + filename[slash + 1 :])
                        if found is not None and found[0] == importer:
                            return True
        return bool(self._classify(importer, globals))

    def _is_tracked(self, name: str) -> bool:
        seen = self._seen.get(name)
        if seen is None:
            module = sys.modules.get(name)
            if module is None:
                return False
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict):
                return False
            seen = self._classify_importer(namespace)
        return seen is not _UNTRACKED

    def _defer(
        self, globals: Globals, name: str, fromlist: object, level: int, module: ModuleType
    ) -> None:
        """A statement's first run in a function: remember it, and leave the graph for later.

        Remembered for the fast path of the statement's next run.  A module's
        top-level statements run once: remembering them cost a lock and a
        record per statement at start-up, and kept their fromlists alive (see
        :meth:`_wait`); one that a top-level loop runs again is recorded
        again, which the graph takes once.  ``level`` -1 is an
        ``importlib.import_module(name, package)`` call.
        """
        with self.lock:
            self._remember_statement(globals["__name__"], name, level, fromlist)  # type: ignore[arg-type]
        self._wait(globals, name, fromlist, level, module)

    def _wait(
        self, globals: Globals, name: str, fromlist: object, level: int, module: ModuleType
    ) -> None:
        """Leave a statement's first run for the graph to record later.

        Working out the edges and bindings (names, classification, lists)
        costs several times the import statement itself, on every module's
        first run: at start-up.  It waits in the graph's pending list until
        something reads the graph (a reload, a query) or the program rests
        (the watcher's idle steps call :meth:`apply_pending`).
        """
        importer = globals["__name__"]  # classified: a str
        # The module imported is classified now, as it was first named: which
        # module owns a file that two names share is who was imported first.
        # (Most targets are classified already: the dict lookup here saves a call
        # per statement at start-up.)
        target = getattr(module, "__name__", None)
        if type(target) is not str:
            target = None
        else:
            seen = self._seen.get(target)
            if seen is None:
                self._is_tracked(target)
                seen = self._seen.get(target)
            if seen is _UNTRACKED and level == 0 and _no_submodules(name, fromlist, module):
                return  # ``import logging``, ``from dataclasses import field``: no edge
        # Strings and ints only: the garbage collector has nothing to look
        # into in thousands of waiting records.
        package = _package_of(globals) if level > 0 else None
        if type(fromlist) is tuple and fromlist:
            # One str for the names: the tuple is a constant of the module's
            # code, which dies once the module's top level has run, and a
            # reference kept to it until the statement is recorded would keep
            # it alive (one more allocation that counts towards the garbage
            # collector's next collection, times every ``from`` statement of a
            # start-up).  A str is no object the collector counts.
            try:
                fromlist = ",".join(fromlist)
            except TypeError:
                fromlist = tuple(fromlist)  # not only names: kept as it is
        # One extend: atomic, however many threads import at once.
        pending = self.graph._pending
        pending.extend((importer, package, name, fromlist, level, target))
        if len(pending) > _PENDING_LIMIT:
            self.apply_pending()

    def record_import(self, importer: str, name: str, fromlist: object = None) -> None:
        """Record that ``importer`` imported ``name`` (absolute) where the hook could not
        see it: an import that a lazy-imports filter (PEP 810) made eager, which
        CPython runs without ``builtins.__import__``."""
        if self._is_tracked(importer):
            self.graph._pending.extend((importer, None, name, fromlist, 0, None))

    def apply_pending(self, limit: int | None = None) -> int:
        """Record in the graph up to ``limit`` of the imports seen and not recorded yet
        (all with None), oldest first; how many."""
        queue = self.graph._pending
        applied = 0
        with self.lock:
            self._make_waiting_nodes()
            while queue and (limit is None or applied < limit):
                # Taken from the front: another thread may be appending.
                waiting = len(queue) // _FIELDS
                count = waiting if limit is None else min(waiting, limit - applied)
                pending = queue[: count * _FIELDS]
                del queue[: count * _FIELDS]
                self._apply(pending)
                applied += count
        return applied

    def apply_pending_of(self, wanted: Callable[[str], bool], names: Iterable[str]) -> int:
        """Record the waiting imports of the modules ``wanted`` says yes to (asked once
        a module), and each ``from ... import`` of one of ``names`` or of ``*``; how many.

        The others stay waiting, in their order.  A reload that needs only
        what concerns a few names reads the graph with ``settle=False`` after
        this, and does not wait for a whole start-up's imports to be recorded.
        """
        queue = self.graph._pending
        wanted_names = set(names)
        wanted_names.add("*")
        with self.lock:
            self._make_waiting_nodes()
            count = len(queue) // _FIELDS
            taken = queue[: count * _FIELDS]
            importers = cast("list[str]", taken[0::_FIELDS])
            yes = {importer for importer in set(importers) if wanted(importer)}
            numbers = range(count)
            # (In C, as pending_importers_of reads them: 28,000 statements wait at 5,000
            # modules, and a walk in Python cost a first edit 10 ms.)
            found = set(compress(numbers, map(yes.__contains__, importers))) if yes else set()
            fromlists = taken[3::_FIELDS]
            spelled = "\n".join(map(str, fromlists))  # (None: "None")
            for name in wanted_names:
                for at in _spelling(spelled, name):
                    fromlist = fromlists[at]
                    if type(fromlist) is str and not wanted_names.isdisjoint(fromlist.split(",")):
                        found.add(at)
            # A fromlist that is no str of names (kept as it came): looked at when recorded.
            plain = map(_PLAIN_FROMLISTS.__contains__, map(type, fromlists))
            found.update(compress(numbers, map(not_, plain)))
            chosen = sorted(found)
            if not chosen:
                return 0
            # The others go back to the front, in their order, as runs between
            # the chosen ones (usually few).
            kept: list[object] = []
            picked: list[object] = []
            start = 0
            for at in chosen:
                kept += taken[start * _FIELDS : at * _FIELDS]
                picked += taken[at * _FIELDS : (at + 1) * _FIELDS]
                start = at + 1
            kept += taken[start * _FIELDS :]
            del queue[: count * _FIELDS]
            queue[0:0] = kept
            self._apply(picked)
        return len(chosen)

    def pending_importers_of(self, parts: Iterable[str]) -> set[str]:
        """The importers of the waiting imports that may make one of a module whose
        name's last part is one of ``parts`` (an edge to it, a binding from it): a
        statement spells it where its module is named (its name; its package, for
        ``from . import``; the module ``importlib.import_module`` gave), or in the
        names it imports, or it imports something else than names.  More than
        those, never fewer; none recorded.

        A reload moments after start-up asks for the importers of the module it
        changed: it looks at those few, not at every module imported.  (The
        statements are read in C: at 5,000 modules, 28,000 of them wait.)
        """
        parts = [part for part in parts if part]
        queue = self.graph._pending
        with self.lock:  # (its front is taken only under the lock; others append)
            end = len(queue) // _FIELDS * _FIELDS
            if not end or not parts:
                return set()
            importers = cast("list[str]", queue[0:end:_FIELDS])
            names = cast("list[str]", queue[2:end:_FIELDS])
            fromlists, levels = queue[3:end:_FIELDS], queue[4:end:_FIELDS]
            packages, targets = queue[1:end:_FIELDS], queue[5:end:_FIELDS]
        found: set[int] = set()
        try:
            spelled = "\n".join(names)
        except TypeError:  # (a name that is no str: never from an import statement)
            spelled = "\n".join(map(str, names))
        imported = "\n".join(map(str, fromlists))  # (None: "None")
        for part in parts:
            found.update(_spelling(spelled, part), _spelling(imported, part))
        # ``from . import x``, ``from .. import x``: the module is the package (or one
        # above it); ``importlib.import_module``: the module it gave.
        numbers = range(len(names))
        relative = list(compress(numbers, map(not_, names)))
        dynamic = list(compress(numbers, map(eq, levels, repeat(-1))))
        for field, chosen in ((packages, relative), (targets, dynamic)):
            if chosen:
                # (itemgetter of one index gives the item, of several a tuple.)
                picked = itemgetter(*chosen)(field) if len(chosen) > 1 else (field[chosen[0]],)
                joined = "\n".join([text if type(text) is str else "" for text in picked])
                for part in parts:
                    found.update(map(chosen.__getitem__, _spelling(joined, part)))
        # A fromlist that is no str of names (``fromlist=[obj]``, kept as it came).
        plain = map(_PLAIN_FROMLISTS.__contains__, map(type, fromlists))
        found.update(compress(numbers, map(not_, plain)))
        return {importers[at] for at in found}

    def _make_waiting_nodes(self) -> None:
        modules = self.graph._waiting_modules
        if modules:
            # First the nodes, in the order the modules were classified.
            count = len(modules)
            names = modules[:count]
            del modules[:count]
            for importer in names:
                self.graph._node(importer)

    def _apply(self, pending: list[object]) -> None:
        for at in range(0, len(pending), _FIELDS):
            importer, package, name, fromlist, level, target = cast(
                "tuple[str, str | None, str, object, int, str | None]",
                tuple(pending[at : at + _FIELDS]),
            )
            if level != -1:
                self._record_import(importer, package, name, fromlist, level)
            elif target is not None and target != importer and self._is_tracked(target):
                self.graph.add_edge(importer, target)  # importlib.import_module

    def _record_import(
        self,
        importer: str,
        package: str | None,
        name: str,
        fromlist: object,
        level: int,
    ) -> None:
        if level > 0:
            try:
                base = resolve_relative(name, package, level)
            except ImportError:
                return
        else:
            base = name
        graph = self.graph
        if type(fromlist) is str:  # see _wait
            fromlist = fromlist.split(",")
        if not fromlist:
            # ``import a.b.c`` imports (and depends on) a, a.b and a.b.c.
            start = 0
            while True:
                dot = base.find(".", start)
                target = base if dot < 0 else base[:dot]
                if target != importer:
                    tracked = self._tracked_name(target)
                    if tracked is not None and tracked != importer:
                        graph.add_edge(importer, tracked)
                if dot < 0:
                    return
                start = dot + 1
        # ``from base import a, b``: the statement got ``base`` from
        # sys.modules.  Edges and bindings are recorded as they are met: no
        # lists per statement (thousands wait at start-up).
        own = self._tracked_name(base)
        if own is not None and own != importer:
            graph.add_edge(importer, own)
        modules = sys.modules
        module = modules.get(base)
        # Its namespace, not getattr: a module's __getattr__ (PEP 562) may
        # import, and this runs under the lock, maybe in another thread.
        namespace = module.__dict__ if isinstance(module, ModuleType) else None
        for item in cast("Iterable[object]", fromlist):
            if not isinstance(item, str):
                continue
            if item != "*" and namespace is not None:
                value = namespace.get(item)
                # A submodule is imported, not bound: the name holds the
                # module that sys.modules has (none holds None).
                if value is not None:
                    target = f"{base}.{item}"
                    if modules.get(target) is value:
                        tracked = self._tracked_name(target) if target != importer else None
                        if tracked is not None and tracked != importer:
                            graph.add_edge(importer, tracked)
                        continue
            if own is not None:
                graph.add_binding(importer, own, item)

    def _tracked_name(self, name: str) -> str | None:
        """The name the graph knows the module imported as ``name`` by, if it is tracked
        (else None): its own (``__name__``) where ``sys.modules`` holds it under a second
        name too (``sys.modules["legacy"] = real``: a renamed module's shim).  Recorded
        under the second name, its importers were no dependents of the module, and a save
        of it reached none of them."""
        if not self._is_tracked(name):
            return None
        module = sys.modules.get(name)
        if isinstance(module, ModuleType):
            own = module.__dict__.get("__name__")
            if own != name and isinstance(own, str) and sys.modules.get(own) is module:
                return own
        return name

    def _remember_statement(self, importer: str, name: str, level: int, fromlist: object) -> None:
        seen = self._seen.get(importer)
        if seen is None or seen is _UNTRACKED:
            return
        if seen is _NONE_YET:
            seen = self._seen[importer] = {}
        found = seen.get(name, _MISSING)
        if found is _MISSING:
            if level == 0 and (fromlist is None or type(fromlist) is tuple):
                seen[name] = fromlist
            else:
                seen[name] = (_MANY, level, fromlist)
        elif _several(found):
            seen[name] = (*cast("tuple[object, ...]", found), level, fromlist)
        else:
            seen[name] = (_MANY, 0, found, level, fromlist)

    # -- bookkeeping for the reloader -----------------------------------------

    def is_tracked(self, name: str) -> bool:
        """Is the module ``name`` (as found in ``sys.modules``) project code?"""
        return self._is_tracked(name)

    def statements(self, importer: str) -> dict[str, object]:
        """What is recorded of the import statements ``importer`` ran (name -> record)."""
        with self.lock:
            seen = self._seen.get(importer)
            return {} if seen is None or seen is _UNTRACKED else dict(seen)

    def forget_statements(self, importer: str) -> None:
        """Forget which import statements ``importer`` ran, before it re-executes."""
        with self.lock:
            seen = self._seen.get(importer)
            if seen is not None and seen is not _UNTRACKED and seen is not _NONE_YET:
                seen.clear()

    def forget_verdict(self, importer: str) -> None:
        """Ask the classifier again at ``importer``'s next import if it was judged no
        project code.

        For a namespace that counts as a project importer from now on (an
        IPython user namespace, see ``ProjectFilter.add_importer``) though its
        name was judged before, as another module's (IPython's own
        ``__main__`` under the CLI).  A project module's verdict stays.
        """
        with self.lock:
            if self._seen.get(importer) is _UNTRACKED:
                del self._seen[importer]

    def let_go(self) -> None:
        """Drop the namespaces the fast path holds, at the program's exit: a module's
        globals held there are never collected, nor what they hold (a ``__del__`` that
        removes a temporary file never runs).  The compiled core keeps the last few
        importers' namespaces to find their record at once; this twin keeps none."""

    def trim_statements(self) -> int:
        """Forget the statements recorded for modules whose import finished; how many names.

        The record only spares a repeated import statement the slow path.  A
        module's top-level imports do not run again once it is imported (a
        reload forgets them first), so the record is dead weight kept for
        every module.  Imports inside functions are recorded again the next
        time they run.
        """
        trimmed = 0
        modules = sys.modules
        with self.lock:
            for importer, seen in self._seen.items():
                if not seen or seen is _UNTRACKED:
                    continue
                module = modules.get(importer)
                spec = getattr(module, "__spec__", None)
                if module is None or getattr(spec, "_initializing", False):
                    continue  # still running its top level
                trimmed += len(seen)
                seen.clear()
        return trimmed

    def tracked_modules(self) -> list[str]:
        """Project modules currently in ``sys.modules``, in import order."""
        result = []
        for name in list(sys.modules):
            if self._is_tracked(name):
                result.append(name)
        return result
