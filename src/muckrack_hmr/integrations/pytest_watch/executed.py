"""Which project functions each test executed: the tests an edit of a function reaches.

On Python 3.12 and later, with ``sys.monitoring``: a ``PY_START`` event is
set on each code object of the project (not on pytest's, nor the standard
library's, which then run at full speed).  The first start of a function
within a context (a test, the setup of a fixture shared by several tests,
the collection of a test file) records it and disables the event there; the
events are armed again when the next context begins.  So each function costs
one call per context, however often it runs.

What is recorded is a key per function, ``(file, qualified name)``, stable
across reloads and line moves, and, once per key, the names its code
mentions (globals and attributes it reads, strings it passes to
``getattr``): a test that executed code mentioning a name whose value
changed is affected too.

On older Pythons :class:`Recorder` is never available (``Recorder.start``
returns None) and the watch loop selects by imports.
"""

from __future__ import annotations

import contextlib
import re
import sys
import types
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from .edits import Edit, changed_statements, consumed_names

if TYPE_CHECKING:
    import pytest

    from ...api import HMR
    from .fixtures import Definition
    from .reimport import Reimporter
    from .suite import Suite

__all__ = ["Executed", "Key", "Record", "Recorder", "functions_in"]

Key = tuple[str, str]  # (file, qualified name)

# Tool ids to try: the two that no standard tool claims, then the optimizer's.
_TOOL_IDS = (3, 4, 5)


class Record:
    """What one context executed: function keys, and the records of the contexts it used."""

    __slots__ = ("keys", "uses")

    def __init__(self) -> None:
        self.keys: set[Key] = set()
        #: records of shared fixtures this test used (set up once, for several tests)
        self.uses: list[Record] = []

    def all_keys(self) -> Iterator[Key]:
        yield from self.keys
        for record in self.uses:
            yield from record.keys


def _mentions(code: types.CodeType) -> frozenset[str]:
    names = set(code.co_names)
    names.update(
        const for const in code.co_consts if isinstance(const, str) and const.isidentifier()
    )
    return frozenset(names)


def code_tree(code: types.CodeType) -> Iterator[types.CodeType]:
    """``code`` and every code object nested in it (functions, classes, lambdas)."""
    pending = [code]
    while pending:
        current = pending.pop()
        yield current
        pending.extend(c for c in current.co_consts if isinstance(c, types.CodeType))


def functions_in(namespace: dict[str, object]) -> Iterator[types.CodeType]:
    """The code of the functions and methods a module's namespace holds.

    Classes of the module are looked into; wrappers are unwrapped
    (``__wrapped__``: ``functools.wraps``, pytest's fixture definitions).
    """
    module = namespace.get("__name__")
    seen: set[int] = set()
    pending: list[object] = list(namespace.values())
    while pending:
        value = pending.pop()
        if id(value) in seen or isinstance(value, types.ModuleType):
            continue
        seen.add(id(value))
        if isinstance(value, types.FunctionType):
            yield value.__code__
        elif isinstance(value, staticmethod | classmethod):
            pending.append(value.__func__)
            continue
        elif isinstance(value, property):
            pending.extend(f for f in (value.fget, value.fset, value.fdel) if f is not None)
            continue
        elif isinstance(value, type):
            if value.__module__ == module:
                pending.extend(vars(value).values())
            continue
        if not callable(value):
            continue
        try:
            wrapped = getattr(value, "__wrapped__", None)
        except Exception:  # a proxy that cannot answer now
            continue
        if wrapped is not None:
            pending.append(wrapped)


