"""``__hmr__.write_graph`` and ``--graph FILE``: the import graph as DOT, marked (issue 16).

Read through its DOT text: the nodes are the project's modules, the edges
its imports, and each module of the last reload carries its marks (edited,
ran again, patched, failed, refused).  In process on both cores, then under
the CLI with a real save: the file is refreshed after the reload; SVG is
written beside it when Graphviz's ``dot`` is on PATH, and one line says so
when it is not.
"""

from __future__ import annotations

import importlib
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from muckrack_hmr.graph import MARKS

from .conftest import Project
from .subprocesses import Child, starts, write

NODE = re.compile(r'^  "([^"]+)" \[(.*)\];$', re.MULTILINE)
EDGE = re.compile(r'^  "([^"]+)" -> "([^"]+)";$', re.MULTILINE)


def nodes(text: str) -> dict[str, set[str]]:
    """Each module's node -> its marks (read back from their Graphviz attributes)."""
    found: dict[str, set[str]] = {}
    for name, attributes in NODE.findall(text):
        if name.startswith("legend "):
            continue
        found[name] = {mark for mark, (style, _) in MARKS.items() if style in attributes}
    return found


def edges(text: str) -> set[tuple[str, str]]:
    return set(EDGE.findall(text))


def test_the_graph_shows_the_project_modules_and_marks_the_last_reload(
    project: Project, hmr: Any, tmp_path: Path
) -> None:
    project.write("base.py", "VALUE = 1\n\n\ndef f():\n    return 'old'\n")
    project.write("middle.py", "import base\n\nDOUBLE = base.VALUE * 2\n")
    project.write("top.py", "import json\n\nimport middle\n")
    project.write("other.py", "import base\n\n\ndef g():\n    return base.f()\n")
    for name in ("top", "other"):
        importlib.import_module(name)
    path = tmp_path / "graph.dot"
    assert hmr.write_graph(str(path))[0] == str(path)
    text = path.read_text()
    assert nodes(text) == {name: set() for name in ("base", "middle", "top", "other")}
    assert edges(text) == {("middle", "base"), ("top", "middle"), ("other", "base")}
    assert "json" not in text  # only project modules

    # A constant and a body: base is edited and patched, middle (which read VALUE) runs again.
    project.write("base.py", "VALUE = 2\n\n\ndef f():\n    return 'new'\n")
    assert hmr.reload("base").reloaded == ["base", "middle"]
    hmr.write_graph(str(path))
    marks = nodes(path.read_text())
    assert marks["base"] == {"edited", "patched"}
    assert marks["middle"] == {"reran"}
    assert marks["top"] == marks["other"] == set()

    # A failure, then a refused edit: each marked; the marks are the last reload's only.
    project.write("other.py", "import base\n\n\ndef g(:\n")
    assert "other" in hmr.reload("other").failed
    hmr.write_graph(str(path))
    marks = nodes(path.read_text())
    assert (marks["other"], marks["base"]) == ({"edited", "failed"}, set())
    project.write("top.py", "import json\n\nimport middle\n\nclass C:\n    pass\n")
    hmr.reload("top")
    project.write("top.py", "import json\n\nimport middle\n\nclass C(Exception):\n    pass\n")
    assert hmr.reload("top").refused
    hmr.write_graph(str(path))
    assert nodes(path.read_text())["top"] == {"edited", "refused"}


MAIN = """\
import time

import app

print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def graph_written(child: Child) -> str:
    return child.expect(starts("hmr: graph: wrote "), stream="err")


@pytest.mark.parametrize("dot", [True, False], ids=["graphviz", "no-graphviz"])
def test_graph_option_writes_the_graph_and_refreshes_it_after_a_save(
    proj: Path, spawn: Any, core_env: dict[str, str], dot: bool
) -> None:
    if dot and shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")
    env = dict(core_env)
    if not dot:
        env["PATH"] = str(proj / "no-programs")  # the child runs as sys.executable
    write(proj / "main.py", MAIN)
    write(proj / "app.py", "import helpers\n\n\ndef run():\n    return helpers.f()\n")
    write(proj / "helpers.py", "def f():\n    return 'old'\n")
    graph = proj / "out" / "graph.dot"
    graph.parent.mkdir()
    child = spawn(["-v", "--graph", str(graph), "main.py"], cwd=proj, env=env)
    child.expect("ready")
    graph_written(child)
    text = graph.read_text()
    assert edges(text) == {("__main__", "app"), ("app", "helpers")}
    assert nodes(text) == {"__main__": set(), "app": set(), "helpers": set()}
    svg = proj / "out" / "graph.svg"
    if dot:
        assert svg.read_text().lstrip().startswith("<?xml")
    else:
        assert not svg.exists()
        assert any(
            line == f"hmr: graph: Graphviz's dot is not on PATH: {graph} written, no SVG"
            for line in child.seen["err"]
        ), child.stderr_text()

    write(proj / "helpers.py", "def f():\n    return 'new'\n")
    child.expect(starts("hmr: reloaded helpers"), stream="err")
    graph_written(child)
    assert nodes(graph.read_text())["helpers"] == {"edited", "patched"}
    if dot:
        assert "helpers" in svg.read_text()


def test_a_graph_that_cannot_be_written_is_said_of_the_file_asked_for(
    project: Project, hmr: Any, tmp_path: Path
) -> None:
    """A folder that does not exist: the error named the file written aside
    (``graph.dot.12345.tmp``), not the one asked for."""
    project.write("base.py", "VALUE = 1\n")
    importlib.import_module("base")
    path = tmp_path / "missing" / "graph.dot"
    with pytest.raises(FileNotFoundError) as raised:
        hmr.write_graph(str(path))
    assert str(raised.value) == f"[Errno 2] cannot write {path}: No such file or directory"
    assert not (tmp_path / "missing").exists()
