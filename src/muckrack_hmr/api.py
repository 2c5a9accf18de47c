"""The object behind ``builtins.__hmr__``: the running program's handle on HMR."""

from __future__ import annotations

import atexit
import sys
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import TYPE_CHECKING, TypeVar, overload

from .hooks import CASCADES, Disposer, ErrorHandler, Hook, Hooks, ResultHook
from .reload.sources import SourceStore

if TYPE_CHECKING:
    from ._core import ImportTracker
    from .project import ProjectFilter
    from .reload.reloader import Reloader, ReloadResult
    from .settings import Settings
    from .watch.idle import IdleWorker
    from .watch.watcher import Watcher

__all__ = ["HMR"]

T = TypeVar("T")

# Frames of these modules stand between a module's top level and the API (the shim).
_OWN_MODULES = frozenset({__name__, "muckrack_hmr.hot"})
C = TypeVar("C")


def _calling_module() -> str:
    """The name of the module whose code called into the API."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if name not in _OWN_MODULES:
            return name if isinstance(name, str) else "__main__"
        frame = frame.f_back
    return "__main__"


def _module_name(name: object, call: str) -> str:
    """``name``, a module's dotted name, or a TypeError that says what ``call`` takes."""
    if not isinstance(name, str):
        raise TypeError(
            f"{call}() takes a module's name (a str such as 'app.views'), "
            f"not {type(name).__name__}: {name!r}"
        )
    return name


def _callable(function: C, call: str) -> C:
    """``function``, or a TypeError now rather than at the next reload."""
    if not callable(function):
        raise TypeError(f"{call}() takes a function, not {type(function).__name__}: {function!r}")
    return function


def _remove(functions: list[C], function: C, call: str) -> None:
    """Take ``function`` out of ``functions``, or a ValueError that says it was never in."""
    try:
        functions.remove(function)
    except ValueError:
        added = call.replace("remove_", "add_", 1)
        raise ValueError(f"{call}(): {function!r} was not added (by {added}())") from None


