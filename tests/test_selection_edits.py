"""What an edit changed, as ``pytest --hmr`` selects tests by it (functions and names)."""

from __future__ import annotations

import textwrap

import pytest

from muckrack_hmr.integrations.pytest_watch.edits import (
    changed_definitions,
    changed_statements,
    consumed_names,
)
from muckrack_hmr.reload.analysis import summarize, summarize_before

BASE = """\
LIMIT = 10

def total(items):
    return sum(items)

def outer():
    def inner():
        return 1
    return inner()

class Cart:
    size = 3

    def add(self, item, count=1):
        return count

    @property
    def empty(self):
        return True
"""


def edited(old: str, new: str) -> tuple[list[str], list[str]] | None:
    """What changed, told from the two sources; the same told from the engine's parse."""
    before, after = textwrap.dedent(old).encode(), textwrap.dedent(new).encode()
    edit = changed_definitions(before, after)
    told = None if edit is None else (sorted(edit.qualnames), sorted(edit.names))
    try:
        parsed_after = summarize(after, "<edited>", None)
    except SyntaxError:
        assert told is None
        return told
    # As the reload parses an edit: the new source whole, the old one around the edit.
    parsed_before = summarize_before(before, "<edited>", None, parsed_after, after)
    shared = changed_statements(parsed_before.statements, parsed_after.statements)
    assert (None if shared is None else (sorted(shared.qualnames), sorted(shared.names))) == told
    return told


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        # Moved, not changed: lines added above, a blank line, a comment.
        ("def total(items):", "\n\n# moved\ndef total(items):", ([], [])),
        ("    return sum(items)", "    return sum(items) + 1", (["total"], [])),
        ("        return 1", "        return 2", (["outer"], [])),
        ("count=1", "count=2", (["Cart.add"], [])),
        ("        return True", "        return False", (["Cart.empty"], [])),
        ("    size = 3", "    size = 4", ([], ["size"])),
        ("LIMIT = 10", "LIMIT = 11", ([], ["LIMIT"])),
        ("LIMIT = 10", "LIMIT = 10\nfrom os import sep", ([], ["sep"])),
        ("def total(items):", "def total2(items):", (["total", "total2"], ["total", "total2"])),
        ("LIMIT = 10", '"""A docstring."""\nLIMIT = 10', ([], [])),
        # What cannot be told in functions and names.
        ("LIMIT = 10", "LIMIT = compute()", None),
        ("LIMIT = 10", "LIMIT = 10\nregister(total)", None),
        ("class Cart:", "class Cart(Base):", None),
        ("def total(items):", "@cached\ndef total(items):", None),
        ("LIMIT = 10", "LIMIT = 10\nsettings.debug = True", None),
        ("LIMIT = 10", "LIMIT = (", None),
    ],
)
def test_an_edit_is_told_in_changed_functions_and_names(
    before: str, after: str, expected: tuple[list[str], list[str]] | None
) -> None:
    assert BASE.count(before) >= 1
    assert edited(BASE, BASE.replace(before, after, 1)) == expected


SEVERAL = """\
from typing import overload


@overload
def center(text: str) -> str: ...
@overload
def center(text: bytes) -> bytes: ...
def center(text):
    return text.center(9)


class Box:
    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, new):
        self._value = new

    def double(self):
        return 2


def unrelated():
    return 1
"""


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        # A name several defs bind (overloads, a property's setter): told by their order.
        ("text.center(9)", "text.center(10)", (["center"], [])),
        ("self._value = new", "self._value = new * 2", (["Box.value"], [])),
        ("return self._value", "return self._value + 0", (["Box.value"], [])),
        ("return 2", "return 3", (["Box.double"], [])),
        ("return 1", "return 2", (["unrelated"], [])),
        # One more of them: the name changed.
        (
            "def center(text):",
            "@overload\ndef center(text: int) -> int: ...\ndef center(text):",
            (["center"], ["center"]),
        ),
        # A decorator of one of them edited: it runs again.
        ("@value.setter", "@value.deleter", None),
    ],
)
def test_an_edit_of_one_of_several_defs_of_a_name_is_told_by_that_name(
    before: str, after: str, expected: tuple[list[str], list[str]] | None
) -> None:
    """Any name defined twice in a scope was a doubt: a body edit in a module with
    ``@overload`` stubs, or in a class with a property's setter, ran every test file that
    imports the module (jinja2's filters: 909 tests for one)."""
    assert SEVERAL.count(before) == 1
    assert edited(SEVERAL, SEVERAL.replace(before, after, 1)) == expected


