"""The supervising process's consumer of settled saves: its own reload, and the tree's.

It takes the watcher's place as the save pipeline's consumer once the
program has made a process: each burst is broadcast first (the workers apply
it while this process does), applied here by the watcher as before, and the
answers are gathered into one :class:`~.outcomes.SpreadResult`, logged as
one line (each error once, with its PIDs) and handed to the hooks.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import first_line, location_of
from .locks import reload_lock
from .outcomes import CAPTURE, ProcessOutcome, SpreadResult, outcome_message

if TYPE_CHECKING:
    from ..api import HMR
    from ..reload.refusals import Refusal
    from ..reload.reloader import ReloadResult
    from ..watch.bursts import SettledSaves
    from ..watch.watcher import Watcher
    from .hub import Hub

__all__ = ["ANSWER_PATIENCE", "Supervisor", "add_spread_hook", "remove_spread_hook"]

log = logging.getLogger(__name__)

#: How long the supervisor waits for every process's answer to a save (seconds):
#: a process waits up to IMPORT_PATIENCE for its safe point, then reloads.
ANSWER_PATIENCE = 10.0

SpreadHook = Callable[[SpreadResult], object]

_hooks: list[SpreadHook] = []


def add_spread_hook(hook: SpreadHook) -> None:
    """Call ``hook(result)`` in the supervising process after each save reached the workers.

    ``result`` is a :class:`~.outcomes.SpreadResult`: every process's
    outcome of the save (this process's too), and the PIDs that did not answer.
    """
    _hooks.append(hook)


def remove_spread_hook(hook: SpreadHook) -> None:
    """Stop calling a hook added with :func:`add_spread_hook` (ValueError if it was not)."""
    _hooks.remove(hook)


class Supervisor:
    """Applies each burst of saves here and in every process connected to ``hub``."""

    #: A failed edit saved back is a save to spread (the pipeline asks): the workers
    #: that failed it too are fine again only once they are told.
    spreads_saves = True

    def __init__(self, hmr: HMR, watcher: Watcher, hub: Hub) -> None:
        self.hmr = hmr
        self.watcher = watcher
        self.hub = hub
        hub.on_loaded = self.loaded_elsewhere

    def loaded_elsewhere(self, modules: list[object]) -> None:
        """Project modules a worker loaded: the watcher watches their files too (hub's thread)."""
        project = self.hmr.project
        new = False
        for entry in modules:
            if not isinstance(entry, list) or len(entry) != 3:
                continue
            path, name, stat = entry
            if not isinstance(path, str) or not isinstance(name, str) or path in project.loaded:
                continue
            new = True
            if isinstance(stat, list) and len(stat) == 2:
                project.note_read(path, name, (int(stat[0]), int(stat[1])))
            else:
                project.loaded[path] = (name, None)
        if new:
            # Watched now, with the content the worker read: a save in the next second
            # is then judged from its own event.
            self.watcher.pipeline.look_soon()

    # The pipeline's consumer: what the watcher did, but for the whole tree.

    def events_never_came(self, message: str) -> None:
        self.watcher.events_never_came(message)

    def idle(self) -> bool | None:
        return self.watcher.idle()

    def busy_share(self) -> float:
        return self.watcher.busy_share()

    def saves_settled(self, saves: SettledSaves) -> None:
        """Broadcast the burst, apply it here, gather the answers, log one line."""
        self.watcher.tell_settling(saves)
        self.watcher.clear_screen()
        seq, pids = self.hub.broadcast(saves.names, saves.forced, saves.sources())
        # The workers wait for their own safe points meanwhile.
        self.watcher.safe_point()
        here = self._here(saves)
        if not pids:
            # Nobody to tell (the workers are gone): the single process's path.
            with reload_lock(self.hmr):
                if here.names:
                    self.watcher.apply(here)
                self.hub.applied = seq
            if not here.names and saves.names:
                _held_by_none(saves)
            return
        with CAPTURE.collecting() as records, reload_lock(self.hmr):
            result = self.watcher.apply(here) if here.names else _nothing()
            self.hub.applied = seq
        mine = ProcessOutcome.from_message(outcome_message(seq, os.getpid(), result, records))
        answers, silent = self.hub.collect(seq, pids, ANSWER_PATIENCE)
        spread = SpreadResult(
            seq=seq,
            outcomes=(mine, *(ProcessOutcome.from_message(answer) for answer in answers)),
            silent=tuple(silent),
        )
        for outcome in spread.outcomes:
            failed = ", ".join(outcome.failed)
            done = outcome.summary or (
                f"{failed} failed" if failed else "refused" if outcome.refused else "nothing to run"
            )
            log.debug("process %d: %s", outcome.pid, done)
        lines = spread.lines()
        for level, text in lines:
            log.log(level, "%s", text)
        if not lines and saves.names:
            _held_by_none(saves)
        self._refused_elsewhere(spread, saves, here)
        for hook in list(_hooks):
            try:
                hook(spread)
            except Exception:
                log.exception("the hook %r raised", hook)
        sys.stderr.flush()

    def _refused_elsewhere(
        self, spread: SpreadResult, saves: SettledSaves, here: SettledSaves
    ) -> None:
        """Tell the pipeline's listeners (``--restart-on-refused``) of the edits the workers
        refused in modules this process has not loaded: its own go through its reload."""
        listeners = self.watcher.pipeline.refused_elsewhere
        paths = {save.name: save.path for save in saves.modules if save.name not in here.names}
        told: set[Refusal] = set()
        for outcome in spread.outcomes:
            for refusal in outcome.refused:
                path = paths.get(refusal.module)
                if path is None or refusal in told:
                    continue
                told.add(refusal)
                for listener in list(listeners):
                    try:
                        listener(refusal, path)
                    except Exception:
                        log.exception("the listener %r raised", listener)

    def _here(self, saves: SettledSaves) -> SettledSaves:
        """The part of ``saves`` for this process: the modules it has loaded.

        A module only the workers loaded is not imported here; its save is
        now the content the watcher compares the next save with.
        """
        loaded = sys.modules
        names = tuple(name for name in saves.names if name in loaded)
        if len(names) == len(saves.names):
            return saves
        for save in saves.modules:
            if save.name not in loaded:
                self.watcher.pipeline.applied_elsewhere(save)
        return replace(
            saves, names=names, forced=frozenset(name for name in saves.forced if name in loaded)
        )


def _held_by_none(saves: SettledSaves) -> None:
    """Workers that import the module come and go (a pool's maxtasksperchild): none
    holds it now.  One line all the same, as for every save; a warning for a file that
    does not compile (the next worker to import it fails)."""
    broken = []
    for save in saves.modules:
        try:
            compile(save.source, save.path, "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            where = location_of(exc) if isinstance(exc, SyntaxError) else save.path
            broken.append(save.name)
            log.warning(
                "saved %s: it does not compile (%s: %s: %s); no process has it loaded now, "
                "the next to import it fails",
                save.name,
                where,
                type(exc).__name__,
                first_line(exc),
            )
    fine = [name for name in saves.names if name not in broken]
    if fine:
        log.info(
            "saved %s: no process has it loaded now; the next to import it gets the new code",
            ", ".join(fine),
        )


def _nothing() -> ReloadResult:
    from ..reload.reloader import ReloadResult

    return ReloadResult()
