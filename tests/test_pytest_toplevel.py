"""What a test module's top level reads: does its collection outlive a body edit?

:class:`TopLevels` is given real test files; ``app`` stands for the project's
code (``is_project``), ``pytest`` and the standard library do not.
"""

from __future__ import annotations

import os
import textwrap
import types
from pathlib import Path

import pytest

from muckrack_hmr.integrations.pytest_watch.toplevel import TopLevels

PROJECT = {"app", "app.calc", "tests", "tests.helpers"}


def keeps(tmp_path: Path, source: str, package: str = "tests") -> bool:
    path = tmp_path / "test_sample.py"
    path.write_text(textwrap.dedent(source))
    module = types.ModuleType("tests.test_sample")
    module.__package__ = package
    return TopLevels().keeps_collection(str(path), module, PROJECT.__contains__)


@pytest.mark.parametrize(
    "source",
    [
        # Project code read in test bodies only: what they call is patched in place.
        """\
        import pytest
        from app.calc import add
        import app.calc
        from . import helpers

        @pytest.mark.parametrize("n", [1, 2])
        def test_add(n):
            assert add(n, n) == app.calc.add(n, n) == helpers.twice(n)

        class TestAdd:
            size = 3

            @pytest.fixture(params=[0, 1])
            def zero(self, request):
                return add(request.param, 0)

            def test_zero(self, zero):
                assert zero in (0, 1)
        """,
        # A helper that reads project code, called only by tests.
        """\
        from app.calc import add

        def cases():
            return [add(1, 1)]

        def test_cases():
            assert cases() == [2]
        """,
    ],
    ids=["bodies", "helper-called-by-tests"],
)
def test_top_levels_that_run_no_project_code_keep_their_collection(
    tmp_path: Path, source: str
) -> None:
    assert keeps(tmp_path, source)


@pytest.mark.parametrize(
    "source",
    [
        # parametrize values computed by a changed function at collection
        """\
        import pytest
        from app.calc import add

        @pytest.mark.parametrize("n", [add(1, 1)])
        def test_n(n):
            assert n
        """,
        # through a helper of the module
        """\
        import pytest
        from app import calc

        def cases():
            return [calc.add(1, 1)]

        def more():
            return cases()

        @pytest.mark.parametrize("n", more())
        def test_n(n):
            assert n
        """,
        # a class body and a default argument
        """\
        import app.calc

        class TestA:
            total = app.calc.add(1, 2)

            def test_total(self):
                assert self.total
        """,
        """\
        from app.calc import add

        def test_default(n=add(1, 1)):
            assert n
        """,
        # a module statement, through a relative import
        """\
        from .helpers import twice

        VALUES = twice(2)

        def test_values():
            assert VALUES
        """,
        # what a star import binds cannot be told
        """\
        from app.calc import *

        def test_add():
            assert add(1, 1) == 2
        """,
        # a hook the module defines runs at collection
        """\
        from app.calc import add

        def pytest_generate_tests(metafunc):
            metafunc.parametrize("n", [add(1, 1)])

        def test_n(n):
            assert n
        """,
        # code reached by a string
        """\
        import importlib

        add = importlib.import_module("app.calc").add

        def test_add():
            assert add(1, 1) == 2
        """,
        # a module that was never imported: what it is cannot be told
        """\
        from not_imported_anywhere import thing

        CASES = thing()

        def test_thing():
            assert CASES
        """,
        # it does not parse
        """\
        def test_broken(:
            pass
        """,
    ],
    ids=[
        "parametrize",
        "via-helpers",
        "class-body",
        "default",
        "relative-import",
        "star-import",
        "hook",
        "import-module",
        "unknown-module",
        "syntax-error",
    ],
)
def test_top_levels_that_may_run_project_code_are_collected_again(
    tmp_path: Path, source: str
) -> None:
    assert not keeps(tmp_path, source)


def test_names_from_other_libraries_are_not_suspect(tmp_path: Path) -> None:
    assert keeps(
        tmp_path,
        """\
        import os.path
        import pytest
        from app.calc import add

        HERE = os.path.dirname(__file__)

        @pytest.mark.skipif(os.sep == "?", reason="never")
        def test_here():
            assert add(1, 1) == 2 and HERE
        """,
    )


def test_a_file_parsed_once_per_content(tmp_path: Path) -> None:
    path = tmp_path / "test_sample.py"
    path.write_text("from app.calc import add\n\ndef test_add():\n    assert add(1, 1)\n")
    module = types.ModuleType("tests.test_sample")
    module.__package__ = "tests"
    top_levels = TopLevels()
    assert top_levels.prepare([str(path)], limit=8)
    assert not top_levels.prepare([str(path)], limit=8)  # parsed already
    assert top_levels.keeps_collection(str(path), module, PROJECT.__contains__)
    path.write_text("from app.calc import add\n\nCASES = add(1, 1)\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert not top_levels.keeps_collection(str(path), module, PROJECT.__contains__)