class Recorder:
    """Records, per context, the project functions that started (``sys.monitoring``)."""

    def __init__(self, monitoring: types.ModuleType, tool: int) -> None:  # sys.monitoring
        self._monitoring = monitoring
        self._tool = tool
        self._event = monitoring.events.PY_START
        self._disable = monitoring.DISABLE
        #: the context being recorded (None between contexts)
        self.current: Record | None = None
        self._stack: list[Record | None] = []
        #: key -> names its code mentions (the union over the code it had)
        self.mentions: dict[Key, frozenset[str]] = {}
        # By identity (equal code objects of a test module imported again are
        # new objects, to be armed too), and weakly: old code goes.
        self._armed: dict[int, weakref.ref[types.CodeType]] = {}
        monitoring.register_callback(tool, self._event, self._started)

    @classmethod
    def start(cls) -> Recorder | None:
        """A recorder, or None where ``sys.monitoring`` is missing or every tool id is taken."""
        monitoring = getattr(sys, "monitoring", None)
        if monitoring is None:
            return None
        for tool in _TOOL_IDS:
            if monitoring.get_tool(tool) is None:
                monitoring.use_tool_id(tool, "muckrack-hmr")
                return cls(monitoring, tool)
        return None

    def close(self) -> None:
        monitoring = self._monitoring
        monitoring.register_callback(self._tool, self._event, None)
        monitoring.free_tool_id(self._tool)
        self.current = None

    # -- what is watched ---------------------------------------------------------------

    def arm(self, codes: Iterable[types.CodeType]) -> None:
        """Record the starts of these code objects and of the ones nested in them."""
        set_local = self._monitoring.set_local_events
        armed = self._armed
        mentions = self.mentions
        for top in codes:
            for code in code_tree(top):
                ref = armed.get(id(code))
                if ref is not None and ref() is code:
                    continue
                armed[id(code)] = weakref.ref(code, self._forget(id(code)))
                if code.co_qualname == "<module>":  # type: ignore[attr-defined]
                    # A module's top level runs at its import, and what it binds
                    # is the engine's: a test reaches it through the names it
                    # mentions, not by having imported the module first.
                    continue
                set_local(self._tool, code, self._event)
                # co_qualname: Python 3.11+ (the recorder runs on 3.12+).
                key = (code.co_filename, code.co_qualname)  # type: ignore[attr-defined]
                known = mentions.get(key)
                names = _mentions(code)
                # The union over every version of the function: a test that
                # ran the old one may depend on what the old one mentioned.
                mentions[key] = names if known is None else known | names

    def arm_module(self, code: types.CodeType, _cached: bytes | None) -> None:
        """A project module's code, as its loader made it (``SourceCapture.listeners``)."""
        self.arm((code,))

    def _forget(self, ident: int) -> Callable[[weakref.ref[types.CodeType]], None]:
        armed = self._armed

        def gone(ref: weakref.ref[types.CodeType]) -> None:
            if armed.get(ident) is ref:
                del armed[ident]

        return gone

    def _started(self, code: types.CodeType, offset: int) -> object:
        current = self.current
        if current is not None:
            current.keys.add((code.co_filename, code.co_qualname))  # type: ignore[attr-defined]
        return self._disable

    # -- contexts ------------------------------------------------------------------------

    def enter(self, record: Record) -> None:
        """Record into ``record`` until the matching :meth:`leave`."""
        self._stack.append(self.current)
        self.current = record
        self._monitoring.restart_events()

    def leave(self) -> None:
        self.current = self._stack.pop() if self._stack else None
        self._monitoring.restart_events()

    @contextlib.contextmanager
    def recording(self, record: Record) -> Iterator[Record]:
        """Record into ``record`` inside the block."""
        self.enter(record)
        try:
            yield record
        finally:
            self.leave()

    # -- selection -----------------------------------------------------------------------

    def hits(self, record: Record, functions: Callable[[Key], bool], names: set[str]) -> bool:
        """Did ``record`` execute one of ``functions``, or code that mentions one of ``names``?"""
        mentions = self.mentions
        for key in record.all_keys():
            if functions(key):
                return True
            if names and not names.isdisjoint(mentions.get(key, ())):
                return True
        return False


# -- the watch loop's use of it ----------------------------------------------------------

_IDENTIFIER = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")

# What code that lists a namespace mentions: it sees a name that came or went.
# (Not ``locals``: a function's are its own, and every assert pytest rewrites calls
# ``locals()``: any name added to any module ran every test with an assert.)
_NAMESPACE_READERS = frozenset({"vars", "__dict__", "dir", "getmembers", "__all__", "globals"})


