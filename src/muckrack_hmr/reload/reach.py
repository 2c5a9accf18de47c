"""Which functions the code that runs at import time may call: a body edit of any other
reaches no dependent, whatever the number of modules that call it.

A body-only edit of a function matters to another module only where its top
level calls the function, directly or through functions that call it (a
decorator, ``TABLE = build()``): those statements run again.  Following the
change from module to module through every function that calls it found that
out, at a cost that grew with the callers: a helper that a thousand modules
call in their functions cost a walk of the thousand, to run nothing.

So one index holds, for each module, the functions its top level names, and for
each of its functions the ones its body names, as (module, name) nodes.  What
the top levels name, and everything reachable from there through bodies, is
*reachable*; so is what a function whose results an ``lru_cache`` keeps may
call (its cache holds results of the old code).  A body edit of a function
outside that set concerns no other module; of one inside it, only the modules
whose top level (or cached function) reaches it, and the modules of the
functions in between, follow (:meth:`ImportReach.followers`).

A module enters the index twice.  First from the code its loader made
(:meth:`ImportReach.add_code`): the names its bytecode loads (read by the core's
scan_module, see :func:`scan`), resolved through its namespace once it ran, in
30-60 us, and before the slower analysis of the module's source, so that an
edit moments after start-up finds the index whole.  Then, whenever a module is
analyzed (:class:`.incremental.Consumption`), from that analysis.  The code
gives a superset of what the analysis tells (a name a body holds may be an
attribute of any module it names), never less.  Only the top level's names are
resolved then: what a function's body names is resolved once the function
becomes reachable (most never do), so that the index costs its idle time per
module, not per function, and keeps few objects for the garbage collector to
look at.  The reachable set only grows (a call removed by an edit leaves its
function reachable until the program restarts): it may send a follower no
import-time code needs any more, which costs a look, never a missed statement.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from types import CodeType, FunctionType, ModuleType
from typing import TYPE_CHECKING, Protocol, cast

from .._core import core
from .kinds import CACHE_WRAPPER, is_a

if TYPE_CHECKING:
    from .incremental import Binding, Consumption

__all__ = ["ImportReach", "Scan", "scan"]

# (module, the name of one of its top-level functions, classes or values)
_Node = tuple[str, str]
_IsProject = Callable[[str], bool]
# A module's functions' bodies, flat: each function's name, then its code or the names
# its analysis found (a name defined twice comes twice).
_Bodies = tuple[str | CodeType | tuple[str, ...], ...]
#: What the core's scan_module read of a module's code: the names its level loads, and
#: its functions' code after their names.
Scan = tuple[tuple[str, ...], tuple[str | CodeType, ...]]


class ImportReach:
    """The functions import-time code or a cache may call, as the indexed modules tell."""

    def __init__(self, is_project: _IsProject = lambda name: True) -> None:
        self._is_project = is_project
        # Reachable from a top level, or from a function whose results are cached.
        self._reachable: set[_Node] = set()
        self._edges: dict[_Node, list[_Node]] = {}
        self._callers: dict[_Node, set[_Node]] = {}
        # module -> what its top level names; node -> the modules whose top level names it
        self._roots: dict[str, tuple[_Node, ...]] = {}
        self._root_of: dict[_Node, set[str]] = {}
        # The ``lru_cache`` wrappers (``module``, ``name`` or ``Class.method``).
        self._caches: set[_Node] = set()
        self._caches_of: dict[str, tuple[_Node, ...]] = {}
        # module -> how its names resolve, and the bodies of its functions not reachable
        # (yet): what each names is resolved only once it is (see _fold).
        self._bodies: dict[str, tuple[_Resolve, _Bodies]] = {}
        #: The modules whose analysis (or code) is in the index.
        self.known: set[str] = set()
        #: Grows whenever ``known`` changes.
        self.version = 0

    def add(self, module: str, consumption: Consumption) -> None:
        """Fold ``module``'s analysis in (again, after it changed)."""
        resolve = _Resolver(consumption.imports)
        edges: dict[_Node, list[_Node]] = {}
        for local, _, attr in consumption.imports:
            if attr is not None:
                # A name it imports is one another module may call through it
                # (``from pkg import helper`` of pkg's ``from .kernel import helper``).
                edges.setdefault((module, local), []).extend(resolve(local))
        roots = [node for name in consumption.at_import for node in resolve(name)]
        namespace = getattr(sys.modules.get(module), "__dict__", None)
        if isinstance(namespace, dict):
            self._add_caches(module, namespace, edges, methods=True)
        self._fold(module, edges, roots, (resolve, consumption.bodies))

    def add_code(
        self, module: str, scan: tuple[tuple[str, ...], _Bodies], namespace: dict[str, object]
    ) -> None:
        """Fold in ``module``'s code as its loader made it (``scan``: what the core's
        scan_module read of it), resolved through its namespace now that it ran: no
        parse, and a superset of what its analysis tells (a name the code holds may
        be an attribute of any module it names; a lambda's body may run)."""
        names, bodies = scan
        at_import = set(names)
        resolve = _NamesResolver(module, namespace, self._is_project)
        edges: dict[_Node, list[_Node]] = {}
        # (Classes are looked at only where the code names a cache at all.)
        self._add_caches(module, namespace, edges, methods=not _CACHES.isdisjoint(at_import))
        if not _BY_CLASS.isdisjoint(at_import):
            _class_methods(module, namespace, edges, resolve.nodes)
        self._fold(module, edges, resolve.nodes(at_import), (resolve, bodies))

    def _add_caches(
        self,
        module: str,
        namespace: dict[str, object],
        edges: dict[_Node, list[_Node]],
        *,
        methods: bool,
    ) -> None:
        """The ``lru_cache`` wrappers ``module`` holds (and with ``methods``, its classes),
        into ``edges`` with what the function each wraps may call: roots of the index."""
        caches = self._caches
        caches.difference_update(self._caches_of.pop(module, ()))
        # (Copied in one step: the program's threads run on; see project.loaded_modules.)
        items = namespace.copy().items()  # (a view of the copy: looked at twice)
        found = [(module, name) for name, value in items if type(value) is CACHE_WRAPPER]
        if methods:
            for name, value in items:
                if is_a(value, type) and value.__module__ == module:
                    found.extend(
                        (module, f"{name}.{attr}")
                        for attr, member in vars(value).copy().items()
                        if type(_unbound(member)) is CACHE_WRAPPER
                    )
        if not found:
            return
        self._caches_of[module] = tuple(found)
        resolve = _NamesResolver(module, namespace, self._is_project)
        for node in found:
            caches.add(node)
            targets = edges.setdefault(node, [])
            inner = getattr(_cache_at(node), "__wrapped__", None)
            code = getattr(inner, "__code__", None)
            if isinstance(code, CodeType):
                targets.extend(resolve.nodes(_names_in(code)))

    def forget(self, module: str) -> None:
        """``module``'s analysis is stale (imported again): unknown until added again."""
        if module in self.known:
            self.known.discard(module)
            self.version += 1

    def followers(self, module: str, names: Iterable[str]) -> tuple[set[str], list[_Node]]:
        """The modules that must follow a body edit of ``module``'s functions ``names``:
        the ones whose top level may call them, directly or through functions of other
        modules, and those other modules; and the ``lru_cache`` wrappers whose function
        may call them (their caches hold results of the old code: see clear_cache)."""
        reachable, callers = self._reachable, self._callers
        found = [node for name in names if (node := (module, name)) in reachable]
        if not found:
            return set(), []
        closure = set(found)
        while found:
            for caller in callers.get(found.pop(), ()):
                if caller in reachable and caller not in closure:
                    closure.add(caller)
                    found.append(caller)
        followers = {home for home, _ in closure}
        root_of = self._root_of
        for node in closure:
            followers.update(root_of.get(node, ()))
        followers.discard(module)
        return followers, [node for node in closure if node in self._caches]

    def _fold(
        self,
        module: str,
        edges: dict[_Node, list[_Node]],
        roots: list[_Node],
        bodies: tuple[_Resolve, _Bodies],
    ) -> None:
        """Take in ``module``'s ``edges`` and ``roots``, and its functions' ``bodies``:
        what each names, resolved only once the function is reachable (most never are:
        a module's functions run when the program calls them), as their own nodes."""
        reachable = self._reachable
        resolve, flat = bodies
        for at in range(0, len(flat), 2):
            node = (module, cast("str", flat[at]))
            if node in reachable:  # (reached before the module was indexed, or again)
                edges.setdefault(node, []).extend(resolve.nodes(_names_in(flat[at + 1])))
        self._bodies[module] = bodies
        spread = list(roots)
        for node, targets in edges.items():
            self._drop_edges(node)
            self._set_edges(node, targets)
            if node in reachable:
                spread.extend(targets)  # reachable already: what it calls now is too
        # A module's top level names its own functions and classes: the module follows
        # a change of them as their home (see followers).  Only other modules' nodes
        # are kept here, with the modules whose top level names them.
        root_of = self._root_of
        for node in self._roots.get(module, ()):
            root_of.get(node, _NO_MODULES).discard(module)
        others = tuple({node for node in roots if node[0] != module})
        self._roots[module] = others
        for node in others:
            root_of.setdefault(node, set()).add(module)
        # A function whose results are cached is a root too: a body edit of what it
        # calls leaves old results there.
        spread.extend(node for node in edges if node in self._caches)
        self._spread(spread)
        if module not in self.known:
            self.known.add(module)
            self.version += 1

    def _drop_edges(self, node: _Node) -> None:
        callers = self._callers
        for target in self._edges.pop(node, ()):
            callers.get(target, _NO_CALLERS).discard(node)

    def _set_edges(self, node: _Node, targets: list[_Node]) -> None:
        self._edges.setdefault(node, []).extend(targets)
        callers = self._callers
        for target in targets:
            callers.setdefault(target, set()).add(node)

    def _spread(self, nodes: list[_Node]) -> None:
        """Make ``nodes`` reachable, and what they call: a function's body is resolved
        as it becomes reachable."""
        reachable, edges, bodies = self._reachable, self._edges, self._bodies
        while nodes:
            node = nodes.pop()
            if node in reachable:
                continue
            reachable.add(node)
            waiting = bodies.get(node[0])
            if waiting is not None and node[1] in waiting[1]:  # a function of the module
                resolve, flat = waiting
                names: set[str] = set()
                for at in range(0, len(flat), 2):
                    if flat[at] == node[1]:
                        names |= _names_in(flat[at + 1])
                self._set_edges(node, resolve.nodes(names))
            nodes.extend(edges.get(node, ()))


