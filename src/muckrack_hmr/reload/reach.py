"""Which functions the code that runs at import time may call: a body edit of any other
reaches no dependent, whatever the number of modules that call it.

A body-only edit of a function matters to another module only where its top
level calls the function, directly or through functions that call it (a
decorator, ``TABLE = build()``): those statements run again.  Following the
change from module to module through every function that calls it found that
out, at a cost that grew with the callers: a helper that a thousand modules
call in their functions cost a walk of the thousand, to run nothing.

So each module's analysis (:class:`.incremental.Consumption`) adds to one index:
the functions its top level names, and for each of its functions the imported
ones its body names.  What the top levels name, and everything reachable from
there through bodies, is *reachable*.  A body edit of a function outside that set
reaches no dependent.  The set only grows as modules are analyzed again (a call
removed by an edit leaves its function reachable until the program restarts):
it may say "reachable" of a function no import-time code calls any more, which
costs a walk, never a missed statement.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .incremental import Binding, Consumption

__all__ = ["ImportReach"]

# (module, the name of one of its top-level functions, classes or values)
_Node = tuple[str, str]


class ImportReach:
    """The functions import-time code may call, as the analyzed modules tell."""

    def __init__(self) -> None:
        self._reachable: set[_Node] = set()
        self._edges: dict[_Node, list[_Node]] = {}
        #: The modules whose analysis is in the index.
        self.known: set[str] = set()
        #: Grows whenever ``known`` changes.
        self.version = 0

    def add(self, module: str, consumption: Consumption) -> None:
        """Fold ``module``'s analysis in (again, after it changed)."""
        resolve = _Resolver(consumption.imports)
        bodies = consumption.bodies
        spread: list[_Node] = []
        for at in range(0, len(bodies), 2):
            node = (module, bodies[at])
            targets = [found for name in bodies[at + 1] if (found := resolve(name)) is not None]
            self._edges[node] = targets
            if node in self._reachable:
                spread.extend(targets)  # reachable already: what it calls now is too
        spread.extend(
            found for name in consumption.at_import if (found := resolve(name)) is not None
        )
        self._spread(spread)
        if module not in self.known:
            self.known.add(module)
            self.version += 1

    def forget(self, module: str) -> None:
        """``module``'s analysis is stale (imported again): unknown until added again."""
        if module in self.known:
            self.known.discard(module)
            self.version += 1

    def may_run_at_import(self, module: str, names: Iterable[str]) -> bool:
        """May import-time code call one of ``module``'s functions ``names``?"""
        reachable = self._reachable
        return any((module, name) in reachable for name in names)

    def _spread(self, nodes: list[_Node]) -> None:
        reachable, edges = self._reachable, self._edges
        while nodes:
            node = nodes.pop()
            if node not in reachable:
                reachable.add(node)
                nodes.extend(edges.get(node, ()))


class _Resolver:
    """What a name a module spells (``kernel.helper``, ``helper_1``, ``shop.base.kernel.f``)
    is: (module, top-level name), through the module's imports."""

    def __init__(self, imports: Iterable[Binding]) -> None:
        modules = sys.modules
        self._objects: dict[str, _Node] = {}
        self._modules: dict[str, str] = {}
        for local, module, attr in imports:
            if attr is None:
                self._modules[local] = module
            elif isinstance(modules.get(f"{module}.{attr}"), type(sys)):
                self._modules[local] = f"{module}.{attr}"  # ``from pkg import sub``
            else:
                self._objects[local] = (module, attr)

    def __call__(self, name: str) -> _Node | None:
        root, _, rest = name.partition(".")
        found = self._objects.get(root)
        if found is not None:
            return found
        module = self._modules.get(root)
        if module is None or not rest:
            return None
        # ``import shop.base.kernel`` binds ``shop``: ``shop.base.kernel.f`` is kernel's f.
        modules = sys.modules
        for part in rest.split("."):
            deeper = f"{module}.{part}"
            if deeper not in modules:
                return (module, part)
            module = deeper
        return None
