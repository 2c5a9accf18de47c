"""The program's garbage is collected in the program's threads, never in ours (the
collector's callback of :func:`muckrack_hmr.collector.ours`)."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from muckrack_hmr import collector


class _Resource:
    """Garbage in a reference cycle whose finalizer records the thread it runs in."""

    ran: ClassVar[list[str]] = []

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        _Resource.ran.append(threading.current_thread().name)


@pytest.fixture
def ran() -> Iterator[list[str]]:
    gc.collect()
    _Resource.ran = []
    yield _Resource.ran
    gc.collect()


def _in_a_thread_of_ours() -> None:
    """Allocate until collections are made due (and ask for one)."""

    def work() -> None:
        junk = [[] for _ in range(50_000)]
        assert junk
        gc.collect()

    thread = threading.Thread(target=collector.ours(work), name="muckrack-hmr-test")
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()


@pytest.mark.parametrize("thawed", [0, 375], ids=["as-frozen", "thawed-since"])
def test_a_collection_made_due_in_a_thread_of_ours_leaves_the_garbage_to_the_program(
    ran: list[str], monkeypatch: pytest.MonkeyPatch, thawed: int
) -> None:
    """A collection runs the finalizers of the garbage it finds in the thread whose
    allocation made it due: in a thread of ours it looks at nothing, and the program's
    next collection finalizes the garbage in the program's thread, none lost.  Also
    where what the interpreter froze itself before the program ran (3.12.1 freezes a
    few hundred objects) was thawed since, with the rest (the start-up's thaw)."""
    gate = collector.gate()
    if gate is None:
        pytest.skip("CPython 3.11 with the pure core: no callback (see collector.gate)")
    monkeypatch.setattr(gate, "interpreter_froze", gc.get_freeze_count() + thawed)
    for _ in range(100):
        _Resource()
    _in_a_thread_of_ours()
    assert ran == []
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert ran == ["MainThread"] * 100


def test_what_a_program_froze_stays_frozen(ran: list[str]) -> None:
    """A program that froze objects (a server about to fork) keeps them frozen: the
    collection then runs in our thread, as without the callback."""
    kept = [_Resource() for _ in range(3)]
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        for _ in range(100):
            _Resource()
        _in_a_thread_of_ours()
        # (Not thawed, which would leave none: frozen garbage freed meanwhile is gone.)
        assert gc.get_freeze_count() > frozen // 2
        assert ran == ["muckrack-hmr-test"] * 100
        assert len(kept) == 3
    finally:
        gc.unfreeze()


@pytest.mark.skipif(
    sys.version_info[:2] != (3, 11), reason="CPython 3.11's AST conversion (fixed in 3.12)"
)
def test_parses_in_a_thread_of_ours_and_the_program_s_never_break_each_other() -> None:
    """CPython 3.11 keeps the depth of its conversion of a parse into ``ast`` objects in
    state the threads share: Python code run by a collection in the middle of one lets
    another thread in, whose parse makes the first fail (``SystemError: AST constructor
    recursion depth mismatch``).  The collector's callback ran Python code in every
    collection: the watcher's judgement of a save raised (the save was lost), and so
    could the program's own ``ast.parse`` (pytest's, under ``pytest --hmr``).  The
    compiled core's gate runs none, and the pure core has none on 3.11."""
    import ast

    source = Path(ast.__file__).read_text()
    errors: list[str] = []
    previous = sys.getswitchinterval()

    def parse(times: int) -> None:
        for _ in range(times):
            try:
                ast.parse(source)
            except SystemError as exc:  # what the test is about
                errors.append(str(exc))

    # (The garbage earlier tests of this process left, whose finalizers run Python code
    # in a collection too, goes first: what is looked at here is our collector's.)
    gc.collect()
    sys.setswitchinterval(0.0005)  # (switches as often as a busy program's)
    try:
        ours = threading.Thread(target=collector.ours(parse), args=(20,))
        ours.start()
        parse(20)
        ours.join(timeout=120)
    finally:
        sys.setswitchinterval(previous)
    assert not ours.is_alive()
    assert errors == []


def test_a_collection_the_program_asks_for_while_its_start_up_is_held_looks_at_everything(
    ran: list[str],
) -> None:
    """What the start-up made stays frozen for a while once it is over (collector.hold,
    until the idle work has what a first edit needs).  A program that asks for a
    collection meanwhile (a test that checks a finalizer ran) gets one that looks at
    everything, as under python: its start-up's garbage is collected."""
    before = gc.get_freeze_count()
    collector.start_fresh()
    try:
        made_in_start_up = _Resource()
        collector.hold()
        assert gc.get_freeze_count() > before
        # (Stand-ins by the originals' names, as a program that looks would see them.)
        assert (gc.collect.__name__, gc.get_objects.__name__) == ("collect", "get_objects")
        del made_in_start_up
        gc.collect()
        assert ran == ["MainThread"]
        assert gc.get_freeze_count() <= before  # thawed first
    finally:
        collector.thaw()


@pytest.mark.parametrize("when", ["start-up", "held"])
def test_garbage_the_program_leaves_while_its_start_up_is_frozen_waits_for_its_own_thread(
    ran: list[str], when: str
) -> None:
    """While what was alive before the program (its start-up) and, once that is over,
    what the start-up made are frozen, a collection that a thread of ours makes due
    freezes what is new with them (the frozen count, which the callback looks at
    otherwise, would walk the whole frozen heap at each collection): the program's
    garbage is finalized after the thaw, in the program's thread, none lost.  In the
    start-up, such a collection (the watcher's looks at it) ran in the watcher's thread:
    an SQLite connection closed by a finalizer there raised ProgrammingError."""
    if collector.gate() is None:
        pytest.skip("CPython 3.11 with the pure core: no callback (see collector.gate)")
    collector.start_fresh()
    try:
        if when == "held":
            collector.hold()
        for _ in range(100):
            _Resource()

        def allocate() -> None:  # collections made due here, none asked for
            junk = [[] for _ in range(50_000)]
            assert junk

        thread = threading.Thread(target=collector.ours(allocate), name="muckrack-hmr-test")
        thread.start()
        thread.join(timeout=30)
        assert not thread.is_alive()
        assert ran == []
    finally:
        collector.thaw()
    gc.collect()
    assert ran == ["MainThread"] * 100
