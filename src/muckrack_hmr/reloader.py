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
import hashlib
import heapq
import linecache
import logging
import os
import sys
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import CodeType, ModuleType
from typing import Any

from .analysis import ModuleSummary, summarize
from .errors import location_of, user_traceback
from .incremental import (
    Changes,
    ChangeSet,
    Consumption,
    StatementError,
    consumption_of,
    plan_and_run,
    translate_incoming,
)
from .patching import patch_namespace

__all__ = [
    "CASCADES",
    "ErrorHandler",
    "Hook",
    "Hooks",
    "ReloadResult",
    "Reloader",
    "from_import_aliases",
]

log = logging.getLogger("muckrack_hmr")

# Parsed modules kept for the next reload: the last sources of the modules being edited.
_SUMMARY_CACHE_SIZE = 16

CASCADES = ("auto", "always", "never")

Hook = Callable[[str], object]
ErrorHandler = Callable[[str, BaseException], object]

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


@dataclass
class ReloadResult:
    """Everything one reload did (``HMR.reload``); ``reload_module`` returns the short form."""

    reloaded: list[str] = field(default_factory=list)
    """Modules whose code ran again, in the order they ran."""
    patched: list[str] = field(default_factory=list)
    """Functions and classes given new definitions in place (``module.qualname``)."""
    rebound: list[str] = field(default_factory=list)
    """``importer.name`` bindings pointed at a new object (modules that did not run again)."""
    failed: dict[str, BaseException] = field(default_factory=dict)
    """Modules whose new code failed: they keep their old namespace."""
    left_alone: list[str] = field(default_factory=list)
    """Dependents not run because a module they import failed."""
    refused: list[str] = field(default_factory=list)
    """Changes that need a restart (a class whose bases changed...)."""
    module_ms: dict[str, float] = field(default_factory=dict)
    """Time spent on each module that ran again."""
    total_ms: float = 0.0
    """Wall time of the whole call."""

    def summary(self) -> str:
        """The log line: ``a (+2 dependents, 3 patched)``."""
        if not self.reloaded:
            return ""
        more = len(self.reloaded) - 1
        details = [f"+{more} dependent{'s' if more != 1 else ''}"] if more else []
        if self.patched:
            details.append(f"{len(self.patched)} patched")
        if self.rebound:
            details.append(f"{len(self.rebound)} rebound")
        if self.failed:
            details.append(f"{len(self.failed)} failed")
        extra = f" ({', '.join(details)})" if details else ""
        return f"{self.reloaded[0]}{extra}"


class Hooks:
    """The callbacks of ``__hmr__``: pre-reload, post-reload and error handlers."""

    def __init__(self) -> None:
        self.pre_reload: list[Hook] = []
        self.post_reload: list[Hook] = []
        self.error_handlers: list[ErrorHandler] = []

    def report_error(self, name: str, exc: BaseException) -> None:
        """Pass ``exc`` to every error handler; a handler that raises is logged."""
        for handler in list(self.error_handlers):
            try:
                handler(name, exc)
            except Exception:
                log.exception("hmr: error handler %r raised", handler)

    def run(self, hooks: list[Hook], name: str, kind: str) -> None:
        """Run ``hooks`` for ``name``; one that raises is logged and reported."""
        for hook in list(hooks):
            try:
                hook(name)
            except Exception as exc:
                log.error(
                    "hmr: %s hook %s raised for %s (%s): %s: %s",
                    kind,
                    getattr(hook, "__qualname__", repr(hook)),
                    name,
                    location_of(exc),
                    type(exc).__name__,
                    exc,
                )
                self.report_error(name, exc)


def _read_source(module: ModuleType) -> tuple[str, bytes]:
    filename = getattr(module, "__file__", None)
    if not isinstance(filename, str):
        raise ImportError(f"{module.__name__} has no source file", name=module.__name__)
    with open(filename, "rb") as handle:
        return filename, handle.read()