class _Resolve(Protocol):
    def nodes(self, names: set[str]) -> list[_Node]: ...


def _names_in(body: object) -> set[str]:
    """The names a body holds (with those of the functions and classes it defines): its
    code's, or those its analysis found."""
    names: set[str] = set()
    if isinstance(body, CodeType):
        core.all_names(body, names)
    elif isinstance(body, tuple):
        names.update(body)
    return names


_NO_CALLERS: set[_Node] = set()
_NO_MODULES: set[str] = set()
# Names a module's code loads where it makes a cache (``@functools.cache``, ``lru_cache(...)``).
_CACHES = frozenset({"lru_cache", "cache"})
# ... and where it makes methods a class can call at import time.
_BY_CLASS = frozenset({"staticmethod", "classmethod"})


def _class_methods(
    module: str,
    namespace: dict[str, object],
    edges: dict[_Node, list[_Node]],
    resolve: Callable[[set[str]], list[_Node]],
) -> None:
    """A class's static and class methods, called by the class at import time
    (``K.build()``), as what the class's node calls (its other methods are left out:
    see _class_body)."""
    for name, value in namespace.copy().items():
        if not is_a(value, type) or value.__module__ != module:
            continue
        names: set[str] = set()
        for member in list(vars(value).values()):
            if issubclass(type(member), staticmethod | classmethod):
                code = getattr(member.__func__, "__code__", None)
                if isinstance(code, CodeType):
                    core.all_names(code, names)
        if names:
            edges.setdefault((module, name), []).extend(resolve(names))


