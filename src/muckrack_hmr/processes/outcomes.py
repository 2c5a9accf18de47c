"""What one process did with one save, and the one line the supervisor logs for all of them.

Each process applies a save with the engine's own logging caught
(:class:`RecordCapture`): the engine's "reloaded ..." line and its errors
would otherwise be printed once per process.  The supervisor gathers every
process's :class:`ProcessOutcome` into a :class:`SpreadResult`, logs one
line for the save, and each warning or error once, with the PIDs it came
from.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..reload.refusals import Refusal

if TYPE_CHECKING:
    from ..reload.reloader import ReloadResult
    from .channel import Message

__all__ = ["CAPTURE", "ProcessOutcome", "RecordCapture", "SpreadResult", "outcome_message"]

log = logging.getLogger(__name__)

# The engine's line for a reload, replaced by the supervisor's line for the tree.
_RELOAD_LINE = ("muckrack_hmr.reload.reloader", "reloaded %s in %.1f ms")
_PLAIN = logging.Formatter("%(message)s")


class RecordCapture(logging.Filter):
    """A filter on the library's handlers: keeps, instead of printing, one thread's records."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._collecting: dict[int, list[logging.LogRecord]] = {}

    def install(self) -> None:
        """Filter every handler of the ``muckrack_hmr`` logger (again: new handlers too)."""
        for handler in logging.getLogger("muckrack_hmr").handlers:
            if self not in handler.filters:
                handler.addFilter(self)

    def reset(self) -> None:
        """After a fork: the threads that were collecting are not in this process."""
        self._lock = threading.Lock()
        self._collecting = {}

    @contextlib.contextmanager
    def collecting(self) -> Iterator[list[logging.LogRecord]]:
        """The records the calling thread logs inside the block, kept instead of printed."""
        records: list[logging.LogRecord] = []
        ident = threading.get_ident()
        self.install()
        with self._lock:
            self._collecting[ident] = records
        try:
            yield records
        finally:
            with self._lock:
                self._collecting.pop(ident, None)

    def filter(self, record: logging.LogRecord) -> bool:
        records = self._collecting.get(record.thread or 0)
        if records is None:
            return True
        if not records or records[-1] is not record:  # one record, several handlers
            records.append(record)
        return False


#: The one capture of this process.
CAPTURE = RecordCapture()


def outcome_message(
    seq: int, pid: int, result: ReloadResult, records: list[logging.LogRecord]
) -> Message:
    """A process's outcome of save ``seq``, as a channel message."""
    # What the engine logged after its line ("x recovered") comes after the tree's line.
    before: list[tuple[int, str]] = []
    after: list[tuple[int, str]] = []
    kept = before
    for record in records:
        if (record.name, record.msg) == _RELOAD_LINE:
            kept = after
        else:
            kept.append((record.levelno, _PLAIN.format(record)))
    return {
        "op": "done",
        "seq": seq,
        "pid": pid,
        "reloaded": list(result.reloaded),
        "recovered": list(result.recovered),
        "summary": result.summary(),
        "patched": len(result.patched),
        "failed": {name: f"{type(exc).__name__}: {exc}" for name, exc in result.failed.items()},
        "refused": [
            [refusal.kind, refusal.module, refusal.what, refusal.fix, refusal.location]
            for refusal in result.refused
        ],
        "ms": result.total_ms,
        "records": before,
        "after": after,
    }


@dataclass(frozen=True)
class ProcessOutcome:
    """What one process did with one save."""

    pid: int
    reloaded: tuple[str, ...]
    """Modules whose code ran again there."""
    summary: str
    """The engine's summary (``a (+2 dependents, 3 patched)``), "" if nothing ran."""
    patched: int
    failed: dict[str, str]
    """Module -> the error (``SyntaxError: ...``) of each module that failed there."""
    ms: float
    records: tuple[tuple[int, str], ...]
    """(level, text) of what the engine logged there before its "reloaded" line."""
    refused: tuple[Refusal, ...] = ()
    """The edits that need a restart there (nothing of their modules ran)."""
    recovered: tuple[str, ...] = ()
    """Modules whose failed or refused edit the save undid there (the file is back to
    the code that runs: nothing ran)."""
    after: tuple[tuple[int, str], ...] = ()
    """(level, text) of what the engine logged there after its "reloaded" line."""

    @classmethod
    def from_message(cls, message: Message) -> ProcessOutcome:
        """The outcome a ``done`` message carries."""
        failed = message.get("failed")
        records, after = message.get("records"), message.get("after")
        reloaded = message.get("reloaded")
        recovered = message.get("recovered")
        refused = message.get("refused")
        return cls(
            pid=int(str(message.get("pid", 0))),
            reloaded=tuple(str(name) for name in reloaded) if isinstance(reloaded, list) else (),
            summary=str(message.get("summary", "")),
            patched=int(str(message.get("patched", 0))),
            failed={str(k): str(v) for k, v in failed.items()} if isinstance(failed, dict) else {},
            ms=float(str(message.get("ms", 0.0))),
            records=_records(records),
            after=_records(after),
            refused=tuple(
                Refusal(*(str(part) for part in fields))
                for fields in (refused if isinstance(refused, list) else ())
                if isinstance(fields, list) and 4 <= len(fields) <= 5
            ),
            recovered=(
                tuple(str(name) for name in recovered) if isinstance(recovered, list) else ()
            ),
        )

    @property
    def did_something(self) -> bool:
        """Did the save run, fail, refuse or mend anything here (not: the module is not
        loaded here)?"""
        return bool(self.reloaded or self.failed or self.refused or self.recovered)