def test_the_same_statements_in_another_order_are_a_doubt() -> None:
    assert edited("A = 1\nB = 2\n", "B = 2\nA = 1\n") is None
    assert edited("A = 1\nB = 2\n", "A = 1\nB = 2\n") == ([], [])


def test_a_dependent_that_ran_again_rebinds_what_it_consumed() -> None:
    source = (
        b"from .prices import LIMIT\nDOUBLE = 2 * LIMIT\nOTHER = 1\n\ndef f():\n    return LIMIT\n"
    )
    assert consumed_names(source, {"LIMIT"}) == {"LIMIT", "DOUBLE"}
    assert consumed_names(b"print(LIMIT)\n", {"LIMIT"}) is None
    assert consumed_names(b"X = 1\n", {"LIMIT"}) == set()


def test_the_recorder_records_each_function_once_per_context() -> None:
    import sys

    from muckrack_hmr.integrations.pytest_watch.executed import Record, Recorder, functions_in

    recorder = Recorder.start()
    if sys.version_info < (3, 12):
        assert recorder is None  # the loop selects by imports there
        return
    assert recorder is not None
    try:
        namespace: dict[str, object] = {"__name__": "probe"}
        source = "X = 1\ndef f():\n    return g() + X\ndef g():\n    return 1\n"
        exec(compile(source, "/probe.py", "exec"), namespace)
        recorder.arm(functions_in(namespace))
        f = namespace["f"]
        first, second, idle = Record(), Record(), Record()
        with recorder.recording(first):
            for _ in range(3):
                f()  # type: ignore[operator]
        with recorder.recording(second):
            namespace["g"]()  # type: ignore[operator]
        assert first.keys == {("/probe.py", "f"), ("/probe.py", "g")}
        assert second.keys == {("/probe.py", "g")}  # armed again for the next context
        assert recorder.hits(first, lambda key: False, {"X"})  # f mentions X
        assert not recorder.hits(second, lambda key: False, {"X"})
        assert not idle.keys
    finally:
        recorder.close()


def test_an_edit_of_all_is_told_in_the_names_that_came_or_went() -> None:
    assert edited("__all__ = ['a', 'b']\n", "__all__ = ['a']\n") == ([], ["b"])
    assert edited("__all__ = ('a',)\n", "__all__ = ('a', 'c')\n") == ([], ["c"])
    assert edited("__all__ = ['a']\n", "__all__ = ['a'] + other.__all__\n") is None


def test_kept_tells_functions_patched_in_place_from_replaced_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A test file is reused only while the changed functions are the same objects."""
    from types import ModuleType

    from muckrack_hmr.integrations.pytest_watch.edits import Edit
    from muckrack_hmr.integrations.pytest_watch.executed import Executed

    module = ModuleType("kept_sample")
    holder = "\nclass Holder:\n    @classmethod\n    def make(cls):\n        return 1\n"
    exec(BASE + holder, vars(module))
    monkeypatch.setitem(__import__("sys").modules, "kept_sample", module)
    edit = Edit()
    edit.qualnames |= {"total", "outer.<locals>.inner", "Cart.add", "Holder.make"}
    held = Executed.held({"kept_sample": ("kept_sample.py", edit)})
    assert Executed.kept(held)

    # Code swapped in place: still the same objects.
    module.total.__code__ = (lambda items: 0).__code__
    assert Executed.kept(held)

    # A new class under the old name: its method is another object too.
    module.Holder = type("Holder", (), {"make": classmethod(lambda cls: 2)})
    assert not Executed.kept(held)
    monkeypatch.setattr(module, "Holder", {q: path for _, q, path in held}["Holder.make"][0])
    assert Executed.kept(held)

    # A function replaced, or gone.
    module.total = lambda items: 0
    assert not Executed.kept(held)
    del module.total
    assert not Executed.kept(held)
