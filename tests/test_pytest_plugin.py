"""End-to-end tests of ``pytest --hmr``: real ``python -m pytest --hmr`` children on temp projects.

Each test asserts the first run's results, edits real files, and waits, with
a deadline, for the run that follows (its lines end with ``hmr: watching``),
on both cores.  Children run with plugin autoloading off and ``-p
muckrack.hmr.pytest_plugin`` (faster to start, and the explicit way to load
the plugin); the entry point itself is tested by the inert and CLI tests.
"""

from __future__ import annotations

import inspect
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from muckrack_hmr.integrations.pytest_watch import loop as loop_module

from .subprocesses import (
    DEADLINE,
    RUN_TIMEOUT,
    SILENT_FILE_EVENTS,
    Run,
    Watch,
    as_from_a_terminal,
    save_atomically,
    write,
)


def project(proj: Path) -> Path:
    """Two code modules, a conftest fixture and a test module for each."""
    write(proj / "pytest.ini", "[pytest]\n")
    write(proj / "app" / "__init__.py", "")
    write(
        proj / "app" / "calc.py",
        """\
        def add(a, b):
            return a + b
        """,
    )
    write(
        proj / "app" / "text.py",
        """\
        def shout(word):
            return word.upper()
        """,
    )
    write(
        proj / "tests" / "conftest.py",
        """\
        import pytest

        @pytest.fixture
        def two():
            return 2
        """,
    )
    write(
        proj / "tests" / "test_calc.py",
        """\
        from app.calc import add

        def test_add(two):
            assert add(two, 2) == 4

        def test_add_zero():
            assert add(0, 0) == 0
        """,
    )
    write(
        proj / "tests" / "test_text.py",
        """\
        from app import text

        def test_shout():
            assert text.shout("hi") == "HI"
        """,
    )
    return proj


CALC = "tests/test_calc.py"
TEXT = "tests/test_text.py"
# Python 3.12+: tests are selected by the functions they executed (sys.monitoring);
# before, by the modules their test file imports.
BY_EXECUTION = sys.version_info >= (3, 12)


def test_inert_without_hmr(proj: Path) -> None:
    """Installed, the plugin adds its options and imports nothing else without --hmr."""
    project(proj)
    write(
        proj / "tests" / "test_probe.py",
        """\
        import builtins
        import sys

        def test_nothing_of_hmr_loaded():
            assert "muckrack_hmr" not in sys.modules
            assert not hasattr(builtins, "__hmr__")
        """,
    )
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
        cwd=proj,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
    help_text = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"],
        cwd=proj,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    ).stdout
    assert "--hmr-all" in help_text