_alias_cache: dict[tuple[str, int, int], dict[tuple[str, str], list[str]]] = {}


def from_import_aliases(filename: str, package: str | None) -> dict[tuple[str, str], list[str]]:
    """Module-level ``from X import name as alias`` statements of a file.

    Maps ``(absolute X, name)`` to the aliases bound in the module namespace.
    Imports inside functions and classes bind local names and are skipped.
    """
    try:
        stat = os.stat(filename)
    except OSError:
        return {}
    key = (filename, stat.st_mtime_ns, stat.st_size)
    cached = _alias_cache.get(key)
    if cached is not None:
        return cached
    try:
        with open(filename, "rb") as handle:
            tree = ast.parse(handle.read(), filename)
    except (OSError, SyntaxError, ValueError):
        return {}
    aliases: dict[tuple[str, str], list[str]] = {}
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda
            ):
                continue
            if isinstance(child, ast.ImportFrom):
                source = child.module or ""
                if child.level:
                    if not package:
                        continue
                    bits = package.rsplit(".", child.level - 1)
                    if len(bits) < child.level:
                        continue
                    source = f"{bits[0]}.{source}" if source else bits[0]
                for alias in child.names:
                    aliases.setdefault((source, alias.name), []).append(alias.asname or alias.name)
            elif isinstance(child, ast.stmt | ast.excepthandler | ast.match_case):
                pending.append(child)
    _alias_cache[key] = aliases
    return aliases


def _resolve_reference(
    imports: dict[str, tuple[str, str | None]], reference: str
) -> tuple[str, str] | None:
    """``reference`` (``X`` or ``a.b.X``, as the module writes it) as (module, name)."""
    local, _, rest = reference.partition(".")
    bound = imports.get(local)
    if bound is None:
        return None
    module, attr = bound
    parts = rest.split(".") if rest else []
    if attr is not None:
        parts.insert(0, attr)
    # Walk down the submodules the reference goes through.
    while parts and isinstance(sys.modules.get(f"{module}.{parts[0]}"), ModuleType):
        module = f"{module}.{parts.pop(0)}"
    if not parts:
        return None  # the module itself: its identity does not change
    return sys.intern(module), sys.intern(parts[0])


_GONE = object()


def _warn_removed(importer: str, name: str, attr: str) -> None:
    log.warning("hmr: %s still refers to %s.%s, which the new code removed", importer, name, attr)


