"""The source store: what each module last ran, kept out of the program's memory."""

from __future__ import annotations

import os
import tempfile
import types
from typing import Any

import pytest

from muckrack_hmr.reload import sources
from muckrack_hmr.reload.sources import SourceStore


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
        store.compress()  # the program rested
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
    assert store.compress() == 1
    assert store.ran("a") == b"X = 1\n"


def test_a_reload_leaves_the_spill_file_to_the_idle_time() -> None:
    """What a reload gives is kept as it is; the program's idle time compresses it into the
    spill file, which the first reload of a session would otherwise create (a temporary
    file, and the import of tempfile: 10 to 70 ms of a first edit right after start-up)."""
    store = SourceStore(_NoProject())
    store.remember("a", b"X = 1\n")
    store.remember("a", b"X = 2\n")
    assert store._spill._opened is None
    assert store.ran("a") == b"X = 2\n"
    assert store.compress() == 1
    assert store._spill._opened is not None
    assert store.ran("a") == b"X = 2\n"
    store.remember("a", b"X = 3\n")  # the copy in the file is dropped for the newer one
    assert store._spill._garbage == len(sources.zlib.compress(b"X = 2\n", 1))
    assert store.ran("a") == b"X = 3\n"
    assert store.compress() == 1
    assert store.ran("a") == b"X = 3\n"


def test_the_mentions_index_follows_what_each_module_spells() -> None:
    from muckrack_hmr.reload.mentions import Mentions, spelling_any

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


def test_a_read_takes_the_whole_file_even_when_it_grew_since_its_size_was_taken(
    tmp_path: Any,
) -> None:
    from muckrack_hmr import capture

    path = tmp_path / "m.py"
    path.write_bytes(b"x = 1\n" * 50_000)
    with open(path, "rb") as handle:  # the size taken is smaller than the file
        assert capture._read_all(handle.fileno(), 10) == path.read_bytes()
    with open(path, "rb") as handle:  # exactly the size: one read, to the end
        assert capture._read_all(handle.fileno(), path.stat().st_size) == path.read_bytes()
    source, stat, steady = capture.read_steady(str(path))
    assert (source, stat.st_size, steady) == (path.read_bytes(), len(source), True)


