"""A picture of the program's import graph: DOT text, and SVG when Graphviz is installed.

Only project modules are drawn (what the tracker counts as the project's),
an arrow from each module to the modules it imports.  The modules of the
last reload are marked: the ones saved (edited), the dependents that ran
again, the ones whose functions or classes were patched in place, and those
that failed or were refused.  ``__hmr__.write_graph(path)`` writes it once;
the CLI's ``--graph FILE`` writes it when the program's start-up is over,
and again after each reload.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from . import collector
from .threads import signals_to_main_thread

if TYPE_CHECKING:
    from .api import HMR
    from .reload.reloader import ReloadResult

__all__ = ["MARKS", "GraphFile", "dot_text", "write_graph"]

log = logging.getLogger(__name__)

#: mark -> (its Graphviz node attributes, its legend); later marks add to earlier ones.
MARKS: dict[str, tuple[str, str]] = {
    "edited": ('fillcolor="#ffb347"', "edited (saved)"),
    "reran": ('fillcolor="#fff3a3"', "ran again (a dependent)"),
    "patched": ('color="#1f5fbf", penwidth=2.5', "patched in place"),
    "failed": ('fillcolor="#ff9a9a"', "failed (old code kept)"),
    "refused": ('color="#d62728", style="rounded,filled,dashed", penwidth=2.5', "refused"),
}

_HEADER = """\
digraph imports {
  graph [rankdir=LR, fontname="Helvetica", fontsize=11, labelloc=t,
         label="import graph: an arrow goes from a module to a module it imports"];
  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica",
        fontsize=11];
  edge [color="#888888", arrowsize=0.7];
"""


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def marks_of(result: ReloadResult | None) -> dict[str, list[str]]:
    """module -> its marks from ``result`` (the last reload), in :data:`MARKS` order."""
    found: dict[str, list[str]] = {}
    if result is None:
        return found

    def mark(names: Iterable[str], what: str) -> None:
        for name in names:
            marks = found.setdefault(name, [])
            if what not in marks:
                marks.append(what)

    edited = set(result.edited)
    mark(result.edited, "edited")
    mark((name for name in result.reloaded if name not in edited), "reran")
    ran = sorted(result.reloaded, key=len, reverse=True)
    owners = (
        next((m for m in ran if patched.startswith(m + ".")), None) for patched in result.patched
    )
    mark((owner for owner in owners if owner is not None), "patched")
    mark(result.failed, "failed")
    mark({refusal.module for refusal in result.refused}, "refused")
    return found


def dot_text(hmr: HMR, result: ReloadResult | None = None) -> str:
    """The import graph of the project's modules, as Graphviz DOT, ``result`` marked."""
    tracker = hmr.tracker
    graph = hmr.graph
    with tracker.lock:
        names = [name for name in graph.modules() if tracker.is_tracked(name)]
        shown = set(names)
        edges = [
            (name, imported)
            for name in names
            for imported in graph.dependencies_of(name)
            if imported in shown and imported != name
        ]
    marked = marks_of(result)
    lines: list[str] = [_HEADER]
    for name in names:
        attributes = [f"label={_quoted(name + (' (script)' if name == '__main__' else ''))}"]
        attributes += [MARKS[mark][0] for mark in marked.get(name, ())]
        lines.append(f"  {_quoted(name)} [{', '.join(attributes)}];\n")
    lines.extend(f"  {_quoted(a)} -> {_quoted(b)};\n" for a, b in edges)
    lines.append('  subgraph cluster_legend {\n    label="the last reload"; style=dashed;\n')
    for mark, (style, legend) in MARKS.items():
        lines.append(f'    "legend {mark}" [label={_quoted(legend)}, {style}];\n')
    lines.append("  }\n}\n")
    return "".join(lines)


def _paths(path: str) -> tuple[str, str]:
    """(the DOT file, the SVG file) for ``path`` (either may be named)."""
    stem, suffix = os.path.splitext(path)
    if suffix.lower() == ".svg":
        return stem + ".dot", path
    return path, (stem if suffix.lower() in (".dot", ".gv") else path) + ".svg"


_said_no_dot = threading.Event()


def write_graph(hmr: HMR, path: str, result: ReloadResult | None = None) -> list[str]:
    """Write the graph to ``path`` as DOT, and as SVG beside it when ``dot`` is on PATH.

    Returns the files written.  Each is replaced whole (written aside, then
    renamed): a viewer never reads half a file.
    """
    dot_path, svg_path = _paths(os.path.abspath(path))
    text = dot_text(hmr, result)
    _replace(dot_path, text.encode("utf-8"))
    written = [dot_path]
    dot = shutil.which("dot")
    if dot is None:
        if not _said_no_dot.is_set():
            _said_no_dot.set()
            log.info("graph: Graphviz's dot is not on PATH: %s written, no SVG", dot_path)
        return written
    try:
        svg = subprocess.run(
            [dot, "-Tsvg"], input=text.encode("utf-8"), capture_output=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("graph: dot failed (%s): %s written, no SVG", exc, dot_path)
        return written
    _replace(svg_path, svg)
    written.append(svg_path)
    return written


def _replace(path: str, content: bytes) -> None:
    aside = f"{path}.{os.getpid()}.tmp"
    try:
        with open(aside, "wb") as handle:
            handle.write(content)
        os.replace(aside, path)
    except OSError as exc:
        # Said of the file asked for, not of the one written aside.
        with contextlib.suppress(OSError):
            os.unlink(aside)
        raise type(exc)(exc.errno, f"cannot write {path}: {exc.strerror}") from None


class GraphFile:
    """``--graph FILE``: the graph written once the start-up is over, and after each reload."""

    def __init__(self, hmr: HMR, path: str) -> None:
        self.hmr = hmr
        self.path = path

    def follow(self) -> None:
        """Start following the program (its watcher must be on)."""
        watcher = self.hmr.watcher
        if watcher is None:
            return
        watcher.after_reload.append(self.write)

        def when_started() -> None:
            watcher.started.wait()
            self.write(None)

        with signals_to_main_thread():  # (started in the program's main thread)
            threading.Thread(
                target=collector.ours(when_started), name="muckrack-hmr-graph", daemon=True
            ).start()

    def write(self, result: ReloadResult | None) -> None:
        try:
            written = write_graph(self.hmr, self.path, result)
        except OSError as exc:
            log.warning("graph: could not write %s: %s", self.path, exc)
            return
        log.debug("graph: wrote %s", ", ".join(written))
        sys.stderr.flush()
