"""The first edit of a module parses only what changed: the same answer as a whole parse.

``summarize_before`` builds the summary of the source that ran from the
summary of the edit, parsing only the lines that differ and the statements
around them.  These tests compare it, statement by statement and position by
position, with :func:`summarize` of the whole source, over random line edits
of real modules (this package's own) and of text made to trip a partial parse:
strings and brackets that span the edit, line continuations, decorators,
compound statements whose body ends at the edit, no final newline.
"""

from __future__ import annotations

import ast
import importlib
import os
import random
from pathlib import Path
from typing import Any

import pytest

import muckrack_hmr
from muckrack_hmr.reload.analysis import ModuleSummary, summarize, summarize_before
from tests.conftest import Project

TRICKY = '''\
import os
from collections import (
    OrderedDict,
)

X = 1
Y = """
text that looks like code:
def f():
    return 1
"""


@staticmethod
@property
def decorated(a, b=(1,
                   2)):
    return a + \\
        b


class C:
    """A class."""

    def m(self):
        if self:
            return 1
        else:
            return 2

    z = [
        1,
        2,
    ]


if X:
    Z = 1
else:
    Z = 2

try:
    import json
except ImportError:
    json = None
total = X + \\
    Y.count("d")
# a comment at the end
last = {"a": 1}'''

# Lines an edit puts in: each can open or close something the rest depends on.
LINES = [
    "",
    "# comment",
    "W = 2",
    "    W = 3",
    "        return 5",
    '"""',
    "'''",
    "x = (",
    ")",
    "]",
    "Q = 1 + \\",
    "@staticmethod",
    "def g():",
    "    pass",
    "class D:",
    "else:",
    "from os import path as P",
    "import sys",
    "if Y:",
]


def own_sources() -> list[str]:
    root = Path(muckrack_hmr.__file__).parent
    return [path.read_text() for path in sorted(root.glob("*.py"))][:12]