class Executed:
    """What each test, shared fixture and collection of a test file executed, and selection.

    With no recorder (Python before 3.12, or no free tool id) every method
    is a no-op and :meth:`select` returns None: the loop selects by imports.
    """

    def __init__(
        self, recorder: Recorder | None, hmr: HMR, suite: Suite, reimport: Reimporter
    ) -> None:
        self.recorder = recorder
        self.hmr = hmr
        self.suite = suite
        self.reimport = reimport
        #: test id -> what its last run executed
        self.tests: dict[str, Record] = {}
        #: test file -> what its last collection executed (its module's imports)
        self.collected: dict[str, Record] = {}
        #: fixture definition (scope wider than a function) -> what its last setup executed
        self.shared: weakref.WeakKeyDictionary[Definition, Record] = weakref.WeakKeyDictionary()

    def close(self) -> None:
        if self.recorder is not None:
            from ... import tracking

            capture = tracking.capture()
            if capture is not None and self.recorder.arm_module in capture.listeners:
                capture.listeners.remove(self.recorder.arm_module)
            self.recorder.close()
            self.recorder = None

    # -- recording ---------------------------------------------------------------------

    @contextlib.contextmanager
    def collecting(self, collector: pytest.Collector) -> Iterator[None]:
        import pytest

        from .suite import real

        recorder = self.recorder
        if recorder is None or not isinstance(collector, pytest.File):
            yield
            return
        record = self.collected.setdefault(real(collector.path), Record())
        try:
            with recorder.recording(record):
                yield
        finally:
            # Test modules are imported by pytest's own loader: their
            # functions are armed here, before any of their tests runs.
            module = collector.__dict__.get("_obj")
            if isinstance(module, types.ModuleType):
                recorder.arm(functions_in(module.__dict__))

    def running(self, item: pytest.Item) -> contextlib.AbstractContextManager[None]:
        def done(record: Record) -> None:
            record.uses = [
                self.shared[fixturedef]
                for fixturedef in _shared_fixtures(item)
                if fixturedef in self.shared
            ]
            self.tests[item.nodeid] = record

        return self._recording(done)

    def setting_up(self, fixturedef: Definition) -> contextlib.AbstractContextManager[None]:
        if getattr(fixturedef, "scope", "function") == "function":
            return contextlib.nullcontext()  # recorded as part of its test

        def done(record: Record) -> None:
            self.shared[fixturedef] = record

        return self._recording(done)

    @contextlib.contextmanager
    def _recording(self, done: Callable[[Record], None]) -> Iterator[None]:
        """Record the block into a new record, handed to ``done`` (nothing without a recorder)."""
        recorder = self.recorder
        if recorder is None:
            yield
            return
        record = Record()
        try:
            with recorder.recording(record):
                yield
        finally:
            done(record)

    def arm_loaded(self) -> None:
        """Arm the functions of every project module and conftest loaded so far."""
        modules = [sys.modules.get(name) for name in self.hmr.tracker.tracked_modules()]
        self.arm_modules([*modules, *self.reimport.conftests.values()])

    def arm_modules(self, modules: Iterable[object]) -> None:
        """Arm the functions these modules hold now (after a reload: their new code)."""
        if self.recorder is None:
            return
        for module in modules:
            namespace = getattr(module, "__dict__", None)
            if isinstance(namespace, dict):
                self.recorder.arm(functions_in(namespace))

    def recollecting(self, files: Iterable[str]) -> None:
        """These files are collected afresh: their collection is recorded anew."""
        for key in files:
            self.collected.pop(key, None)

    # -- selecting -------------------------------------------------------------------

    def edits(
        self, names: list[str], sources: Mapping[str, bytes]
    ) -> dict[str, tuple[str, Edit]] | None:
        """What the saves of modules ``names`` change: module -> (file, edit); None if unsure.

        Told before the reload: the source that ran is the engine's, the new one
        is in ``sources`` (the saves as judged, which the reload applies).
        """
        if self.recorder is None:
            return None
        return self.told(names, sources)

    def told(
        self, names: list[str], sources: Mapping[str, bytes]
    ) -> dict[str, tuple[str, Edit]] | None:
        """:meth:`edits`, with or without a recorder (selecting by imports uses it too)."""
        if not names:
            return None
        found: dict[str, tuple[str, Edit]] = {}
        for name in names:
            module = sys.modules.get(name)
            filename = getattr(module, "__file__", None)
            old = self.hmr.reloader.sources.ran(name)
            new = sources.get(name)
            if not isinstance(filename, str) or old is None or new is None:
                return None
            try:
                before, after = self.hmr.reloader.parsed_edit(name, old, new)
            except Exception:  # a syntax error: the reload says so
                return None
            edit = changed_statements(before.statements, after.statements)
            if edit is None or not _rebound_within(new, edit):
                return None
            found[name] = (filename, edit)
        return found

    @staticmethod
    def bodies_only(edits: dict[str, tuple[str, Edit]]) -> bool:
        """Do ``edits`` change functions only (no name bound anew, none added or removed)?"""
        return not any(edit.names or edit.namespace for _, edit in edits.values())

    @staticmethod
    def held(edits: dict[str, tuple[str, Edit]]) -> list[tuple[str, str, list[object]]]:
        """The objects that the changed functions' names lead to, module by module.

        Taken before a reload, and compared after it by :meth:`kept`.
        """
        return [
            (name, qualname, _path_to(sys.modules.get(name), qualname))
            for name, (_, edit) in edits.items()
            for qualname in sorted(edit.qualnames)
        ]

    @staticmethod
    def kept(held: list[tuple[str, str, list[object]]]) -> bool:
        """Were the changed functions (and the classes holding them) patched in place?

        Then a test module's ``from m import f`` still reaches the new code,
        and a test file that only ran ``f`` need not be imported again.
        """
        for name, qualname, before in held:
            after = _path_to(sys.modules.get(name), qualname)
            if len(after) != len(before):
                return False
            if any(a is not b for a, b in zip(after, before, strict=True)):
                return False
        return True

    def dependents_ran(self, edits: dict[str, tuple[str, Edit]], reloaded: list[str]) -> bool:
        """Add to ``edits`` what the dependents that ran again rebound; False if unsure.

        The engine runs a dependent again for the statements that consumed a
        changed name at import; ``reloaded`` is in the order they ran.
        """
        names = set().union(*(edit.names for _, edit in edits.values()))
        for name in reloaded:
            if name in edits:
                continue
            if getattr(self.hmr, "cascade", "auto") != "auto":
                return False  # dependents run whole (--cascade always): not told in names
            module = sys.modules.get(name)
            filename = getattr(module, "__file__", None)
            source = self.hmr.reloader.sources.ran(name)
            if not isinstance(filename, str) or source is None:
                return False
            bound = consumed_names(source, names)
            if bound is None:
                return False
            edit = Edit()
            edit.names |= bound
            edits[name] = (filename, edit)
            names |= bound
        return True

    def select(
        self, edits: dict[str, tuple[str, Edit]]
    ) -> tuple[set[str], dict[str, set[str]]] | None:
        """The test files to collect and run whole, and the single tests, that ``edits`` reach.

        A test is reached when it (or a shared fixture it used) executed a
        changed function or code that mentions a changed name.  A test file
        is run whole when its collection executed one, or when its text
        mentions a changed name and it imports a changed module (a ``from m
        import NAME`` binding is refreshed only by importing it again).  A
        shared fixture that executed one is torn down, to be set up anew.
        Tests never run (a run stopped early, a new test) are selected.
        """
        recorder = self.recorder
        if recorder is None:
            return None
        qualnames: dict[str, set[str]] = {}
        names: set[str] = set()
        for filename, edit in edits.values():
            qualnames.setdefault(filename, set()).update(edit.qualnames)
            names |= edit.names
            if edit.namespace:
                names |= _NAMESPACE_READERS

        def changed(key: Key) -> bool:
            inside = qualnames.get(key[0])
            if not inside:
                return False
            qualname = key[1]
            dot = len(qualname)
            while dot > 0:  # the function, or one it is nested in
                if qualname[:dot] in inside:
                    return True
                dot = qualname.rfind(".", 0, dot)
            return False

        whole = {
            key
            for key, record in self.collected.items()
            if key in self.suite.files and recorder.hits(record, changed, names)
        }
        if names:
            whole |= self._mentioning(set(edits), names)
        reached = []
        for fixturedef, record in list(self.shared.items()):
            if recorder.hits(record, changed, names):
                reached.append(record)
                if getattr(fixturedef, "cached_result", None) is not None:
                    self.reimport._finish(fixturedef)
        tests: dict[str, set[str]] = {}
        for key, test_file in self.suite.files.items():
            if key in whole:
                continue
            for item in test_file.items:
                ran = self.tests.get(item.nodeid)
                if (
                    ran is None
                    or recorder.hits(ran, changed, names)
                    or any(used is hit for used in ran.uses for hit in reached)
                ):
                    tests.setdefault(key, set()).add(item.nodeid)
        return whole, tests

    def _mentioning(self, modules: set[str], names: set[str]) -> set[str]:
        """Test files and that import one of ``modules`` and spell one of ``names``."""
        reach = set(modules)
        for name in modules:
            reach.update(self.hmr.dependents_of(name, transitive=True))
        found = set()
        wanted = {name.encode() for name in names}
        for key, test_file in self.suite.files.items():
            if test_file.module_name() not in reach:
                continue
            spelled = _spelled_in(key)
            if spelled is None or not wanted.isdisjoint(spelled):
                found.add(key)
        return found


