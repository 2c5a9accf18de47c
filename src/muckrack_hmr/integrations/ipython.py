"""IPython and Jupyter: ``%load_ext muckrack_hmr``, saves applied between cells.

The extension installs the import hook (the roots: the kernel's working
folder, and what ``%hmr watch DIR`` adds), counts the user namespace as a
project importer (its ``from module import name`` bindings follow edits, as
the script's do under the CLI), and starts the CLI's watcher with one
difference: a settled burst of saves is queued, not applied on the
watcher's thread.  IPython's ``pre_run_cell`` event applies what is queued,
on the shell's thread, before the cell runs: never while a cell runs.  When
nothing was saved, that costs a look at two lists.

What the engine logs while a burst is applied (one line per reload, a
failed reload's file, line and traceback) is printed into the output of the
cell that follows.  IPython itself is never imported here: the shell is
typed by what the extension uses of it.
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Protocol

from .. import tracking
from ..project import loaded_modules
from ..watch.watcher import Watcher

if TYPE_CHECKING:
    from ..api import HMR
    from ..reload.reloader import ReloadResult
    from ..watch.bursts import SettledSaves

__all__ = ["HMRExtension", "extension", "load", "unload"]

log = logging.getLogger(__name__)

_PREFIX = "hmr: "
# The longest a cell waits for a save whose file events are still settling (seconds).
_SETTLING = 0.25
# How often a cell waiting for a save looks whether the watcher judged it no change.
_JUDGING_LOOK = 0.005
# The longest a cell waits for the watcher's look at what the last cell imported.
_LOOK = 0.25
# How many reloads `%hmr` lists.
_HISTORY = 10
_USAGE = """\
%hmr                 status: watched folders, tracked modules, last reloads
%hmr reload          apply what changed on disk in the tracked modules
%hmr reload NAME     run module NAME again whole (and what follows from it)
%hmr graph NAME      the modules NAME imports, and those that import it
%hmr watch DIR       count the modules under DIR as project code from now on
%hmr off | %hmr on   stop / resume applying saves between cells"""

# What each command takes, said when it is given something else.
_TAKES = {
    "reload": "takes one module NAME, or nothing",
    "graph": "takes one module NAME",
    "watch": "takes a folder DIR",
    "on": "takes nothing",
    "off": "takes nothing",
}


class _Events(Protocol):
    callbacks: MutableMapping[str, list[Callable[..., object]]]

    def register(self, event: str, function: Callable[..., object]) -> None: ...

    def unregister(self, event: str, function: Callable[..., object]) -> None: ...


class _MagicsManager(Protocol):
    registry: MutableMapping[str, object]


class Shell(Protocol):
    """What the extension uses of IPython's ``InteractiveShell``."""

    events: _Events
    magics_manager: _MagicsManager
    user_ns: MutableMapping[str, object]

    def register_magic_function(
        self, func: Callable[[str], object], magic_kind: str = ..., magic_name: str | None = ...
    ) -> None: ...


class _CellLog(logging.Handler):
    """The library's records, kept until the next cell shows them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: collections.deque[tuple[int, str]] = collections.deque()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.records.append((record.levelno, record.getMessage()))
        except Exception:
            self.handleError(record)

    def show(self) -> None:
        """Print what was logged: warnings and errors on stderr, the rest on stdout."""
        while self.records:
            level, message = self.records.popleft()
            stream = sys.stderr if level >= logging.WARNING else sys.stdout
            print(_PREFIX + message, file=stream)
        sys.stdout.flush()
        sys.stderr.flush()


class _CellWatcher(Watcher):
    """The CLI's watcher, whose settled saves wait for the next cell instead of being applied."""

    def __init__(self, hmr: HMR, hand_over: Callable[[SettledSaves], None]) -> None:
        super().__init__(hmr)
        self._hand_over = hand_over
        #: held by the idle work here and by a reload on the shell's thread
        self.engine = threading.Lock()
        self.waiting = False

    def saves_settled(self, saves: SettledSaves) -> None:
        self._hand_over(saves)

    def idle(self) -> bool | None:
        # Saves wait for the next cell: the engine is left alone until they are applied.
        if self.waiting:
            return False
        with self.engine:
            return super().idle()

    def safe_point(self) -> None:
        """Wait (a little) while another thread imports."""
        self._safe_point.wait()


