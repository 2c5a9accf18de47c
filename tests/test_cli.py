"""End-to-end tests of ``python -m muckrack.hmr``: real subprocesses on throwaway projects.

Every test runs the CLI in a child interpreter on both cores (through the
``core_env`` fixture) and, where it makes sense, runs the same program with
plain ``python`` and compares.  Nothing here sleeps to synchronise: the tests
wait, with a deadline, for the child's output lines.
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .subprocesses import (
    A_NEW,
    A_OLD,
    DEADLINE,
    Child,
    as_from_a_terminal,
    facts_of,
    run_hmr,
    run_python,
    save_atomically,
    starts,
    write,
)

PROG = "python -m muckrack.hmr"


# A script that reports how it was run, as one JSON line.  It is also used as
# a module run with -m.
PROBE = '''\
"""The probe's docstring."""
import json
import pickle
import sys

import __main__ as imported_main


class Point:
    def __init__(self, x):
        self.x = x


def facts():
    point = pickle.loads(pickle.dumps(Point(7)))
    spec = globals()["__spec__"]
    loader = globals()["__loader__"]
    return {
        "argv": sys.argv,
        "path0": sys.path[0],
        "path": sys.path,
        "name": __name__,
        "file": __file__,
        "doc": __doc__,
        "package": __package__,
        "cached": globals().get("__cached__", "absent (3.15+)"),
        "spec_is_none": spec is None,
        "spec_name": None if spec is None else spec.name,
        "spec_parent": None if spec is None else spec.parent,
        "spec_origin": None if spec is None else spec.origin,
        "loader": [type(loader).__name__, getattr(loader, "name", None)],
        "builtins": type(__builtins__).__name__,
        "main_in_sys_modules": "__main__" in sys.modules,
        "sys_modules_main_is_this": sys.modules["__main__"].__dict__ is globals(),
        "import_main_is_this": imported_main.__dict__ is globals(),
        "point_class": [type(point).__module__, type(point).__qualname__],
        "point_is_point": type(point) is Point,
        "point_x": point.x,
        "loaded": [name for name in ("pkg", "pkg.mod", "pkg.__main__") if name in sys.modules],
    }


if __name__ == "__main__":
    print(json.dumps(facts()), flush=True)