# path -> ((mtime_ns, size), the identifiers its code spells, outside its comments)
_SPELLED: dict[str, tuple[tuple[int, int], frozenset[bytes]]] = {}


def _spelled_in(path: str) -> frozenset[bytes] | None:
    """The identifiers a test file spells in its code and strings, not in its comments (a
    comment that names ``LIMIT`` ran the whole file for each edit of it); None when the
    file cannot be read.  Kept per version of the file."""
    import os
    import tokenize

    try:
        stat = os.stat(path)
        version = (stat.st_mtime_ns, stat.st_size)
        kept = _SPELLED.get(path)
        if kept is not None and kept[0] == version:
            return kept[1]
        with open(path, "rb") as handle:
            source = handle.read()
    except OSError:
        return None
    try:
        parts = [
            token.string.encode()
            for token in tokenize.tokenize(iter(source.splitlines(keepends=True)).__next__)
            if token.type not in (tokenize.COMMENT, tokenize.ENCODING)
        ]
        spelled = frozenset(_IDENTIFIER.findall(b" ".join(parts)))
    except (tokenize.TokenError, SyntaxError, UnicodeDecodeError):
        spelled = frozenset(_IDENTIFIER.findall(source))  # (as it is: every word counts)
    _SPELLED[path] = (version, spelled)
    return spelled