class Reloader:
    """Runs reload transactions over the modules an import tracker knows."""

    def __init__(self, tracker: Any, hooks: Hooks, project: Any = None) -> None:
        self.tracker = tracker
        self.graph = tracker.graph
        self.hooks = hooks
        self.project = project
        #: "auto": re-run only what consumed a change; "always": re-execute every
        #: transitive dependent whole; "never": re-run only the saved modules.
        self.cascade = "auto"
        # module -> its source as it last ran, compressed: what an edit is compared with.
        self._sources: dict[str, bytes] = {}
        self._remembered = 0  # how many entries of project.loaded were looked at
        self._summaries: OrderedDict[tuple[str, bytes], ModuleSummary] = OrderedDict()
        self._consumptions: dict[str, Consumption] = {}
        # (module, name) -> modules whose code uses module.name: the dependents
        # a change can reach, found without looking at the others.
        self._consumers: dict[tuple[str, str], set[str]] = {}
        self._keys: dict[tuple[str, str], tuple[str, str]] = {}  # one tuple per key
        self._positions: dict[str, tuple[int, int]] = {}
        self._positions_version = -1
        # Reentrant, so that a hook or a module that asks for a reload while
        # one runs gets its request queued instead of deadlocking.
        self._lock = threading.RLock()
        self._running = False
        self._queued: list[str] = []
        self._result = ReloadResult()  # what the running reload did
        # filename -> (digest of the source, its code): a dependent re-executed
        # again and again is compiled once, not on every reload.
        self._code_cache: dict[str, tuple[bytes, CodeType]] = {}

    def remember_sources(self, untrusted: Iterable[str] = ()) -> int:
        """Keep the source of every project module still as it was imported; how many new.

        An edit is compared with this copy to find what changed.  A module
        saved after its import and before this call has no copy: its first
        reload re-executes it whole.  ``untrusted`` modules (the ones being
        reloaded) are never copied: their file may already hold the edit, and
        a same-size save within one clock tick passes the stat check.
        """
        skip = set(untrusted)
        loaded = getattr(self.project, "loaded", None)
        if loaded is None:
            return 0
        entries = list(loaded.items())[self._remembered :]
        self._remembered += len(entries)
        added = 0
        for path, (name, baseline) in entries:
            if name == "__main__" or name in self._sources or baseline is None or name in skip:
                continue
            try:
                stat = os.stat(path)
                if (stat.st_mtime_ns, stat.st_size) != baseline:
                    continue  # saved since its import: not the code that runs
                with open(path, "rb") as handle:
                    self._remember(name, handle.read())
                added += 1
            except OSError:
                continue
        return added

    def _remember(self, name: str, source: bytes) -> None:
        """``source`` is what ``name`` runs now."""
        self._sources[name] = zlib.compress(source, 1)
        self._forget_consumption(name)

    def _edited(self, name: str) -> bool:
        """Does the file of ``name`` differ from the source it last ran?"""
        remembered = self._sources.get(name)
        if remembered is None:
            return False
        try:
            _, source = _read_source(sys.modules[name])
        except (OSError, ImportError):
            return False
        return zlib.decompress(remembered) != source

    def _summary(self, filename: str, source: bytes, package: str | None) -> ModuleSummary:
        key = (filename, hashlib.blake2b(source, digest_size=16).digest())
        summary = self._summaries.get(key)
        if summary is None:
            summary = summarize(source, filename, package)
            self._summaries[key] = summary
            if len(self._summaries) > _SUMMARY_CACHE_SIZE:
                self._summaries.popitem(last=False)
        else:
            self._summaries.move_to_end(key)
        return summary

    def _compile(self, filename: str, source: bytes) -> CodeType:
        """Compile ``source``; the same bytes read again reuse the code object."""
        digest = hashlib.blake2b(source, digest_size=16).digest()
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
        return None

    # -- the transaction ----------------------------------------------------

    def reload(self, names: Iterable[str]) -> tuple[list[str], float]:
        """Re-execute ``names`` and their dependents; ``(re-executed, ms)``."""
        result = self.reload_result(names)
        return result.reloaded, result.total_ms

    def reload_result(self, names: Iterable[str]) -> ReloadResult:
        """Like :meth:`reload`, with everything the reload did."""
        start = time.perf_counter()
        result = ReloadResult()
        with self._lock:
            if self._running:
                # A reload asked for from inside a reload: run it afterwards.
                self._queued.extend(names)
                result.total_ms = (time.perf_counter() - start) * 1000.0
                return result
            self._running = True
            self._result = result
            try:
                self._transaction(list(names))
                while self._queued:
                    queued, self._queued = self._queued, []
                    self._transaction(queued)
            finally:
                self._running = False
                self._queued = []
        result.total_ms = (time.perf_counter() - start) * 1000.0
        return result

    def _transaction(self, names: list[str]) -> list[str]:
        started = time.perf_counter()
        roots: list[str] = []
        for name in names:
            reason = self.why_not_reloadable(name)
            if reason is not None:
                log.info("hmr: not reloading %s: %s", name, reason)
            elif name not in roots:
                roots.append(name)
        if not roots:
            return []
        root_set = set(roots)
        result = self._result
        first = len(result.reloaded)
        self.remember_sources(untrusted=root_set)
        position = self._topological_positions()
        # Modules run in dependency order; a dependent joins the queue only
        # when a module it imports changed (early cutoff), so the work follows
        # the size of the change, not of the codebase.
        queue = [(position.get(name, (-1, 0)), name) for name in roots]
        heapq.heapify(queue)
        queued = set(root_set)
        reloaded: list[str] = []
        broken: set[str] = set()  # failed, or left alone because a dependency failed
        changes = ChangeSet()

        def enqueue(dependents: Iterable[str]) -> None:
            for dependent in dependents:
                if dependent not in queued and self.why_not_reloadable(dependent) is None:
                    queued.add(dependent)
                    heapq.heappush(queue, (position.get(dependent, (-1, 0)), dependent))

        while queue:
            _, name = heapq.heappop(queue)
            is_root = name in root_set
            if not is_root and any(dep in broken for dep in self.graph.dependencies_of(name)):
                broken.add(name)
                result.left_alone.append(name)
                log.warning("hmr: left %s alone: a module it imports failed to reload", name)
                continue
            module_started = time.perf_counter()
            if self.cascade == "always" or (is_root and not self._edited(name)):
                # Asked for by name with no edit we can see (or no copy of the
                # source it ran): the caller wants it to run again.
                outcome = self._reexecute(name)
            elif is_root:
                outcome = self._incremental(name, changes)
            else:
                outcome = self._follow(name, changes)
            if outcome is None:
                broken.add(name)
                # Its importers would have followed its change: they are left
                # alone, and say so.
                enqueue(self.graph.dependents_of(name))
                continue
            if outcome.applied:
                reloaded.append(name)
                result.reloaded.append(name)
                result.module_ms[name] = (time.perf_counter() - module_started) * 1000.0
            if not outcome:
                continue
            changes[name] = outcome
            enqueue(self._reached(name, outcome))
            # Importers that will not run again (the script, say) follow by rebinding.
            self._rebind_dependents(name, outcome.old, sys.modules[name].__dict__, queued)
        elapsed = (time.perf_counter() - started) * 1000.0
        if len(result.reloaded) > first:
            log.info("hmr: reloaded %s in %.1f ms", result.summary(), elapsed)
        return reloaded

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

    def _consumption(self, name: str) -> Consumption | None:
        """What ``name`` takes from its imports, as of the source it last ran."""
        found = self._consumptions.get(name)
        if found is not None:
            return found
        remembered = self._sources.get(name)
        module = sys.modules.get(name)
        if remembered is None or module is None:
            return None
        filename = getattr(module, "__file__", None)
        if not isinstance(filename, str):
            return None
        try:
            # Not through the summary cache: parsed trees are large, and only
            # the small consumption is kept for every module.
            summary = summarize(
                zlib.decompress(remembered), filename, module.__dict__.get("__package__")
            )
        except (SyntaxError, ValueError):
            return None
        found = consumption_of(summary)
        self._consumptions[name] = found
        for key in self._keys_of(found):
            self._consumers.setdefault(key, set()).add(name)
        return found

    def _forget_consumption(self, name: str) -> None:
        consumption = self._consumptions.pop(name, None)
        if consumption is None:
            return
        for key in self._keys_of(consumption):
            users = self._consumers.get(key)
            if users is not None:
                users.discard(name)
                if not users:
                    del self._consumers[key]

    def _keys_of(self, consumption: Consumption) -> set[tuple[str, str]]:
        """The (module, name) pairs a module's code uses."""
        keys = set()
        for reference in consumption.references():
            key = _resolve_reference(consumption.imports, reference)
            if key is not None:
                keys.add(self._keys.setdefault(key, key))
        return keys

    def warm(self, limit: int | None = None) -> int:
        """Analyze remembered modules not analyzed yet (at most ``limit``); how many."""
        done = 0
        for name in list(self._sources):
            if limit is not None and done >= limit:
                break
            if name not in self._consumptions and self._consumption(name) is not None:
                done += 1
        return done

    def _reached(self, name: str, outcome: Changes) -> set[str]:
        """The dependents of ``name`` that its changes can reach."""
        if self.cascade == "never":
            return set()
        dependents = self.graph.dependents_of(name)
        if self.cascade == "always":
            return set(dependents)
        # Analyzed dependents are reached through the names they use; the
        # others have to be looked at.
        reached = {dependent for dependent in dependents if dependent not in self._consumptions}
        for changed in outcome.values | outcome.behaviors:
            reached |= self._consumers.get((name, changed), set())
        return reached

    def _follow(self, name: str, changes: ChangeSet) -> Changes | None:
        """A dependent: run what consumed the changes of its imports, if anything."""
        consumption = self._consumption(name)
        if consumption is None:
            return self._incremental(name, changes)
        values, behaviors = translate_incoming(consumption.imports, changes)
        if consumption.touched_by(values, behaviors):
            return self._incremental(name, changes)
        # Nothing runs again; its functions that use what changed now behave
        # differently, which matters to whoever calls them at import time.
        through = consumption.behaviors_through(values, behaviors)
        return Changes(behaviors=through, old=dict(sys.modules[name].__dict__))

    def _reexecute(self, name: str) -> Changes | None:
        """Re-execute ``name`` whole: everything it binds counts as changed."""
        module = sys.modules[name]
        self.hooks.run(self.hooks.pre_reload, name, "pre-reload")
        try:
            filename, source = _read_source(module)
            code = self._compile(filename, source)
        except (OSError, SyntaxError, ValueError, ImportError) as exc:
            self._fail(name, exc)
            return None
        namespace = module.__dict__
        snapshot = dict(namespace)
        tracker = self.tracker
        with tracker.lock:
            saved_edges = self.graph.clear_dependencies(name)
            tracker.forget_statements(name)
        # Clear the namespace so that names deleted from the source disappear.
        # Submodules stay: the import system set them and will not set them again.
        prefix = name + "."
        for key, value in snapshot.items():
            if key in _MODULE_METADATA:
                continue
            if isinstance(value, ModuleType) and value.__name__ == prefix + key:
                continue
            del namespace[key]
        linecache.checkcache(filename)
        try:
            exec(code, namespace)
        except KeyboardInterrupt:
            self._restore(name, namespace, snapshot, saved_edges)
            raise
        except BaseException as exc:  # SystemExit from module code must not end the program
            self._restore(name, namespace, snapshot, saved_edges)
            self._fail(name, exc)
            return None
        self._patch(name, snapshot, namespace)
        self._remember(name, source)
        self.hooks.run(self.hooks.post_reload, name, "post-reload")
        everything = {key for key in {*snapshot, *namespace} if key not in _MODULE_METADATA}
        return Changes(
            values=set(everything), behaviors=everything, old=snapshot, executed=1, applied=True
        )

    def _patch(self, name: str, snapshot: dict[str, Any], namespace: dict[str, Any]) -> None:
        report = patch_namespace(name, snapshot, namespace)
        self._result.patched.extend(report.patched)
        self._result.refused.extend(report.refused)
        for message in report.refused:
            log.error("hmr: kept the old %s", message)
        for qualname in report.replaced:
            log.warning(
                "hmr: %s changed its closure: references to the old function keep running "
                "the old code",
                qualname,
            )

    def _incremental(self, name: str, changes: ChangeSet) -> Changes | None:
        """Re-run the statements of ``name`` that its edit or its imports' changes touched."""
        module = sys.modules[name]
        namespace = module.__dict__
        package = namespace.get("__package__")
        try:
            filename, source = _read_source(module)
            new = self._summary(filename, source, package)
            remembered = self._sources.get(name)
            old_source = zlib.decompress(remembered) if remembered is not None else source
            old = new if old_source == source else self._summary(filename, old_source, package)
        except (OSError, SyntaxError, ValueError, ImportError) as exc:
            self._fail(name, exc)
            return None
        snapshot = dict(namespace)

        def before_first() -> None:
            self.hooks.run(self.hooks.pre_reload, name, "pre-reload")
            linecache.checkcache(filename)

        try:
            outcome = plan_and_run(
                namespace,
                filename,
                (old, new),
                translate_incoming(new.imports, changes),
                before_first,
            )
        except StatementError as error:
            namespace.clear()
            namespace.update(snapshot)
            cause = error.__cause__
            if isinstance(cause, KeyboardInterrupt):
                raise cause from None
            self._fail(name, cause if cause is not None else error)
            return None
        self._remember(name, source)
        if outcome.applied:
            self._patch(name, snapshot, namespace)
            # A function that could not be patched in place is a new object.
            outcome.values |= {
                key
                for key in outcome.behaviors
                if key in snapshot and namespace.get(key) is not snapshot[key]
            }
        if outcome.applied:
            self.hooks.run(self.hooks.post_reload, name, "post-reload")
        return outcome

    def _restore(
        self,
        name: str,
        namespace: dict[str, Any],
        snapshot: dict[str, Any],
        saved_edges: Any,
    ) -> None:
        namespace.clear()
        namespace.update(snapshot)
        with self.tracker.lock:
            self.graph.restore_dependencies(name, saved_edges)
            self.tracker.forget_statements(name)

    def _fail(self, name: str, exc: BaseException) -> None:
        self._result.failed[name] = exc
        log.error(
            "hmr: failed to reload %s (%s): %s: %s; the old code keeps running\n%s",
            name,
            location_of(exc),
            type(exc).__name__,
            exc,
            user_traceback(exc),
        )
        self.hooks.report_error(name, exc)

    def _rebind_dependents(
        self,
        name: str,
        old: dict[str, Any],
        new: dict[str, Any],
        affected: set[str],
    ) -> None:
        """Point ``from name import x`` bindings of modules not re-executed at the new ``x``."""
        # Functions and classes patched in place kept their identity: only
        # names now bound to another object (or gone) need rebinding.
        replaced = {key for key, value in old.items() if new.get(key, _GONE) is not value}
        if not replaced:
            return
        for importer in self.graph.dependents_of(name):
            if importer in affected:
                continue  # re-executed in this transaction: it imports afresh
            bound = self.graph.bound_names(importer, name)
            if not bound or not ("*" in bound or replaced.intersection(bound)):
                continue
            module = sys.modules.get(importer)
            if module is None:
                continue
            namespace = module.__dict__
            filename = getattr(module, "__file__", None)
            aliases = (
                from_import_aliases(filename, namespace.get("__package__"))
                if isinstance(filename, str)
                else {}
            )
            for attr in bound:
                if attr == "*":
                    self._rebind_star(importer, namespace, name, old, new)
                    continue
                if attr not in old:
                    continue
                previous = old[attr]
                for alias in aliases.get((name, attr), [attr]):
                    # Only a binding that still holds the old object is ours to
                    # update; the program may have rebound the name since.
                    if alias in namespace and namespace[alias] is previous:
                        if attr in new:
                            namespace[alias] = new[attr]
                            self._result.rebound.append(f"{importer}.{alias}")
                        else:
                            _warn_removed(importer, name, attr)

    @staticmethod
    def _rebind_star(
        importer: str,
        namespace: dict[str, Any],
        name: str,
        old: dict[str, Any],
        new: dict[str, Any],
    ) -> None:
        """``from name import *``: update every public name still bound to its old object."""
        exported = old.get("__all__")
        if not isinstance(exported, list | tuple):
            exported = [key for key in old if not key.startswith("_")]
        for attr in exported:
            if attr not in old or namespace.get(attr) is not old[attr]:
                continue
            if attr in new:
                namespace[attr] = new[attr]
            else:
                _warn_removed(importer, name, attr)
        new_exported = new.get("__all__")
        if not isinstance(new_exported, list | tuple):
            new_exported = [key for key in new if not key.startswith("_")]
        for attr in new_exported:
            # Names the new code added to the star export appear too.
            if attr not in old and attr not in namespace and attr in new:
                namespace[attr] = new[attr]
