"""End-to-end tests of ``pytest --hmr``: real ``python -m pytest --hmr`` children on temp projects.

Each test asserts the first run's results, edits real files, and waits, with
a deadline, for the run that follows (its lines end with ``hmr: watching``),
on both cores.  Children run with plugin autoloading off and ``-p
muckrack.hmr.pytest_plugin`` (faster to start, and the explicit way to load
the plugin); the entry point itself is tested by the inert and CLI tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .subprocesses import RUN_TIMEOUT, Child, save_atomically, write

PLUGIN = ["-p", "muckrack.hmr.pytest_plugin"]
OUTCOME = re.compile(r"^(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b")
SUMMARY = re.compile(r"^=+ .*\b(passed|failed|errors?|no tests ran)\b.* in [\d.]+s.* =+$")


@dataclass
class Run:
    """The output of one run: from the line after the previous run to ``hmr: watching``."""

    lines: list[str] = field(default_factory=list)

    @property
    def outcomes(self) -> dict[str, str]:
        found = {}
        for line in self.lines:
            match = OUTCOME.match(line)
            if match:
                found[match.group(1)] = match.group(2)
        return found

    @property
    def summary(self) -> str:
        for line in self.lines:
            if SUMMARY.match(line):
                return line.strip("= ")
        return ""

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)


class Watch:
    """A running ``python -m pytest --hmr -v`` child."""

    def __init__(self, child: Child) -> None:
        self.child = child

    def run(self) -> Run:
        """The next run's output, up to its ``hmr: watching`` line."""
        run = Run()

        def collect(line: str) -> bool:
            run.lines.append(line)
            return line.startswith("hmr: watching")

        collect.__name__ = "the 'hmr: watching' line ending a run"
        self.child.expect(collect)
        return run

    def expect(self, text: str) -> str:
        return self.child.expect(text)


@pytest.fixture
def watch(core_env: dict[str, str]) -> Iterator[Callable[..., Watch]]:
    children: list[Child] = []

    def start(
        proj: Path, *args: str, cli: bool = False, autoload: bool = False, stdin: bool = False
    ) -> Watch:
        env = dict(core_env)
        if autoload or cli:
            env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
            plugin: list[str] = []
        else:
            env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
            plugin = PLUGIN
        command = ("-u", "-m", "muckrack.hmr", "-m", "pytest") if cli else ("-u", "-m", "pytest")
        child = Child(
            [*plugin, "--hmr", "-v", "-p", "no:cacheprovider", *args],
            cwd=proj,
            env=env,
            command=command,
            stdin=stdin,
        )
        children.append(child)
        return Watch(child)

    try:
        yield start
    finally:
        for child in children:
            child.close()


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
    session.child.send("a")
    run = session.run()
    assert run.outcomes == {
        f"{TEXT}::test_shout": "FAILED",
        "tests/sub/test_more.py::test_more": "FAILED",
    }


def test_syntax_errors_are_reported_and_watching_goes_on(
    proj: Path, watch: Callable[..., Watch]
) -> None:
    session = watch(project(proj))
    assert session.run().summary.startswith("3 passed")

    write(proj / "app" / "calc.py", "def add(a, b):\n    return (a +\n")
    session.expect("hmr: changed app/calc.py")
    error = session.expect("hmr: failed to reload app.calc")
    assert f"{os.sep}app{os.sep}calc.py:2" in error
    session.expect("SyntaxError")
    session.expect("hmr: not running tests until app.calc loads again (1 test file(s) waiting)")

    write(proj / "app" / "calc.py", "def add(a, b):\n    return a + b\n")
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


def test_hmr_all_runs_everything(proj: Path, watch: Callable[..., Watch]) -> None:
    session = watch(project(proj), "--hmr-all")
    assert session.run().summary.startswith("3 passed")
    write(proj / "app" / "text.py", "def shout(word):\n    return word.upper() + ''\n")
    run = session.run()
    assert len(run.outcomes) == 3
    assert run.summary.startswith("3 passed")


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
