"""The adaptive debounce: when a burst of saves has ended and can be judged."""

from __future__ import annotations

from .backends import MODIFIED, TOUCHED

__all__ = ["FORCE_AFTER", "MAX_QUIET", "Batch"]

#: The longest quiet time a burst can make the watcher wait for (the debounce
#: grows with the size of a burst up to this, or to the debounce if larger).
MAX_QUIET = 0.1
#: A burst that never settles is judged after this long anyway.
FORCE_AFTER = 2.0


class Batch:
    """Changed paths waiting for the quiet time that ends a burst of saves.

    The quiet time adapts: one file saved waits ``debounce`` after the last
    event; a burst of ``n`` files waits ``debounce * (1 + log2 n)``, and at
    least twice the longest gap seen between its events, so that a checkout
    or a formatter slowed down by a busy machine still lands as one
    transaction (up to ``MAX_QUIET``).
    """

    def __init__(self, debounce: float, reports_close: bool) -> None:
        self.debounce = debounce
        self.reports_close = reports_close
        self.last: dict[str, float] = {}  # path -> time of its last event
        self.writing: set[str] = set()  # written and not closed yet
        self.first = 0.0
        self.latest = 0.0
        self.max_gap = 0.0
        self.hold_until = 0.0

    def add(self, path: str, kind: str, now: float) -> None:
        """An event for ``path`` at ``now``."""
        if not self.last:
            self.first = now
            self.max_gap = 0.0
        else:
            self.max_gap = max(self.max_gap, now - self.latest)
        self.latest = now
        self.last[path] = now
        # Something happened: whatever was waited for is judged again.
        self.hold_until = 0.0
        if kind == MODIFIED:
            if self.reports_close:
                self.writing.add(path)
        elif kind != TOUCHED:
            # Closed, deleted, or created: a file renamed into place is
            # complete, and one created empty is judged by its content (its
            # writes, if any, come as MODIFIED).
            self.writing.discard(path)

    def quiet(self) -> float:
        """How long the burst must be quiet before it is judged."""
        quiet = self.debounce
        count = len(self.last)
        if count > 1:
            import math  # (not at start-up: a burst of several files is rare)

            quiet = max(quiet * (1 + math.log2(count)), 2 * self.max_gap)
        return min(quiet, max(self.debounce, MAX_QUIET))

    def due_in(self, now: float) -> float | None:
        """Seconds until the batch is due (0: now), or None when nothing is pending."""
        if not self.last:
            return None
        if self.hold_until:
            return max(self.hold_until - now, 0.0)
        if now - self.first >= FORCE_AFTER:
            return 0.0
        return max(self.latest + self.quiet() - now, 0.0)

    def take(self) -> tuple[dict[str, float], float, set[str]]:
        """The pending paths (with their last event times), the burst's start, the open ones."""
        taken = (self.last, self.first, self.writing)
        self.last = {}
        self.writing = set()
        self.hold_until = 0.0
        return taken

    def hold(self, taken: tuple[dict[str, float], float, set[str]], until: float) -> None:
        """Put a taken batch back, to be judged again at ``until`` or after the next event."""
        paths, first, writing = taken
        fresh = set(self.last)  # paths with events since the batch was taken
        if self.last:
            # Events came in meanwhile: they are judged (with these) after the
            # usual quiet time; the burst started with the older ones.
            self.first = min(first, self.first)
        else:
            self.first, self.latest, self.max_gap = first, max(paths.values()), 0.0
            self.hold_until = until
        for path, when in paths.items():
            self.last[path] = max(when, self.last.get(path, when))
        self.writing |= writing - fresh