def test_a_read_that_a_write_overlaps_is_done_again(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from muckrack_hmr import capture

    path = tmp_path / "m.py"
    path.write_bytes(b"x = 1\n")
    real_read_all = capture._read_all
    reads: list[bytes] = []

    def read_all_then_write(descriptor: int, expected: int) -> bytes:
        data = real_read_all(descriptor, expected)
        reads.append(data)
        if len(reads) == 1:  # a save lands while the first read is under way
            path.write_bytes(b"x = 2  # saved\n")
        return data

    monkeypatch.setattr(capture, "_read_all", read_all_then_write)
    source, stat, steady = capture.read_steady(str(path))
    assert reads == [b"x = 1\n", b"x = 2  # saved\n"]
    assert (source, stat.st_size, steady) == (b"x = 2  # saved\n", len(source), True)
    # With one try only (the watcher's), the read is reported as not steady.
    path.write_bytes(b"x = 1\n")
    reads.clear()
    source, _, steady = capture.read_steady(str(path), tries=1)
    assert (source, steady) == (b"x = 1\n", False)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")
# 3.12+ warns of a fork with threads (pytest-xdist's, here): the child runs no
# code of theirs, only the store's, and exits.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_reads_what_its_parent_kept_and_writes_apart() -> None:
    """A pool's or a server's worker is forked with the store: it reads the sources
    kept before the fork from the file it shares with its parent, and what it keeps
    itself goes to a file of its own, so that neither overwrites the other's (both
    would have appended at the same end of one file)."""
    store = SourceStore(_NoProject())
    store.remember("a", b"A = 1\n" * 100)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answers on the pipe, then leaves without cleanup
        try:
            seen = store.ran("a") == b"A = 1\n" * 100
            store.remember("c", b"C = 'child'\n" * 50)
            store.remember("a", b"A = 'child'\n")
            ok = seen and store.ran("c") == b"C = 'child'\n" * 50
            ok = ok and store.ran("a") == b"A = 'child'\n"
            answer = "ok" if ok else "wrong"
        except BaseException as exc:  # reported to the parent
            answer = repr(exc)
        os.write(write, answer.encode())
        os._exit(0)
    os.close(write)
    # The parent keeps more meanwhile: appended where the child also began to write.
    store.remember("b", b"B = 'parent'\n" * 50)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert answer == "ok"
    assert store.ran("a") == b"A = 1\n" * 100
    assert store.ran("b") == b"B = 'parent'\n" * 50
    store.remember("d", b"D = 4\n")  # and after the child's writes
    assert store.ran("b") == b"B = 'parent'\n" * 50
    assert store.ran("d") == b"D = 4\n"


def test_the_names_code_loads_are_read_off_its_opcodes_as_dis_decodes_them(
    core: types.ModuleType,
) -> None:
    """The index of what import-time code calls reads the names a module's code loads
    off its opcodes (the argument's flag bits differ between versions), with the
    core's table of this Python's opcodes: the same names ``dis`` finds, in every
    code object of a few standard modules, on this Python; a ``def`` only stores
    its name."""
    import dis
    import inspect
    import json
    import textwrap
    import typing

    from muckrack_hmr.reload.reach import _LOADS, opcode_table

    table = opcode_table()[0]
    # A generated module too: more names than a byte indexes, so its loads of the
    # later ones carry EXTENDED_ARG (which most code has none of).
    generated = "import core\n" + "".join(f"V{i} = core.n{i}(W{i})\n" for i in range(300))
    sources = [(inspect.getsource(m), m.__name__) for m in (dis, inspect, json, textwrap, typing)]
    sources.append((generated, "generated"))
    for source, name in sources:
        pending = [compile(source, name, "exec")]
        while pending:
            code = pending.pop()
            pending.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
            decoded = {
                i.argval
                for i in dis.get_instructions(code)
                if i.opname in _LOADS and isinstance(i.argval, str)
            }
            assert core.loaded_names(code, table, True) == decoded, (name, code.co_name)
    code = compile(
        "import a\nfrom b import c\n\n\ndef f():\n    pass\n\n\nx = a.y(c)\n", "m", "exec"
    )
    assert core.loaded_names(code, table, False) == {"a", "y", "c"}
    assert core.loaded_names(code, table, True) == {"a", "b", "c", "y"}


def test_a_module_scan_tells_what_its_level_calls_and_the_code_of_its_functions(
    core: types.ModuleType,
) -> None:
    """What runs at import (the module's level, class bodies, comprehensions, lambdas,
    decorators), without a local function only read there, and each function's code
    by its name, on both cores: the index of what import-time code calls rests on it."""
    from muckrack_hmr.reload.reach import opcode_table

    code = compile(
        "import core\nfrom util import deco\n\n\ndef build():\n    return core.helper()\n\n\n"
        "def view():\n    return core.other()\n\n\n@deco\ndef wrapped():\n    return 1\n\n\n"
        "ROUTES = {'/': view}\nTABLE = build()\n\n\nclass K:\n    Y = core.k_attr\n\n"
        "    def m(self):\n        return core.method_only()\n\n\n"
        "SQUARES = [core.sq(i) for i in range(3)]\nL = lambda: core.lam()\n\n\n"
        "def build():\n    return core.again()\n",
        "m",
        "exec",
    )
    names, bodies = core.scan_module(code, *opcode_table())
    assert (type(names), type(bodies)) == (tuple, tuple)  # (see the core's scan_module)
    at_import = set(names)
    assert {"core", "deco", "build", "k_attr", "sq", "range", "lam"} <= at_import
    # (What build's body calls enters the index once build is reached: see reach.)
    assert not {"other", "method_only", "wrapped", "helper", "again"} & at_import
    # A function only read is left out where a call shows (3.11 on: see called_names).
    assert ("view" in at_import) == (opcode_table()[1] < 0)
    assert bodies[0::2] == ("build", "view", "wrapped", "build")
    assert all(type(body) is types.CodeType for body in bodies[1::2])
    assert [body.co_firstlineno for body in bodies[1::2]] == [5, 9, 13, 33]
    with pytest.raises(TypeError):
        core.scan_module("not code", *opcode_table())
    # A level with more names than the core marks on its stack (a generated module),
    # functions defined after them (their names' loads carry EXTENDED_ARG), and a class
    # body that calls one of its own functions: the same answers.
    many = "".join(f"V{i} = core.n{i}\n" for i in range(700))
    late = "def late():\n    pass\n\n\ndef late_read():\n    pass\n\n\nW = [late_read, late()]\n"
    code = compile(
        f"import core\n\n\ndef only_read():\n    pass\n\n\nT = [only_read]\n{many}\n\n"
        f"{late}\n\n"
        "class L:\n    def _make():\n        return core.made()\n\n    v = _make()\n"
        "    def m(self):\n        return core.not_now()\n",
        "m",
        "exec",
    )
    at_import = set(core.scan_module(code, *opcode_table())[0])
    assert {"core", "n0", "n699", "made", "late"} <= at_import
    assert "not_now" not in at_import
    assert ("only_read" in at_import) == (opcode_table()[1] < 0)
    assert ("late_read" in at_import) == (opcode_table()[1] < 0)


@pytest.mark.parametrize("order", ["callee-first", "caller-first"])
def test_a_function_body_enters_the_index_when_import_time_code_first_reaches_it(
    order: str,
) -> None:
    """A module's function bodies are resolved only once import-time code reaches them
    (most never are), whichever of the two modules the index takes in first: ``b``'s
    top level calls ``a.f``, which calls ``a.g``, which calls ``a.h``; ``a.unused``
    calls ``h`` too but is never reached, and is no follower's way in."""
    import sys

    from muckrack_hmr.reload.reach import ImportReach, scan

    a, b = types.ModuleType("a_reach"), types.ModuleType("b_reach")
    a_code = compile(
        "def h():\n    return 1\n\n\ndef g():\n    return h()\n\n\n"
        "def f():\n    return g()\n\n\ndef unused():\n    return h()\n",
        "a_reach",
        "exec",
    )
    b_code = compile("import a_reach\n\nV = a_reach.f()\n", "b_reach", "exec")
    sys.modules["a_reach"], sys.modules["b_reach"] = a, b
    try:
        exec(a_code, a.__dict__)
        exec(b_code, b.__dict__)
        reach = ImportReach()
        added = [("a_reach", a_code, a), ("b_reach", b_code, b)]
        for name, code, module in added if order == "callee-first" else added[::-1]:
            reach.add_code(name, scan(code), module.__dict__)
        assert reach.followers("a_reach", {"h"}) == ({"b_reach"}, [])
        assert reach.followers("a_reach", {"unused"}) == (set(), [])
        # ``unused`` reached no one: its body was never resolved.
        assert ("a_reach", "unused") not in reach._edges
    finally:
        del sys.modules["a_reach"], sys.modules["b_reach"]