class HMR:
    """Reload modules, hook into reloads, and inspect the dependency graph.

    Made by :func:`muckrack_hmr.install` (the CLI calls it first thing) and
    available everywhere as ``__hmr__``.
    """

    def __init__(self, tracker: ImportTracker, project: ProjectFilter) -> None:
        self.tracker = tracker
        self.graph = tracker.graph
        self.project = project
        self.hooks = Hooks()
        #: What each project module ran, taken by its loader at import.
        self.sources = SourceStore(project, tracker.is_tracked)
        self._reloader: Reloader | None = None
        # The watcher's thread and the program may both ask for the engine
        # first: one engine, one lock over its reloads.
        self._making_reloader = threading.Lock()
        self._cascade = "auto"
        #: the watcher, once :meth:`watch` started it
        self.watcher: Watcher | None = None
        self._idle_worker: IdleWorker | None = None
        self._closes_at_exit = False

    @property
    def reloader(self) -> Reloader:
        """The reload engine, imported when first needed (not at start-up)."""
        reloader = self._reloader
        if reloader is None:
            with self._making_reloader:
                reloader = self._reloader
                if reloader is None:
                    from .reload.reloader import Reloader

                    reloader = Reloader(self.tracker, self.hooks, self.project, self.sources)
                    reloader.cascade = self._cascade
                    # A request's dependents follow from the code they run while a
                    # watcher applies their saves (see Reloader._read).
                    reloader.saves_come = self._watching
                    self._reloader = reloader
        return reloader

    def _watching(self) -> bool:
        return self.watcher is not None

    # -- reloading ------------------------------------------------------------

    def reload_module(self, name: str, *, force: bool = False) -> tuple[list[str], float]:
        """Apply what changed in the file of ``name``: ``(modules that ran, wall ms)``.

        Only what changed since the code that runs is applied, and what
        consumed it follows: when the file holds that code (the watcher
        applied the save already, or the call is repeated), nothing runs and
        the answer is ``([], ms)``.  So it is when the new code fails (the error is
        printed, the old code keeps running): :meth:`reload` tells which, in
        ``failed``.  ``force=True`` re-executes ``name`` whole
        (for a module that read a data file at import time), and everything
        it binds counts as changed for its dependents.
        """
        return self.reloader.reload([_module_name(name, "reload_module")], force=force)

    def reload(self, name: str, *, force: bool = False) -> ReloadResult:
        """Like :meth:`reload_module`, with everything the reload did (patched, rebound...)."""
        return self.reloader.reload_result([_module_name(name, "reload")], force=force)

    def reload_modules(self, names: list[str], *, force: bool = False) -> tuple[list[str], float]:
        """Reload several modules as one transaction (a burst of saves)."""
        given: object = names  # (what a program passes, whatever the annotation says)
        if isinstance(given, str | bytes) or not isinstance(given, Iterable):
            raise TypeError(
                f"reload_modules() takes a list of module names, not {type(given).__name__}"
                + (f" (reload_module({given!r}) reloads one)" if isinstance(given, str) else "")
            )
        return self.reloader.reload(
            [_module_name(name, "reload_modules") for name in names], force=force
        )

    @property
    def cascade(self) -> str:
        """Which dependents re-run: ``"auto"`` (default), ``"always"`` or ``"never"``.

        ``auto`` re-runs the statements that consumed a change at import time
        (a value they read, a changed function they called); ``always``
        re-executes every transitive dependent whole; ``never`` re-runs only
        the saved modules.
        """
        return self._cascade

    @cascade.setter
    def cascade(self, policy: str) -> None:
        if policy not in CASCADES:
            raise ValueError(f"cascade must be one of {', '.join(CASCADES)}, not {policy!r}")
        self._cascade = policy
        if self._reloader is not None:
            self._reloader.cascade = policy

    def remember_sources(self) -> int:
        """Keep the source of every module still as imported (the watcher does this).

        An edit is compared with it to re-run only what changed; a module
        with no remembered source re-executes whole on its first reload.
        """
        return int(self.reloader.remember_sources())

    def warm(self) -> int:
        """Analyze every remembered module now (the watcher does it a few at a time).

        The first reload that reaches a module not analyzed yet parses it, and
        one that reaches a module whose ``.name`` spellings are not indexed yet
        searches its source; after this call (which does both for every
        module), reloads only look at the dependents that use what changed.
        Returns how many modules were analyzed.
        """
        self.reloader.index_reach()
        analyzed = int(self.reloader.warm())
        self.reloader.index_mentions()
        return analyzed

    # -- hooks ----------------------------------------------------------------

    def add_pre_reload_hook(self, hook: Hook) -> None:
        """Call ``hook(module_name)`` just before each module re-executes."""
        self.hooks.pre_reload.append(_callable(hook, "add_pre_reload_hook"))

    def remove_pre_reload_hook(self, hook: Hook) -> None:
        """Stop calling a pre-reload hook (ValueError if it was not added)."""
        _remove(self.hooks.pre_reload, hook, "remove_pre_reload_hook")

    def add_post_reload_hook(self, hook: Hook) -> None:
        """Call ``hook(module_name)`` just after each module re-executed successfully."""
        self.hooks.post_reload.append(_callable(hook, "add_post_reload_hook"))

    def remove_post_reload_hook(self, hook: Hook) -> None:
        """Stop calling a post-reload hook (ValueError if it was not added)."""
        _remove(self.hooks.post_reload, hook, "remove_post_reload_hook")

    def add_error_handler(self, handler: ErrorHandler) -> None:
        """Call ``handler(module_name, exception)`` once for each failed module."""
        self.hooks.error_handlers.append(_callable(handler, "add_error_handler"))

    def remove_error_handler(self, handler: ErrorHandler) -> None:
        """Stop calling an error handler (ValueError if it was not added)."""
        _remove(self.hooks.error_handlers, handler, "remove_error_handler")

    def add_result_hook(self, hook: ResultHook) -> None:
        """Call ``hook(result)`` once each reload is over, with its :class:`ReloadResult`.

        Once per reload, not per module: after every module ran (or failed),
        outside the engine's lock.  Also when a module that had failed is
        fine again because its file is back to the code that runs (its name
        in ``result.recovered``, nothing reloaded).
        """
        self.hooks.result_hooks.append(_callable(hook, "add_result_hook"))

    def remove_result_hook(self, hook: ResultHook) -> None:
        """Stop calling a result hook (ValueError if it was not added)."""
        _remove(self.hooks.result_hooks, hook, "remove_result_hook")

    def add_refusal_check(self, check: Hook) -> None:
        """Call ``check(module_name)`` after a module's new code ran, before it is kept.

        The check refuses the edit with :meth:`refuse` (``module=module_name``)
        when it cannot apply in place; it runs for every module that ran
        again, on the reloading thread.
        """
        self.hooks.checks.append(_callable(check, "add_refusal_check"))

    def remove_refusal_check(self, check: Hook) -> None:
        """Stop calling a refusal check (ValueError if it was not added)."""
        _remove(self.hooks.checks, check, "remove_refusal_check")

    # -- a module's say in its own reload -------------------------------------------

    def refuse(self, kind: str, what: str, fix: str = "", *, module: str | None = None) -> bool:
        """Refuse the edit being applied to ``module`` (by default the calling module).

        Called by the module's own code as it runs again, or by a refusal
        check: nothing of the module's edit applies (its old code keeps
        running), and one line says ``restart to apply: <what> (<kind>);
        <fix>``.  Under ``--restart-on-refused`` the CLI then restarts the
        program.  Returns False (and does nothing) outside that module's reload:
        its first import, say.
        """
        from .reload.refusals import Refusal

        name = module if module is not None else _calling_module()
        return self.reloader.refuse(Refusal(kind, name, what, fix))

    def on_dispose(self, callback: Disposer) -> None:
        """Call ``callback(data)`` before the calling module's code runs again.

        For code at a module's top level: ``callback`` stops what the module
        started (a thread, a server, a pool).  It runs just before the module
        re-executes, and when its file is deleted; ``data`` is the module's
        :attr:`data`, handed over to its next version.  A module that
        registered one re-executes whole on its next reload (after the
        callbacks ran), so its setup statements run again.  Callbacks run
        last registered first, once: the new code registers its own.
        """
        self.hooks.disposers.setdefault(_calling_module(), []).append(
            _callable(callback, "on_dispose")
        )

    @property
    def data(self) -> dict[str, object]:
        """The calling module's dict, as its last dispose left it (empty on first import)."""
        return self.hooks.data.setdefault(_calling_module(), {})

    def keep(self, name: str, factory: Callable[[], T]) -> T:
        """The value the calling module keeps under ``name``; ``factory()`` the first time.

        It survives the module's reloads, its statement running again
        included.  Dropped by :meth:`discard` and by a forced reload of the
        module (``reload_module(name, force=True)``, ``%hmr reload``).
        """
        kept = self.hooks.kept.setdefault(_calling_module(), {})
        if name in kept:
            return kept[name]  # type: ignore[return-value]  # what factory() made for name
        value = kept[name] = factory()
        return value

    def discard(self, name: str) -> None:
        """Forget the calling module's kept ``name``: the next :meth:`keep` makes it again."""
        self.hooks.kept.get(_calling_module(), {}).pop(name, None)

    # -- the dependency graph ---------------------------------------------------

    def dependents_of(self, name: str, transitive: bool = False) -> list[str]:
        """Project modules that import ``name`` (directly, or also indirectly)."""
        with self.tracker.lock:
            if transitive:
                return list(self.graph.transitive_dependents([name]))
            return list(self.graph.dependents_of(name))

    def dependencies_of(self, name: str, transitive: bool = False) -> list[str]:
        """Project modules that ``name`` imports (directly, or also indirectly)."""
        with self.tracker.lock:
            if transitive:
                return list(self.graph.transitive_dependencies(name))
            return list(self.graph.dependencies_of(name))

    def tracked_modules(self) -> list[str]:
        """Project modules loaded so far, in ``sys.modules`` order."""
        return list(self.tracker.tracked_modules())

    def write_graph(self, path: str) -> list[str]:
        """Write the import graph of the project's modules to ``path``; the files written.

        DOT always (``path``, or beside it when it names an ``.svg``), and
        SVG when Graphviz's ``dot`` is on PATH.  The modules of the last
        reload are marked: edited, ran again, patched, failed, refused.
        """
        from .graph import write_graph

        last = self._reloader.last_result if self._reloader is not None else None
        return write_graph(self, path, last)

    @overload
    def watch(self, settings: Settings, /) -> None: ...

    @overload
    def watch(
        self,
        debounce_ms: float = ...,
        *,
        backend: str = ...,
        poll: float | None = ...,
        include: Iterable[str] = ...,
        exclude: Iterable[str] = ...,
        watch_data: bool = ...,
        clear: bool = ...,
    ) -> None: ...

    def watch(self, *args: Settings | float, **keywords: object) -> None:
        """Start watching the project's files and reload what is saved (the CLI does this).

        Takes a :class:`~muckrack_hmr.settings.Settings` (the CLI passes its
        own, whole), or the watching settings as keywords: ``debounce_ms``
        (the first argument), ``backend`` (``"auto"``, ``"inotify"``, ``"watchdog"``,
        ``"polling"`` or ``"watchfiles"``), ``poll`` (seconds: forces
        polling), ``include`` and ``exclude`` (globs), ``watch_data`` (reload
        a module when a data file it read at import time changes) and
        ``clear`` (clear the terminal before each reload's output).
        """
        settings = _watch_settings(args, keywords)
        if self.watcher is not None:
            return
        from .watch.watcher import Watcher

        # The watcher takes its settings one by one for now (it is being split up).
        watcher = Watcher(
            self,
            debounce=settings.debounce / 1000.0,
            backend=settings.backend,
            poll=settings.poll,
            include=settings.include,
            exclude=settings.exclude,
            watch_data=settings.watch_data,
            clear=settings.clear,
        )
        watcher.start()
        self.watcher = watcher
        self._close_at_exit()

    def work_when_idle(self) -> None:
        """Without a watcher: do its idle-time bookkeeping on a thread of its own.

        What the watcher does while the program rests (analyzing modules,
        indexing what they spell) is what makes a reload cost what its edit
        changed; a program that reloads only through :meth:`reload_module`
        (the CLI's ``--no-watch``) gets it this way.  The thread ends when
        everything imported so far is done.
        """
        if self.watcher is not None or self._idle_worker is not None:
            return
        from .watch.idle import IdleWorker

        worker = IdleWorker(self)
        worker.start()
        self._idle_worker = worker
        self._close_at_exit()

    def _close_at_exit(self) -> None:
        """Have the interpreter's exit end our threads' work before it freezes them.

        As the interpreter ends, a thread that is a daemon stops for good wherever it
        next waits for the interpreter, with whatever it holds.  One of ours that was
        importing (the engine, imported by the idle work's first step) held the import
        lock: the program's finalizers that import, and the interpreter's last
        collection (a module lock's callback takes that lock), then waited forever.
        A gunicorn worker that exited as it began its idle work hung until the
        arbiter's timeout killed it.  So at exit (after the program's own exit
        handlers: ours is registered first) the watcher and the idle work stop, each
        finishing the step it is in: a reload in progress completes.  (A fork child
        inherits this, and closes its own idle work.)
        """
        if not self._closes_at_exit:
            self._closes_at_exit = True
            atexit.register(self._close_as_it_exits)

    def _close_as_it_exits(self) -> None:
        # A reload that runs the module's code now (a long top level) stops first: as
        # under python, the exit does not wait for it (Ctrl-C then took 10 s to end).
        running = self._reloader is not None and self._reloader.end_running()
        self.close(patience=_EXIT_PATIENCE if running else None)

    def close(self, patience: float | None = None) -> None:
        """Stop the watcher (or the idle work), if one runs, once its current step ends
        (waiting at most ``patience`` seconds for a reload in progress, if given)."""
        if self.watcher is not None:
            self.watcher.stop(patience)
            self.watcher = None
        if self._idle_worker is not None:
            self._idle_worker.stop()
            self._idle_worker = None