def _rebound_within(source: bytes, edit: Edit) -> bool:
    """Add to ``edit`` the names its module's own top level binds from changed names.

    ``DOUBLE = 2 * LIMIT`` runs again when ``LIMIT`` changed: ``DOUBLE``
    changed too, and so on down the module.  False if that cannot be told.
    """
    while edit.names:
        bound = consumed_names(source, edit.names)
        if bound is None:
            return False
        if bound <= edit.names:
            return True
        edit.names |= bound
    return True


def _path_to(module: object, qualname: str) -> list[object]:
    """The objects along ``qualname`` in ``module`` (up to a function's locals).

    Looked up in namespaces, not through descriptors: a classmethod is the
    same object on every lookup.  Stops short where a name is missing.
    """
    found: list[object] = []
    holder = module
    for part in qualname.split("."):
        if part == "<locals>":
            break
        namespace = getattr(holder, "__dict__", None)
        if not isinstance(namespace, Mapping) or part not in namespace:
            break
        holder = namespace[part]
        found.append(holder)
    return found


def _shared_fixtures(item: pytest.Item) -> Iterator[Definition]:
    """The fixture definitions wider than a function that ``item`` uses."""
    info = getattr(item, "_fixtureinfo", None)
    name2defs = getattr(info, "name2fixturedefs", None) or {}
    for name in getattr(item, "fixturenames", ()):
        for fixturedef in name2defs.get(name, ()):
            if getattr(fixturedef, "scope", "function") != "function":
                yield fixturedef