'''

PROGRAM_ARGS = ["a", "b", "-m", "x", "--help", "--version"]


# -- 1. script: sys.argv and sys.path[0] ---------------------------------------


def _layout_script(proj: Path, case: str) -> tuple[Path, str, Path]:
    """(cwd, target as typed, the real script file) for each way to name a script."""
    if case == "same-folder":
        write(proj / "script.py", PROBE)
        return proj, "script.py", proj / "script.py"
    if case == "relative-from-other-cwd":
        write(proj / "sub" / "script.py", PROBE)
        return proj, os.path.join("sub", "script.py"), proj / "sub" / "script.py"
    if case == "dot-dot":  # python keeps the path as typed, made absolute
        write(proj / "sub" / "script.py", PROBE)
        return proj, os.path.join(".", "sub", "..", "sub", "script.py"), proj / "sub" / "script.py"
    assert case == "symlink"
    real = write(proj / "real" / "script.py", PROBE)
    link = proj / "links" / "link.py"
    link.parent.mkdir()
    try:
        link.symlink_to(real)
    except (OSError, NotImplementedError) as exc:
        pytest.skip(f"cannot make symlinks here: {exc}")
    return proj, os.path.join("links", "link.py"), real


@pytest.mark.parametrize("case", ["same-folder", "relative-from-other-cwd", "dot-dot", "symlink"])
def test_script_gets_argv_and_path_like_python(
    proj: Path, core_env: dict[str, str], case: str
) -> None:
    cwd, target, real = _layout_script(proj, case)

    expected = facts_of(run_python([target, *PROGRAM_ARGS], cwd=cwd, env=core_env))
    got = facts_of(run_hmr([target, *PROGRAM_ARGS], cwd=cwd, env=core_env))

    # What python does, spelled out: argv as typed, the real folder first on sys.path.
    assert expected["argv"] == [target, *PROGRAM_ARGS]
    assert os.path.samefile(str(expected["path0"]), real.parent)
    # ... and the CLI does the same, options after the script included.
    assert got["argv"] == expected["argv"]
    assert got["path0"] == expected["path0"]
    assert got["path"] == expected["path"]
    assert got["file"] == expected["file"]
    assert got == expected


@pytest.mark.skipif(sys.version_info < (3, 11), reason="python -P: 3.11+")
@pytest.mark.parametrize("how", ["-P", "PYTHONSAFEPATH"])
@pytest.mark.parametrize("target", ["script", "stdin", "module"])
def test_safe_path_puts_no_folder_of_the_program_first_as_python(
    proj: Path, core_env: dict[str, str], how: str, target: str
) -> None:
    """``python -P`` (PYTHONSAFEPATH=1): no folder of the program first on ``sys.path``;
    the CLI put the script's folder there all the same."""
    write(proj / "sub" / "script.py", PROBE)
    env = dict(core_env)
    flags = ["-P"] if how == "-P" else []
    if how == "PYTHONSAFEPATH":
        env["PYTHONSAFEPATH"] = "1"
    args = {"script": ["sub/script.py"], "stdin": ["-"], "module": ["-m", "script"]}[target]
    stdin = PROBE if target == "stdin" else None
    cwd = proj / "sub" if target == "module" else proj
    runs = [
        run_python([*flags, *cli, *args], cwd=cwd, env=env, stdin=stdin)
        for cli in ([], ["-m", "muckrack.hmr"])
    ]
    if target == "module":  # (with -P, -m finds nothing in the working folder)
        assert [run.returncode for run in runs] == [1, 1], runs
        assert "No module named script" in runs[1].stderr, runs[1].stderr
        return
    expected, got = (facts_of(run) for run in runs)
    assert str(proj) not in str(expected["path0"])
    assert got["path0"] == expected["path0"]
    assert got["path"] == expected["path"]


# -- 2. __main__ ------------------------------------------------------------------


def test_script_runs_as_main_like_python(proj: Path, core_env: dict[str, str]) -> None:
    write(proj / "script.py", PROBE)

    expected = facts_of(run_python(["script.py"], cwd=proj, env=core_env))
    got = facts_of(run_hmr(["script.py"], cwd=proj, env=core_env))

    assert got["name"] == "__main__"  # the `if __name__ == "__main__"` block ran
    assert got["main_in_sys_modules"] is True
    assert got["sys_modules_main_is_this"] is True
    assert got["import_main_is_this"] is True
    assert got["spec_is_none"] is True
    assert got["file"] == expected["file"]
    assert os.path.samefile(str(got["file"]), proj / "script.py")
    # Pickling an instance of a class defined in the script round-trips.
    assert got["point_class"] == ["__main__", "Point"]
    assert got["point_is_point"] is True
    assert got["point_x"] == 7
    assert got == expected


def test_main_namespace_has_the_same_dunder_names_as_python(
    proj: Path, core_env: dict[str, str]
) -> None:
    # A script that reads the module-level dunders python provides (``__annotations__``
    # before 3.14; from 3.14 on, only a module with annotations has it, lazily).
    write(
        proj / "script.py",
        """\
        print(sorted(name for name in globals() if name.startswith("__")), flush=True)
        print(globals().get("__annotations__"), flush=True)
        x: int = 1
        print(__annotations__ if "__annotations__" in globals() else None, flush=True)
        import inspect, sys
        print(inspect.get_annotations(sys.modules[__name__]), flush=True)
        """,
    )
    expected = run_python(["script.py"], cwd=proj, env=core_env)
    assert expected.returncode == 0, expected.stderr

    got = run_hmr(["script.py"], cwd=proj, env=core_env)

    assert (got.returncode, got.stdout, got.stderr) == (
        expected.returncode,
        expected.stdout,
        expected.stderr,
    )


def test_double_dash_ends_options_like_python(proj: Path, core_env: dict[str, str]) -> None:
    write(proj / "script.py", PROBE)

    expected = facts_of(run_python(["--", "script.py", "x"], cwd=proj, env=core_env))
    got = facts_of(run_hmr(["--debounce", "5", "--", "script.py", "x"], cwd=proj, env=core_env))

    assert expected["argv"] == ["script.py", "x"]
    assert got == expected


# -- 3. -m module ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module_args", "main_file", "spec_name"),
    [
        pytest.param(["-m", "pkg.mod"], "mod.py", "pkg.mod", id="pkg.mod"),
        pytest.param(["-mpkg.mod"], "mod.py", "pkg.mod", id="attached-pkg.mod"),
        pytest.param(["-m", "pkg"], "__main__.py", "pkg.__main__", id="pkg"),
    ],
)
def test_module_runs_like_python_dash_m(
    proj: Path,
    core_env: dict[str, str],
    module_args: list[str],
    main_file: str,
    spec_name: str,
) -> None:
    write(proj / "pkg" / "__init__.py", "")
    write(proj / "pkg" / "mod.py", PROBE)
    write(proj / "pkg" / "__main__.py", PROBE)

    expected = facts_of(run_python([*module_args, *PROGRAM_ARGS], cwd=proj, env=core_env))
    got = facts_of(run_hmr([*module_args, *PROGRAM_ARGS], cwd=proj, env=core_env))

    assert os.path.samefile(str(expected["argv"][0]), proj / "pkg" / main_file)  # type: ignore[index]
    assert got["argv"] == expected["argv"]
    assert got["argv"][1:] == PROGRAM_ARGS  # type: ignore[index]
    assert got["spec_name"] == spec_name
    assert got["name"] == "__main__"
    assert got["package"] == "pkg"
    assert os.path.samefile(str(got["path0"]), proj)
    assert got["path0"] == expected["path0"]
    assert got["file"] == expected["file"]
    assert got["sys_modules_main_is_this"] is True
    assert got["point_is_point"] is True
    assert got == expected


# -- 4. exit codes --------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "code", "stdout", "stderr"),
    [
        pytest.param("sys.exit(3)", 3, "before\n", "", id="exit-3"),
        pytest.param(
            'sys.exit("fatal: no config")', 1, "before\n", "fatal: no config\n", id="exit-message"
        ),
        pytest.param("sys.exit()", 0, "before\n", "", id="exit-none"),
        pytest.param("pass", 0, "before\nafter\n", "", id="normal-end"),
    ],
)
def test_exit_code_passes_through(
    proj: Path, core_env: dict[str, str], statement: str, code: int, stdout: str, stderr: str
) -> None:
    write(
        proj / "script.py",
        f"""\
        import sys
        print("before", flush=True)
        {statement}
        print("after", flush=True)
        """,
    )
    expected = run_python(["script.py"], cwd=proj, env=core_env)
    assert (expected.returncode, expected.stdout, expected.stderr) == (code, stdout, stderr)

    got = run_hmr(["script.py"], cwd=proj, env=core_env)

    assert got.returncode == code
    assert got.stdout == stdout
    assert got.stderr == stderr


@pytest.mark.parametrize("watching", [[], ["--no-watch"]], ids=["watch", "no-watch"])
def test_what_the_script_holds_is_finalized_at_exit_like_python(
    proj: Path, core_env: dict[str, str], watching: list[str]
) -> None:
    """A program that ends in its first moments: its ``__main__`` stayed frozen for the
    start-up (the compiled core's import hook also held it), so nothing it held was
    ever freed: a ``__del__`` never ran, a ``NamedTemporaryFile`` stayed on disk."""
    write(
        proj / "script.py",
        """\
        import os
        import tempfile


        class Resource:
            def __del__(self):
                os.write(1, b"finalized\\n")


        resource = Resource()
        scratch = tempfile.NamedTemporaryFile(prefix="scratch_", dir=".")
        """,
    )
    expected = run_python(["script.py"], cwd=proj, env=core_env)
    assert (expected.returncode, expected.stdout) == (0, "finalized\n")
    assert not list(proj.glob("scratch_*"))

    got = run_hmr([*watching, "script.py"], cwd=proj, env=core_env)

    assert (got.returncode, got.stdout) == (0, "finalized\n"), got.stderr
    assert not list(proj.glob("scratch_*"))


# A finder of the program's that makes the window wide: the first import of the engine
# (the reloader's modules) by a thread other than the main one (one of ours: the idle
# work's first step) waits in it, holding the import lock, and the program goes on
# once it is there.
WHILE_A_THREAD_OF_OURS_IMPORTS = """\
import builtins
import sys
import threading
import time

inside = threading.Event()


class SlowFinder:
    def find_spec(self, name, path=None, target=None):
        if threading.current_thread() is not threading.main_thread():
            if name.startswith("muckrack_hmr.reload") and not inside.is_set():
                inside.set()
                time.sleep(0.5)  # (with the import lock held)
        return None


sys.meta_path.insert(0, SlowFinder())
if hasattr(builtins, "__hmr__"):
    print("a thread of ours imports:", inside.wait(30), flush=True)
"""


@pytest.mark.parametrize("watching", [[], ["--no-watch"]], ids=["watch", "no-watch"])
def test_a_program_that_ends_while_a_thread_of_ours_imports_ends_like_python(
    proj: Path, core_env: dict[str, str], watching: list[str]
) -> None:
    """The interpreter's exit stops a daemon thread for good where it next waits, with
    what it holds.  A thread of ours that was importing held the import lock, and a
    finalizer that imports, in the interpreter's last collection, waited for it
    forever: a gunicorn worker that exited as its idle work began hung until the
    arbiter killed it."""
    write(proj / "farewell.py", "WORD = 'bye'\n")
    write(
        proj / "script.py",
        WHILE_A_THREAD_OF_OURS_IMPORTS
        + """\


class Parting:
    def __del__(self):
        import farewell  # (not imported yet: it takes the import lock)

        print("finalized:", farewell.WORD, flush=True)


parting = Parting()
parting.me = parting  # in a cycle: the interpreter's last collection finalizes it
del parting
""",
    )
    expected = run_python(["script.py"], cwd=proj, env=core_env)
    assert (expected.returncode, expected.stdout) == (0, "finalized: bye\n")

    got = run_hmr([*watching, "script.py"], cwd=proj, env=core_env)

    assert (got.returncode, got.stdout) == (
        0,
        "a thread of ours imports: True\nfinalized: bye\n",
    ), got.stderr
    # (The step it was in ends quietly: on 3.12+ it started a thread, which the
    # interpreter refuses as it ends, and "hmr: the watcher hit an internal error".)
    assert got.stderr == expected.stderr


@pytest.mark.parametrize("watching", [[], ["--no-watch"]], ids=["watch", "no-watch"])
def test_a_program_interrupted_while_a_thread_of_ours_imports_ends_by_sigint(
    proj: Path, core_env: dict[str, str], watching: list[str]
) -> None:
    """An uncaught KeyboardInterrupt ends python by SIGINT, after its clean-up, unless
    some code ran from a string meanwhile (``exec``/``eval`` of a str: a dataclass or
    a named tuple made): CPython then forgets it, and exits 1.  Our threads' work at
    exit did that (the idle work importing the engine): Ctrl-C on a program that
    computes ended with 1 in 1 run of 6, and a shell loop running it went on."""
    write(proj / "script.py", WHILE_A_THREAD_OF_OURS_IMPORTS + "raise KeyboardInterrupt\n")
    expected = run_python(["script.py"], cwd=proj, env=core_env)
    assert expected.returncode == -signal.SIGINT

    got = run_hmr([*watching, "script.py"], cwd=proj, env=core_env)

    assert (got.returncode, got.stdout) == (
        -signal.SIGINT,
        "a thread of ours imports: True\n",
    ), got.stderr
    assert got.stderr.splitlines()[-1] == "KeyboardInterrupt"


@pytest.mark.parametrize("watching", [[], ["--no-watch"]], ids=["watch", "no-watch"])
def test_the_program_sees_its_own_threads_like_python(
    proj: Path, core_env: dict[str, str], watching: list[str]
) -> None:
    """``threading.enumerate()`` and ``active_count()`` counted the watcher's threads: a
    program that waits for its workers with ``while threading.active_count() > 1``
    waited forever."""
    write(
        proj / "script.py",
        """\
        import threading
        import time

        started = threading.Event()


        def work():
            started.wait()
            time.sleep(0.2)


        for index in range(3):
            threading.Thread(target=work, name=f"worker-{index}").start()
        print(sorted(thread.name for thread in threading.enumerate()), threading.active_count())
        started.set()
        deadline = time.monotonic() + 10
        while threading.active_count() > 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        print(threading.active_count())
        """,
    )
    expected = run_python(["script.py"], cwd=proj, env=core_env)
    assert expected.stdout == "['MainThread', 'worker-0', 'worker-1', 'worker-2'] 4\n1\n"

    got = run_hmr([*watching, "script.py"], cwd=proj, env=core_env)

    assert (got.returncode, got.stdout) == (0, expected.stdout), got.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="counts page faults with resource")
def test_calls_back_and_forth_over_a_frame_stack_chunk_end_make_no_chunk_each_time(
    proj: Path, core_env: dict[str, str]
) -> None:
    """CPython 3.11-3.13 free a chunk of a thread's frame stack (16 KB) as soon as the
    frames leave it: a loop of calls that each need a new chunk made and freed one per
    call, with a page fault each.  Deep imports did it under the CLI (the pure core's
    hook adds frames: 167 times in a 1000-module start-up); the program now runs in a
    chunk with room for a deep stack."""
    write(
        proj / "script.py",
        """\
        import resource


        def leaf():
            return 1


        # A frame of about 2.5 KB: at some depths below, it does not fit what is left
        # of a chunk.
        leaf.__code__ = leaf.__code__.replace(co_stacksize=300)


        WHO = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)


        def at_depth(depth, calls):
            if depth:
                return at_depth(depth - 1, calls)
            faults = resource.getrusage(WHO).ru_minflt
            for _ in range(calls):
                leaf()
            return resource.getrusage(WHO).ru_minflt - faults


        print(max(at_depth(depth, 200) for depth in range(400)))
        """,
    )
    plain = run_python(["script.py"], cwd=proj, env=core_env)
    assert plain.returncode == 0, plain.stderr
    if int(plain.stdout) < 200:
        pytest.skip("this Python keeps the chunks of its frame stack (3.10, 3.14+)")

    got = run_hmr(["script.py"], cwd=proj, env=core_env)

    assert got.returncode == 0, got.stderr
    assert int(got.stdout) < 20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/task")
def test_the_threads_the_cli_starts_in_the_main_thread_leave_it_the_signals(
    proj: Path, core_env: dict[str, str]
) -> None:
    """A thread inherits the signal mask of the thread that starts it: ``--graph``'s and
    ``--restart-on-refused``'s threads, started in the program's main thread, took the
    process's signals (a Ctrl-C the kernel hands to a thread that does not block it is
    only seen by the main thread once its blocking call returns)."""
    write(
        proj / "script.py",
        """\
        import signal

        from muckrack_hmr.threads import all_threads


        def blocks_sigint(native_id):
            with open(f"/proc/self/task/{native_id}/status") as status:
                for line in status:
                    if line.startswith("SigBlk:"):
                        return bool(int(line.split()[1], 16) >> (signal.SIGINT - 1) & 1)


        for thread in sorted(all_threads(), key=lambda thread: thread.name):
            if thread.name.startswith("muckrack-hmr-") and thread.native_id is not None:
                print(thread.name, blocks_sigint(thread.native_id))
        """,
    )
    got = run_hmr(
        ["--graph", "graph.dot", "--restart-on-refused", "script.py"], cwd=proj, env=core_env
    )

    assert got.returncode == 0, got.stderr
    blocked = dict(line.split() for line in got.stdout.splitlines())
    assert {"muckrack-hmr-graph", "muckrack-hmr-parent", "muckrack-hmr-watcher"} <= set(blocked)
    assert set(blocked.values()) == {"True"}, blocked


# -- 5. uncaught exceptions -------------------------------------------------------


def _assert_clean_traceback(stderr: str) -> None:
    lines = stderr.splitlines()
    assert lines, "nothing on stderr"
    assert lines[0] == "Traceback (most recent call last):", stderr
    for noise in ("muckrack_hmr", "_hmr_core", "runpy", "<frozen"):
        assert noise not in stderr, f"{noise!r} in the traceback:\n{stderr}"


def test_uncaught_exception_prints_a_plain_traceback(proj: Path, core_env: dict[str, str]) -> None:
    write(
        proj / "script.py",
        """\
        def fail(value):
            raise ValueError(f"bad value {value}")


        fail(42)
        """,
    )
    expected = run_python(["script.py"], cwd=proj, env=core_env)
    assert expected.returncode == 1

    got = run_hmr(["script.py"], cwd=proj, env=core_env)

    assert got.returncode == 1
    _assert_clean_traceback(got.stderr)
    assert re.search(r'File "[^"]*script\.py", line 5, in <module>', got.stderr)
    assert re.search(r'File "[^"]*script\.py", line 2, in fail', got.stderr)
    assert got.stderr.splitlines()[-1] == "ValueError: bad value 42"
    assert got.stderr == expected.stderr


def test_an_uncaught_exception_is_kept_where_python_keeps_it(
    proj: Path, core_env: dict[str, str]
) -> None:
    """``sys.last_value`` was not set: an exit handler saw None, and ``pdb.pm()`` after
    ``python -i -m muckrack.hmr script.py`` went to the CLI's ``sys.exit``, not to the
    line that raised."""
    write(
        proj / "script.py",
        """\
        import atexit
        import sys

        atexit.register(lambda: print("at exit:", repr(sys.last_value)))


        def fail():
            raise ValueError("crash")


        fail()
        """,
    )
    expected = run_python(["script.py"], cwd=proj, env=core_env)
    assert (expected.returncode, expected.stdout) == (1, "at exit: ValueError('crash')\n")
    got = run_hmr(["script.py"], cwd=proj, env=core_env)
    assert (got.returncode, got.stdout) == (1, expected.stdout)

    # ``python -i``: the prompt comes after the traceback, with the program's exception.
    where = "import sys; tb = sys.last_traceback\nwhile tb.tb_next: tb = tb.tb_next\n\n"
    where += "print(repr(sys.last_value), tb.tb_frame.f_code.co_name)\n"
    inspected = [
        run_python(["-i", *args, "script.py"], cwd=proj, env=core_env, stdin=where)
        for args in ([], ["-m", "muckrack.hmr"])
    ]
    python, hmr = ((each.returncode, each.stdout) for each in inspected)
    assert python == (0, "ValueError('crash') fail\nat exit: ValueError('crash')\n")
    assert hmr == python, inspected[1].stderr


@pytest.mark.parametrize(
    ("end", "inspect"),
    [("", "-i"), ("sys.exit(3)", "-i"), ("", "PYTHONINSPECT"), ("sys.exit(3)", "PYTHONINSPECT")],
)
def test_python_i_after_a_program_that_ends_or_exits_gives_the_prompt_as_python(
    proj: Path, core_env: dict[str, str], end: str, inspect: str
) -> None:
    """``python -i -m muckrack.hmr app.py`` (or PYTHONINSPECT=1): a traceback of the CLI's
    own ``sys.exit`` came before the prompt (``SystemExit: 0`` for a program that ended),
    and a program's ``sys.exit(3)`` showed the CLI's frames; PYTHONINSPECT made it exit 1."""
    write(proj / "app.py", f"import sys\n\nx = 1\nprint('done', flush=True)\n{end}\n")
    env = dict(core_env)
    flags = ["-i"] if inspect == "-i" else []
    if inspect == "PYTHONINSPECT":
        env["PYTHONINSPECT"] = "1"
    got = [
        run_python([*flags, *cli, "app.py"], cwd=proj, env=env, stdin="print('repl', x)\n")
        for cli in ([], ["-m", "muckrack.hmr"])
    ]
    python, hmr = ((each.returncode, each.stdout, each.stderr) for each in got)
    # (PYTHONINSPECT gives no prompt to a standard input that is no terminal, and ends
    # with 1 after an exception.)
    expected = (0, "done\nrepl 1\n") if flags else (1 if end else 0, "done\n")
    assert python[:2] == expected, python
    assert hmr[:2] == python[:2], hmr
    assert "muckrack" not in hmr[2], hmr[2]
    assert "SystemExit: 0" not in hmr[2], hmr[2]
    if end:
        assert hmr[2].count("SystemExit: 3") == python[2].count("SystemExit: 3") == 1, hmr[2]


def test_a_program_read_from_stdin_runs_like_python(proj: Path, core_env: dict[str, str]) -> None:
    """``python -m muckrack.hmr - a b`` said ``can't open file '-'`` (exit 2); python runs
    what stdin holds."""
    write(proj / "helper.py", "def twice(x):\n    return 2 * x\n")
    program = (
        "import sys, __main__ as m, helper\n"
        "print(sys.argv, repr(sys.path[0]), m.__file__, m.__spec__, helper.twice(2))\n"
        "def f():\n    1 / 0\n\nf()\n"
    )
    runs = [
        run_python([*args, "-", "a", "b"], cwd=proj, env=core_env, stdin=program)
        for args in ([], ["-m", "muckrack.hmr"])
    ]
    python, hmr = ((each.returncode, each.stdout, each.stderr) for each in runs)
    assert python[:2] == (1, "['-', 'a', 'b'] '' <stdin> None 4\n")
    assert python[2].endswith('File "<stdin>", line 4, in f\nZeroDivisionError: division by zero\n')
    assert hmr == python


def test_exception_while_importing_a_project_module_prints_a_plain_traceback(
    proj: Path, core_env: dict[str, str]
) -> None:
    # The most common crash of all: a module-level error in an imported module.
    write(proj / "script.py", "import broken\n")
    write(
        proj / "broken.py",
        """\
        SETTING = 1
        raise RuntimeError("broken at import")
        """,
    )
    expected = run_python(["script.py"], cwd=proj, env=core_env)
    assert expected.returncode == 1

    got = run_hmr(["script.py"], cwd=proj, env=core_env)

    assert got.returncode == 1
    assert got.stderr.splitlines()[-1] == "RuntimeError: broken at import"
    assert re.search(r'File "[^"]*broken\.py", line 2, in <module>', got.stderr)
    _assert_clean_traceback(got.stderr)
    assert got.stderr == expected.stderr


def test_a_traceback_the_program_prints_of_an_import_error_is_pythons(
    proj: Path, core_env: dict[str, str]
) -> None:
    """A traceback the program itself prints (``traceback.print_exc()``, as a framework's
    error page or a gunicorn worker's boot error does) of a module that raised at import:
    the import hook's frames stood between each import statement and the module it
    imports (``src/_hmr_core.pyx``, two per level; ``_core_py.py``'s ``import_``)."""
    if core_env.get("MUCKRACK_HMR_NO_EXTENSIONS") and sys.version_info < (3, 11):
        pytest.skip("3.10 re-raises what a frame caught with that frame: the pure hook's stays")
    write(
        proj / "script.py",
        """\
        import importlib
        import traceback

        try:
            import outer
        except RuntimeError:
            traceback.print_exc()
        try:
            importlib.import_module("outer")
        except RuntimeError:
            traceback.print_exc()
        print("went on")
        """,
    )
    write(proj / "outer.py", "import inner\n")
    write(proj / "inner.py", "SETTING = 1\nraise RuntimeError('broken at import')\n")
    expected = run_python(["script.py"], cwd=proj, env=core_env)
    assert (expected.returncode, expected.stdout) == (0, "went on\n")
    got = run_hmr(["--no-watch", "script.py"], cwd=proj, env=core_env)
    assert (got.returncode, got.stdout) == (0, "went on\n")
    assert got.stderr.count('inner.py", line 2, in <module>') == 2
    assert "_hmr_core" not in got.stderr
    assert "muckrack_hmr" not in got.stderr
    assert got.stderr == expected.stderr


def test_a_traceback_the_program_prints_of_a_module_that_does_not_compile_is_pythons(
    proj: Path, core_env: dict[str, str]
) -> None:
    """``try: import badmod`` / ``except SyntaxError: traceback.print_exc()``: the import
    system's frames (``_find_and_load`` ... ``exec_module``) and, on the pure core, the
    capture's ``captured_get_code`` showed between the import statement and the error's
    line: the capture compiles the source, where python's loader compiles it so that the
    interpreter leaves them out.  Directly, and through a module that imports it.
    (``importlib.import_module``, where python shows the import system's frames, is not
    python's: its loader's last three frames are not there.)"""
    if core_env.get("MUCKRACK_HMR_NO_EXTENSIONS") and sys.version_info < (3, 11):
        pytest.skip("3.10 re-raises what a frame caught with that frame: the pure hook's stays")
    write(
        proj / "script.py",
        """\
        import traceback

        try:
            import badmod
        except SyntaxError:
            traceback.print_exc()
        try:
            import outer
        except SyntaxError:
            traceback.print_exc()
        print("went on")
        """,
    )
    write(proj / "outer.py", "import badmod\n")
    write(proj / "badmod.py", "def f(:\n    pass\n")
    expected = run_python(["script.py"], cwd=proj, env=core_env)
    assert (expected.returncode, expected.stdout) == (0, "went on\n")
    got = run_hmr(["--no-watch", "script.py"], cwd=proj, env=core_env)
    assert (got.returncode, got.stdout) == (0, "went on\n")
    assert got.stderr.count("SyntaxError: invalid syntax") == 2
    assert "importlib._bootstrap" not in got.stderr
    assert "muckrack_hmr" not in got.stderr
    assert got.stderr == expected.stderr


def test_an_exit_handler_registered_again_by_a_reload_runs_once(
    proj: Path, core_env: dict[str, str]
) -> None:
    """``@atexit.register`` above a ``def`` whose signature an edit changed: the statement
    runs again and handed ``atexit`` the live function a second time, and the handler ran
    twice at exit (a file closed or flushed twice).  So did a top-level
    ``atexit.register(bye)`` run again.  Each runs once, the new code."""
    write(
        proj / "handlers.py",
        """\
        import atexit


        @atexit.register
        def cleanup():
            print("cleanup v1")


        def bye():
            print("bye v1")


        atexit.register(bye)
        """,
    )
    write(
        proj / "script.py",
        """\
        import pathlib

        import handlers

        path = pathlib.Path(handlers.__file__)
        source = path.read_text()
        source = source.replace("def cleanup():", "def cleanup(code=0):")
        source = source.replace("def bye():", "def bye(code=0):")
        path.write_text(source.replace("v1", "v2"))
        print(__hmr__.reload_module("handlers")[0])
        """,
    )
    got = run_hmr(["--no-watch", "script.py"], cwd=proj, env=core_env)
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert lines[0] == "['handlers']"
    assert sorted(lines[1:]) == ["bye v2", "cleanup v2"], got.stdout


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork: Unix only")
def test_a_fork_in_a_script_without_threads_warns_as_python_does(
    proj: Path, core_env: dict[str, str]
) -> None:
    """3.12+ warns at ``os.fork()`` in a process with threads; under the CLI the watcher's
    threads made every script that forks say "This process ... is multi-threaded" where
    python, with none, says nothing.  A script with a thread of its own is warned as
    under python."""
    write(
        proj / "script.py",
        """\
        import os
        import sys
        import threading
        import time

        if sys.argv[1:] == ["thread"]:
            threading.Thread(target=time.sleep, args=(1,), daemon=True).start()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        print("forked")
        """,
    )
    for args in (["script.py"], ["script.py", "thread"]):
        expected = run_python(args, cwd=proj, env=core_env)
        got = run_hmr(args, cwd=proj, env=core_env)
        assert (got.returncode, got.stdout) == (expected.returncode, "forked\n")
        assert got.stderr.replace(str(got_pid(got.stderr)), "PID") == expected.stderr.replace(
            str(got_pid(expected.stderr)), "PID"
        )
    assert "multi-threaded" not in run_hmr(["script.py"], cwd=proj, env=core_env).stderr


def got_pid(stderr: str) -> int | None:
    """The process ID a fork warning names, if any."""
    found = re.search(r"pid=(\d+)", stderr)
    return int(found.group(1)) if found else None


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10 runs a script up to its null byte")
def test_a_null_byte_in_the_script_reports_its_file_and_line_like_python(
    proj: Path, core_env: dict[str, str]
) -> None:
    (proj / "script.py").write_bytes(b"x = 1\ny = 2\x00\n")
    expected = run_python(["script.py"], cwd=proj, env=core_env)
    got = run_hmr(["script.py"], cwd=proj, env=core_env)
    assert (got.returncode, got.stderr) == (expected.returncode, expected.stderr)
    assert f'File "{proj / "script.py"}", line 2' in got.stderr


def test_syntax_error_in_the_script_reports_like_python(
    proj: Path, core_env: dict[str, str]
) -> None:
    write(
        proj / "script.py",
        """\
        print("never runs")
        value = (1 +
        """,
    )
    expected = run_python(["script.py"], cwd=proj, env=core_env)
    assert expected.returncode == 1

    got = run_hmr(["script.py"], cwd=proj, env=core_env)

    assert got.returncode == 1
    assert got.stdout == ""
    assert "SyntaxError" in got.stderr.splitlines()[-1]
    assert "muckrack_hmr" not in got.stderr
    assert got.stderr == expected.stderr


# -- 6. Ctrl-C --------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX only")
def test_ctrl_c_ends_the_process_by_sigint_like_python(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    """As python does, after its clean-up (atexit ran): a shell loop that runs the
    program stops at Ctrl-C (before, the CLI exited 130, and the loop went on)."""
    write(
        proj / "script.py",
        """\
        import atexit
        import time

        atexit.register(lambda: print("atexit ran", flush=True))
        print("ready", flush=True)
        while True:
            time.sleep(0.05)
        """,
    )
    with as_from_a_terminal():
        child = spawn(["script.py"], cwd=proj)
    child.expect("ready")
    assert child.proc.poll() is None

    child.proc.send_signal(signal.SIGINT)

    assert child.wait() == -signal.SIGINT
    child.expect("atexit ran")
    stderr = child.stderr_text()
    _assert_clean_traceback(stderr)
    assert stderr.splitlines()[-1] == "KeyboardInterrupt"
    assert re.search(r'File "[^"]*script\.py", line \d+, in <module>', stderr)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX only")
def test_ctrl_c_during_a_garbage_collection_ends_the_process(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    """The pure core's collector callback is Python code: Ctrl-C's handler ran there, at
    its first line, and its KeyboardInterrupt was lost (a callback's exception is): a
    program that collects much went on, and ``pytest --hmr`` waited on."""
    write(
        proj / "script.py",
        """\
        import gc

        heap = []
        for _ in range(100_000):
            pair = [None]
            pair[0] = pair  # (each a cycle: the collection walks them all)
            heap.append(pair)
        print("ready", flush=True)
        while True:
            gc.collect()  # half of the program's time is in collections
            total = 0
            for number in range(100_000):
                total += number
        """,
    )
    with as_from_a_terminal():
        child = spawn(["script.py"], cwd=proj)
    child.expect("ready")

    child.proc.send_signal(signal.SIGINT)

    assert child.wait() == -signal.SIGINT
    assert child.stderr_text().splitlines()[-1] == "KeyboardInterrupt"


# -- 7. our own errors --------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "names"),
    [
        pytest.param(["missing_script.py"], "missing_script.py", id="missing-script"),
        pytest.param(["--bogus", "script.py"], "--bogus", id="unknown-option"),
        pytest.param([], "script", id="no-target"),
        pytest.param(["--debounce", "-1", "script.py"], "--debounce", id="negative-debounce"),
        pytest.param(["--root", "no_such_dir", "script.py"], "no_such_dir", id="missing-root"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    proj: Path, core_env: dict[str, str], args: list[str], names: str
) -> None:
    write(proj / "script.py", 'print("the script ran", flush=True)\n')

    got = run_hmr(args, cwd=proj, env=core_env)

    assert got.returncode == 2, got.stderr
    assert got.stdout == ""  # the script did not run
    lines = got.stderr.splitlines()
    assert len(lines) == 1, got.stderr
    assert lines[0].startswith(f"{PROG}: error: "), lines[0]
    assert names in lines[0]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        pytest.param(["-m", "no_mod_xyz"], "No module named no_mod_xyz", id="module"),
        pytest.param(["-m", "pkg"], "No module named pkg.__main__", id="package-without-main"),
        pytest.param(["-m", "pkg.nope"], "No module named pkg.nope", id="submodule"),
        pytest.param(["sub"], "can't find '__main__' module in 'sub'", id="folder-without-main"),
    ],
)
def test_what_python_cannot_find_exits_as_python_does_with_one_line(
    proj: Path, core_env: dict[str, str], args: list[str], names: str
) -> None:
    write(proj / "pkg" / "__init__.py", "")
    (proj / "sub").mkdir()

    expected = run_python(args, cwd=proj, env=core_env)
    got = run_hmr(args, cwd=proj, env=core_env)

    assert expected.returncode == 1, expected.stderr
    assert got.returncode == expected.returncode, got.stderr
    assert got.stdout == ""
    lines = got.stderr.splitlines()
    assert len(lines) == 1, got.stderr
    assert lines[0].startswith(f"{PROG}: error: "), lines[0]
    assert names in lines[0]


@pytest.mark.parametrize("how", ["folder", "folder/", "./folder", "zipapp"])
def test_a_folder_or_a_zipapp_with_a_main_runs_like_python(
    proj: Path, core_env: dict[str, str], how: str
) -> None:
    """``python app/`` and ``python app.pyz`` run their ``__main__.py``, the folder or the
    zip file first on sys.path (before, the CLI refused the folder, and read the zip
    file as source)."""
    write(proj / "folder" / "__main__.py", PROBE)
    write(proj / "folder" / "helper.py", "WHERE = __file__\n")
    target = how
    if how == "zipapp":
        import zipapp

        target = "app.pyz"
        zipapp.create_archive(proj / "folder", proj / target, interpreter="/usr/bin/env python3")

    expected = facts_of(run_python([target, *PROGRAM_ARGS], cwd=proj, env=core_env))
    got = facts_of(run_hmr([target, *PROGRAM_ARGS], cwd=proj, env=core_env))

    assert expected["argv"] == [target, *PROGRAM_ARGS]
    assert expected["spec_name"] == "__main__"
    assert got == expected


def test_a_zipapp_s_modules_are_not_watched_as_files(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    """Its modules' files lie inside the zip: no file to watch or read (before: "inotify
    failed ... Not a directory", a switch to polling, and "cannot read app.pyz/helper.py")."""
    import zipapp

    write(
        proj / "app" / "__main__.py",
        "import sys, helper\nprint('ran', helper.WHERE)\n"
        "sys.stdout.flush()\nsys.stdin.readline()\n",
    )
    write(proj / "app" / "helper.py", "WHERE = __file__\n")
    write(proj / "lib.py", "X = 1\n")
    zipapp.create_archive(proj / "app", proj / "app.pyz")
    child = spawn(["-v", "app.pyz"], cwd=proj, stdin=True)
    child.expect(starts("ran "))
    child.expect(starts("hmr: watching "), stream="err")
    child.send("")
    assert child.wait() == 0
    stderr = child.stderr_text()
    assert "inotify failed" not in stderr, stderr
    assert "cannot read" not in stderr, stderr
    assert "polling" not in stderr, stderr


# -- 8. --help and --version ------------------------------------------------------


def test_help(proj: Path, core_env: dict[str, str]) -> None:
    got = run_hmr(["--help"], cwd=proj, env=core_env)

    assert got.returncode == 0
    assert got.stderr == ""
    assert got.stdout.startswith("usage: python -m muckrack.hmr")
    assert "-m MODULE" in got.stdout


def test_version_names_the_core(proj: Path, core_env: dict[str, str], core_name: str) -> None:
    got = run_hmr(["--version"], cwd=proj, env=core_env)

    assert got.returncode == 0
    assert got.stderr == ""
    lines = got.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("muckrack-python-hmr ")
    wanted, other = ("compiled", "pure") if core_name == "c" else ("pure", "compiled")
    assert wanted in lines[0]
    assert other not in lines[0]


# Standard modules a small script may never import, nor the CLI at start-up: dataclasses
# and inspect (with ast and dis) cost it several milliseconds.
_HEAVY = ["dataclasses", "inspect"]


@pytest.mark.parametrize("watching", [False, True], ids=["no-watch", "watching"])
def test_start_up_imports_only_what_runs(
    proj: Path, core_env: dict[str, str], core_name: str, watching: bool
) -> None:
    """Start-up pays for neither the core that does not run, nor the reload engine before
    a reload needs it, nor the watcher's save pipeline before the file events start, nor
    what argparse would import to ask the terminal's width, nor dataclasses and inspect,
    but where the standard modules it needs import them (3.14's logging does)."""
    write(
        proj / "main.py",
        f"""\
        import sys

        names = ["shutil", "muckrack_hmr._core_py", "muckrack_hmr._hmr_core",
                 "muckrack_hmr.reload.reloader", "muckrack_hmr.watch.pipeline",
                 *{_HEAVY!r}]
        print({{name: name in sys.modules for name in names}})
        """,
    )
    got = run_hmr([*([] if watching else ["--no-watch"]), "main.py"], cwd=proj, env=core_env)

    assert got.returncode == 0, got.stderr
    # (A dict's repr: json would be imported by the program before it looked.)
    loaded = ast.literal_eval(got.stdout.strip().splitlines()[-1])
    # What the standard modules the CLI needs import themselves, in this Python.
    needed = "import logging, re, threading, tokenize, typing, weakref, zlib, sys; "
    plain = subprocess.run(
        [sys.executable, "-c", f"{needed}print([name in sys.modules for name in {_HEAVY!r}])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded == {
        "shutil": False,
        "muckrack_hmr._core_py": core_name == "py",
        "muckrack_hmr._hmr_core": core_name == "c",
        "muckrack_hmr.reload.reloader": False,
        # (The watcher makes its save pipeline once the start-up is over.)
        "muckrack_hmr.watch.pipeline": False,
        **dict(zip(_HEAVY, ast.literal_eval(plain.stdout), strict=True)),
    }


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_a_framework_s_import_at_start_up_loads_no_reload_engine(
    proj: Path, core_env: dict[str, str], framework: str
) -> None:
    """The integration that a framework's import activates (Flask's, FastAPI's) loads
    none of the engine's patching and analysis: a reload does, when one comes.  It
    loaded them at the framework's import, a few ms of every start of an app."""
    write(
        proj / "main.py",
        f"""\
        import json
        import sys
        import threading

        # What the program's own thread imports (the idle work's thread, under
        # --no-watch, may start the engine while a slow import runs: not this).
        imported = set()


        def audit(event, args):
            if event == "import" and threading.current_thread() is threading.main_thread():
                imported.add(args[0])


        sys.addaudithook(audit)
        import {framework}

        names = ["muckrack_hmr.reload.live_defs", "muckrack_hmr.reload.patching",
                 "muckrack_hmr.reload.analysis", "muckrack_hmr.integrations._reloading"]
        print(json.dumps({{name: name in imported for name in names}}))
        """,
    )
    got = run_hmr(["--no-watch", "main.py"], cwd=proj, env=core_env)
    assert got.returncode == 0, got.stderr
    loaded = json.loads(got.stdout.strip().splitlines()[-1])
    assert loaded == {
        "muckrack_hmr.reload.live_defs": False,
        "muckrack_hmr.reload.patching": False,
        "muckrack_hmr.reload.analysis": False,
        "muckrack_hmr.integrations._reloading": True,  # (the integration is on)
    }


# -- 9. reloading through __hmr__ ----------------------------------------------------


def test_reload_module_rebinds_from_imports_in_main(proj: Path, core_env: dict[str, str]) -> None:
    write(proj / "a.py", A_OLD)
    write(
        proj / "main.py",
        f"""\
        import json
        import pathlib

        from a import f, X
        from a import f as g
        from a import f as h

        h = len  # rebound by the program: HMR must leave it alone


        def show(tag):
            print(tag, f(), X, g(), h is len, flush=True)


        show("before")
        pathlib.Path(__file__).with_name("a.py").write_text({A_NEW!r})
        result = __hmr__.reload_module("a")
        names, ms = result
        print(
            "result",
            json.dumps([type(result).__name__, names, type(ms).__name__, ms]),
            flush=True,
        )
        show("after")
        """,
    )

    got = run_hmr(["--no-watch", "main.py"], cwd=proj, env=core_env)

    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert lines[0] == "before old 1 old True"
    assert lines[1].startswith("result ")
    kind, names, ms_type, ms = json.loads(lines[1].removeprefix("result "))
    assert kind == "tuple"
    assert names == ["a"]
    assert ms_type == "float"
    assert ms >= 0
    assert lines[2] == "after new 2 new True"
    assert len(lines) == 3
    assert (proj / "a.py").read_text(encoding="utf-8") == A_NEW
    assert any(line.startswith("hmr: reloaded a") for line in got.stderr.splitlines()), got.stderr


def test_rebound_names_only_the_bindings_pointed_at_a_new_object(
    proj: Path, core_env: dict[str, str]
) -> None:
    """``from cfg import A, B, f`` in the script, and only ``A`` changed: ``B`` and ``f``
    hold what they held (a list kept, a function patched in place).  They were counted
    as rebound too ("3 rebound" for one)."""
    write(proj / "cfg.py", "A = 1\nB = [1]\n\n\ndef f():\n    return 1\n")
    write(
        proj / "main.py",
        """\
        import pathlib

        from cfg import A, B, f

        pathlib.Path("cfg.py").write_text("A = 2\\nB = [1]\\n\\n\\ndef f():\\n    return 2\\n")
        result = __hmr__.reload("cfg")
        print(result.rebound, A, B, f(), flush=True)
        """,
    )
    got = run_hmr(["--no-watch", "main.py"], cwd=proj, env=core_env)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "['__main__.A'] 2 [1] 2"
    assert "(1 patched, 1 rebound)" in got.stderr, got.stderr


# -- 10. the watcher ------------------------------------------------------------------

WATCHED_MAIN = """\
import sys
import time

import b
from a import X, f
from b import Y


def out(text):
    sys.stdout.write(text + "\\n")
    sys.stdout.flush()


__hmr__.add_error_handler(lambda name, exc: out(f"error-handler {name} {type(exc).__name__}"))

tick = 0
while True:
    out(f"tick {tick} f={f()} X={X} Y={Y} b.Y={b.Y}")
    tick += 1
    time.sleep(0.02)  # pacing only: the test waits for lines, not for time
"""

B_SOURCE = """\
from a import X

Y = X * 2
"""


def _watched_project(proj: Path) -> None:
    write(proj / "a.py", A_OLD)
    write(proj / "b.py", B_SOURCE)
    write(proj / "main.py", WATCHED_MAIN)


def _start_watched(spawn: Callable[..., Child], proj: Path, *options: str) -> Child:
    child = spawn(["--debounce", "5", *options, "main.py"], cwd=proj)
    # The old behaviour first.
    child.expect("f=old X=1 Y=2 b.Y=2")
    return child


def test_watcher_reloads_a_module_saved_right_after_start(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    _watched_project(proj)
    child = _start_watched(spawn, proj)

    # Saved as soon as the program has printed its first line.
    write(proj / "a.py", A_NEW)

    child.expect("f=new X=2")
    child.expect(starts("hmr: reloaded a"), stream="err")


def test_log_file_takes_the_lines_off_the_terminal(proj: Path, spawn: Callable[..., Child]) -> None:
    """``--log-file``: a full-screen program (Textual draws on stderr) keeps its screen;
    the lines go to the file, without colours, and nothing to stderr."""
    _watched_project(proj)
    log_file = proj / "hmr.log"
    child = _start_watched(spawn, proj, "--log-file", str(log_file))
    write(proj / "a.py", A_NEW)
    child.expect("f=new X=2 Y=4 b.Y=4")
    deadline = time.monotonic() + DEADLINE
    while "hmr: reloaded a" not in log_file.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)  # polling a file for its line, within the deadline
    lines = log_file.read_text().splitlines()
    assert any(line.startswith("hmr: reloaded a (+1 dependent") for line in lines), lines
    assert "\033[" not in log_file.read_text()
    assert child.seen["err"] == []


def test_a_log_file_that_cannot_be_opened_is_a_usage_error(
    proj: Path, core_env: dict[str, str]
) -> None:
    write(proj / "script.py", 'print("the script ran", flush=True)\n')
    got = run_hmr(
        ["--log-file", str(proj / "no" / "such.log"), "script.py"], cwd=proj, env=core_env
    )
    assert (got.returncode, got.stdout) == (2, "")
    assert got.stderr.splitlines() == [
        f"{PROG}: error: --log-file {str(proj / 'no' / 'such.log')!r}: No such file or directory"
    ]


def test_a_virtualenvs_console_script_watches_the_current_folder(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    """``python -m muckrack.hmr .venv/bin/tool``: the script's folder holds no code of the
    project (it was the root: nothing was tracked, saves did nothing, no word)."""
    venv = proj / ".venv"
    write(venv / "pyvenv.cfg", "home = /usr/bin\n")
    write(proj / "src" / "mod.py", "def f():\n    return 'old'\n")
    write(
        venv / "bin" / "tool",
        "import sys, time\n"
        f"sys.path.insert(0, {str(proj / 'src')!r})\n"
        "import mod\n"
        "while True:\n"
        "    print('f=' + mod.f(), flush=True)\n"
        "    time.sleep(0.02)  # pacing only: the test waits for lines\n",
    )
    child = spawn([str(venv / "bin" / "tool")], cwd=proj)
    line = child.expect(starts("hmr: "), stream="err")
    assert line == (
        f"hmr: {venv / 'bin' / 'tool'} is a virtualenv's script: the project is taken to be "
        f"the current folder ({os.path.realpath(proj)}); --root sets it"
    )
    child.expect("f=old")
    write(proj / "src" / "mod.py", "def f():\n    return 'new'\n")
    child.expect("f=new")


def _start_watched_and_ready(spawn: Callable[..., Child], proj: Path) -> Child:
    """A watched program, once the watcher reports (with -v) that it watches the project."""
    child = _start_watched(spawn, proj, "-v")
    child.expect(starts("hmr: watching"), stream="err")
    return child


def test_watcher_reloads_a_saved_module(proj: Path, spawn: Callable[..., Child]) -> None:
    _watched_project(proj)
    child = _start_watched_and_ready(spawn, proj)

    write(proj / "a.py", A_NEW)  # saved in place

    child.expect("f=new X=2 Y=4 b.Y=4")
    line = child.expect(starts("hmr: reloaded a"), stream="err")
    # b ran again, f was patched in place (its bindings hold it still), and __main__'s X
    # and Y were pointed at the new values.
    assert "(+1 dependent, 1 patched, 2 rebound)" in line


def test_watcher_keeps_old_code_after_a_syntax_error_then_applies_the_fix(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    _watched_project(proj)
    child = _start_watched_and_ready(spawn, proj)

    write(
        proj / "a.py",
        """\
        X = 3


        def f():
            return "broken" +
        """,
    )

    error = child.expect(starts("hmr: failed to reload a"), stream="err")
    assert re.search(r"a\.py:5\b", error), error
    assert "SyntaxError" in error
    child.expect("error-handler a SyntaxError")
    # Every line printed after the failure still comes from the old code.
    assert "f=old X=1 Y=2 b.Y=2" in child.expect(starts("tick "))
    assert child.proc.poll() is None

    write(
        proj / "a.py",
        """\
        X = 3


        def f():
            return "fixed"
        """,
    )

    child.expect("f=fixed X=3 Y=6 b.Y=6")
    child.expect(starts("hmr: reloaded a"), stream="err")


def test_watcher_reloads_the_dependents_of_a_module_saved_by_rename(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    _watched_project(proj)
    child = _start_watched_and_ready(spawn, proj)

    save_atomically(
        proj / "a.py",
        """\
        X = 5


        def f():
            return "renamed"
        """,
    )

    # b re-executed (b.Y), and __main__'s `from b import Y` points at the new Y.
    child.expect("f=renamed X=5 Y=10 b.Y=10")
    line = child.expect(starts("hmr: reloaded a"), stream="err")
    # b ran again, f was patched in place (its bindings hold it still), and __main__'s X
    # and Y were pointed at the new values.
    assert "(+1 dependent, 1 patched, 2 rebound)" in line


def test_the_quick_start_demo_shows_a_live_reload(core_env: dict[str, str]) -> None:
    """The README's first command: the demo edits a running program and sees the change."""
    result = subprocess.run(
        [sys.executable, "-m", "muckrack_hmr.demo", "--once"],
        env=core_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "hello from the original code" in out
    assert "hmr: reloaded greet" in out
    assert out.index("hello from the original code") < out.index("HELLO FROM THE EDITED CODE")
    assert out.count("demo: the running program now runs the new code") == 1
    # The same process: one pid line only.
    assert out.count("demo: process ") == 1


@pytest.mark.parametrize("policy", ["auto", "always", "never"])
def test_cascade_option_sets_the_policy(proj: Path, core_env: dict[str, str], policy: str) -> None:
    write(proj / "main.py", "print(__hmr__.cascade)\n")
    args = (
        ["--no-watch", "main.py"]
        if policy == "auto"
        else ["--cascade", policy, "--no-watch", "main.py"]
    )
    got = run_hmr(args, cwd=proj, env=core_env)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == policy


# A free-threaded interpreter with the GIL off, as the CLI sees one: sys._is_gil_enabled()
# is what a 3.13t/3.14t answers.  No free-threaded CPython can be had on the machines that
# run this suite (Debian packages none; its source and python.org are out of reach), so
# the one property is set and everything else is real: the CLI, the program, the exit.
FREE_THREADED = """\
import sys

sys._is_gil_enabled = lambda: False
from muckrack_hmr.cli import main

sys.exit(main(sys.argv[1:]))
"""


def test_a_free_threaded_build_runs_the_program_without_hot_reload(
    proj: Path, core_env: dict[str, str]
) -> None:
    write(proj / "launch.py", FREE_THREADED)
    write(
        proj / "main.py",
        "import builtins, sys\n"
        "print('hmr' if hasattr(builtins, '__hmr__') else 'plain', sys.argv[1:])\n"
        "sys.exit(3)\n",
    )
    result = run_python(["launch.py", "main.py", "--flag"], cwd=proj, env=core_env)
    assert result.returncode == 3  # the program's own exit
    assert result.stdout.splitlines() == ["plain ['--flag']"]
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hmr: hot reload is not supported on a free-threaded build")
    assert lines[0].endswith("; running main.py without it")
    assert "PYTHON_GIL=1" in lines[0]


def test_install_refuses_a_free_threaded_build_with_the_gil_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import muckrack_hmr

    muckrack_hmr.uninstall()
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False, raising=False)
    with pytest.raises(RuntimeError, match="free-threaded build"):
        muckrack_hmr.install()
    assert muckrack_hmr.active() is None
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: True, raising=False)
    assert muckrack_hmr.tracking.unsupported() is None  # a free-threaded build, GIL on


_IDLE_WORK_PROBE = """\
import json
import threading
import time

from muckrack_hmr.threads import all_threads

import core
{imports}

hmr = __hmr__
sources = hmr.reloader.sources
deadline = time.monotonic() + 20
while (sources.mentions.pending or hmr.tracker.graph.pending) and time.monotonic() < deadline:
    time.sleep(0.01)  # resting, as a program between requests: the idle work runs now
indexed = not sources.mentions.pending and not hmr.tracker.graph.pending
# (Every thread: the program's threading.enumerate() leaves ours out.)
while any(t.name == "muckrack-hmr-idle-work" for t in all_threads()):
    if time.monotonic() > deadline:
        break
    time.sleep(0.01)
ended = not any(t.name == "muckrack-hmr-idle-work" for t in all_threads())
held = core.f
with open(core.__file__, "w") as handle:
    handle.write("def f():\\n    return 2\\n\\nLABEL = 'a'\\n")
reloaded, _ = hmr.reload_module("core")
print(json.dumps({{"indexed": indexed, "ended": ended, "reloaded": reloaded, "f": held()}}))
"""


def test_without_watching_the_idle_work_still_runs_so_a_first_reload_costs_what_a_later_one_does(
    proj: Path, core_env: dict[str, str]
) -> None:
    """``--no-watch``: no file events, but the watcher's idle-time bookkeeping (the
    import graph, the index of what each module spells, the analysis) is done while
    the program rests, on a thread that ends when it is done; a body edit of a module
    every other one imports then runs it alone."""
    names = [f"user{index}" for index in range(30)]
    write(proj / "core.py", "def f():\n    return 1\n\nLABEL = 'a'\n")
    for name in names:
        write(proj / f"{name}.py", "import core\n\nVALUE = core.LABEL\n")
    imports = "\n".join(f"import {name}" for name in names)
    write(proj / "main.py", _IDLE_WORK_PROBE.format(imports=imports))
    facts = facts_of(run_hmr(["--no-watch", "main.py"], cwd=proj, env=core_env))
    assert facts == {"indexed": True, "ended": True, "reloaded": ["core"], "f": 2}


_COLLECTOR_PROBE = """\
import gc

counts, frozen = gc.get_count(), gc.get_freeze_count()

import json
import time

import mod

{then}
hmr = __hmr__
sources = hmr.reloader.sources
deadline = time.monotonic() + 20
# (3.11 on the pure core thaws once all the idle work is done, the others once the index
# is whole: see watch.idle.)
while (
    sources.mentions.pending or hmr.tracker.graph.pending or {thawing} and gc.get_freeze_count()
) and time.monotonic() < deadline:
    time.sleep(0.01)  # resting: the start-up is over, the idle work runs now
print(json.dumps({{"counts": counts, "threshold": gc.get_threshold(), "frozen": frozen,
                  "at_once": at_once, "after": gc.get_freeze_count()}}))
"""

# What the program does first: nothing; a reload (before its start-up is over); or a
# freeze of its own (a server about to fork), which keeps everything frozen.
_COLLECTOR_THEN = {
    "rests": "at_once = gc.get_freeze_count()",
    "reloads": "at_once = [__hmr__.reload_module('mod', force=True)[0], gc.get_freeze_count()]",
    "freezes": "gc.freeze()\nat_once = gc.get_freeze_count()",
    # The heap as under python: a query sees what was there before the program.
    "looks": (
        "import sys\nat_once = [any(each is sys.modules for each in gc.get_objects()), "
        "gc.get_freeze_count()]"
    ),
}


@pytest.mark.parametrize("then", sorted(_COLLECTOR_THEN))
@pytest.mark.parametrize("watch", [[], ["--no-watch"]], ids=["watcher", "no-watch"])
def test_the_program_starts_with_the_collector_counts_at_zero_and_the_cli_s_objects_frozen(
    proj: Path, core_env: dict[str, str], watch: list[str], then: str
) -> None:
    """What the CLI made before the program (some 12,000 objects) left the garbage
    collector mid-cycle, (500, 4, 2), so the program's full collections came at other
    points of its start-up than under python: at 5,000 modules one more of them (140
    ms), each walking the CLI's objects too.  The program starts with the counts at
    zero, as a fresh interpreter's, and what was alive before it is frozen (out of
    its collections) until its start-up is over and the idle work has the index a
    first edit needs, or a reload begins, whichever comes first: a reload finds a
    registry by gc.get_referrers.  A program that freezes
    objects of its own keeps them frozen (any number of them), and one that looks at the
    heap meanwhile (gc.get_objects) sees it all, as under python."""
    write(proj / "mod.py", "X = 1\n")
    probe = _COLLECTOR_PROBE.format(then=_COLLECTOR_THEN[then], thawing=then != "freezes")
    write(proj / "main.py", probe)
    facts = facts_of(run_hmr([*watch, "main.py"], cwd=proj, env=core_env))
    counts, threshold = facts["counts"], facts["threshold"]
    assert isinstance(counts, list)
    assert isinstance(threshold, list)
    assert counts[1:] == [0, 0]
    assert counts[0] < threshold[0] // 4
    frozen, at_once, after = facts["frozen"], facts["at_once"], facts["after"]
    assert isinstance(frozen, int)
    assert isinstance(after, int)
    assert frozen > 5_000  # the interpreter's objects, and the CLI's
    if then == "rests":
        assert isinstance(at_once, int)
        assert at_once > 5_000  # still frozen while the program starts
        assert after == 0
    elif then == "reloads":
        assert at_once == [["mod"], 0]
        assert after == 0
    elif then == "looks":
        assert at_once == [True, 0]
        assert after == 0
    else:
        assert isinstance(at_once, int)
        assert at_once > frozen
        assert after > frozen  # the program's and ours, frozen still


# -- the program's modules named like standard ones --------------------------------------

SHADOWS = ("token", "signal", "logging", "inspect", "string", "copy")
SHADOWING = """\
import importlib

print(" ".join(getattr(importlib.import_module(name), "MINE", "stdlib") for name in {names!r}))
"""


@pytest.mark.parametrize("how", ["script", "-m", "script elsewhere", "muckrack_hmr"])
def test_the_programs_token_py_or_logging_py_is_what_it_imports_as_under_python(
    proj: Path, core_env: dict[str, str], how: str
) -> None:
    """A module beside the script (or in the working folder, for ``-m``) named like a
    standard one the CLI imports (``token.py``, ``signal.py``, ``logging.py``) is what the
    program imports, as under python; and the CLI's own imports, started in that folder,
    still get the standard ones (they crashed: ``tokenize`` took the program's token)."""
    for name in SHADOWS:
        write(proj / f"{name}.py", "MINE = 'local'\n")
    write(proj / "main.py", SHADOWING.format(names=SHADOWS))
    args, cwd = {
        "script": (["main.py"], proj),
        "-m": (["-m", "main"], proj),
        "script elsewhere": ([str(proj / "main.py")], proj.parent),
        "muckrack_hmr": (["main.py"], proj),  # python -m muckrack_hmr: the same command
    }[how]
    expected = run_python(args, cwd=cwd, env=core_env)
    assert expected.stdout == " ".join(["local"] * len(SHADOWS)) + "\n", expected.stderr
    if how == "muckrack_hmr":
        got = run_python(["-m", "muckrack_hmr", *args], cwd=cwd, env=core_env)
    else:
        got = run_hmr(args, cwd=cwd, env=core_env)
    assert (got.stdout, got.returncode) == (expected.stdout, 0), got.stderr


def test_a_logging_config_of_the_program_leaves_the_hmr_lines_said(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    """The program's ``logging.config.dictConfig({...})`` disables the loggers it does not
    name (``disable_existing_loggers``, true by default): every later ``hmr:`` line went,
    a failed save's too, though the program's own logging went on."""
    write(proj / "other.py", "VALUE = 1\n")
    write(
        proj / "main.py",
        "import logging.config\nimport os\nimport time\n\nimport other\n\n"
        "print('ready', flush=True)\nseen = None\nwhile True:\n"
        "    if os.path.exists('configure'):\n        os.remove('configure')\n"
        "        logging.config.dictConfig({'version': 1})\n"
        "        print('configured', flush=True)\n"
        "    if other.VALUE != seen:\n        seen = other.VALUE\n"
        "        print('value', seen, flush=True)\n    time.sleep(0.02)\n",
    )
    child = spawn(["-v", "main.py"], cwd=proj)
    child.expect("ready")
    child.expect(starts("hmr: watching "), stream="err")
    write(proj / "other.py", "VALUE = 2\n")
    child.expect("value 2")
    child.expect(starts("hmr: reloaded other"), stream="err")
    write(proj / "configure", "")
    child.expect("configured")
    write(proj / "other.py", "VALUE = 3\n")
    child.expect("value 3")
    child.expect(starts("hmr: reloaded other"), stream="err")
    write(proj / "other.py", "VALUE = (\n")
    line = child.expect(starts("hmr: failed to reload other"), stream="err")
    assert "SyntaxError" in line, line


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX only")
def test_ctrl_c_during_a_long_reload_ends_the_program_at_once(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    """Ctrl-C while a save's new top level ran a long call (``time.sleep(30)``): the
    program ended (its ``except KeyboardInterrupt``, its exit code), and the process
    waited 10 s for the reload's thread, then said "still reloading" after the end."""
    write(proj / "slow.py", "VALUE = 1\n")
    write(
        proj / "main.py",
        "import sys\nimport time\n\nimport slow\n\nprint('ready', flush=True)\ntry:\n"
        "    while True:\n        time.sleep(0.02)\nexcept KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n    sys.exit(5)\n",
    )
    child = spawn(["-v", "main.py"], cwd=proj)
    child.expect("ready")
    child.expect(starts("hmr: watching "), stream="err")
    running = proj / "running"
    write(
        proj / "slow.py",
        f"import pathlib, time\npathlib.Path({str(running)!r}).touch(); time.sleep(30)\n"
        "VALUE = 2\n",
    )
    deadline = time.monotonic() + DEADLINE
    while not running.exists():
        assert time.monotonic() < deadline, child.stderr_text()
        time.sleep(0.01)
    child.proc.send_signal(signal.SIGINT)
    child.expect("interrupted")
    sent = time.monotonic()
    assert child.wait() == 5
    assert time.monotonic() - sent < 3.0
    assert "Traceback" not in child.stderr_text(), child.stderr_text()
    assert "still reloading" not in child.stderr_text(), child.stderr_text()