def mutate(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    for _ in range(rng.randint(1, 3)):
        where = rng.randrange(len(lines) + 1)
        kind = rng.random()
        if kind < 0.35 or not lines:
            lines.insert(where, rng.choice(LINES))
        elif kind < 0.6:
            del lines[min(where, len(lines) - 1)]
        elif kind < 0.85:
            lines[min(where, len(lines) - 1)] = rng.choice(LINES)
        else:
            # The kind of edit users make most: a value changes, nothing moves.
            at = min(where, len(lines) - 1)
            lines[at] = lines[at].replace("1", "7").replace("return", "return 0 or")
    return "\n".join(lines)


def described(summary: ModuleSummary) -> list[object]:
    return [
        (
            statement.text,
            ast.dump(statement.node, include_attributes=True),
            statement.binds,
            statement.reads,
            statement.calls,
            statement.body_reads,
            statement.body_calls,
        )
        for statement in summary.statements
    ] + [summary.imports]


def parses(text: str) -> bool:
    """Would the engine take ``text`` (it parses, its ``from __future__`` imports first)?"""
    try:
        summarize(text.encode(), "m.py", "pkg")
    except SyntaxError:
        return False
    return True


@pytest.mark.parametrize("sample", ["tricky", "own"])
def test_a_partial_parse_gives_what_a_whole_parse_gives(sample: str) -> None:
    rng = random.Random(sample)
    texts = [TRICKY] if sample == "tricky" else own_sources()
    wanted = 300 if sample == "tricky" else 40  # the package's modules are long
    compared = 0
    attempts = 0
    while compared < wanted and attempts < 20000:
        attempts += 1
        before = rng.choice(texts)
        after = mutate(before, rng)
        if rng.random() < 0.5:
            before, after = after, before  # lines removed as often as added
        if before == after or not parses(before) or not parses(after):
            continue
        old, new = before.encode(), after.encode()
        expected = summarize(old, "m.py", "pkg")
        new_summary = summarize(new, "m.py", "pkg")
        got = summarize_before(old, "m.py", "pkg", new_summary, new)
        assert described(got) == described(expected), (before, after)
        compared += 1
    assert compared == wanted


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts ``ast.parse`` is given from now on (until ``monkeypatch.undo()``)."""
    texts: list[str] = []
    real_parse = ast.parse

    def counting_parse(source: str | bytes, *args: object, **kwargs: object) -> ast.Module:
        texts.append(source if isinstance(source, str) else source.decode())
        return real_parse(source, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ast, "parse", counting_parse)
    return texts


def test_a_changed_value_parses_only_its_own_statement(
    monkeypatch: pytest.MonkeyPatch, parsed: list[str]
) -> None:
    """An edit that moves nothing (a value, a return) parses the changed statement alone."""
    new_text = TRICKY.replace("return 2", "return 3")
    summary = summarize(new_text.encode(), "m.py", None)
    parsed.clear()
    got = summarize_before(TRICKY.encode(), "m.py", None, summary, new_text.encode())
    monkeypatch.undo()
    assert described(got) == described(summarize(TRICKY.encode(), "m.py", None))
    (chunk,) = parsed  # one parse, of the class alone
    assert chunk.strip().startswith("class C:")
    assert "import os" not in chunk
    assert "last = " not in chunk


def test_an_odd_line_break_parses_the_module_whole() -> None:
    """A form feed counts as a line break for ``str.splitlines`` only: no partial parse."""
    before = "import os\n\x0c\nX = 1\n\ndef f():\n    return 1\n"
    after = before.replace("return 1", "return 2")
    expected = summarize(before.encode(), "m.py", None)
    got = summarize_before(
        before.encode(), "m.py", None, summarize(after.encode(), "m.py", None), after.encode()
    )
    assert described(got) == described(expected)


REPARSED = """\
import os

X = 1


def f():
    return "v1"


class C:
    def m(self):
        return X


def g():
    return os.sep
"""


def test_a_module_reloaded_before_parses_only_the_lines_of_its_next_edit(
    project: Project, hmr: Any, monkeypatch: pytest.MonkeyPatch, parsed: list[str]
) -> None:
    project.write("m.py", REPARSED)
    m = importlib.import_module("m")
    hmr.remember_sources()
    held = m.f
    parsed.clear()

    # The first edit: what ran was never parsed, the edit is (whole).
    project.write("m.py", REPARSED.replace('"v1"', '"v2"'))
    assert hmr.reload_module("m")[0] == ["m"]
    assert held() == "v2"
    assert any("class C" in text for text in parsed)

    # Later edits: both sides are known, and only the edited lines are parsed,
    # by the watcher's check as by the reload.
    for version in ("v3", "v4"):
        parsed.clear()
        source = REPARSED.replace('"v1"', f'"{version}"')
        project.write("m.py", source)
        assert hmr.reloader.check_source("m", source.encode()) is None
        assert hmr.reload_module("m")[0] == ["m"]
        assert held() == version
        assert parsed, "nothing parsed"
        assert not [text for text in parsed if "class C" in text or "import os" in text], parsed

    # A broken edit fails, and leaves the parse of what runs for the next one.
    project.write("m.py", REPARSED.replace('"v1"', '"v5'))
    assert hmr.reload_module("m")[0] == []
    assert held() == "v4"
    parsed.clear()
    moved = "# a line above\n" + REPARSED.replace('"v1"', '"v6"')
    project.write("m.py", moved)
    assert hmr.reload_module("m")[0] == ["m"]
    monkeypatch.undo()
    assert (held(), m.g(), m.C().m()) == ("v6", os.sep, 1)
    # Lines moved: what runs is described as a whole parse would.
    kept = hmr.sources.running_summary("m", moved.encode())
    assert described(kept) == described(summarize(moved.encode(), str(project.root / "m.py"), ""))
    assert m.g.__code__.co_firstlineno == moved.splitlines().index("def g():") + 1


def test_the_parses_kept_after_reloads_are_a_few(project: Project, hmr: Any) -> None:
    names = [f"k{index}" for index in range(8)]
    for name in names:
        project.write(f"{name}.py", "def f():\n    return 1\n")
        importlib.import_module(name)
    hmr.remember_sources()
    for name in names:
        project.write(f"{name}.py", "def f():\n    return 2\n")
        assert hmr.reload_module(name)[0] == [name]
    source = b"def f():\n    return 2\n"
    kept = [name for name in names if hmr.sources.running_summary(name, source) is not None]
    assert kept == names[-4:]  # the last reloaded; trees are large
    assert hmr.sources.running_summary(names[-1], b"def f():\n    return 1\n") is None