def _unbound(member: object) -> object:
    return member.__func__ if issubclass(type(member), staticmethod | classmethod) else member  # type: ignore[attr-defined]


def _cache_at(node: _Node) -> object:
    """The ``lru_cache`` wrapper a cache node names now, or None."""
    module, name = node
    namespace = getattr(sys.modules.get(module), "__dict__", None)
    if not isinstance(namespace, dict):
        return None
    owner, _, attr = name.partition(".")
    value = namespace.get(owner)
    if attr:
        value = _unbound(vars(value).get(attr)) if is_a(value, type) else None
    return value if type(value) is CACHE_WRAPPER else None


def clear_cache(node: _Node) -> bool:
    """Empty the cache of the ``lru_cache`` wrapper ``node`` names (see followers)."""
    wrapper = _cache_at(node)
    if wrapper is None:
        return False
    wrapper.cache_clear()  # type: ignore[attr-defined]
    return True


class _Resolver:
    """What a name a module spells (``kernel.helper``, ``helper_1``, ``shop.base.kernel.f``)
    is: (module, top-level name), through the module's imports; and, where the object
    there is a function or class defined in another module under another name
    (``helper = kernel.helper`` in a package), that module's name for it too."""

    def __init__(self, imports: Iterable[Binding]) -> None:
        modules = sys.modules
        self._objects: dict[str, _Node] = {}
        self._modules: dict[str, str] = {}
        for local, module, attr in imports:
            namespace = getattr(modules.get(module), "__dict__", None)
            held = namespace.get(attr) if attr is not None and isinstance(namespace, dict) else None
            if attr is None:
                self._modules[local] = module
            elif is_a(held, ModuleType):
                self._modules[local] = held.__name__  # ``from pkg import sub``
            else:
                self._objects[local] = (module, attr)

    def __call__(self, name: str) -> list[_Node]:
        root, _, rest = name.partition(".")
        found = self._objects.get(root)
        if found is None:
            module = self._modules.get(root)
            if module is None or not rest:
                return []
            # ``import shop.base.kernel`` binds ``shop``: ``shop.base.kernel.f`` is kernel's f.
            # What the package holds under the name decides, not what sys.modules has
            # (``from .helper import helper`` leaves the function on the package).
            modules = sys.modules
            for part in rest.split("."):
                namespace = getattr(modules.get(module), "__dict__", None)
                value = namespace.get(part) if isinstance(namespace, dict) else None
                if not is_a(value, ModuleType):
                    found = (module, part)
                    break
                module = value.__name__
            else:
                return []
        defined = defined_as(*found)
        return [found] if defined is None or defined == found else [found, defined]

    def nodes(self, names: set[str]) -> list[_Node]:
        return [node for name in names for node in self(name)]