# Seconds the exit waits for a reload that runs a module's code (a blocking call in its top
# level, which the exception that stops it reaches only as it returns).
_EXIT_PATIENCE = 0.5

# HMR.watch's keywords from before Settings: each is an option of Settings.
_WATCH_KEYWORDS = frozenset({"backend", "poll", "include", "exclude", "watch_data", "clear"})


def _watch_settings(args: tuple[Settings | float, ...], keywords: dict[str, object]) -> Settings:
    """The Settings ``HMR.watch(*args, **keywords)`` was given, or made of its keywords."""
    from .settings import Settings, merge

    if len(args) > 1:
        raise TypeError(f"watch() takes 1 positional argument, not {len(args)}")
    if args and isinstance(args[0], Settings):
        if keywords:
            raise TypeError("watch() takes a Settings or keywords, not both")
        return args[0]
    if args:
        if "debounce_ms" in keywords:
            raise TypeError("watch() got debounce_ms twice")
        keywords["debounce_ms"] = args[0]
    unknown = set(keywords) - _WATCH_KEYWORDS - {"debounce_ms"}
    if unknown:
        raise TypeError(f"watch() got an unexpected keyword argument {sorted(unknown)[0]!r}")
    if "debounce_ms" in keywords:
        keywords["debounce"] = keywords.pop("debounce_ms")
    for globs in ("include", "exclude"):
        value = keywords.get(globs)
        if isinstance(value, Iterable) and not isinstance(value, str):
            keywords[globs] = tuple(value)  # Settings checks that they are strings
    return merge(keywords)