class HMRExtension:
    """One loaded ``%load_ext muckrack_hmr``: the queue of saves and the ``%hmr`` magic."""

    def __init__(self, shell: Shell, hmr: HMR, installed: bool) -> None:
        self.shell = shell
        self.hmr = hmr
        #: whether load() installed the import hook (unload() then removes it)
        self.installed = installed
        self.enabled = True
        self.history: collections.deque[str] = collections.deque(maxlen=_HISTORY)
        self.log = _CellLog()
        self._saves: list[SettledSaves] = []
        #: how many bursts of saves the watcher handed over so far
        self.received = 0
        self._queue_lock = threading.Lock()
        self._queued = threading.Condition(self._queue_lock)
        self._logger_level: int | None = None
        self._autoreload_warned = False
        self._autoreload_synced = -1
        #: the modules this extension told %autoreload to skip (unload() lets it have them)
        self._skipped: set[str] = set()
        # Where the notebook imports from, as of the last cell: (working folder, sys.path).
        self._places = _places()
        self._following = False
        self.watcher: _CellWatcher | None = None

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        """Show the library's records in cells, hook the cells, start the watcher."""
        if self.hmr.watcher is None:
            # Under the CLI (a watcher runs already), its handler prints them.
            logger = logging.getLogger("muckrack_hmr")
            logger.addHandler(self.log)
            if logger.level == logging.NOTSET:
                self._logger_level = logger.level
                logger.setLevel(logging.INFO)
        self.hmr.add_result_hook(self._remember)
        events = self.shell.events
        events.register("pre_run_cell", self.before_cell)
        # First in line: %autoreload (loaded earlier, maybe) must see our modules skipped.
        callbacks = events.callbacks["pre_run_cell"]
        callbacks.remove(self.before_cell)
        callbacks.insert(0, self.before_cell)
        self.shell.register_magic_function(self.magic, "line", "hmr")
        self.hmr.project.before_new_folder = self._import_from_a_new_place
        if self.hmr.watcher is None:
            watcher = _CellWatcher(self.hmr, self._queue)
            watcher.start()
            self.hmr.watcher = self.watcher = watcher

    def stop(self) -> None:
        """Undo :meth:`start` (the ``%hmr`` magic stays, and says so)."""
        self.enabled = False
        self.shell.events.unregister("pre_run_cell", self.before_cell)
        if self.hmr.project.before_new_folder == self._import_from_a_new_place:
            self.hmr.project.before_new_folder = None
        self._release_autoreload()
        if self.watcher is not None and self.hmr.watcher is self.watcher:
            self.hmr.close()
        self.watcher = None
        self.hmr.remove_result_hook(self._remember)
        logger = logging.getLogger("muckrack_hmr")
        logger.removeHandler(self.log)
        if self._logger_level is not None:
            logger.setLevel(self._logger_level)

    # -- saves: queued by the watcher, applied before a cell -----------------------

    def _queue(self, saves: SettledSaves) -> None:
        with self._queued:
            self._saves.append(saves)
            self.received += 1
            if self.watcher is not None:
                self.watcher.waiting = True
            self._queued.notify_all()

    def pending(self) -> int:
        """How many bursts of saves wait for the next cell."""
        return len(self._saves)

    def wait_for_saves(self, timeout: float, received: int | None = None) -> bool:
        """Wait until ``received`` bursts of saves have come since the extension loaded
        (default: one more than now), up to ``timeout`` seconds; whether they have.

        A burst that came is queued for the next cell, or applied already.
        """
        deadline = time.monotonic() + timeout
        with self._queued:
            wanted = self.received + 1 if received is None else received
            while self.received < wanted:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._queued.wait(left)
            return True

    def before_cell(self, info: object = None) -> None:
        """IPython's ``pre_run_cell``: apply the saves queued since the last cell."""
        self.follow_the_notebook()
        self._check_autoreload()
        watcher = self.watcher
        if watcher is not None and self.enabled:
            # A module the last cell imported is watched from the pipeline's next
            # look: a save made since its import is found by that look.  Between
            # cells the kernel rests: the watcher's start-up is over.
            watcher.hurry()
            watcher.pipeline.look_now(_LOOK)
            # A save the last cell made (``%%writefile``), or made just before this
            # cell was sent: its file events may still sit in the OS's queue.
            watcher.pipeline.catch_up()
        if watcher is not None and self.enabled:
            # A save made a moment ago is still settling, or being judged: this cell
            # waits for it (for its burst, or for it to be judged no change).
            deadline = time.monotonic() + _SETTLING
            with self._queued:
                while not self._saves and watcher.pipeline.pending():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._queued.wait(min(left, _JUDGING_LOOK))
        if self._saves and self.enabled:
            self.apply()
        if self.log.records:
            self.log.show()

    def apply(self) -> None:
        """Apply every queued burst, as one transaction, on this (the shell's) thread."""
        with self._queued:
            taken, self._saves = self._saves, []
        if not taken:
            return
        saves = taken[0]
        for later in taken[1:]:
            saves = saves.then(later)
        watcher = self.watcher
        if watcher is None:
            self._reload(saves)
            return
        watcher.safe_point()
        with watcher.engine:
            try:
                failed = self._reload(saves)
            except KeyboardInterrupt as interrupt:
                # The kernel interrupted while the new code ran (a long top level): that
                # module is back as it was.  Said here, not as IPython's "Error in
                # callback"; the save is not applied, and saving it again applies it.
                self._interrupted(saves, interrupt)
                return
            finally:
                with self._queued:
                    watcher.waiting = bool(self._saves)
        for save in saves.modules:
            # The same broken content saved again is not applied again.
            watcher.pipeline.reload_failed(save, save.name in failed)

    def _interrupted(self, saves: SettledSaves, interrupt: KeyboardInterrupt) -> None:
        names = saves.names
        where = ""
        paths = {save.path for save in saves.modules}
        tb = interrupt.__traceback__
        while tb is not None:
            if os.path.realpath(tb.tb_frame.f_code.co_filename) in paths:
                where = f" at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
            tb = tb.tb_next
        print(
            f"{_PREFIX}reloading {', '.join(names)} was interrupted{where}; the old code "
            "keeps running (save again to apply it)",
            file=sys.stderr,
        )
        stamp = time.strftime("%H:%M:%S")
        self.history.append(f"{stamp} interrupted the reload of {', '.join(names)}")

    def _reload(self, saves: SettledSaves) -> set[str]:
        """Apply one burst; the modules that failed, or whose edit was refused."""
        result = self.hmr.reloader.reload_result(
            saves.names, force=saves.forced, sources=saves.sources()
        )
        return set(result.failed) | {refusal.module for refusal in result.refused}

    def _remember(self, result: ReloadResult) -> None:
        """A result hook: every reload, whoever made it (the CLI's watcher too)."""
        stamp = time.strftime("%H:%M:%S")
        summary = result.summary()
        if summary:
            self.history.append(f"{stamp} reloaded {summary} in {result.total_ms:.1f} ms")
        for name in sorted(result.failed):
            self.history.append(f"{stamp} failed to reload {name}; the old code keeps running")

    def follow_the_notebook(self, *, since_start: bool = False) -> None:
        """A project folder the notebook moved to (``%cd ..`` from ``notebooks/``), or a
        folder it put on ``sys.path`` (``sys.path.append("../src")``), counts as project
        code from now on, as ``%hmr watch`` would make it (the modules under it imported
        from now on).  A working folder counts if it looks like a project's (a
        ``pyproject.toml``, ``setup.py``, ``setup.cfg`` or ``.git``): ``%cd ~`` makes no
        home folder project code.  ``since_start``: every folder on ``sys.path`` now
        counts as put there (at ``%load_ext``; the interpreter's own, the standard
        library and site-packages, never count)."""
        places = _places()
        if places is None or (places == self._places and not since_start):
            return
        before, self._places = self._places, places
        cwd, path = places
        if since_start and before is not None:
            before = (before[0], ())
        known = set(before[1]) if before is not None else set(path)
        moved = before is None or cwd != before[0]
        new = [cwd] if moved and _looks_like_a_project(cwd) else []
        new += [entry or cwd for entry in path if entry not in known]
        project = self.hmr.project
        for folder in new:
            real = os.path.realpath(folder)
            if project.covers(real) or not project.may_hold_projects(real):
                continue
            if os.path.isdir(real):
                self.watch(real)

    def _import_from_a_new_place(self) -> None:
        """An import from a folder not judged yet: one the notebook put on ``sys.path`` in
        the cell that imports from it (``sys.path.insert(0, "../src")``, ``import mylib``)
        counts from this import on, so that the module's source is kept as it runs.
        Judged at the next cell, the file as it was then counted as the code that runs:
        a save made before that cell was never applied, and nothing said so."""
        if self._following or not self.enabled:
            return
        self._following = True
        try:
            self.follow_the_notebook()
        finally:
            self._following = False

    # -- %autoreload ---------------------------------------------------------------

    def _check_autoreload(self) -> None:
        """With ``%autoreload`` on too: say so once, and have it skip our modules."""
        magics = self.shell.magics_manager.registry.get("AutoreloadMagics")
        reloader = getattr(magics, "_reloader", None)
        if reloader is None or not getattr(reloader, "enabled", False) or not self.enabled:
            return
        if not self._autoreload_warned:
            self._autoreload_warned = True
            print(
                f"{_PREFIX}%autoreload is on too: turn one of them off "
                "(%autoreload off, or %unload_ext muckrack_hmr); meanwhile the project's "
                "modules are reloaded by muckrack_hmr only",
                file=sys.stderr,
            )
        loaded = len(self.hmr.project.loaded)
        if loaded == self._autoreload_synced:
            return  # no project module loaded since the last look
        self._autoreload_synced = loaded
        skip = getattr(reloader, "skip_modules", None)
        if isinstance(skip, dict):
            for name in self.hmr.tracked_modules():
                if name not in skip:
                    skip[name] = True
                    self._skipped.add(name)

    def _release_autoreload(self) -> None:
        """Undo what :meth:`_check_autoreload` added to ``%autoreload``'s skipped modules."""
        magics = self.shell.magics_manager.registry.get("AutoreloadMagics")
        skip = getattr(getattr(magics, "_reloader", None), "skip_modules", None)
        if isinstance(skip, dict):
            for name in self._skipped:
                skip.pop(name, None)
        self._skipped.clear()

    # -- %hmr ------------------------------------------------------------------------

    def magic(self, line: str) -> None:
        """``%hmr [reload NAME | graph NAME | watch DIR | on | off]``."""
        if extension() is not self:
            print(f"{_PREFIX}not loaded (%load_ext muckrack_hmr)", file=sys.stderr)
            return
        words = line.split()
        command = words[0] if words else ""
        if not words:
            self.show_status()
        elif command in ("on", "off") and len(words) == 1:
            if self.watcher is None:
                # The command line's watcher applies saves on its own thread, as it
                # does for the program: there is nothing between cells to hold back.
                print(
                    f"{_PREFIX}%hmr {command} has no effect under python -m muckrack.hmr: "
                    "its watcher applies each save as it comes",
                    file=sys.stderr,
                )
                return
            self.enabled = command == "on"
            print(f"{_PREFIX}{'on' if self.enabled else 'off: saves wait until %hmr on'}")
        elif command == "reload" and len(words) == 1:
            self.reload_changed()
        elif command == "reload" and len(words) == 2:
            self.reload(words[1])
        elif command == "graph" and len(words) == 2:
            self.show_graph(words[1])
        elif command == "watch" and len(words) >= 2:
            self.watch(line.split(None, 1)[1].strip())
        elif command in _TAKES:
            print(f"{_PREFIX}%hmr {line.strip()}: {_TAKES[command]}\n{_USAGE}", file=sys.stderr)
        else:
            print(f"{_PREFIX}unknown: %hmr {line.strip()}\n{_USAGE}", file=sys.stderr)

    def show_status(self) -> None:
        """Print the watched folders, the tracked modules and the last reloads."""
        from .._core import USING_EXTENSION

        core = "compiled core" if USING_EXTENSION else "pure-Python core"
        state = "on" if self.enabled else "off"
        print(f"muckrack_hmr: {state} ({core}), {self.pending()} burst(s) of saves waiting")
        print("watched folders: " + ", ".join(self.hmr.project.roots))
        modules = [name for name in self.hmr.tracked_modules() if name != "__main__"]
        print(f"tracked modules ({len(modules)}): " + (", ".join(modules) or "none yet"))
        print("last reloads:" + ("".join(f"\n  {entry}" for entry in self.history) or " none"))

    def reload(self, name: str) -> None:
        """``%hmr reload NAME``: run NAME again whole, and what follows from it."""
        if self._saves and self.enabled:
            self.apply()  # (off: they wait for %hmr on, as they do for the next cell)
        result = self.hmr.reloader.reload_result([name], force=True)  # (remembered: a hook)
        if not result.reloaded and not result.failed and not self.log.records:
            # (Said once: the reload says why it ran nothing, if it knows.)
            print(f"{_PREFIX}nothing reloaded", file=sys.stderr)
        self.log.show()

    def reload_changed(self) -> None:
        """``%hmr reload``: apply what changed on disk since the code that runs, in every
        tracked module (saves the watcher has not seen, or saves held by ``%hmr off``)."""
        held = bool(self._saves)
        if held:
            self.apply()
        names = [name for name in self.hmr.tracked_modules() if name != "__main__"]
        result = self.hmr.reloader.reload_result(names)
        if not result.reloaded and not result.failed and not held:
            print(
                f"{_PREFIX}nothing changed on disk since the code that runs "
                "(%hmr reload NAME runs a module again whole)",
                file=sys.stderr,
            )
        self.log.show()

    def show_graph(self, name: str) -> None:
        """``%hmr graph NAME``: its dependencies and dependents, direct and indirect."""
        hmr = self.hmr
        if not hmr.tracker.is_tracked(name):
            print(f"{_PREFIX}{name} is not a tracked project module", file=sys.stderr)
            return
        for title, direct, every in (
            ("imports", hmr.dependencies_of(name), hmr.dependencies_of(name, transitive=True)),
            ("imported by", hmr.dependents_of(name), hmr.dependents_of(name, transitive=True)),
        ):
            indirect = [module for module in every if module not in direct and module != name]
            print(f"{name} {title}: {', '.join(direct) or 'nothing'}")
            if indirect:
                print(f"  and through them: {', '.join(indirect)}")

    def watch(self, folder: str) -> None:
        """``%hmr watch DIR``: the modules under DIR count as project code from now on."""
        folder = os.path.expanduser(folder)
        if not os.path.isdir(folder):
            print(f"{_PREFIX}{folder!r} is not a folder", file=sys.stderr)
            return
        if os.path.realpath(folder) in self.hmr.project.roots:
            print(f"{_PREFIX}already watching {os.path.realpath(folder)}", file=sys.stderr)
            return
        real = self.hmr.project.add_root(folder)
        if self.watcher is not None:
            self.watcher.pipeline.watch(real)
        # Modules imported from it already (``sys.path.append(...)`` and the import in
        # one cell, before this look) were judged no project code: judged again, they
        # are tracked from now on, their files as they are now counting as what runs,
        # as for modules imported before %load_ext.
        under = real.rstrip(os.sep) + os.sep
        already = [
            name
            for name, module in loaded_modules().items()
            if isinstance(filename := _file_of(module), str)
            and os.path.realpath(filename).startswith(under)
            # (Not one being imported now: its source is kept as it is loaded.)
            and not getattr(getattr(module, "__spec__", None), "_initializing", False)
        ]
        tracker = self.hmr.tracker
        for name in already:
            tracker.forget_verdict(name)
            # Judged now, not at its next import (a module that imports nothing
            # never has one): its file as it is now is its baseline, so that the
            # watcher takes a save made from here on for an edit.  Judged later (at
            # the first look at the tracked modules), a save made meanwhile was
            # taken for the code that runs, and never applied.
            tracker.is_tracked(name)
        if already:
            self.hmr.remember_sources()
        print(f"{_PREFIX}watching {real} (modules imported from it are tracked)")