def defined_as(module: str, name: str) -> _Node | None:
    """(module, name) of the top-level function or class ``module``'s ``name`` holds, where
    it was defined: the node a body edit of it names."""
    namespace = getattr(sys.modules.get(module), "__dict__", None)
    return _defined(namespace.get(name)) if isinstance(namespace, dict) else None


def _defined(value: object) -> _Node | None:
    """(module, name) where a top-level function or class was defined, or None."""
    if not (type(value) is FunctionType or is_a(value, type)):
        return None
    home, own = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if not isinstance(home, str) or not isinstance(own, str) or "." in own:
        return None
    return (home, own)


_LOADS = (
    "LOAD_NAME",
    "LOAD_GLOBAL",
    "LOAD_ATTR",
    "LOAD_METHOD",
    "LOAD_FROM_DICT_OR_GLOBALS",
    "LOAD_SUPER_ATTR",
    "IMPORT_NAME",
    "IMPORT_FROM",
)
# Each of them at names of several indexes, in a module and in functions.
_PROBE = """
import a0, a1, a2, a3, a4, a5, a6, a7, a8, a9
from b0.b1 import b2, b3, b4
c0 = c1.c2.c3
h0: h1.h2 = h3
class C(c4):
    d0 = d1.d2
    d3: d4.d5
    def f(self, g0: g1) -> g2:
        return super().e0, e1.e2.e3, e4, g3.g4.g5(), super().g6()
"""


