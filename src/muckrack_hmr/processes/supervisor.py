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
from typing import TYPE_CHECKING

from .outcomes import CAPTURE, ProcessOutcome, SpreadResult, outcome_message

if TYPE_CHECKING:
    from ..api import HMR
    from ..watch.bursts import SettledSaves
    from ..watch.watcher import Watcher
    from .hub import Hub

__all__ = ["ANSWER_PATIENCE", "Supervisor"]

log = logging.getLogger(__name__)

#: How long the supervisor waits for every process's answer to a save (seconds):
#: a process waits up to IMPORT_PATIENCE for its safe point, then reloads.
ANSWER_PATIENCE = 10.0

SpreadHook = Callable[[SpreadResult], object]


class Supervisor:
    """Applies each burst of saves here and in every process connected to ``hub``."""

    def __init__(self, hmr: HMR, watcher: Watcher, hub: Hub) -> None:
        self.hmr = hmr
        self.watcher = watcher
        self.hub = hub
        #: called with each save's result across the tree (see ``add_hook``)
        self.hooks: list[SpreadHook] = []

    # The pipeline's consumer: what the watcher did, but for the whole tree.

    def events_never_came(self, message: str) -> None:
        self.watcher.events_never_came(message)

    def idle(self) -> bool:
        return self.watcher.idle()

    def saves_settled(self, saves: SettledSaves) -> None:
        """Broadcast the burst, apply it here, gather the answers, log one line."""
        from .joining import reload_lock

        self.watcher.clear_screen()
        seq, pids = self.hub.broadcast(saves.names, saves.forced, saves.sources())
        # The workers wait for their own safe points meanwhile.
        self.watcher.safe_point.wait()
        if not pids:
            # Nobody to tell (the workers are gone): the single process's path.
            with reload_lock(self.hmr):
                self.watcher.apply(saves)
                self.hub.applied = seq
            return
        with CAPTURE.collecting() as records, reload_lock(self.hmr):
            result = self.watcher.apply(saves)
            self.hub.applied = seq
        here = ProcessOutcome.from_message(outcome_message(seq, os.getpid(), result, records))
        answers, silent = self.hub.collect(seq, pids, ANSWER_PATIENCE)
        spread = SpreadResult(
            seq=seq,
            outcomes=(here, *(ProcessOutcome.from_message(answer) for answer in answers)),
            silent=tuple(silent),
        )
        for outcome in spread.outcomes:
            log.debug("process %d: %s", outcome.pid, outcome.summary or "nothing to run")
        for level, text in spread.lines():
            log.log(level, "%s", text)
        for hook in list(self.hooks):
            try:
                hook(spread)
            except Exception:
                log.exception("the hook %r raised", hook)
        sys.stderr.flush()