def _file_of(module: object) -> object:
    """A module's ``__file__``, read from its namespace by type: a lazy module is not
    loaded by the look."""
    try:
        namespace = object.__getattribute__(module, "__dict__")
    except AttributeError:
        return None
    return namespace.get("__file__") if isinstance(namespace, dict) else None


_PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")


def _looks_like_a_project(folder: str) -> bool:
    return any(os.path.exists(os.path.join(folder, marker)) for marker in _PROJECT_MARKERS)


def _places() -> tuple[str, tuple[str, ...]] | None:
    """The working folder and ``sys.path`` (None: the working folder is gone)."""
    try:
        return os.getcwd(), tuple(sys.path)
    except OSError:
        return None


_loaded: list[HMRExtension] = []


def extension() -> HMRExtension | None:
    """The loaded extension, if any."""
    return _loaded[0] if _loaded else None


def load(shell: Shell) -> HMRExtension:
    """``%load_ext muckrack_hmr``: install the hook, queue saves, apply them between cells."""
    if _loaded:
        return _loaded[0]
    hmr = tracking.active()
    installed = hmr is None
    if hmr is None:
        hmr = tracking.install([os.getcwd()])
    namespace = shell.user_ns
    name = namespace.get("__name__")
    if isinstance(name, str):
        hmr.project.add_importer(name, namespace)
        # A verdict taken before (under the CLI, IPython's own ``__main__`` is no
        # project module) would leave the notebook's bindings unrecorded.
        hmr.tracker.forget_verdict(name)
    # Project modules imported before the extension (``ipython -i app.py``, a cell
    # run before ``%load_ext``) are classified now: their files' state now is what
    # the watcher compares a save with, and their sources are kept if still as
    # they were.  Classified later (at the next cell), a save made meanwhile would
    # be taken for what runs, and never applied.
    for root in _roots_unloaded:
        hmr.project.add_root(root)  # (the folders watched before %unload_ext)
    _roots_unloaded.clear()
    if any(module != "__main__" for module in hmr.tracked_modules()):
        hmr.remember_sources()
    loaded = HMRExtension(shell, hmr, installed)
    loaded.start()
    _loaded.append(loaded)
    # A folder the notebook put on ``sys.path`` before this (``sys.path.append("../src")``
    # in the first cell) is followed as one put there later is.
    loaded.follow_the_notebook(since_start=True)
    _catch_up(loaded)
    if loaded.watcher is None:
        print(f"{_PREFIX}a watcher runs already: it applies saves on its thread, not between cells")
    return loaded