def _name_ops() -> dict[int, int]:
    """{opcode: shift of its argument to the index in ``co_names``} of the instructions
    that load a name or an attribute, or import: as this Python compiles them (the
    low bits of some arguments are flags, more of them in newer versions)."""
    import dis  # (here: the table is learned once, at the first scan, not at start-up)

    shifts: dict[int, int] = {}
    pending = [compile(_PROBE, "<probe>", "exec")]
    while pending:
        code = pending.pop()
        pending.extend(const for const in code.co_consts if isinstance(const, CodeType))
        for instruction in dis.get_instructions(code):
            if instruction.opname in _LOADS and instruction.arg is not None:
                index = code.co_names.index(instruction.argval)
                shift = next(s for s in range(4) if instruction.arg >> s == index)
                shifts[instruction.opcode] = max(shifts.get(instruction.opcode, 0), shift)
    for name in _LOADS:
        # Not made by the probe (``LOAD_FROM_DICT_OR_GLOBALS`` of some annotations):
        # its argument is the plain index.
        if dis.opmap.get(name, 256) < 256:
            shifts.setdefault(dis.opmap[name], 0)
    return shifts


# (The core's table of this Python's opcodes, where a NULL is pushed beside a
# callable called by name: see the core's OP_LOADS and called_names.)
_TABLE: list[tuple[bytes, int]] = []


def opcode_table() -> tuple[bytes, int]:
    """The core's table of this Python's opcodes (learned once), and ``null_after``:
    where the interpreter pushes the NULL beside a callable it calls by name (1 after
    it, 0 before, -1 nowhere: 3.10)."""
    if not _TABLE:
        import dis

        table = bytearray(256)
        for op, shift in _name_ops().items():
            table[op] |= core.OP_LOADS | shift
        for name, flag in (
            ("IMPORT_NAME", core.OP_IMPORT),
            ("IMPORT_FROM", core.OP_IMPORT),
            ("MAKE_FUNCTION", core.OP_MAKES),
            ("LOAD_BUILD_CLASS", core.OP_MAKES),
            ("PUSH_NULL", core.OP_PUSH_NULL),
            ("LOAD_NAME", core.OP_LOAD_NAME),
            ("EXTENDED_ARG", core.OP_EXTENDED),
        ):
            if name in dis.opmap:
                table[dis.opmap[name]] |= flag
        null_after = -1
        if "PUSH_NULL" in dis.opmap:
            shape = [i.opname for i in dis.get_instructions(compile("f()", "", "exec"))]
            null_after = int(shape.index("PUSH_NULL") > shape.index("LOAD_NAME"))
        _TABLE.append((bytes(table), null_after))
    return _TABLE[0]


def scan(code: CodeType) -> Scan:
    """What the index takes in of a module's code (see the core's scan_module)."""
    found: Scan = core.scan_module(code, *opcode_table())
    return found


class _NamesResolver:
    """The (module, name) nodes a set of names one code object holds may stand for:
    each name the namespace binds, and each of those names as an attribute of a
    module it binds (``kernel.helper``, ``shop.base.kernel.f``), or imports in a
    function (``from shop import kernel`` in a body)."""

    def __init__(self, module: str, namespace: dict[str, object], is_project: _IsProject) -> None:
        self._module = module
        self._namespace = namespace
        self._is_project = is_project

    def nodes(self, names: set[str]) -> list[_Node]:
        found: set[_Node] = set()
        through: set[str] = set()
        namespace, module, modules = self._namespace, self._module, sys.modules
        bound = names & namespace.keys()
        for name in bound:
            value = namespace[name]
            if is_a(value, ModuleType):
                self._through(value, names, found, through)
            elif callable(value):  # (a constant, a table: nothing a body edit changes)
                _add(found, module, name, value)
        for name in (names - bound) & modules.keys():
            # ``import shop.base.kernel`` in a function (absolute imports only).
            value = modules.get(name)
            if is_a(value, ModuleType):
                self._through(value, names, found, through)
        return list(found)

    def _through(
        self, module: ModuleType, names: set[str], found: set[_Node], through: set[str]
    ) -> None:
        home = getattr(module, "__name__", None)
        namespace = getattr(module, "__dict__", None)
        if not isinstance(home, str) or not isinstance(namespace, dict) or home in through:
            return
        through.add(home)
        if not self._is_project(home):
            return
        for name in names & namespace.keys():
            value = namespace[name]
            if is_a(value, ModuleType):
                self._through(value, names, found, through)
            elif callable(value):
                _add(found, home, name, value)


def _add(found: set[_Node], module: str, name: str, value: object) -> None:
    """(module, name), and where ``value`` was defined under another name, that too."""
    found.add((module, name))
    defined = _defined(value)
    if defined is not None:
        found.add(defined)
