"""The source store: what each module last ran, kept out of the program's memory."""

from __future__ import annotations

import tempfile
from typing import Any

import pytest

from muckrack_hmr import sources
from muckrack_hmr.sources import SourceStore


class _NoProject:
    def __init__(self) -> None:
        self.loaded: dict[str, Any] = {}


def test_sources_are_read_back_as_remembered_and_replaced_by_newer_ones() -> None:
    store = SourceStore(_NoProject())
    assert store.ran("a") is None
    store.remember("a", b"X = 1\n")
    store.remember("b", b"Y = 2\n" * 1000)
    assert store.ran("a") == b"X = 1\n"
    store.remember("a", b"X = 2\n")
    assert store.ran("a") == b"X = 2\n"
    assert store.ran("b") == b"Y = 2\n" * 1000
    assert "a" in store
    assert "c" not in store


def test_space_of_old_copies_is_reclaimed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources._Spill, "_RECLAIM_AT", 1000)
    store = SourceStore(_NoProject())
    store.remember("keep", b"K = 0\n")
    for version in range(200):
        store.remember("busy", f"V = {version}\n".encode() + bytes(range(256)) * 4)
    spill = store._spill
    # Far less than the 200 copies written: the old ones were dropped.
    assert spill._end < 20 * 1100
    assert spill._garbage <= spill._end
    latest = store.ran("busy")
    assert latest is not None
    assert latest.startswith(b"V = 199\n")
    assert store.ran("keep") == b"K = 0\n"


def test_no_temporary_file_keeps_the_sources_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    store = SourceStore(_NoProject())
    store.remember("a", b"X = 1\n")
    assert store.ran("a") == b"X = 1\n"


def test_the_mentions_index_follows_what_each_module_spells() -> None:
    from muckrack_hmr.mentions import Mentions, spelling_any

    mentions = Mentions()
    mentions.add("a", "import core\ncore.register(f)\nx = core . marker\n# é.ünïcode\n".encode())
    mentions.add("b", b"from core import register\nregister(g)\nself.markers = 1\n")
    assert mentions.users(["register"]) == {"a"}
    assert mentions.users(["marker", "markers"]) == {"a", "b"}
    assert mentions.users(["ünïcode"]) == {"a"}
    # Indexed again after an edit: names it no longer spells drop out.
    mentions.add("a", b"import core\ncore.other()\n", previous=b"core.register(f)\ncore.marker\n")
    assert mentions.users(["register", "marker"]) == set()
    assert mentions.users(["other"]) == {"a"}
    mentions.forget("b")
    assert mentions.users(["markers"]) == set()
    pattern = spelling_any({"marker", "f"})
    assert pattern.search(b"x = core.marker()")
    assert pattern.search(b"x = core.\tf")
    assert not pattern.search(b"x = core.markers + marker + f()")