def unload(shell: Shell) -> None:
    """``%unload_ext muckrack_hmr``: stop watching, remove the hook if load() installed it."""
    if not _loaded:
        return
    loaded = _loaded.pop()
    loaded.stop()
    if loaded.installed and tracking.active() is loaded.hmr:
        # What each module runs, for a %load_ext again: a save made meanwhile is applied
        # then (its file as it was at the load was taken for the code that runs).
        hmr = loaded.hmr
        _roots_unloaded[:] = hmr.project.roots
        _ran_unloaded.clear()
        _ran_unloaded.update(
            (name, (id(module), source))
            for name in hmr.tracked_modules()
            if (module := sys.modules.get(name)) is not None
            and (source := hmr.sources.ran(name)) is not None
        )
        tracking.uninstall()


# What the extension unloaded last knew: its roots, and each module's (id, source it ran).
_roots_unloaded: list[str] = []
_ran_unloaded: dict[str, tuple[int, bytes]] = {}


def _catch_up(loaded: HMRExtension) -> None:
    """``%load_ext`` after ``%unload_ext``: the modules saved meanwhile run their files'
    code now, each edit applied as a save is (incrementally, the state kept)."""
    ran = dict(_ran_unloaded)
    _ran_unloaded.clear()
    hmr = loaded.hmr
    changed = []
    for name, (identity, source) in ran.items():
        module = sys.modules.get(name)
        filename = _file_of(module)
        if module is None or id(module) != identity or not isinstance(filename, str):
            continue
        try:
            with open(filename, "rb") as handle:
                now = handle.read()
        except OSError:
            continue
        if now != source and hmr.tracker.is_tracked(name):
            hmr.sources.remember(name, source)
            changed.append(name)
    if changed:
        hmr.reloader.reload_result(changed)
        loaded.log.show()