def test_code_edit_runs_only_the_tests_that_import_it(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    session = watch(project(proj))
    first = session.run()
    assert first.outcomes == {
        f"{CALC}::test_add": "PASSED",
        f"{CALC}::test_add_zero": "PASSED",
        f"{TEXT}::test_shout": "PASSED",
    }
    assert first.summary.startswith("3 passed")

    write(proj / "app" / "calc.py", "def add(a, b):\n    return a + b + 1\n")
    run = session.run()
    assert run.has("hmr: changed app/calc.py")
    assert run.has("hmr: reloaded app.calc")
    assert run.has("hmr: selected 2 tests in 1 file: tests/test_calc.py")
    assert run.outcomes == {f"{CALC}::test_add": "FAILED", f"{CALC}::test_add_zero": "FAILED"}
    assert run.summary.startswith("2 failed in")
    assert run.has("E       assert 5 == 4")  # asserts in the re-imported test module are rewritten

    save_atomically(proj / "app" / "text.py", "def shout(word):\n    return word.lower()\n")
    run = session.run()
    assert run.outcomes == {f"{TEXT}::test_shout": "FAILED"}
    assert run.has("2 failing test(s) not re-run")

    write(proj / "app" / "calc.py", "def add(a, b):\n    return a + b\n")
    run = session.run()
    assert run.outcomes == {f"{CALC}::test_add": "PASSED", f"{CALC}::test_add_zero": "PASSED"}
    assert run.summary.startswith("2 passed")


def test_test_files_edited_added_and_deleted(proj: Path, watch: Callable[..., Watch]) -> None:
    session = watch(project(proj), stdin=True)
    assert session.run().summary.startswith("3 passed")

    calc_tests = (proj / CALC).read_text()
    write(proj / CALC, calc_tests + "\ndef test_new():\n    assert add(1, 1) == 3\n")
    run = session.run()
    assert run.has("hmr: changed tests/test_calc.py")
    assert run.outcomes == {
        f"{CALC}::test_add": "PASSED",
        f"{CALC}::test_add_zero": "PASSED",
        f"{CALC}::test_new": "FAILED",
    }

    write(
        proj / "tests" / "sub" / "test_more.py",
        "from app.text import shout\n\ndef test_more():\n    assert shout('a') == 'A'\n",
    )
    run = session.run()
    assert run.outcomes == {"tests/sub/test_more.py::test_more": "PASSED"}

    # The new file's tests follow its imports like the others.
    write(proj / "app" / "text.py", "def shout(word):\n    return word.upper() + '!'\n")
    run = session.run()
    assert run.outcomes == {
        f"{TEXT}::test_shout": "FAILED",
        "tests/sub/test_more.py::test_more": "FAILED",
    }

    (proj / CALC).unlink()
    run = session.run()
    assert run.has("hmr: deleted tests/test_calc.py")
    assert run.outcomes == {}
    # What happened, and the failing tests left alone: both went unsaid.
    assert run.has("hmr: no test to run: the deleted file's 3 tests dropped")
    assert run.has("hmr: watching for changes; 2 failing test(s) not re-run")
    session.child.send("a")
    run = session.run()
    assert run.outcomes == {
        f"{TEXT}::test_shout": "FAILED",
        "tests/sub/test_more.py::test_more": "FAILED",
    }


@pytest.mark.parametrize("mode", [[], ["--hmr-by-imports"]], ids=["default", "by-imports"])
def test_a_text_file_of_doctests_runs_again_when_the_code_changes(
    proj: Path, watch: Callable[..., Watch], mode: list[str]
) -> None:
    """``--doctest-glob=README.rst`` (parse's own set-up): its examples import the package
    as they run.  Selected by imports (3.11, ``--hmr-by-imports``) it never ran again, and
    a broken edit stayed green where a cold run failed."""
    write(proj / "pytest.ini", "[pytest]\naddopts = --doctest-glob=README.rst\n")
    write(proj / "pkg" / "__init__.py", 'def greet(name):\n    return "hello " + name\n')
    write(
        proj / "README.rst",
        "Usage::\n\n    >>> import pkg\n    >>> pkg.greet('x')\n    'hello x'\n",
    )
    write(
        proj / "tests" / "test_pkg.py",
        "import pkg\n\n\ndef test_greet():\n    assert pkg.greet('x').endswith('x')\n",
    )
    session = watch(proj, *mode)
    readme, test = "README.rst::README.rst", "tests/test_pkg.py::test_greet"
    assert session.run().outcomes == {readme: "PASSED", test: "PASSED"}

    write(proj / "pkg" / "__init__.py", 'def greet(name):\n    return "hello, " + name\n')
    assert session.run().outcomes == {readme: "FAILED", test: "PASSED"}
    write(proj / "pkg" / "__init__.py", 'def greet(name):\n    return "hello " + name\n')
    assert session.run().outcomes == {readme: "PASSED", test: "PASSED"}


def test_a_library_module_collected_for_its_doctests_is_reloaded_in_place(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """``--doctest-modules`` collects the project's own modules (humanize's set-up): they
    are code, hot-reloaded in place, not test modules imported afresh (which made a new
    package without its submodules: every run after the first save failed to collect)."""
    write(
        proj / "pyproject.toml",
        """\
        [tool.pytest.ini_options]
        addopts = "--doctest-modules"
        testpaths = ["src", "tests"]
        pythonpath = ["src"]
        """,
    )
    write(
        proj / "src" / "mypkg" / "__init__.py", "from mypkg.sub import f\nfrom mypkg.num import g\n"
    )
    write(proj / "src" / "mypkg" / "sub.py", "def f():\n    return 1\n")
    num = """\
        from pathlib import Path

        from .sub import f

        # Each run of the module's top level leaves a line.
        with open(Path(__file__).parent.parent.parent / "runs.log", "a") as log:
            log.write("ran\\n")


        def g():
            \"\"\"
            >>> g()
            2
            \"\"\"
            return f() + 1
        """
    write(proj / "src" / "mypkg" / "num.py", num)
    write(
        proj / "tests" / "test_a.py",
        """\
        import mypkg

        SUBFILE = mypkg.sub.__file__  # the package's submodule, as humanize's test_i18n reads


        def test_g():
            assert mypkg.g() == 2
        """,
    )
    session = watch(proj, stdin=True)
    doctest = "src/mypkg/num.py::mypkg.num.g"
    first = session.run()
    assert first.outcomes == {doctest: "PASSED", "tests/test_a.py::test_g": "PASSED"}
    assert (proj / "runs.log").read_text() == "ran\n"

    write(proj / "src" / "mypkg" / "num.py", num.replace("2\n", "3\n").replace("+ 1", "+ 2"))
    run = session.run()
    assert run.has("hmr: reloaded mypkg.num")
    assert run.outcomes == {doctest: "PASSED", "tests/test_a.py::test_g": "FAILED"}
    assert not run.has("error")
    assert (proj / "runs.log").read_text() == "ran\n"  # patched in place, not imported again

    session.child.send("a")
    run = session.run()
    assert run.outcomes == {doctest: "PASSED", "tests/test_a.py::test_g": "FAILED"}
    assert (proj / "runs.log").read_text() == "ran\n"

    write(
        proj / "tests" / "test_a.py",
        (proj / "tests" / "test_a.py").read_text().replace("== 2", "== 3"),
    )
    run = session.run()
    assert run.outcomes == {"tests/test_a.py::test_g": "PASSED"}


def test_a_parametrize_value_a_test_changed_in_place_is_made_afresh_for_the_next_run(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """humanize's ``test_naturalsize`` turns its own argument around (``args[0] *= -1``): a
    fresh run starts from the value the module makes, and so does each run of the loop
    (kept, the changed value failed every run after the first: 78 failures, not 1)."""
    write(proj / "pytest.ini", "[pytest]\npythonpath = .\n")
    write(proj / "lib.py", "def neg(x):\n    return -x\n")
    write(
        proj / "tests" / "test_lib.py",
        """\
        import pytest

        import lib


        @pytest.mark.parametrize("args", [[1], [2]])
        def test_neg(args):
            assert lib.neg(args[0]) == -abs(args[0])
            args[0] *= -1
            assert lib.neg(args[0]) == abs(args[0])


        @pytest.mark.parametrize("n, name", [(1, "one"), (2, "two")])
        def test_fixed(n, name):
            assert lib.neg(n) < 0 and name
        """,
    )
    session = watch(proj, stdin=True)
    every = {
        "tests/test_lib.py::test_neg[args0]": "PASSED",
        "tests/test_lib.py::test_neg[args1]": "PASSED",
        "tests/test_lib.py::test_fixed[1-one]": "PASSED",
        "tests/test_lib.py::test_fixed[2-two]": "PASSED",
    }
    assert session.run().outcomes == every
    write(proj / "lib.py", "def neg(x):\n    return 0 - x\n")  # the same results
    assert session.run().outcomes == every
    session.child.send("a")
    assert session.run().outcomes == every


def test_hypothesis_methods_of_a_test_class_run_again_as_in_a_fresh_run(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """Hypothesis' ``@given`` keeps the instance its method first ran on: a test kept for
    the next run, whose class pytest gives a new instance, failed its health check
    ("called from multiple different executors") in every run after the first (attrs:
    19 false failures of 38)."""
    pytest.importorskip("hypothesis")
    write(proj / "pytest.ini", "[pytest]\npythonpath = .\n")
    write(proj / "calc.py", "def add(a, b):\n    return a + b\n")
    write(
        proj / "tests" / "test_calc.py",
        """\
        from hypothesis import given, settings, strategies as st

        from calc import add


        class TestAdd:
            @settings(max_examples=5, database=None)
            @given(st.integers(), st.integers())
            def test_commutes(self, a, b):
                assert add(a, b) == add(b, a)


        @settings(max_examples=5, database=None)
        @given(st.integers())
        def test_zero(a):
            assert add(a, 0) == a
        """,
    )
    session = watch(proj, stdin=True)
    every = {
        "tests/test_calc.py::TestAdd::test_commutes": "PASSED",
        "tests/test_calc.py::test_zero": "PASSED",
    }
    assert session.run().outcomes == every
    write(proj / "calc.py", "def add(a, b):\n    return b + a\n")
    assert session.run().outcomes == every
    session.child.send("a")
    assert session.run().outcomes == every


def test_a_change_of_a_module_another_plugin_imported_first_runs_the_tests_it_reaches(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """attrs under anyio's plugin (which imports trio, which imports attrs): the project's
    modules were imported before the import hook was, so their imports of each other went
    unseen, and a change of ``attr._funcs`` reached no test (they import ``attr``).  What
    their namespaces hold tells those imports."""
    write(proj / "pytest.ini", "[pytest]\n")
    write(proj / "mylib" / "__init__.py", "from ._funcs import has\n")
    write(proj / "mylib" / "_funcs.py", "def has(x):\n    return x is not None\n")
    write(proj / "preload.py", "import mylib  # a plugin that uses the project\n")
    write(
        proj / "tests" / "test_has.py",
        "from mylib import has\n\n\ndef test_has():\n    assert has(1)\n",
    )
    path = os.pathsep.join(filter(None, [str(proj), os.environ.get("PYTHONPATH")]))
    session = watch(proj, "-p", "preload", env={"PYTHONPATH": path})
    assert session.run().outcomes == {"tests/test_has.py::test_has": "PASSED"}
    write(proj / "mylib" / "_funcs.py", "def has(x):\n    return False\n")
    run = session.run()
    assert run.has("hmr: reloaded mylib._funcs")
    assert run.outcomes == {"tests/test_has.py::test_has": "FAILED"}


@pytest.mark.parametrize("how", ["env", "option"])
def test_saves_are_found_by_polling_where_file_events_never_come(
    proj: Path, watch: Callable[..., Watch], how: str
) -> None:
    """Network drives, bind mounts, WSL's Windows drives: ``--hmr-poll`` or
    ``MUCKRACK_HMR_FORCE_POLLING=1`` find a code edit, a test file edit, a new test
    folder and a deleted test file."""
    if how == "option":
        session = watch(project(proj), "--hmr-poll", "0.05")
        why = "--poll"
    else:
        session = watch(project(proj), env={"MUCKRACK_HMR_FORCE_POLLING": "1"})
        why = "MUCKRACK_HMR_FORCE_POLLING is set"
    first = session.run()
    assert first.summary.startswith("3 passed")
    interval = "0.05" if how == "option" else "0.1"
    assert first.has(f"hmr: finding saves by polling every {interval} s ({why})")

    write(proj / "app" / "calc.py", "def add(a, b):\n    return a + b + 1\n")
    assert session.run().outcomes == {
        f"{CALC}::test_add": "FAILED",
        f"{CALC}::test_add_zero": "FAILED",
    }
    write(proj / "tests" / "sub" / "test_more.py", "def test_more():\n    assert True\n")
    assert session.run().outcomes == {"tests/sub/test_more.py::test_more": "PASSED"}
    write(proj / "tests" / "sub" / "test_more.py", "def test_more():\n    assert False\n")
    assert session.run().outcomes == {"tests/sub/test_more.py::test_more": "FAILED"}
    (proj / CALC).unlink()
    run = session.run()
    assert run.has("hmr: deleted tests/test_calc.py")


def test_where_the_os_accepts_watches_and_never_reports_a_save_polling_takes_over(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """A bind mount or a network drive: inotify watches, no event ever comes.  The
    default backend's check finds the save it missed, says so, and polls from then on:
    the save and the next ones re-run the affected tests."""
    write(proj / "silent_file_events.py", SILENT_FILE_EVENTS)
    session = watch(project(proj), "-p", "silent_file_events")
    first = session.run()
    assert first.summary.startswith("3 passed")
    assert not first.has("hmr: finding saves by")  # the default: inotify, checked

    write(proj / "app" / "calc.py", "def add(a, b):\n    return a + b + 1\n")
    run = session.run()
    assert run.has("hmr: file events do not arrive here (inotify reported no event")
    assert run.has("reported no event for ")
    assert run.has("polling every 0.1 s instead (pass --hmr-poll to start so)")
    assert run.has("hmr: changed app/calc.py")
    assert run.outcomes == {f"{CALC}::test_add": "FAILED", f"{CALC}::test_add_zero": "FAILED"}

    save_atomically(proj / "app" / "text.py", "def shout(word):\n    return word.lower()\n")
    run = session.run()
    assert not run.has("do not arrive")
    assert run.outcomes == {f"{TEXT}::test_shout": "FAILED"}


def test_the_plugins_backend_choices_and_debounce_are_the_clis() -> None:
    """The entry point imports nothing of the package: its choices are spelled there."""
    from muckrack.hmr import pytest_plugin
    from muckrack_hmr.settings import DEFAULT_DEBOUNCE_MS
    from muckrack_hmr.watch.backends import BACKENDS, DEFAULT_POLL_INTERVAL

    assert pytest_plugin.BACKENDS == BACKENDS
    assert pytest_plugin.POLL_INTERVAL == DEFAULT_POLL_INTERVAL
    assert pytest_plugin.DEBOUNCE_MS == DEFAULT_DEBOUNCE_MS


def test_quiet_runs_end_with_pytests_summary(proj: Path, watch: Callable[..., Watch]) -> None:
    """``-q`` (progress dots, then the summary), on every pytest we support."""
    session = watch(project(proj), "-q")
    assert session.run().summary.startswith("3 passed")
    write(proj / "app" / "calc.py", "def add(a, b):\n    return a + b + 1\n")
    run = session.run()
    assert run.summary.startswith("2 failed")
    assert not run.has("INTERNALERROR")


def test_a_test_file_saved_again_within_its_seconds_mtime_runs_its_latest_code(
    proj: Path, watch: Callable[..., Watch], core_env: dict[str, str]
) -> None:
    """pytest caches rewritten test modules as pycs; one checked by mtime in seconds
    and size (pytest 8) would give the same-size save within a second the old code."""
    core_env.pop("PYTHONDONTWRITEBYTECODE", None)
    session = watch(project(proj))
    assert session.run().summary.startswith("3 passed")
    path = proj / CALC
    write(path, path.read_text() + "\ndef test_new():\n    assert add(1, 1) == 3\n")
    assert session.run().outcomes[f"{CALC}::test_new"] == "FAILED"
    stat = path.stat()
    write(path, path.read_text().replace("== 3", "== 2"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    assert session.run().outcomes[f"{CALC}::test_new"] == "PASSED"


def test_syntax_errors_are_reported_and_watching_goes_on(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    session = watch(project(proj), stdin=True)
    assert session.run().summary.startswith("3 passed")

    write(proj / "app" / "calc.py", "def add(a, b):\n    return (a +\n")
    session.expect("hmr: changed app/calc.py")
    error = session.expect("hmr: failed to reload app.calc")
    assert f"{os.sep}app{os.sep}calc.py:2" in error
    session.expect("SyntaxError")
    session.expect("hmr: not running tests until app.calc loads again (1 test file(s) waiting)")
    session.expect("hmr: watching for changes")  # (tests wait for the fix)

    # Saved back as it runs: nothing the tests ran changed, and none runs.  Before, every
    # test file importing it ran whole (more-itertools: 765 tests, 26 s).
    write(proj / "app" / "calc.py", "def add(a, b):\n    return a + b\n")
    session.expect("hmr: app.calc recovered")
    # (Said as the tests are selected: by what they ran, or before 3.12 by what they import.)
    session.expect(f"hmr: no test is affected: none {'ran' if BY_EXECUTION else 'imports'}")
    session.expect("hmr: watching for changes")
    write(proj / "app" / "calc.py", "def add(a, b):\n    return (a +\n")
    session.expect("hmr: not running tests until app.calc loads again")
    session.expect("hmr: watching for changes")
    # Every test asked for meanwhile: they run the code that runs, and it is said (a
    # cold run fails to import the module; it went unsaid).
    session.child.send("a")
    run = session.run()
    assert run.has("hmr: running all tests")
    assert run.has("hmr: app.calc did not load its last save: the tests run the code that runs")
    assert run.summary.startswith("3 passed")
    write(proj / "app" / "calc.py", "def add(a, b):\n    return b + a\n")  # a fix that edits
    run = session.run()
    assert run.outcomes == {f"{CALC}::test_add": "PASSED", f"{CALC}::test_add_zero": "PASSED"}

    write(proj / TEXT, "def test_shout(:\n    pass\n")
    run = session.run()
    assert run.has("ERROR collecting tests/test_text.py")
    assert run.has("Interrupted: 1 error during collection")
    assert run.summary.startswith("1 error in")

    write(
        proj / TEXT,
        "from app import text\n\ndef test_shout():\n    assert text.shout('x') == 'X'\n",
    )
    run = session.run()
    assert run.outcomes == {f"{TEXT}::test_shout": "PASSED"}

    # A module of code deleted: the tests importing it fail to import, as in a
    # fresh run; restored, they run again.
    source = (proj / "app" / "text.py").read_text()
    (proj / "app" / "text.py").unlink()
    run = session.run()
    assert run.has("hmr: deleted app/text.py")
    assert run.has("ERROR collecting tests/test_text.py")
    write(proj / "app" / "text.py", source)
    run = session.run()
    assert run.outcomes == {f"{TEXT}::test_shout": "PASSED"}

    # A change the engine refuses (a class's bases): the tests wait for a restart.
    classes = "class A:\n    pass\n\n\nclass B:\n    pass\n\n\nclass C({}):\n    pass\n"
    write(proj / "app" / "shapes.py", classes.format("A"))
    write(
        proj / "tests" / "test_shapes.py",
        "from app.shapes import C\n\ndef test_c():\n    assert C\n",
    )
    assert session.run().outcomes == {"tests/test_shapes.py::test_c": "PASSED"}
    write(proj / "app" / "shapes.py", classes.format("B"))
    line = session.expect("hmr: restart to apply: app.shapes.C changed its bases (now B) at ")
    assert line.endswith(f"{os.sep}app{os.sep}shapes.py:9 (class layout)"), line
    session.expect("change(s) need a restart of pytest --hmr")


def errors_section(lines: list[str]) -> list[str]:
    """pytest's ERRORS section: from its header to the short test summary."""
    start = next(index for index, line in enumerate(lines) if re.match(r"^=+ ERRORS =+$", line))
    end = next(index for index, line in enumerate(lines) if "short test summary info" in line)
    return lines[start:end]


def test_collection_errors_show_no_frames_of_the_import_hook(
    proj: Path, watch: Callable[..., Watch], core_env: dict[str, str]
) -> None:
    """The traceback of a test module's failed import is the one a plain pytest run shows."""
    project(proj)
    write(proj / "tests" / "test_missing.py", "import app.missing\n\ndef test_x():\n    pass\n")
    write(proj / "app" / "deep.py", "from app.gone import name\n")
    write(proj / "tests" / "test_deep.py", "import app.deep\n\ndef test_y():\n    pass\n")
    plain = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider"],
        cwd=proj,
        env=dict(core_env, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    expected = errors_section(plain.stdout.splitlines())
    assert any("No module named 'app.missing'" in line for line in expected)
    assert any("No module named 'app.gone'" in line for line in expected)

    session = watch(proj)
    first = session.run()
    assert errors_section(first.lines) == expected
    assert not any("_hmr_core" in line or "_core_py" in line for line in first.lines)

    # Collected again in the loop: the same, and the selection line says what runs.
    write(proj / "tests" / "test_missing.py", "import app.absent\n\ndef test_x():\n    pass\n")
    run = session.run()
    assert any(
        re.match(r"hmr: no test to run: \d+ collection errors? \(below\); collected in", line)
        for line in run.lines
    ), run.lines
    assert not run.has("no test is affected")
    assert run.has("E   ModuleNotFoundError: No module named 'app.absent'")
    assert run.has("tests/test_missing.py:1: in <module>")
    assert not any("_hmr_core" in line or "_core_py" in line for line in run.lines)


def test_a_fix_after_a_failed_reload_or_collection_says_recovered(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """As the CLI does: ``hmr: app.calc recovered`` once a save fixes what failed."""
    session = watch(project(proj))
    assert session.run().summary.startswith("3 passed")
    write(proj / "app" / "calc.py", "def add(a, b):\n    return b + a\n")
    run = session.run()
    assert run.outcomes == {f"{CALC}::test_add": "PASSED", f"{CALC}::test_add_zero": "PASSED"}
    assert not run.has("recovered")  # nothing had failed

    # A module of code that fails to reload, then fixed with new code.
    write(proj / "app" / "calc.py", "def add(a, b):\n    return (a +\n")
    session.expect("hmr: not running tests until app.calc loads again")
    session.expect("hmr: watching for changes")  # (tests wait for the fix)
    write(proj / "app" / "calc.py", "def add(a, b):\n    return a + b + 0\n")
    run = session.run()
    assert run.has("hmr: app.calc recovered")
    assert run.outcomes == {f"{CALC}::test_add": "PASSED", f"{CALC}::test_add_zero": "PASSED"}

    # A test module that fails to collect, then fixed.
    write(proj / TEXT, "def test_shout(:\n    pass\n")
    run = session.run()
    assert run.has("ERROR collecting tests/test_text.py")
    assert not run.has("recovered")
    write(proj / TEXT, "from app import text\n\ndef test_shout():\n    assert text.shout('a')\n")
    run = session.run()
    assert run.has(f"hmr: {TEXT} recovered")
    assert run.outcomes == {f"{TEXT}::test_shout": "PASSED"}

    # A conftest that fails to import, then fixed.
    conftest = proj / "tests" / "conftest.py"
    source = conftest.read_text()
    write(conftest, source + "\ndef broken(:\n")
    session.expect("hmr: tests/conftest.py failed to import")
    session.expect("hmr: not running tests until tests/conftest.py loads again")
    session.expect("hmr: watching for changes")  # (tests wait for the fix)
    write(conftest, source + "\n\nEXTRA = 1\n")
    run = session.run()
    assert run.has("hmr: tests/conftest.py recovered")
    assert not run.has("app.calc recovered")  # said once


def test_a_broken_conftest_counts_the_test_files_that_wait_and_runs_them_once_fixed(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    project(proj)
    conftest = proj / "tests" / "conftest.py"
    source = conftest.read_text()
    write(conftest, source + "\n\n@pytest.fixture\ndef val():\n    return 1\n")
    write(proj / "tests" / "test_fix.py", "def test_fix(val):\n    assert val == 1\n")
    session = watch(proj)
    assert session.run().summary.startswith("4 passed")

    # The users of its fixtures wait: tests/test_calc.py (two) and tests/test_fix.py (val).
    write(conftest, source + "\n\n@pytest.fixture\ndef val():\n    return (1\n")
    session.expect("hmr: tests/conftest.py failed to import")
    session.expect(
        "hmr: not running tests until tests/conftest.py loads again (2 test file(s) waiting)"
    )
    session.expect("hmr: watching for changes")  # (tests wait for the fix)
    write(conftest, source + "\n\n@pytest.fixture\ndef val():\n    return 2\n")
    run = session.run()
    assert run.has("hmr: tests/conftest.py recovered")
    assert run.outcomes == {
        f"{CALC}::test_add": "PASSED",
        f"{CALC}::test_add_zero": "PASSED",
        "tests/test_fix.py::test_fix": "FAILED",
    }


def test_a_conftest_with_pytest_plugins_or_a_skip_at_import_is_saved_without_a_crash(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """A conftest pytest took at start-up with ``pytest_plugins`` (a plugin module of the
    project, and pytest's own ``pytester``) was refused when imported again ("Defining
    'pytest_plugins' in a non-top-level conftest is no longer supported"), and a
    conftest that skips or fails at import (``pytest.importorskip``) raised pytest's
    outcome, a BaseException: either ended ``pytest --hmr`` with an INTERNALERROR.  The
    conftest is taken again; the one that skips is reported, and the old one stays."""
    project(proj)
    write(
        proj / "app" / "testing.py",
        "import pytest\n\n@pytest.fixture\ndef seven():\n    return 7\n",
    )
    conftest = proj / "tests" / "conftest.py"
    source = conftest.read_text().replace(
        "import pytest\n", 'import pytest\n\npytest_plugins = ["app.testing", "pytester"]\n', 1
    )
    write(conftest, source)
    write(
        proj / "tests" / "test_plugins.py",
        "def test_seven(seven):\n    assert seven == 7\n\n\n"
        "def test_pytester(pytester):\n    assert pytester\n",
    )
    session = watch(proj)
    assert session.run().summary.startswith("5 passed")

    write(conftest, source.replace("return 2", "return 3"))
    run = session.run()
    assert run.has("hmr: changed tests/conftest.py")
    # (A conftest that takes plugins may change what any test sees: they all run.)
    assert run.outcomes[f"{CALC}::test_add"] == "FAILED"
    assert run.outcomes["tests/test_plugins.py::test_seven"] == "PASSED"

    write(conftest, source + "\npytest.importorskip('no_such_module_here')\n")
    session.expect("hmr: tests/conftest.py failed to import")
    session.expect("hmr: watching for changes")  # (tests wait for the fix)
    write(conftest, source)
    run = session.run()
    assert run.has("hmr: tests/conftest.py recovered")
    assert run.outcomes[f"{CALC}::test_add"] == "PASSED"


@pytest.mark.parametrize("kind", ["autouse fixture", "hook"])
def test_removing_an_autouse_fixture_or_a_hook_from_a_conftest_runs_the_tests_again(
    proj: Path, watch: Callable[..., Watch], kind: str
) -> None:
    """An autouse fixture (or a hook) that broke a test is removed from the conftest: the
    tests below it ran nothing again ("no test is affected"), and the test kept showing
    as failed, which a cold run passes.  What the old conftest had counts too."""
    project(proj)
    conftest = proj / "tests" / "conftest.py"
    source = conftest.read_text()
    breaking = {
        "autouse fixture": (
            "\n\n@pytest.fixture(autouse=True)\ndef _broken(request):\n"
            "    if request.node.name == 'test_add':\n        pytest.fail('broken')\n"
        ),
        "hook": (
            "\n\ndef pytest_collection_modifyitems(items):\n    for item in items:\n"
            "        if item.name == 'test_add':\n"
            "            item.add_marker(pytest.mark.xfail(reason='x', strict=True))\n"
        ),
    }[kind]
    session = watch(proj)
    assert session.run().summary.startswith("3 passed")
    write(conftest, source + breaking)
    run = session.run()
    assert run.outcomes[f"{CALC}::test_add"] != "PASSED"
    write(conftest, source)
    run = session.run()
    assert run.outcomes[f"{CALC}::test_add"] == "PASSED"


def test_conftest_changes_and_session_fixtures(proj: Path, watch: Callable[..., Watch]) -> None:
    project(proj)
    log = proj / "fixture.log"
    write(
        proj / "tests" / "conftest.py",
        f"""\
        import pytest

        LOG = {str(log)!r}

        def note(text):
            with open(LOG, "a") as handle:
                handle.write(text + "\\n")

        @pytest.fixture(scope="session")
        def resource():
            note("setup")
            yield {{"rows": 3}}
            note("teardown")

        @pytest.fixture
        def two():
            return 2
        """,
    )
    write(
        proj / "tests" / "test_resource.py",
        """\
        def test_rows(resource):
            assert resource["rows"] == 3
        """,
    )
    session = watch(proj)
    assert session.run().summary.startswith("4 passed")
    assert log.read_text().split() == ["setup"]

    # A test module edit: the session fixture lives on.
    write(
        proj / "tests" / "test_resource.py",
        """\
        def test_rows(resource):
            assert resource["rows"] > 2
        """,
    )
    run = session.run()
    assert run.outcomes == {"tests/test_resource.py::test_rows": "PASSED"}
    assert log.read_text().split() == ["setup"]

    # An edit of another fixture of the conftest: only its users run again,
    # and the unchanged session fixture is kept.
    conftest = proj / "tests" / "conftest.py"
    write(conftest, conftest.read_text().replace("return 2", "return 3"))
    run = session.run()
    assert run.has("hmr: changed tests/conftest.py")
    assert run.outcomes == {f"{CALC}::test_add": "FAILED"}
    assert log.read_text().split() == ["setup"]

    # The session fixture's own code changes: set up again, after a teardown.
    write(conftest, conftest.read_text().replace('{"rows": 3}', '{"rows": 4}'))
    run = session.run()
    assert run.outcomes == {"tests/test_resource.py::test_rows": "PASSED"}
    assert log.read_text().split() == ["setup", "teardown", "setup"]


def test_module_state_and_monkeypatching_behave_as_in_a_fresh_run(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    project(proj)
    write(
        proj / "tests" / "test_state.py",
        """\
        import app.calc

        CALLS = []

        def test_first():
            CALLS.append(app.calc.add(1, 1))
            assert CALLS == [2]

        def test_second():
            assert len(CALLS) == 1

        def test_patched(monkeypatch):
            monkeypatch.setattr(app.calc, "add", lambda a, b: 0)
            assert app.calc.add(5, 5) == 0

        def test_real():
            assert app.calc.add(5, 5) == 10
        """,
    )
    session = watch(proj)
    assert session.run().summary.startswith("7 passed")
    expected = {
        f"{CALC}::test_add": "PASSED",
        f"{CALC}::test_add_zero": "PASSED",
        "tests/test_state.py::test_first": "PASSED",
        "tests/test_state.py::test_second": "PASSED",
        "tests/test_state.py::test_patched": "PASSED",
        "tests/test_state.py::test_real": "PASSED",
    }
    if BY_EXECUTION:  # the tests that called add; test_first on a fresh import
        del expected["tests/test_state.py::test_second"]
        del expected["tests/test_state.py::test_patched"]
    for body in ("return b + a", "return a + b"):
        write(proj / "app" / "calc.py", f"def add(a, b):\n    {body}\n")
        assert session.run().outcomes == expected


def test_commands_and_exit_code(proj: Path, watch: Callable[..., Watch]) -> None:
    session = watch(project(proj), stdin=True)
    assert session.run().summary.startswith("3 passed")
    write(proj / "app" / "calc.py", "def add(a, b):\n    return a * b\n")
    run = session.run()
    assert run.outcomes == {f"{CALC}::test_add": "PASSED", f"{CALC}::test_add_zero": "PASSED"}
    write(proj / "app" / "text.py", "def shout(word):\n    return word\n")
    assert session.run().outcomes == {f"{TEXT}::test_shout": "FAILED"}

    session.child.send("f")
    run = session.run()
    assert run.has("hmr: re-running 1 failing test(s)")
    assert run.outcomes == {f"{TEXT}::test_shout": "FAILED"}
    session.child.send("a")
    run = session.run()
    assert len(run.outcomes) == 3
    assert run.summary.startswith("1 failed, 2 passed")
    session.child.send("bogus")
    session.expect("hmr: unknown command 'bogus'")
    session.child.send("q")
    assert session.child.wait() == 1  # the last run failed


def test_a_failing_test_beside_the_users_of_a_changed_fixture_stays_failing(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """A conftest save runs the tests of a file that use its fixture: the file is collected
    again, and a failing test beside them that did not run again was forgotten (not
    counted as failing, not re-run by ``f``, ``q`` ended green)."""
    write(proj / "pytest.ini", "[pytest]\n")
    conftest = "import pytest\n\n\n@pytest.fixture\ndef word():\n    return {!r}\n"
    write(proj / "tests" / "conftest.py", conftest.format("b"))
    write(
        proj / "tests" / "test_ab.py",
        "def test_a_fails():\n    assert 1 == 2\n\n\ndef test_b(word):\n    assert word == 'b'\n",
    )
    session = watch(proj, stdin=True)
    a, b = "tests/test_ab.py::test_a_fails", "tests/test_ab.py::test_b"
    assert session.run().outcomes == {a: "FAILED", b: "PASSED"}

    write(proj / "tests" / "conftest.py", conftest.format("c"))
    run = session.run()
    assert run.outcomes == {b: "FAILED"}
    assert run.has("hmr: watching for changes; 1 failing test(s) not re-run"), run.lines
    session.child.send("f")
    run = session.run()
    assert run.has("hmr: re-running 2 failing test(s)"), run.lines
    assert run.outcomes == {a: "FAILED", b: "FAILED"}


def test_a_save_that_does_not_compile_for_a_future_import_below_is_a_failure(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """``import os`` saved above ``from __future__ import annotations``: python refuses the
    file (a cold run: a collection error), but the parse alone let it by, and it ran
    statement by statement: "reloaded", no test affected, and ``q`` ended with 0.  It is a
    failed save now, said with its line, and ``q`` ends with 1 while it does not load."""
    write(proj / "pytest.ini", "[pytest]\n")
    mod = "from __future__ import annotations\n\n\ndef f() -> int:\n    return 1\n"
    write(proj / "pkg" / "__init__.py", "")
    write(proj / "pkg" / "mod.py", mod)
    write(
        proj / "tests" / "test_mod.py",
        "from pkg.mod import f\n\n\ndef test_f():\n    assert f() == 1\n",
    )
    session = watch(proj, stdin=True)
    assert session.run().summary.startswith("1 passed")

    write(proj / "pkg" / "mod.py", "import os\n" + mod)
    run = session.run()
    assert run.has(
        f"hmr: failed to reload pkg.mod ({os.path.realpath(proj / 'pkg' / 'mod.py')}:2): "
        "SyntaxError: from __future__ imports must occur at the beginning of the file; "
        "the old code keeps running"
    ), run.lines
    assert not run.has("hmr: reloaded"), run.lines
    session.child.send("q")
    assert session.child.wait() == 1  # it did not load: no green end


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX only")
def test_ctrl_c_in_a_run_ends_as_pytests_interrupted_session_and_while_waiting_as_q(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """Ctrl-C during a run (or the reload before it) ended with the code of the last run
    that completed, 0 after a green one, and the interrupted run was not reported: as
    pytest, it reports what ran of it (and the test's line) and ends with 2.  While
    waiting for saves it quits as ``q`` does (the last run's code)."""
    write(proj / "pytest.ini", "[pytest]\n")
    write(proj / "app.py", "def pause():\n    return 0\n")
    write(
        proj / "test_slow.py",
        """\
        import pathlib
        import time

        from app import pause


        def test_first():
            assert pause() >= 0


        def test_slow():
            pathlib.Path("running").write_text("")
            time.sleep(pause())
        """,
    )
    with as_from_a_terminal():
        session = watch(proj)
    assert session.run().summary.startswith("2 passed")
    (proj / "running").unlink()

    write(proj / "app.py", "def pause():\n    return 60\n")
    deadline = time.monotonic() + DEADLINE
    while not (proj / "running").exists():  # test_slow sleeps now
        assert time.monotonic() < deadline, session.child.stdout_text()
        time.sleep(0.01)
    session.child.proc.send_signal(signal.SIGINT)

    assert session.child.wait() == pytest.ExitCode.INTERRUPTED
    out = session.child.stdout_text()
    interrupted = out.rsplit("hmr: watching", 1)[1]  # the run after the save
    assert re.search(r"^!+ KeyboardInterrupt !+$", interrupted, re.MULTILINE), out
    assert "test_slow.py::test_first PASSED" in interrupted  # what ran of it
    # Where the test was interrupted, as pytest says it (the test's line, or a library's
    # it called: ``pathlib``'s as it wrote the file): never the loop's signal handler.
    handler = inspect.getsource(loop_module.WatchLoop._interrupt)
    at = loop_module.WatchLoop._interrupt.__code__.co_firstlineno
    raised = at + handler.splitlines().index("        raise KeyboardInterrupt")
    said = f"{loop_module.__file__}:{raised}: KeyboardInterrupt"
    assert said not in interrupted, out

    write(proj / "app.py", "def pause():\n    return 0\n")
    with as_from_a_terminal():
        session = watch(proj)
    assert session.run().summary.startswith("2 passed")
    session.child.proc.send_signal(signal.SIGINT)
    assert session.child.wait() == pytest.ExitCode.OK
    session.expect("hmr: interrupted, stopping")


def test_ctrl_c_pressed_twice_while_waiting_quits_as_q(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """The second Ctrl-C of a double press came while the first stopped the watcher: it
    ended as a session interrupted in the watcher's stop (pytest's report pointing at
    ``threading.py``, exit code 2).  It waits for that stop: the last run's code, as
    ``q``.  (A plugin makes the stop last, so that the second lands in it.)"""
    write(proj / "pytest.ini", "[pytest]\n")
    write(proj / "test_one.py", "def test_one():\n    pass\n")
    write(
        proj / "slow_stop.py",
        """\
        import pathlib
        import time

        from muckrack_hmr.integrations.pytest_watch import wakeups

        close = wakeups.Wakeups.close


        def slowly(self):
            pathlib.Path("stopping").write_text("")
            time.sleep(1)
            close(self)


        wakeups.Wakeups.close = slowly
        """,
    )
    with as_from_a_terminal():
        session = watch(proj, "-p", "slow_stop")
    assert session.run().summary.startswith("1 passed")
    session.child.proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + DEADLINE
    while not (proj / "stopping").exists():
        assert time.monotonic() < deadline, session.child.stdout_text()
        time.sleep(0.01)
    session.child.proc.send_signal(signal.SIGINT)
    assert session.child.wait() == pytest.ExitCode.OK, session.child.stdout_text()
    out = session.child.stdout_text()
    assert "hmr: interrupted, stopping" in out
    assert "KeyboardInterrupt" not in out


@pytest.mark.parametrize("options", [["--hmr", "--hmr-all"], ["--hmr-all"]], ids=["both", "alone"])
def test_hmr_all_runs_everything(
    proj: Path, watch: Callable[..., Watch], options: list[str]
) -> None:
    session = watch(project(proj), *options[1:], flag=options[0])
    assert session.run().summary.startswith("3 passed")
    write(proj / "app" / "text.py", "def shout(word):\n    return word.upper() + ''\n")
    run = session.run()
    assert len(run.outcomes) == 3
    assert run.summary.startswith("3 passed")


def test_selection_counts_only_the_tests_left_after_deselection(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """-k (as -m or --deselect): the selection line counts what runs; none left, no run."""
    session = watch(project(proj), "-k", "shout", stdin=True)
    first = session.run()
    assert first.outcomes == {f"{TEXT}::test_shout": "PASSED"}
    assert first.summary.startswith("1 passed, 2 deselected")

    # Every test of app.calc is deselected: one line, and no empty run.  By
    # execution, none of them ever ran: none is affected.
    write(proj / "app" / "calc.py", "def add(a, b):\n    return a + b + 1\n")
    session.expect("hmr: reloaded app.calc")
    if BY_EXECUTION:
        session.expect("hmr: no test is affected: none ran what changed; collected in")
    else:
        session.expect("hmr: no tests to run: 2 affected tests deselected; collected in")
    session.expect("hmr: watching for changes")
    write(proj / "app" / "text.py", "def shout(word):\n    return word.upper() + ''\n")
    run = session.run()
    assert run.lines[0] == "hmr: changed app/text.py"  # nothing ran in between
    assert run.has("hmr: selected 1 test in 1 file: tests/test_text.py;")
    assert run.outcomes == {f"{TEXT}::test_shout": "PASSED"}

    session.child.send("a")
    run = session.run()
    assert run.has("hmr: selected 1 test (2 deselected) in 1 file: tests/test_text.py;")
    assert run.summary.startswith("1 passed, 2 deselected")


def test_under_the_cli(proj: Path, watch: Callable[..., Watch]) -> None:
    """``python -m muckrack.hmr -m pytest --hmr``: the CLI's HMR is reused, its watcher stopped."""
    session = watch(project(proj), cli=True)
    first = session.run()
    assert first.summary.startswith("3 passed")
    assert not first.has("PytestAssertRewriteWarning")
    write(proj / "app" / "text.py", "def shout(word):\n    return word.title()\n")
    run = session.run()
    assert run.outcomes == {f"{TEXT}::test_shout": "FAILED"}
    assert run.has("E       AssertionError: assert 'Hi' == 'HI'")
    # Said once, by the loop: not a second time by the CLI's log handler.
    assert sum("hmr: reloaded app.text" in line for line in run.lines) == 1
    assert "hmr: reloaded" not in session.child.stderr_text()


def test_under_the_cli_its_polling_applies(proj: Path, watch: Callable[..., Watch]) -> None:
    """The CLI's ``poll`` (here from pyproject.toml) is how the test loop finds saves."""
    project(proj)
    write(proj / "pyproject.toml", "[tool.muckrack-hmr]\npoll = 0.05\n")
    session = watch(proj, cli=True)
    first = session.run()
    assert first.summary.startswith("3 passed")
    assert first.has("hmr: finding saves by polling every 0.05 s (--poll)")
    write(proj / "app" / "text.py", "def shout(word):\n    return word.title()\n")
    assert session.run().outcomes == {f"{TEXT}::test_shout": "FAILED"}


# -- the differential test: the runs of --hmr against fresh pytest runs ------------


@dataclass
class Model:
    """A sample project as data: code modules, tests, a conftest fixture."""

    k: int
    constants: list[int]
    uses_base: list[bool]
    factor: int
    # test file -> [(test name, module index, expected value)]
    tests: dict[str, list[tuple[str, int, int]]]
    broken: int | None = None
    counter: int = 0

    def value(self, module: int) -> int:
        x = self.factor
        return (x * self.k if self.uses_base[module] else x) + self.constants[module]

    def render_base(self) -> str:
        return f"K = {self.k}\n\n\ndef scale(x):\n    return x * K\n"

    def render_module(self, index: int) -> str:
        if self.broken == index:
            return "def value(x:\n    return\n"
        body = "scale(x)" if self.uses_base[index] else "x"
        head = "from lib.base import scale\n\n" if self.uses_base[index] else ""
        return f"{head}C = {self.constants[index]}\n\n\ndef value(x):\n    return {body} + C\n"

    def render_conftest(self) -> str:
        return f"import pytest\n\n\n@pytest.fixture\ndef factor():\n    return {self.factor}\n"

    def render_test(self, name: str) -> str:
        modules = sorted({module for _, module, _ in self.tests[name]})
        lines = [f"from lib import m{module}\n" for module in modules]
        for test, module, expected in self.tests[name]:
            lines.append(
                f"\n\ndef test_{test}(factor):\n    assert m{module}.value(factor) == {expected}\n"
            )
        return "".join(lines)

    def write_all(self, root: Path) -> None:
        write(root / "pytest.ini", "[pytest]\n")
        write(root / "lib" / "__init__.py", "")
        write(root / "lib" / "base.py", self.render_base())
        for index in range(len(self.constants)):
            write(root / "lib" / f"m{index}.py", self.render_module(index))
        write(root / "tests" / "conftest.py", self.render_conftest())
        for name in self.tests:
            write(root / "tests" / f"test_{name}.py", self.render_test(name))

    def new_test(self, rng: random.Random) -> tuple[str, int, int]:
        self.counter += 1
        module = rng.randrange(len(self.constants))
        expected = self.value(module) + rng.choice((0, 0, 1))
        return f"t{self.counter}", module, expected


def make_model(rng: random.Random) -> Model:
    model = Model(
        k=rng.randint(1, 3),
        constants=[rng.randint(0, 5) for _ in range(4)],
        uses_base=[rng.random() < 0.6 for _ in range(4)],
        factor=rng.randint(1, 4),
        tests={},
    )
    for index in range(4):
        model.tests[f"f{index}"] = [model.new_test(rng) for _ in range(3)]
    return model


def other(rng: random.Random, current: int, low: int, high: int) -> int:
    """A value in [low, high] that is not ``current``: every edit changes the file."""
    return rng.choice([value for value in range(low, high + 1) if value != current])


def edit_model(model: Model, root: Path, rng: random.Random) -> str:
    """Apply one random edit to the model and the files; what it was."""
    if model.broken is not None:
        index, model.broken = model.broken, None
        write(root / "lib" / f"m{index}.py", model.render_module(index))
        return f"fix m{index}"
    kind = rng.choice(
        [
            "base",
            "constant",
            "constant",
            "expected",
            "add test",
            "add file",
            "delete test",
            "delete file",
            "conftest",
            "break",
        ]
    )
    files = sorted(model.tests)
    if kind == "base":
        model.k = other(rng, model.k, 1, 3)
        write(root / "lib" / "base.py", model.render_base())
    elif kind == "constant":
        index = rng.randrange(len(model.constants))
        model.constants[index] = other(rng, model.constants[index], 0, 5)
        write(root / "lib" / f"m{index}.py", model.render_module(index))
    elif kind == "expected" and files:
        name = rng.choice(files)
        tests = model.tests[name]
        if tests:
            at = rng.randrange(len(tests))
            test, module, expected = tests[at]
            tests[at] = (test, module, expected + rng.choice((-1, 1)))
            write(root / "tests" / f"test_{name}.py", model.render_test(name))
    elif kind == "add test" and files:
        name = rng.choice(files)
        model.tests[name].append(model.new_test(rng))
        write(root / "tests" / f"test_{name}.py", model.render_test(name))
    elif kind == "add file":
        model.counter += 1
        name = f"n{model.counter}"
        model.tests[name] = [model.new_test(rng) for _ in range(2)]
        write(root / "tests" / f"test_{name}.py", model.render_test(name))
    elif kind == "delete test" and files:
        name = rng.choice(files)
        if len(model.tests[name]) > 1:
            model.tests[name].pop(rng.randrange(len(model.tests[name])))
            write(root / "tests" / f"test_{name}.py", model.render_test(name))
    elif kind == "delete file" and len(files) > 1:
        name = rng.choice(files)
        del model.tests[name]
        (root / "tests" / f"test_{name}.py").unlink()
    elif kind == "conftest":
        model.factor = other(rng, model.factor, 1, 4)
        write(root / "tests" / "conftest.py", model.render_conftest())
    elif kind == "break":
        model.broken = rng.randrange(len(model.constants))
        write(root / "lib" / f"m{model.broken}.py", model.render_module(model.broken))
    else:
        return edit_model(model, root, rng)
    return kind


_FRESH: dict[str, tuple[int, dict[str, str]]] = {}


def fresh_pytest(root: Path, env: dict[str, str]) -> tuple[int, dict[str, str]]:
    """Exit code and outcome per test id of a new ``pytest -v`` run on the same files."""
    key = "\n".join(
        f"{path.relative_to(root)}\n{path.read_text()}" for path in sorted(root.rglob("*.py"))
    )
    if key not in _FRESH:
        env = dict(env, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider"],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        _FRESH[key] = (result.returncode, Run(result.stdout.splitlines()).outcomes)
    return _FRESH[key]


# Seeds whose edit sequences cover every kind of edit (a code module broken and fixed too).
@pytest.mark.parametrize("seed", [3, 4, 5])
def test_results_equal_a_fresh_run(
    tmp_path: Path, watch: Callable[..., Watch], core_env: dict[str, str], seed: int
) -> None:
    """After each random edit, the selected tests' results are those of a fresh ``pytest``,
    and every test not selected has the result it had before the edit."""
    rng = random.Random(seed)
    root = tmp_path / f"sample{seed}"
    model = make_model(rng)
    model.write_all(root)
    session = watch(root)
    first = session.run()
    code, before = fresh_pytest(root, core_env)
    assert first.outcomes == before
    for step in range(7):
        what = edit_model(model, root, rng)
        context = f"seed {seed}, step {step}: {what}"
        code, after = fresh_pytest(root, core_env)
        if what == "break":
            session.expect("hmr: not running tests until")
            session.expect("hmr: watching for changes")  # (tests wait for the fix)
            assert code != 0, context  # the fresh run fails at collection
            continue
        ran = session.run().outcomes
        # (A fix that saves the module back as it runs changes nothing the tests ran.)
        assert ran or what == "delete file" or what.startswith("fix "), context
        for test_id, outcome in ran.items():
            assert after.get(test_id) == outcome, f"{context}: {test_id}"
        for test_id, outcome in after.items():
            if test_id not in ran:
                assert before.get(test_id) == outcome, f"{context}: {test_id} not re-run"
        before = after


UNITTEST_FILE = """\
import unittest
from unittest import TestCase  # collected as a test class that has no test


class TestThing(unittest.TestCase):
    def test_one(self):
        self.assertEqual(1 + 1, 2)
"""

# Counts, after each run, the module objects of the test file still alive: earlier
# imports of it must go once a new one replaced them.
COUNTING_CONFTEST = """\
import gc
import types


def pytest_terminal_summary(terminalreporter):
    gc.collect()
    alive = sum(
        1
        for obj in gc.get_objects()
        if isinstance(obj, dict) and obj.get("__name__") == "test_thing" and "TestThing" in obj
    )
    terminalreporter.write_line(f"ALIVE {alive}")
"""


def test_full_runs_release_the_earlier_imports_of_test_modules(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """Each save of a test file imports it afresh (and each ``a`` runs its module again);
    the earlier imports are freed, also for a file where pytest collected a class that
    gave no test (``TestCase`` imported into the module), whose class fixtures pytest
    keys by the node."""
    write(proj / "test_thing.py", UNITTEST_FILE)
    write(proj / "conftest.py", COUNTING_CONFTEST)
    session = watch(proj, stdin=True)

    def alive(run: Run) -> int:
        counts = [int(line.split()[1]) for line in run.lines if line.startswith("ALIVE ")]
        assert counts, run.lines
        return counts[-1]

    assert alive(session.run()) == 1
    seen = []
    for step in range(6):
        if step % 2:
            session.child.send("a")
        else:
            write(proj / "test_thing.py", UNITTEST_FILE + f"# save {step}\n")
        run = session.run()
        assert run.summary.startswith("1 passed"), run.lines
        seen.append(alive(run))
    # The new import and, until the run is over, the one it replaced: never more.
    assert max(seen) <= 2, seen


# -- selection by what the tests executed (Python 3.12+) ------------------------------


def package_project(proj: Path) -> Path:
    """The common layout: the package's __init__ imports all its modules."""
    write(proj / "pytest.ini", "[pytest]\n")
    write(proj / "shop" / "__init__.py", "from . import prices, stock\nfrom .prices import LIMIT\n")
    write(
        proj / "shop" / "prices.py",
        """\
        LIMIT = 100

        def total(items):
            return sum(items)

        def capped(items):
            return min(total(items), LIMIT)

        def discount(price, rate=10):
            return price - price * rate // 100
        """,
    )
    write(
        proj / "shop" / "stock.py",
        """\
        def count(shelf):
            return len(shelf)

        def make_shelf(size):
            return ["item"] * size
        """,
    )
    write(
        proj / "tests" / "conftest.py",
        """\
        import pytest
        import shop

        @pytest.fixture(scope="session")
        def shelf():
            return shop.stock.make_shelf(3)
        """,
    )
    write(
        proj / "tests" / "test_prices.py",
        """\
        import shop

        def test_total():
            assert shop.prices.total([1, 2]) == 3

        def test_capped():
            assert shop.prices.capped([60, 60]) == 100

        def test_discount():
            assert shop.prices.discount(100) == 90
        """,
    )
    write(
        proj / "tests" / "test_stock.py",
        """\
        import shop

        def test_count(shelf):
            assert shop.stock.count(shelf) == 3

        def test_again(shelf):
            assert len(shelf) == 3

        def test_other():
            assert shop.stock.count([]) == 0
        """,
    )
    write(
        proj / "tests" / "test_limit.py",
        """\
        from shop.prices import LIMIT

        def test_limit():
            assert LIMIT == 100
        """,
    )
    write(proj / "tests" / "__init__.py", "")
    return proj


@pytest.mark.skipif(not BY_EXECUTION, reason="sys.monitoring: Python 3.12+")
def test_a_value_named_only_in_a_comment_of_a_test_file_does_not_run_it(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """A module value edited runs the tests that read it, and the test files that spell
    its name: one that named it in a comment ran whole (inflect's ``mill``: 233 tests of
    300 for 28)."""
    write(proj / "pytest.ini", "[pytest]\npythonpath = .\n")
    write(proj / "pkg" / "__init__.py", "")
    write(
        proj / "pkg" / "m.py",
        "LIMIT = 5\n\n\ndef cap(x):\n    return min(x, LIMIT)\n\n\ndef other():\n    return 1\n",
    )
    write(
        proj / "tests" / "test_cap.py",
        "import pkg.m\n\n\ndef test_cap():\n    assert pkg.m.cap(9) == 5\n",
    )
    others = "".join(
        f"\n\ndef test_other_{i}():\n    assert pkg.m.other() == 1\n" for i in range(5)
    )
    write(proj / "tests" / "test_other.py", f"import pkg.m\n\n# nothing here uses LIMIT\n{others}")
    session = watch(proj, stdin=True)
    assert session.run().summary.startswith("6 passed")

    write(
        proj / "pkg" / "m.py", (proj / "pkg" / "m.py").read_text().replace("LIMIT = 5", "LIMIT = 6")
    )
    run = session.run()
    assert run.outcomes == {"tests/test_cap.py::test_cap": "FAILED"}, run.lines


@pytest.mark.skipif(not BY_EXECUTION, reason="sys.monitoring: Python 3.12+")
def test_a_conftest_whose_import_read_a_changed_value_is_imported_again(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """``@pytest.fixture(params=cfg.MODES)`` and ``FIRST = cfg.MODES[0]`` in a conftest:
    ``MODES`` edited ran no test ("none ran what changed": no test runs the conftest's
    import), ``a`` ran the old params, and ``q`` ended 0 where a cold run fails."""
    write(proj / "pytest.ini", "[pytest]\npythonpath = .\n")
    write(proj / "lib" / "__init__.py", "")
    write(proj / "lib" / "cfg.py", 'MODES = ["a", "b"]\n')
    write(
        proj / "tests" / "conftest.py",
        "import pytest\n\nfrom lib import cfg\n\nFIRST = cfg.MODES[0]\n\n\n"
        "@pytest.fixture(params=cfg.MODES)\ndef mode(request):\n    return request.param\n\n\n"
        "@pytest.fixture\ndef first():\n    return FIRST\n",
    )
    write(
        proj / "tests" / "test_mode.py",
        "def test_mode(mode):\n    assert mode in 'ab'\n\n\n"
        "def test_first(first):\n    assert first == 'a'\n",
    )
    session = watch(proj, stdin=True)
    assert session.run().summary.startswith("3 passed")

    write(proj / "lib" / "cfg.py", 'MODES = ["c", "a", "b"]\n')
    run = session.run()
    assert run.outcomes == {
        "tests/test_mode.py::test_mode[c]": "FAILED",
        "tests/test_mode.py::test_mode[a]": "PASSED",
        "tests/test_mode.py::test_mode[b]": "PASSED",
        "tests/test_mode.py::test_first": "FAILED",
    }, run.lines


@pytest.mark.skipif(not BY_EXECUTION, reason="sys.monitoring: Python 3.12+")
def test_a_table_edited_runs_the_tests_of_what_was_built_from_it(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """``KEYWORDS = {...}`` edited, which a lexer the first test built holds (sqlparse's):
    only the test that read ``KEYWORDS`` ran (1 failure of sqlparse's 16), the others
    use the lexer, whose code names it not.  The tests are told by their imports."""
    write(proj / "pytest.ini", "[pytest]\npythonpath = .\n")
    write(proj / "lib" / "__init__.py", "")
    write(proj / "lib" / "kw.py", "KEYWORDS = {'select': 'dml'}\n")
    write(
        proj / "lib" / "lexer.py",
        "from lib import kw\n\n_LEXER = None\n\n\nclass Lexer:\n    def __init__(self):\n"
        "        self.table = kw.KEYWORDS\n\n    def kind(self, word):\n"
        "        return self.table[word]\n\n\ndef get():\n    global _LEXER\n"
        "    if _LEXER is None:\n        _LEXER = Lexer()\n    return _LEXER\n",
    )
    write(
        proj / "tests" / "test_a.py",
        "from lib import lexer\n\n\ndef test_a_select():\n"
        "    assert lexer.get().kind('select') == 'dml'\n",
    )
    write(
        proj / "tests" / "test_b.py",
        "from lib import lexer\n\n\ndef test_b_select():\n"
        "    assert lexer.get().kind('select') == 'dml'\n",
    )
    session = watch(proj, stdin=True)
    assert session.run().summary.startswith("2 passed")

    write(proj / "lib" / "kw.py", "KEYWORDS = {'select': 'keyword'}\n")
    run = session.run()
    assert run.outcomes == {
        "tests/test_a.py::test_a_select": "FAILED",
        "tests/test_b.py::test_b_select": "FAILED",
    }, run.lines


@pytest.mark.skipif(not BY_EXECUTION, reason="sys.monitoring: Python 3.12+")
def test_tests_are_selected_by_the_functions_they_executed(
    proj: Path, watch: Callable[..., Watch], core_env: dict[str, str]
) -> None:
    session = watch(package_project(proj), stdin=True)
    assert session.run().summary.startswith("7 passed")
    prices = proj / "shop" / "prices.py"
    stock = proj / "shop" / "stock.py"

    # A body edit of total: the two tests that ran it (capped calls total),
    # not every test of the package that every test file imports.
    write(prices, prices.read_text().replace("return sum(items)", "return sum(items) + 1"))
    run = session.run()
    assert run.outcomes == {
        "tests/test_prices.py::test_total": "FAILED",
        "tests/test_prices.py::test_capped": "PASSED",
    }
    assert run.has("hmr: selected 2 tests in 1 file: tests/test_prices.py;")

    # A default argument: the test that called the function.
    write(prices, prices.read_text().replace("rate=10", "rate=20"))
    assert session.run().outcomes == {"tests/test_prices.py::test_discount": "FAILED"}

    # The code a session fixture ran: set up again, and every user runs, not
    # only the first one (the later ones never executed the fixture's code).
    write(stock, stock.read_text().replace('["item"] * size', '["item"] * (size + 1)'))
    run = session.run()
    assert run.outcomes == {
        "tests/test_stock.py::test_count": "FAILED",
        "tests/test_stock.py::test_again": "FAILED",
    }

    # A module constant: the tests whose code reads it, and the test file that
    # bound it at import (imported again, so its binding is the new value).
    write(prices, prices.read_text().replace("LIMIT = 100", "LIMIT = 50"))
    run = session.run()
    assert run.outcomes == {
        "tests/test_prices.py::test_capped": "FAILED",
        "tests/test_limit.py::test_limit": "FAILED",
    }

    # Every test's latest outcome is the one a fresh run of the tree gives.
    latest = {
        **dict.fromkeys(
            [
                "tests/test_prices.py::test_total",
                "tests/test_prices.py::test_capped",
                "tests/test_prices.py::test_discount",
                "tests/test_stock.py::test_count",
                "tests/test_stock.py::test_again",
                "tests/test_limit.py::test_limit",
            ],
            "FAILED",
        ),
        "tests/test_stock.py::test_other": "PASSED",
    }
    assert fresh_pytest(proj, core_env)[1] == latest
    session.child.send("a")
    assert session.run().outcomes == latest


@pytest.mark.skipif(not BY_EXECUTION, reason="sys.monitoring: Python 3.12+")
def test_a_value_computed_from_a_changed_constant_reaches_the_tests_reading_it(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """``DOUBLE = 2 * LIMIT`` runs again when LIMIT changes: a test reading DOUBLE runs,
    whoever imported the module first."""
    write(proj / "pytest.ini", "[pytest]\n")
    write(proj / "app" / "__init__.py", "")
    config = proj / "app" / "config.py"
    write(
        config,
        "LIMIT = 10\nDOUBLE = 2 * LIMIT\nTRIPLE = DOUBLE + LIMIT\n\ndef one():\n    return 1\n",
    )
    write(proj / "tests" / "conftest.py", "import app.config\n")
    write(
        proj / "tests" / "test_config.py",
        """\
        import app.config

        def test_double():
            assert app.config.DOUBLE == 20

        def test_triple():
            assert app.config.TRIPLE == 30

        def test_one():
            assert app.config.one() == 1
        """,
    )
    session = watch(proj)
    assert session.run().summary.startswith("3 passed")
    write(config, config.read_text().replace("LIMIT = 10", "LIMIT = 11"))
    # The file spells the changed names (its import could have bound them): it
    # runs whole, imported again.
    assert session.run().outcomes == {
        "tests/test_config.py::test_double": "FAILED",
        "tests/test_config.py::test_triple": "FAILED",
        "tests/test_config.py::test_one": "PASSED",
    }


@pytest.mark.skipif(not BY_EXECUTION, reason="sys.monitoring: Python 3.12+")
def test_a_name_added_to_a_module_runs_no_test_for_its_asserts(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """A new module-level name nobody reads: a test that lists a namespace may see it, but
    pytest's rewritten asserts call ``locals()``, and every test with an assert that ran
    any code of the module ran again (on boltons: 401 tests in 29 files)."""
    write(proj / "pytest.ini", "[pytest]\n")
    moda = write(proj / "moda.py", "def fa():\n    return 1\n")
    write(proj / "modb.py", "def fb():\n    return 2\n")
    write(proj / "tests" / "test_a.py", "import moda\n\ndef test_a():\n    assert moda.fa() == 1\n")
    write(
        proj / "tests" / "test_b.py",
        "import modb\n\ndef test_b():\n    x = modb.fb()\n    assert x == 2\n",
    )
    write(
        proj / "tests" / "test_listing.py",
        "import moda\n\ndef test_listing():\n    assert 'NEW' not in vars(moda)\n",
    )
    session = watch(proj)
    assert session.run().summary.startswith("3 passed")
    write(moda, moda.read_text() + "\nNEW = 3\n")
    # The test that lists the module's names runs, and fails as a fresh run would.
    assert session.run().outcomes == {"tests/test_listing.py::test_listing": "FAILED"}


@pytest.mark.skipif(not BY_EXECUTION, reason="sys.monitoring: Python 3.12+")
def test_a_fixture_error_after_a_save_starts_at_the_fixture(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """After a save, an error in a fixture's setup showed the watch loop's own hook
    wrapper first (``loop.py``, ``pytest_fixture_setup``), as a fresh run does not."""
    write(proj / "pytest.ini", "[pytest]\n")
    modb = write(proj / "modb.py", "def fb():\n    return 2\n")
    write(
        proj / "tests" / "conftest.py",
        "import pytest\nimport modb\n\n@pytest.fixture\ndef thing():\n    return modb.fb()\n",
    )
    write(proj / "tests" / "test_fx.py", "def test_uses_thing(thing):\n    assert thing == 2\n")
    session = watch(proj)
    assert session.run().summary.startswith("1 passed")
    write(modb, "def fb():\n    return 2 / 0\n")
    failed = session.run()
    assert failed.outcomes == {"tests/test_fx.py::test_uses_thing": "ERROR"}
    assert failed.has("ZeroDivisionError")
    assert not failed.has("pytest_fixture_setup")
    assert not failed.has("loop.py")


# Logs each test module pytest's assertion rewriting compiles from its source.
REWRITE_LOG_CONFTEST = """\
import pathlib

from _pytest.assertion import rewrite

_rewrite_test = rewrite._rewrite_test


def _logged(path, *args, **kwargs):
    with open(pathlib.Path(__file__).parent / "rewritten.log", "a") as log:
        log.write(pathlib.Path(path).name + "\\n")
    return _rewrite_test(path, *args, **kwargs)


rewrite._rewrite_test = _logged
"""


def test_a_kept_test_file_runs_again_from_the_code_its_import_compiled(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """Where no pyc is written (``PYTHONDONTWRITEBYTECODE``, as in many containers), the
    first save that kept a file's tests rewrote its asserts from the source again (130-300
    ms on boltons' ``test_strutils.py``), or the idle time did, ahead of it."""
    write(proj / "pytest.ini", "[pytest]\n")
    app = write(proj / "app.py", "def f():\n    return 1\n")
    write(proj / "tests" / "conftest.py", REWRITE_LOG_CONFTEST)
    write(proj / "tests" / "test_app.py", "import app\n\ndef test_f():\n    assert app.f() == 1\n")
    write(proj / "tests" / "test_other.py", "def test_other():\n    assert True\n")
    session = watch(proj, env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert session.run().summary.startswith("2 passed")
    write(app, "def f():\n    return 2\n")
    assert session.run().outcomes == {"tests/test_app.py::test_f": "FAILED"}
    write(app, "def f():\n    return 1\n")
    assert session.run().outcomes == {"tests/test_app.py::test_f": "PASSED"}
    # Each test module was compiled once, as it was imported.
    rewritten = (proj / "tests" / "rewritten.log").read_text().split()
    assert sorted(rewritten) == ["test_app.py", "test_other.py"]


# Logs each test pytest collects: a test file collected again shows in it.
COLLECT_LOG_CONFTEST = """\
import pathlib

def pytest_itemcollected(item):
    with open(pathlib.Path(__file__).parent / "collected.log", "a") as log:
        log.write(item.nodeid + "\\n")
"""


@pytest.mark.skipif(not BY_EXECUTION, reason="sys.monitoring: Python 3.12+")
@pytest.mark.parametrize("bytecode", [False, True], ids=["no-pyc", "pyc"])
def test_an_unchanged_test_file_is_not_collected_again_and_its_module_state_is_fresh(
    proj: Path, watch: Callable[..., Watch], core_env: dict[str, str], bytecode: bool
) -> None:
    """A body edit: the tests that ran the function run again, from their file's
    collected tests, not a new collection; module data, class instances and captured
    output are those of a fresh run.  With bytecode written, the test module's code
    comes from the pyc pytest cached, and is the current one after its file changed."""
    if bytecode:
        core_env.pop("PYTHONDONTWRITEBYTECODE", None)
    project(proj)
    write(proj / "conftest.py", COLLECT_LOG_CONFTEST)
    write(
        proj / "tests" / "test_state.py",
        """\
        import app.calc

        CALLS = []

        def test_first():
            CALLS.append(app.calc.add(1, 1))
            print("ADDED", CALLS)
            assert CALLS == [2]

        class TestCounter:
            @classmethod
            def setup_class(cls):
                cls.base = 10

            def setup_method(self):
                self.mine = []

            def test_add(self):
                super(TestCounter, self).__init__()  # the class its name gives
                self.mine.append(app.calc.add(self.base, 1))
                assert self.mine == [11]
        """,
    )
    session = watch(proj)
    assert session.run().summary.startswith("5 passed")
    assert bool(list((proj / "tests" / "__pycache__").glob("test_state.*pytest*"))) == bytecode
    log = proj / "collected.log"
    collected = log.read_text().splitlines()
    assert "tests/test_state.py::TestCounter::test_add" in collected

    calc = proj / "app" / "calc.py"
    write(calc, "def add(a, b):\n    return a + b + 1\n")
    run = session.run()
    assert run.outcomes == {
        f"{CALC}::test_add": "FAILED",
        f"{CALC}::test_add_zero": "FAILED",
        "tests/test_state.py::test_first": "FAILED",
        "tests/test_state.py::TestCounter::test_add": "FAILED",
    }
    # The failing test's captured output is this run's, once.
    assert run.has("ADDED [3]")
    assert not run.has("ADDED [2]")
    assert log.read_text().splitlines() == collected  # nothing collected again

    write(calc, "def add(a, b):\n    return a + b\n")
    run = session.run()
    assert set(run.outcomes.values()) == {"PASSED"}
    assert len(run.outcomes) == 4
    assert log.read_text().splitlines() == collected

    # The test file itself changed: it is collected again.
    state = proj / "tests" / "test_state.py"
    write(state, state.read_text().replace("[11]", "[11] and CALLS == [2]"))
    assert session.run().outcomes == {
        "tests/test_state.py::test_first": "PASSED",
        "tests/test_state.py::TestCounter::test_add": "PASSED",
    }
    assert len(log.read_text().splitlines()) == len(collected) + 2
    # Saved again, then run again without collecting: its latest code runs.
    text = state.read_text().replace("== [11] and CALLS == [2]", "in ([11], [12])")
    text = text.replace("CALLS = []", "CALLS = [0]")
    write(state, text.replace("assert CALLS == [2]", "assert CALLS[1:] in ([2], [3])"))
    assert set(session.run().outcomes.values()) == {"PASSED"}
    assert len(log.read_text().splitlines()) == len(collected) + 4
    write(calc, "def add(a, b):\n    return a + b + 1\n")
    run = session.run()
    assert run.outcomes["tests/test_state.py::TestCounter::test_add"] == "PASSED"
    assert run.outcomes["tests/test_state.py::test_first"] == "PASSED"
    write(calc, "def add(a, b):\n    return a + b\n")
    assert set(session.run().outcomes.values()) == {"PASSED"}
    assert len(log.read_text().splitlines()) == len(collected) + 4
    assert fresh_pytest(proj, core_env)[1] == {
        f"{CALC}::test_add": "PASSED",
        f"{CALC}::test_add_zero": "PASSED",
        f"{TEXT}::test_shout": "PASSED",
        "tests/test_state.py::test_first": "PASSED",
        "tests/test_state.py::TestCounter::test_add": "PASSED",
    }


def test_a_new_conftest_is_imported_and_the_tests_below_it_run(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    write(proj / "pytest.ini", "[pytest]\n")
    write(
        proj / "tests" / "test_flag.py",
        """\
        def test_plain():
            assert True

        def test_flag(flag):
            assert flag
        """,
    )
    session = watch(proj)
    first = session.run()
    assert first.outcomes == {
        "tests/test_flag.py::test_plain": "PASSED",
        "tests/test_flag.py::test_flag": "ERROR",  # fixture 'flag' not found
    }
    conftest = proj / "tests" / "conftest.py"
    body = "import pytest\n\n@pytest.fixture\ndef flag():\n    return {}\n"
    write(conftest, body.format("True +"))  # it does not compile: said, nothing runs
    line = session.expect("hmr: tests/conftest.py failed to import (")
    assert "conftest.py:5): SyntaxError" in line
    session.expect("hmr: not running tests until tests/conftest.py loads again")
    session.expect("hmr: watching for changes")  # (tests wait for the fix)
    write(conftest, body.format("True"))
    run = session.run()
    assert run.has("hmr: changed tests/conftest.py")
    assert run.outcomes == {
        "tests/test_flag.py::test_plain": "PASSED",
        "tests/test_flag.py::test_flag": "PASSED",
    }
    write(conftest, body.format("False"))
    assert session.run().outcomes == {"tests/test_flag.py::test_flag": "FAILED"}
    conftest.unlink()
    assert session.run().outcomes["tests/test_flag.py::test_flag"] == "ERROR"


def test_by_imports_selects_the_files_importing_the_changed_code(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """--hmr-by-imports: every test file that imports the package runs (on every Python).

    The conftest imports the package too: it is imported again, and the file whose
    tests use its fixture is collected again; the others keep their collected tests
    (a body edit)."""
    write(package_project(proj) / "conftest.py", COLLECT_LOG_CONFTEST)
    session = watch(proj, "--hmr-by-imports")
    assert session.run().summary.startswith("7 passed")
    log = proj / "collected.log"
    collected = log.read_text().splitlines()
    prices = proj / "shop" / "prices.py"
    write(prices, prices.read_text().replace("return sum(items)", "return sum(items) + 1"))
    run = session.run()
    assert len(run.outcomes) == 7
    assert run.outcomes["tests/test_prices.py::test_total"] == "FAILED"
    again = log.read_text().splitlines()[len(collected) :]
    assert sorted(again) == [
        f"tests/test_stock.py::{name}" for name in ("test_again", "test_count", "test_other")
    ]


def test_by_imports_a_body_edit_keeps_the_collections_that_ran_no_project_code(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    """Selecting by imports (the rule before Python 3.12): an edit of function bodies,
    patched in place, re-runs every importing test file with the new code, without
    collecting again those whose top level ran no project code; a file whose
    parametrize values a changed function computed is collected again, with the new
    values.  Any other edit collects every importing file again."""
    project(proj)
    write(proj / "conftest.py", COLLECT_LOG_CONFTEST)
    write(
        proj / "tests" / "test_more.py",
        """\
        import pytest
        from app import calc

        @pytest.mark.parametrize("n", [1, 2])
        def test_double(n):
            assert calc.add(n, n) == 2 * n

        class TestAdd:
            def test_one(self):
                assert calc.add(1, 0) == 1
        """,
    )
    write(
        proj / "tests" / "test_params.py",
        """\
        import pytest
        from app.calc import add

        def cases():
            return [add(0, 1)]

        @pytest.mark.parametrize("total", [add(1, 1), add(2, 2)])
        def test_even(total):
            assert total % 2 == 0

        @pytest.mark.parametrize("one", cases())
        def test_one(one):
            assert one == 1
        """,
    )
    session = watch(proj, "--hmr-by-imports")
    assert session.run().summary.startswith("9 passed")
    log = proj / "collected.log"
    collected = log.read_text().splitlines()
    assert "tests/test_params.py::test_even[4]" in collected

    calc = proj / "app" / "calc.py"
    write(calc, "def add(a, b):\n    return a + b + 1\n")
    run = session.run()
    assert run.outcomes == {
        f"{CALC}::test_add": "FAILED",
        f"{CALC}::test_add_zero": "FAILED",
        "tests/test_more.py::test_double[1]": "FAILED",
        "tests/test_more.py::test_double[2]": "FAILED",
        "tests/test_more.py::TestAdd::test_one": "FAILED",
        # Collected again: the values are the new code's.
        "tests/test_params.py::test_even[3]": "FAILED",
        "tests/test_params.py::test_even[5]": "FAILED",
        "tests/test_params.py::test_one[2]": "FAILED",
    }
    again = log.read_text().splitlines()[len(collected) :]
    assert sorted(again) == [
        "tests/test_params.py::test_even[3]",
        "tests/test_params.py::test_even[5]",
        "tests/test_params.py::test_one[2]",
    ]

    write(calc, "def add(a, b):\n    return a + b\n")
    run = session.run()
    assert set(run.outcomes.values()) == {"PASSED"}
    assert "tests/test_params.py::test_even[4]" in run.outcomes
    assert len(run.outcomes) == 8
    assert not any(
        "test_more" in line or CALC in line
        for line in log.read_text().splitlines()[len(collected) :]
    )

    # A name bound anew (a function added): every importing file is collected again.
    write(calc, "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n")
    assert set(session.run().outcomes.values()) == {"PASSED"}
    again = log.read_text().splitlines()[len(collected) :]
    assert "tests/test_more.py::TestAdd::test_one" in again
    assert f"{CALC}::test_add" in again


@pytest.mark.parametrize("saved", ["app.py", "test_a.py"])
def test_a_save_made_while_pytest_collects_is_run(
    proj: Path, watch: Callable[..., Watch], saved: str
) -> None:
    """A module imported (or a test file collected) as pytest collects, then saved before
    the collection ends: the first run runs what was imported, and the save gets its
    run.  The files were noted as they were once the collection ended, before they were
    watched: the save was taken for the code that runs, and lost until saved again."""
    write(proj / "pytest.ini", "[pytest]\n")
    write(proj / "app.py", "def value():\n    return 1\n")
    write(
        proj / "test_a.py",
        "from app import value\n\n\ndef test_value():\n    assert value() == 1\n",
    )
    write(
        proj / "test_b.py",
        """\
        import os
        import time

        open("collecting", "w").close()
        deadline = time.monotonic() + 30
        while not os.path.exists("saved") and time.monotonic() < deadline:
            time.sleep(0.01)  # (collected after test_a.py: waits for the test's save)


        def test_other():
            pass
        """,
    )
    session = watch(proj)
    deadline = time.monotonic() + DEADLINE
    while not (proj / "collecting").exists() and time.monotonic() < deadline:
        time.sleep(0.01)  # a bounded wait for test_b.py's collection
    assert (proj / "collecting").exists()
    if saved == "app.py":
        write(proj / "app.py", "def value():\n    return 2\n")
    else:
        write(
            proj / "test_a.py",
            "from app import value\n\n\ndef test_value():\n    assert value() == 2\n",
        )
    (proj / "saved").touch()
    first = session.run()
    assert first.outcomes["test_a.py::test_value"] == "PASSED"  # what was imported
    run = session.run()
    assert run.outcomes["test_a.py::test_value"] == "FAILED"  # the new code, either way
    assert run.has(f"hmr: changed {saved}")
