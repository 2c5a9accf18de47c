"""A namespace no project file holds (IPython's user namespace) as a project importer.

``ProjectFilter.add_importer``: its ``from module import name`` bindings follow
a reload, as the script's do; ``add_root``: modules imported from a new root
afterwards are tracked.  On both cores.
"""

from __future__ import annotations

import builtins
import importlib
import sys
from pathlib import Path
from typing import Any

from tests.conftest import Project


def test_a_registered_namespace_follows_a_reload(project: Project, hmr: Any) -> None:
    path = project.write("mod.py", "CONST = 1\n\n\ndef f():\n    return 'old'\n")
    module = type(sys)("notebook_ns")
    module.__dict__["__builtins__"] = builtins
    hmr.project.add_importer("notebook_ns", module.__dict__)
    sys.modules["notebook_ns"] = module
    try:
        exec("from mod import CONST, f as g", module.__dict__)
        unregistered: dict[str, object] = {"__name__": "other_ns", "__builtins__": builtins}
        exec("from mod import CONST", unregistered)
        assert hmr.tracker.is_tracked("notebook_ns")
        assert not hmr.tracker.is_tracked("other_ns")

        path.write_text("CONST = 2\n\n\ndef f():\n    return 'new'\n")
        result = hmr.reload("mod")
        assert module.CONST == 2
        assert module.g() == "new"  # patched in place
        assert "notebook_ns.CONST" in result.rebound
        assert unregistered["CONST"] == 1  # not a project importer: left alone
        assert "notebook_ns" not in result.reloaded  # never re-executed
    finally:
        sys.modules.pop("notebook_ns", None)


def test_a_root_added_later_tracks_what_is_imported_afterwards(
    project: Project, hmr: Any, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "early_mod.py").write_text("X = 1\n")
    (other / "late_mod.py").write_text("X = 1\n")
    sys.path.insert(0, str(other))
    try:
        importlib.import_module("early_mod")
        assert not hmr.tracker.is_tracked("early_mod")
        hmr.project.add_root(other)
        late = importlib.import_module("late_mod")
        assert hmr.tracker.is_tracked("late_mod")
        assert not hmr.tracker.is_tracked("early_mod")  # its verdict stays
        (other / "late_mod.py").write_text("X = 2\n")
        hmr.reload_module("late_mod")
        assert late.X == 2
    finally:
        sys.path.remove(str(other))
        sys.modules.pop("early_mod", None)
        sys.modules.pop("late_mod", None)