@dataclass(frozen=True)
class SpreadResult:
    """One save across the tree of processes: every process's outcome (the supervisor's too)."""

    seq: int
    outcomes: tuple[ProcessOutcome, ...]
    silent: tuple[int, ...] = ()
    """PIDs that did not answer in time."""

    @property
    def slowest_ms(self) -> float:
        """The longest any process took to apply the save."""
        return max((outcome.ms for outcome in self.outcomes), default=0.0)

    def lines(self) -> list[tuple[int, str]]:
        """(level, text) to log: each distinct record once, the line for the save, then
        what the processes logged after their own line ("x recovered")."""
        active = [outcome for outcome in self.outcomes if outcome.did_something]
        lines = _once_each([(outcome.pid, outcome.records) for outcome in active])
        groups: dict[str, list[ProcessOutcome]] = {}
        for outcome in active:
            if outcome.reloaded:
                groups.setdefault(outcome.summary, []).append(outcome)
        for summary, members in groups.items():
            name, _, details = summary.partition(" (")
            extra = f" ({details}" if details else ""
            line = (
                f"reloaded {name} in {_count(len(members))}{extra} "
                f"in {max(member.ms for member in members):.1f} ms (slowest)"
            )
            if len(groups) > 1 or len(members) < len(active):
                line += f" [{_pids(members)}]"
            lines.append((logging.INFO, line))
        lines += _once_each([(outcome.pid, outcome.after) for outcome in active])
        failing = [outcome for outcome in active if outcome.failed]
        if failing and len(failing) < len(active):
            lines.append(
                (
                    logging.WARNING,
                    f"the processes disagree: the save failed in {_count(len(failing))} "
                    f"({_pids(failing)}) and applied in {_count(len(active) - len(failing))}",
                )
            )
        if self.silent:
            lines.append(
                (
                    logging.WARNING,
                    f"no answer from {_count(len(self.silent))} "
                    f"(pid {', '.join(map(str, self.silent))}): still busy, or stuck",
                )
            )
        return lines


def _records(value: object) -> tuple[tuple[int, str], ...]:
    return tuple(
        (int(level), str(text)) for level, text in (value if isinstance(value, list) else ())
    )


def _once_each(
    logged: list[tuple[int, tuple[tuple[int, str], ...]]],
) -> list[tuple[int, str]]:
    """Each distinct (level, text) that the processes (pid, records) logged, once, with
    the PIDs it came from."""
    seen: dict[tuple[int, str], list[int]] = {}
    for pid, records in logged:
        for record in records:
            seen.setdefault(record, []).append(pid)
    lines = []
    for (level, text), pids in seen.items():
        first, newline, rest = text.partition("\n")
        lines.append((level, f"{first} {_where(pids, len(logged))}{newline}{rest}"))
    return lines


def _count(number: int) -> str:
    return f"{number} process{'es' if number != 1 else ''}"


def _pids(outcomes: list[ProcessOutcome]) -> str:
    pids = sorted(outcome.pid for outcome in outcomes)
    return f"pid{'s' if len(pids) != 1 else ''} {', '.join(map(str, pids))}"


def _where(pids: list[int], active: int) -> str:
    listed = ", ".join(map(str, sorted(pids)))
    if len(pids) == active == 1:
        return f"(in the one process: pid {listed})"
    if len(pids) == active:
        return f"(in all {_count(active)}: pids {listed})"
    return f"(in {_count(len(pids))} of {active}: pid{'s' if len(pids) != 1 else ''} {listed})"
