"""End-to-end tests of the watcher: real saves to real files under ``python -m muckrack.hmr``.

Every test starts the CLI in a child interpreter (both cores, through
``core_env``), waits with a deadline until the watcher tracks the program's
modules (``-v`` prints ``hmr: tracking ...``), saves files the way editors and
tools do, and waits for the program's output and the log lines.  To show that
something did *not* happen, a test makes a second, later save and asserts
that the first reload line that follows is that save's.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import leases_tell
from .subprocesses import (
    A_NEW,
    A_OLD,
    DEADLINE,
    Child,
    contains,
    run_hmr,
    save_atomically,
    starts,
    write,
)

B_OLD = "Y = 1\n"
B_NEW = "Y = 2\n"

# Reads the module attributes on every tick: a module applied half-written
# would show MISSING.
MAIN = """\
import sys
import time

import a
import b


def out(text):
    sys.stdout.write(text + "\\n")
    sys.stdout.flush()


tick = 0
while True:
    f = getattr(a, "f", None)
    value = f() if f is not None else "MISSING"
    out(f"tick {tick} f={value} X={getattr(a, 'X', 'MISSING')} Y={getattr(b, 'Y', 'MISSING')}")
    tick += 1
    time.sleep(0.02)  # pacing only: the tests wait for lines, not for time
"""


def tracking(*names: str) -> Callable[[str], bool]:
    """The -v line that says the watcher has taken the baseline of these modules (the
    last of such lines, when a loaded machine has the watcher take them in turns)."""
    waiting = set(names)

    def predicate(line: str) -> bool:
        if not line.startswith("hmr: tracking "):
            return False
        waiting.difference_update(line.removeprefix("hmr: tracking ").split(", "))
        return not waiting

    predicate.__name__ = f"hmr: tracking {', '.join(names)}"
    return predicate


def project(proj: Path) -> Path:
    write(proj / "a.py", A_OLD)
    write(proj / "b.py", B_OLD)
    write(proj / "main.py", MAIN)
    return Path(os.path.realpath(proj))


def start(
    spawn: Callable[..., Child],
    proj: Path,
    *options: str,
    env: dict[str, str] | None = None,
    modules: tuple[str, ...] = ("a", "b"),
) -> Child:
    """The program under the CLI, once the watcher tracks ``modules``; the old code first."""
    child = spawn(["-v", *options, "main.py"], cwd=proj, env=env)
    child.expect("f=old X=1 Y=1")
    child.expect(tracking(*modules), stream="err")
    return child


def reloaded(name: str) -> Callable[[str], bool]:
    return starts(f"hmr: reloaded {name} ")


def assert_never_half_applied(child: Child) -> None:
    assert not any("MISSING" in line for line in child.seen["out"]), child.seen["out"][-5:]
    assert not any("failed to reload" in line for line in child.seen["err"]), child.stderr_text()


# -- every save style ----------------------------------------------------------------


def _in_place(path: Path) -> None:
    path.write_text(A_NEW)


def _temp_then_rename(path: Path) -> None:  # VS Code, and editors' "atomic save"
    save_atomically(path, A_NEW)


def _jetbrains_safe_write(path: Path) -> None:
    tmp = path.with_name(path.name + "___jb_tmp___")
    old = path.with_name(path.name + "___jb_old___")
    tmp.write_text(A_NEW)
    os.replace(path, old)
    os.replace(tmp, path)
    old.unlink()


def _backup_rename(path: Path) -> None:  # vim with backupcopy=no: a.py -> a.py~, new a.py
    os.replace(path, path.with_name(path.name + "~"))
    path.write_text(A_NEW)


def _delete_and_recreate(path: Path) -> None:
    path.unlink()
    path.write_text(A_NEW)


SAVES = {
    "in-place": _in_place,
    "temp-then-rename": _temp_then_rename,
    "jetbrains-safe-write": _jetbrains_safe_write,
    "backup-rename": _backup_rename,
    "delete-and-recreate": _delete_and_recreate,
}


@pytest.mark.parametrize("style", SAVES)
def test_every_save_style_is_applied_once(
    proj: Path, spawn: Callable[..., Child], style: str
) -> None:
    root = project(proj)
    child = start(spawn, root)

    SAVES[style](root / "a.py")

    child.expect("f=new X=2 Y=1")
    line = child.expect(starts("hmr: reloaded"), stream="err")
    assert line.startswith("hmr: reloaded a (1 patched) in "), line
    # One transaction: the next reload line is the next save's.
    write(root / "b.py", B_NEW)
    child.expect("f=new X=2 Y=2")
    assert child.expect(starts("hmr: reloaded"), stream="err").startswith("hmr: reloaded b ")
    assert_never_half_applied(child)


@pytest.mark.parametrize("backend", ["auto", "watchdog", "polling"])
def test_a_truncated_then_written_file_is_never_applied_half_written(
    proj: Path, spawn: Callable[..., Child], backend: str
) -> None:
    root = project(proj)
    # auto: inotify on Linux, which reports the writer's close, like watchdog's.
    options = {"auto": [], "watchdog": ["--backend", "watchdog"], "polling": ["--poll", "0.02"]}
    options = options[backend]
    child = start(spawn, root, *options)
    path = root / "a.py"

    with path.open("w", encoding="utf-8") as handle:  # truncated, and held open
        # The watcher has seen the empty file, and waits for the rest.
        child.expect(starts(f"hmr: waiting for {path}: "), stream="err")
        handle.write(A_NEW[:12])  # "X = 2\n\n\ndef f" does not parse: still waiting
        handle.flush()
        handle.write(A_NEW[12:])

    child.expect("f=new X=2 Y=1")
    line = child.expect(starts("hmr: reloaded"), stream="err")
    assert line.startswith("hmr: reloaded a (1 patched)"), line
    assert_never_half_applied(child)


@pytest.mark.parametrize("backend", ["auto", "watchdog", "polling"])
def test_a_slow_writer_s_first_part_that_parses_is_never_applied(
    proj: Path, spawn: Callable[..., Child], backend: str
) -> None:
    """One open, a first part that parses (a module with no ``f``), a pause, the rest:
    with polling, the first part was applied, and the program saw ``f`` gone.  The
    file is held open for writing, which the system tells: every backend waits."""
    root = project(proj)
    options = {"auto": [], "watchdog": ["--backend", "watchdog"], "polling": ["--poll", "0.02"]}
    child = start(spawn, root, *options[backend])
    if not leases_tell(root):
        pytest.skip("this system cannot tell a file open for writing")
    path = root / "a.py"

    with path.open("w", encoding="utf-8") as handle:
        handle.write("X = 2\n")
        handle.flush()
        child.expect(starts(f"hmr: waiting for {path}: "), stream="err")
        handle.write(A_NEW[len("X = 2\n") :])

    child.expect("f=new X=2 Y=1")
    line = child.expect(starts("hmr: reloaded"), stream="err")
    assert line.startswith("hmr: reloaded a (1 patched)"), line
    assert_never_half_applied(child)


def test_a_touch_or_a_save_of_the_running_code_reloads_nothing(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    root = project(proj)
    child = start(spawn, root)

    os.utime(root / "a.py")
    write(root / "a.py", A_OLD)  # saved again, unchanged
    save_atomically(root / "a.py", A_OLD)
    write(root / "b.py", B_NEW)  # a later, real save

    child.expect("f=old X=1 Y=2")
    line = child.expect(starts("hmr: reloaded"), stream="err")
    assert line.startswith("hmr: reloaded b in "), line

    # A comment added: nothing runs, no "reloaded" line; -v says why (it said nothing).
    write(root / "a.py", A_OLD + "# a comment\n")
    child.expect("hmr: saved a: nothing to run (its statements are as they ran)", stream="err")
    assert sum(line.startswith("hmr: reloaded") for line in child.seen["err"]) == 1


def test_a_burst_of_200_files_is_one_transaction_in_dependency_order(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    count = 200
    burst = proj / "burst"
    write(burst / "m000.py", "V = 0\n")
    for index in range(1, count):
        write(
            burst / f"m{index:03d}.py", f"from .m{index - 1:03d} import V as PREV\nV = PREV + 1\n"
        )
    write(burst / "__init__.py", "".join(f"from . import m{i:03d}\n" for i in range(count)))
    write(
        proj / "main.py",
        """\
        import sys
        import time

        import burst

        while True:
            sys.stdout.write(f"V={burst.m199.V}\\n")
            sys.stdout.flush()
            time.sleep(0.02)
        """,
    )
    # A quiet time long enough for this test's writes on a busy machine; the
    # adaptive default is tested in test_watcher_logic.py.
    child = spawn(["-v", "--debounce", "300", "main.py"], cwd=proj)
    child.expect("V=199")
    child.expect(tracking("burst.m199"), stream="err")

    # Like a checkout: every file written aside, then renamed into place.
    for index in reversed(range(count)):
        new = (
            "V = 1000\n"
            if index == 0
            else f"from .m{index - 1:03d} import V as PREV\nV = PREV + 2\n"
        )
        (burst / f"m{index:03d}.py.tmp").write_text(new)
    for index in reversed(range(count)):
        os.replace(burst / f"m{index:03d}.py.tmp", burst / f"m{index:03d}.py")

    child.expect(f"V={1000 + 2 * (count - 1)}")
    line = child.expect(starts("hmr: reloaded"), stream="err")
    # Every module was saved: three are named, and none is called a dependent.
    named = "hmr: reloaded burst.m000, burst.m001, burst.m002 and 197 more in "
    assert line.startswith(named), line
    # Nothing of the burst is left for a second transaction.
    write(burst / "m199.py", "from .m198 import V as PREV\nV = PREV + 5\n")
    child.expect(f"V={1000 + 2 * (count - 2) + 5}")
    line = child.expect(starts("hmr: reloaded"), stream="err")
    assert line.startswith("hmr: reloaded burst.m199 in "), line


# -- backends ----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["--poll", "environment"])
def test_the_polling_backend(
    proj: Path, spawn: Callable[..., Child], core_env: dict[str, str], how: str
) -> None:
    root = project(proj)
    env = dict(core_env)
    if how == "--poll":
        child = start(spawn, root, "--poll", "0.05")
        expected = "hmr: file events from polling every 0.05 s (--poll)"
    else:
        env["MUCKRACK_HMR_FORCE_POLLING"] = "1"
        child = start(spawn, root, env=env)
        expected = "hmr: file events from polling every 0.1 s (MUCKRACK_HMR_FORCE_POLLING is set)"
    assert expected in child.seen["err"]

    write(root / "a.py", A_NEW)

    child.expect("f=new X=2 Y=1")
    child.expect(reloaded("a"), stream="err")


def test_the_watchfiles_backend(proj: Path, spawn: Callable[..., Child]) -> None:
    pytest.importorskip("watchfiles")  # in the test extra: it runs in CI
    root = project(proj)
    child = start(spawn, root, "--backend", "watchfiles")
    assert any(line.startswith("hmr: file events from watchfiles") for line in child.seen["err"])

    save_atomically(root / "a.py", A_NEW)

    child.expect("f=new X=2 Y=1")
    child.expect(reloaded("a"), stream="err")


@pytest.mark.parametrize("how", ["option", "pyproject", "api"])
def test_a_backend_asked_for_that_cannot_run_is_one_error_line_not_a_silent_watcher(
    tmp_path: Path, proj: Path, core_env: dict[str, str], how: str
) -> None:
    """Before, the program ran with the watcher's traceback in its log, and no save
    was ever applied."""
    root = project(proj)
    shadow = tmp_path / "shadow"
    write(shadow / "watchfiles" / "__init__.py", "raise ImportError('no native part')\n")
    env = dict(core_env, PYTHONPATH=str(shadow))
    wanted = "the watchfiles backend needs the watchfiles package (pip install watchfiles)"
    if how == "api":
        write(
            root / "probe.py",
            "import builtins\n"
            "try:\n"
            "    builtins.__hmr__.watch(backend='watchfiles')\n"
            "except Exception as exc:\n"
            "    print(type(exc).__name__, exc)\n",
        )
        got = run_hmr(["--no-watch", "probe.py"], cwd=root, env=env)
        assert got.returncode == 0, got.stderr
        assert got.stdout == f"BackendUnavailable {wanted}\n"
        return
    if how == "pyproject":
        write(root / "pyproject.toml", '[tool.muckrack-hmr]\nbackend = "watchfiles"\n')
        args = ["main.py"]
    else:
        args = ["--backend", "watchfiles", "main.py"]

    got = run_hmr(args, cwd=root, env=env)

    assert got.returncode == 2, got.stderr
    assert got.stdout == ""  # the program did not start
    assert got.stderr == f"python -m muckrack.hmr: error: {wanted}\n"


# -- what is watched -----------------------------------------------------------------


def test_watch_adds_a_folder_outside_the_project(
    tmp_path: Path, proj: Path, spawn: Callable[..., Child], core_env: dict[str, str]
) -> None:
    root = project(proj)
    lib = tmp_path / "lib"
    write(lib / "helper.py", "def greet():\n    return 'hello'\n")
    write(
        root / "main.py",
        MAIN.replace("import b\n", "import b\nimport helper\n").replace(
            "Y={getattr(b, 'Y', 'MISSING')}", "Y={getattr(b, 'Y', 'MISSING')} {helper.greet()}"
        ),
    )
    env = dict(core_env, PYTHONPATH=str(lib))

    child = start(spawn, root, "--watch", str(lib), env=env, modules=("a", "b", "helper"))
    child.expect("Y=1 hello")
    write(lib / "helper.py", "def greet():\n    return 'bonjour'\n")

    child.expect("Y=1 bonjour")
    child.expect(reloaded("helper"), stream="err")


def test_exclude_and_include_globs(proj: Path, spawn: Callable[..., Child]) -> None:
    root = project(proj)
    write(root / "gen_table.py", "ROWS = 1\n")
    write(root / "table.dat", "10")
    write(
        root / "reader.py",
        """\
        from pathlib import Path

        TABLE = int(Path(__file__).with_name("table.dat").read_text())
        """,
    )
    write(
        root / "main.py",
        MAIN.replace("import b\n", "import b\nimport gen_table\nimport reader\n").replace(
            "Y={getattr(b, 'Y', 'MISSING')}",
            "Y={getattr(b, 'Y', 'MISSING')} rows={gen_table.ROWS} table={reader.TABLE}",
        ),
    )
    child = start(
        spawn, root, "--exclude", "gen_*.py", "--include", "*.dat", modules=("a", "reader")
    )
    child.expect("rows=1 table=10")
    assert not any("gen_table" in line for line in child.seen["err"] if "tracking" in line)

    write(root / "gen_table.py", "ROWS = 2\n")  # excluded: never reloaded
    write(root / "table.dat", "20")  # read by reader at import: reloads it

    child.expect("rows=1 table=20")
    line = child.expect(starts("hmr: reloaded"), stream="err")
    assert line.startswith("hmr: reloaded reader in "), line


def test_a_data_file_read_at_import_reloads_its_reader_with_watch_data(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    root = project(proj)
    write(
        root / "util.py",
        """\
        import json
        import os


        def load(name):
            with open(os.path.join(os.path.dirname(__file__), name)) as handle:
                return json.load(handle)
        """,
    )
    write(root / "config.json", '{"greeting": "hi"}')
    write(root / "settings.py", "import util\n\nGREETING = util.load('config.json')['greeting']\n")
    write(
        root / "main.py",
        MAIN.replace("import b\n", "import b\nimport settings\n").replace(
            "Y={getattr(b, 'Y', 'MISSING')}", "Y={getattr(b, 'Y', 'MISSING')} {settings.GREETING}"
        ),
    )
    child = start(spawn, root, "--watch-data", modules=("a", "settings"))
    child.expect("Y=1 hi")
    child.expect(contains(f"hmr: settings read {root / 'config.json'} at import"), stream="err")

    write(root / "config.json", '{"greeting": "hello"}')

    child.expect("Y=1 hello")
    line = child.expect(starts("hmr: reloaded"), stream="err")
    assert line.startswith("hmr: reloaded settings in "), line


def test_a_data_file_read_while_the_m_target_is_found_is_watched(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    """``-m app``: runpy runs app/__init__.py to find app.__main__, before the watcher
    (and its look at opened files) started: a data file read there was never watched."""
    write(proj / "app" / "__init__.py", "from . import conf\n")
    write(proj / "app" / "conf.py", "import json\n\nCONF = json.load(open('config.json'))\n")
    write(
        proj / "app" / "__main__.py",
        "import sys\n\nfrom app import conf\n\nprint('ready', flush=True)\n"
        "for line in sys.stdin:\n    print('conf', conf.CONF['n'], flush=True)\n",
    )
    write(proj / "config.json", '{"n": 1}')
    child = spawn(["-v", "--watch-data", "-m", "app"], cwd=proj, stdin=True)
    child.expect("ready")
    child.expect(contains(f"hmr: app.conf read {proj / 'config.json'} at import"), stream="err")
    write(proj / "config.json", '{"n": 2}')
    child.expect(starts("hmr: reloaded app.conf"), stream="err")
    child.send("")
    child.expect("conf 2")


def test_settings_come_from_pyproject_and_the_command_line_wins(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    root = project(proj)
    write(
        root / "pyproject.toml",
        """\
        [project]
        name = "app"

        [tool.muckrack-hmr]
        exclude = ["gen_*.py"]
        cascade = "never"
        watch-data = true
        """,
    )
    write(root / "gen_table.py", "ROWS = 1\n")
    write(root / "config.json", '{"n": 1}')
    write(root / "settings.py", "import json\n\nN = json.load(open('config.json'))['n']\n")
    write(
        root / "main.py",
        "print('cascade', __hmr__.cascade, flush=True)\n"
        + MAIN.replace("import b\n", "import b\nimport gen_table\nimport settings\n").replace(
            "Y={getattr(b, 'Y', 'MISSING')}",
            "Y={getattr(b, 'Y', 'MISSING')} rows={gen_table.ROWS} n={settings.N}",
        ),
    )
    child = start(spawn, root, "--cascade", "always", modules=("a", "settings"))
    assert "cascade always" in child.seen["out"]  # the command line wins over the file
    assert f"hmr: settings from {root / 'pyproject.toml'}" in child.seen["err"]

    write(root / "gen_table.py", "ROWS = 2\n")  # excluded by the file
    write(root / "config.json", '{"n": 2}')  # watch-data from the file

    child.expect("rows=1 n=2")
    line = child.expect(starts("hmr: reloaded"), stream="err")
    assert line.startswith("hmr: reloaded settings in "), line


@pytest.mark.parametrize(
    ("table", "line", "message"),
    [
        ("debounse = 5", 4, "unknown key 'debounse'"),
        ("watch-data = 'yes'", 4, "watch-data must be true or false"),
    ],
)
def test_a_bad_pyproject_setting_is_one_line_naming_the_file_and_line(
    proj: Path, core_env: dict[str, str], table: str, line: int, message: str
) -> None:
    write(proj / "main.py", "print('ran')\n")
    write(proj / "pyproject.toml", f"[project]\nname = 'app'\n[tool.muckrack-hmr]\n{table}\n")

    result = run_hmr(["main.py"], cwd=proj, env=core_env)

    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"python -m muckrack.hmr: error: {proj / 'pyproject.toml'}:{line}: ")
    assert message in lines[0]


# -- deletion, symlinks ----------------------------------------------------------------


def test_a_deleted_module_keeps_running_and_its_recreation_applies(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    root = project(proj)
    child = start(spawn, root)

    (root / "a.py").unlink()

    child.expect(f"hmr: {root / 'a.py'} was deleted; a keeps running its old code", stream="err")
    assert "f=old X=1" in child.expect(starts("tick "))
    write(root / "a.py", A_NEW)

    child.expect("f=new X=2")
    child.expect(reloaded("a"), stream="err")


BUSY_IMPORTING = """\
import importlib
import sys
import time

import a

last, plugin, next_import = None, 0, time.monotonic()
while True:  # busy: no sleep, and a plugin imported every 0.2 s, as it runs
    value = a.f()
    if value != last:
        sys.stdout.write(f"f={value}\\n")
        sys.stdout.flush()
        last = value
    if time.monotonic() >= next_import and plugin < 100:
        importlib.import_module(f"plugins.p{plugin}")
        plugin, next_import = plugin + 1, next_import + 0.2
"""


def test_a_busy_program_that_imports_now_and_then_gets_its_saves(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    """A program that computes without rest and imports a module every 0.2 s (plugins,
    imports in functions) is past its start-up: its saves apply.  They waited for the
    imports to pause, up to two minutes, with no word."""
    write(proj / "a.py", A_OLD)
    for number in range(100):
        write(proj / "plugins" / f"p{number}.py", f"X = {number}\n")
    write(proj / "plugins" / "__init__.py", "")
    write(proj / "main.py", BUSY_IMPORTING)
    child = spawn(["-v", "main.py"], cwd=proj)
    child.expect("f=old")
    child.expect(tracking("a"), stream="err")
    write(Path(os.path.realpath(proj)) / "a.py", A_NEW)
    child.expect("f=new")


BUSY_USERS = """\
import sys

import core
{imports}

said = False
last = None
while True:  # computes without a pause, about 1 ms between looks
    total = 0
    for step in range(20000):
        total += step
    if not said and __hmr__.reloader.sources.unindexed() == 0:
        said = True
        sys.stdout.write("indexed\\n")
        sys.stdout.flush()
    value = user0.uses("x")
    if value != last:
        sys.stdout.write(f"helper={{value}}\\n")
        sys.stdout.flush()
        last = value
"""


def test_a_program_that_never_rests_gets_what_a_first_edit_needs_done(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    """A program that computes without a pause from its start-up on (a server under load)
    never rests: the idle work waited for a rest that never came, and the first edit of
    a function every module imports took the index of what import-time code calls in
    inside the reload, sharing the interpreter with the program (1,000 modules:
    0.5-1 s).  What a first edit needs is done in short slices meanwhile: the index is
    whole while the program computes, and the edit runs the edited module alone."""
    write(proj / "core.py", 'def helper(text):\n    return text + "-old"\n')
    users = [f"user{number}" for number in range(30)]
    for name in users:
        write(
            proj / f"{name}.py",
            "from core import helper\n\n\ndef uses(text):\n    return helper(text)\n",
        )
    write(
        proj / "main.py",
        BUSY_USERS.format(imports="\n".join(f"import {name}" for name in users)),
    )
    child = spawn(["main.py"], cwd=proj)
    child.expect("helper=x-old")
    child.expect("indexed")
    write(Path(os.path.realpath(proj)) / "core.py", 'def helper(text):\n    return text + "-new"\n')
    child.expect("helper=x-new")
    line = child.expect(reloaded("core"), stream="err")
    assert line.startswith("hmr: reloaded core (1 patched) in "), line


LIVES_ON_IN_A_THREAD = """\
import threading
import time

import helper


def loop():
    deadline = time.monotonic() + 60
    last = None
    while time.monotonic() < deadline:
        tag = helper.tag()
        if tag != last:
            print("tag", tag, flush=True)
            last = tag
        if tag == "v2":
            return
        time.sleep(0.01)


threading.Thread(target=loop).start()
"""


def test_a_script_that_ends_while_its_thread_goes_on_is_reloaded(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    """``threading.Thread(target=loop).start()`` as the script's last line (a bot, a
    worker): its main thread ends at once and the interpreter waits for the thread, and
    from 3.12 starts no thread meanwhile.  The watcher started its file events once it
    saw the start-up over, later: "can't create new thread at interpreter shutdown",
    and no save ever applied.  It starts them as the script ends now."""
    write(proj / "helper.py", 'def tag():\n    return "v1"\n')
    write(proj / "main.py", LIVES_ON_IN_A_THREAD)
    child = spawn(["main.py"], cwd=proj)
    child.expect("tag v1")
    write(Path(os.path.realpath(proj)) / "helper.py", 'def tag():\n    return "v2"\n')
    child.expect("tag v2")
    assert child.proc.wait(timeout=DEADLINE) == 0
    assert "could not start watching" not in child.stderr_text()


GONE_AT_ONCE = """\
import os
import shutil
import sys
import time

os.makedirs("gen", exist_ok=True)
with open("gen/__init__.py", "w") as handle:
    handle.write("X = 1\\n")
import gen  # noqa: E402

shutil.rmtree("gen")  # gone before the watcher adds its watch
import a  # noqa: E402

while True:
    sys.stdout.write(f"f={a.f()} X={gen.X}\\n")
    sys.stdout.flush()
    time.sleep(0.02)  # pacing only
"""


def test_a_folder_deleted_right_after_its_import_leaves_file_events_on(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    """A folder deleted before its watch was added (a branch switched back at once) is no
    reason to poll: the other folders keep their events, and the folder made again is
    watched anew."""
    write(proj / "a.py", A_OLD)
    write(proj / "main.py", GONE_AT_ONCE)
    root = Path(os.path.realpath(proj))
    child = spawn(["-v", "main.py"], cwd=proj)
    child.expect("f=old X=1")
    child.expect(tracking("a", "gen"), stream="err")
    write(root / "a.py", A_NEW)
    child.expect("f=new X=1")
    write(root / "gen" / "__init__.py", "X = 2\n")
    child.expect("f=new X=2")
    assert not any("polling" in line for line in child.seen["err"]), child.stderr_text()


def test_a_module_moved_into_a_package_of_its_name_says_a_restart_loads_it(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    root = project(proj)
    child = start(spawn, root)
    (root / "a").mkdir()
    os.replace(root / "a.py", root / "a" / "__init__.py")
    line = child.expect(contains(f"{root / 'a.py'} became the package "), stream="err")
    assert line == (
        f"hmr: restart to apply: {root / 'a.py'} became the package {root / 'a' / '__init__.py'}"
        " (module made a package); a keeps running the code of a.py until then"
    ), line
    assert "f=old X=1" in child.expect(starts("tick "))


@pytest.mark.parametrize("helper", ["new module", "new name", "new package"])
def test_an_edit_saved_before_the_module_it_imports_applies_once_that_is_saved(
    proj: Path, spawn: Callable[..., Child], helper: str
) -> None:
    """The order of many edits (and of an editor's "extract to module"): the module
    that uses a new helper is saved first and fails; the helper's file follows.
    The failed edit applies then, with no save of its own."""
    root = project(proj)
    child = start(spawn, root)
    source = "helpers" if helper in ("new module", "new package") else "b"
    write(root / "a.py", f"from {source} import g\nX = 2\n\n\ndef f():\n    return g()\n")
    child.expect(contains("hmr: failed to reload a"), stream="err")
    assert "f=old X=1" in child.expect(starts("tick "))

    if helper == "new module":
        write(root / "helpers.py", "def g():\n    return 'helped'\n")
    elif helper == "new package":  # a folder made, then its __init__.py: unwatched till now
        (root / "helpers").mkdir()
        write(root / "helpers" / "__init__.py", "def g():\n    return 'helped'\n")
    else:
        write(root / "b.py", B_OLD + "\n\ndef g():\n    return 'helped'\n")

    child.expect("f=helped X=2")
    child.expect(contains("hmr: a recovered"), stream="err")


def test_a_module_file_an_optional_import_missed_is_taken_in_as_it_is_made(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    """``try: from b_local import *`` / ``except ImportError: pass``: the file made while
    the program runs, the statement runs again (as a fresh start runs it), with no save
    of ``b.py``.  Before, the new file was no module's: nothing ran, ``Y`` stayed 1."""
    root = project(proj)
    optional = "try:\n    from b_local import *\nexcept ImportError:\n    pass\n"
    write(root / "b.py", f"Y = 1\n\n{optional}")
    child = start(spawn, root)
    write(root / "a.py", A_NEW)  # (an ordinary save first: the engine runs)
    child.expect("f=new X=2 Y=1")
    write(root / "b_local.py", "Y = 5\n")
    child.expect("f=new X=2 Y=5")
    child.expect(reloaded("b"), stream="err")


FRESH = """\
import subprocess
import sys

import a

for line in sys.stdin:
    # A process that imports ``a`` afresh (a pool's new worker, a subprocess).
    got = subprocess.run(
        [sys.executable, "-c", "import a; print(a.X)"], capture_output=True, text=True
    )
    print("fresh", got.stdout.strip(), got.stderr.strip(), flush=True)
"""


def test_a_process_started_after_a_save_runs_the_saved_code_not_a_stale_pyc(
    proj: Path, spawn: Callable[..., Child], core_env: dict[str, str]
) -> None:
    """Python trusts bytecode whose recorded source size and mtime (whole seconds)
    match: a save of the same size within that second ran the old code in every
    process started afterwards (a forkserver pool's workers, for good)."""
    import importlib.util
    import py_compile

    root = Path(os.path.realpath(proj))
    path = write(root / "a.py", "X = 'v1'\n")
    py_compile.compile(str(path), cfile=importlib.util.cache_from_source(str(path)))
    stamp = os.stat(path).st_mtime_ns
    write(root / "main.py", FRESH)
    env = dict(core_env)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    child = spawn(["-v", "main.py"], cwd=root, env=env, stdin=True)
    child.expect(tracking("a"), stream="err")
    child.send("go")
    child.expect("fresh v1 ")  # (no error after the value)

    write(root / "a.py", "X = 'v2'\n")  # the same size
    os.utime(path, ns=(stamp, stamp))  # and, as it may be, the same second
    child.expect(reloaded("a"), stream="err")
    child.send("go")

    assert child.expect(starts("fresh ")).rstrip() == "fresh v2"


def test_a_save_of_the_running_script_is_answered_with_a_warning(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    root = project(proj)
    child = start(spawn, root)
    script = root / "main.py"

    os.utime(script)  # a touch: nothing to say
    write(root / "b.py", B_NEW)  # a later, real save
    child.expect(reloaded("b"), stream="err")
    assert not any("running script" in line for line in child.seen["err"]), child.stderr_text()

    write(script, MAIN + "# edited\n")

    warning = (
        f"hmr: restart to apply: {script} was saved (running script); __main__ is never "
        "reloaded: put the code to reload in a module it imports"
    )
    child.expect(warning, stream="err")
    write(script, MAIN + "# edited\n")  # the same content again: said once
    write(root / "a.py", A_NEW)
    child.expect(reloaded("a"), stream="err")
    child.expect("f=new X=2 Y=2")  # the program runs on, as it was started
    assert [line for line in child.seen["err"] if "running script" in line] == [warning]
    # Saved back to the code that runs: no restart is needed (it said so again before).
    write(script, MAIN)
    child.expect(f"hmr: __main__ recovered ({script} holds the code that runs)", stream="err")
    assert [line for line in child.seen["err"] if "running script" in line] == [warning]


def test_a_save_of_the_running_script_read_mid_write_is_warned_about_once(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    """The script's save was read as the events came: a first part (the file truncated,
    or half written) was a new content, and warned about, then the whole one again
    (CI: the warning said three times for two writes of one content)."""
    root = project(proj)
    child = start(spawn, root)
    if not leases_tell(root):
        pytest.skip("this system cannot tell a file open for writing")
    script = root / "main.py"
    warning = (
        f"hmr: restart to apply: {script} was saved (running script); __main__ is never "
        "reloaded: put the code to reload in a module it imports"
    )

    with script.open("w", encoding="utf-8") as handle:
        handle.write("import sys\n")  # a first part that compiles
        handle.flush()
        child.expect(starts(f"hmr: waiting for {script}: "), stream="err")
        handle.write(MAIN[len("import sys\n") :] + "# edited\n")

    child.expect(warning, stream="err")
    write(root / "a.py", A_NEW)
    child.expect(reloaded("a"), stream="err")
    assert [line for line in child.seen["err"] if "running script" in line] == [warning]


_OWN_NAME_SCRIPT = """\
import sys

import {helper}


def fmt(x):
    return "fmt1:" + str(x)


if __name__ == "__main__":
    for line in sys.stdin:
        {worker}  # imported once the watcher runs: the file is the script's first
        print("VAL", worker.run(), fmt(0), flush=True)
"""

_WORKER = "from main import fmt\n\n\ndef run():\n    return fmt(1)\n"


@pytest.mark.parametrize("layout", ["script", "module"])
def test_a_script_imported_by_its_own_name_is_reloaded_as_that_module(
    proj: Path, spawn: Callable[..., Child], layout: str
) -> None:
    """``python main.py`` where a module does ``from main import fmt`` (or ``-m pkg.cli``
    and ``from pkg.cli import fmt``): the file runs twice, as ``__main__`` and as that
    module.  A save reloads the module (it answered "restart to apply" and reloaded
    nothing when the module was imported after the watcher had seen the script), and
    says once that ``__main__`` keeps its code (it said nothing)."""
    root = Path(os.path.realpath(proj))
    if layout == "script":
        script, module, args = root / "main.py", "main", ["main.py"]
        helper, worker = "a", "import worker"
        write(root / "a.py", A_OLD)
        write(root / "worker.py", _WORKER)
    else:
        script, module, args = root / "pkg" / "cli.py", "pkg.cli", ["-m", "pkg.cli"]
        helper, worker = "pkg.a", "from pkg import worker"
        write(root / "pkg" / "__init__.py", "")
        write(root / "pkg" / "a.py", A_OLD)
        write(root / "pkg" / "worker.py", _WORKER.replace("main", "pkg.cli"))
    source = _OWN_NAME_SCRIPT.format(helper=helper, worker=worker)
    write(script, source)
    child = spawn(["-v", *args], cwd=root, stdin=True)
    child.expect(tracking(helper), stream="err")  # the watcher has seen the script
    child.send("go")
    child.expect("VAL fmt1:1 fmt1:0")

    write(script, source.replace('"fmt1:"', '"fmt2:"'))
    child.expect(
        f"hmr: {script} also runs as the script (__main__), which is never reloaded: a save "
        f"reloads the module {module}, and __main__ keeps the code it started with",
        stream="err",
    )
    child.expect(reloaded(module), stream="err")
    child.send("go")
    child.expect("VAL fmt2:1 fmt1:0")

    write(script, source.replace('"fmt1:"', '"fmt3:"'))
    child.expect(reloaded(module), stream="err")
    child.send("go")
    child.expect("VAL fmt3:1 fmt1:0")
    assert sum("also runs as the script" in line for line in child.seen["err"]) == 1
    assert not any("running script" in line for line in child.seen["err"]), child.stderr_text()


def test_symlinks_out_of_the_project_are_not_followed(
    tmp_path: Path, proj: Path, spawn: Callable[..., Child]
) -> None:
    root = project(proj)
    outside = tmp_path / "outside"
    write(outside / "linked.py", "NAME = 'outside'\n")
    write(outside / "evil.py", "X = 666\n\n\ndef f():\n    return 'evil'\n")
    try:
        (root / "linked.py").symlink_to(outside / "linked.py")
    except (OSError, NotImplementedError) as exc:
        pytest.skip(f"cannot make symlinks here: {exc}")
    write(root / "main.py", MAIN.replace("import b\n", "import b\nimport linked\n"))
    child = start(spawn, root)

    write(outside / "linked.py", "NAME = 'changed outside'\n")  # not project code
    (root / "a.py").unlink()
    (root / "a.py").symlink_to(outside / "evil.py")  # a module now leading out
    child.expect(
        contains(f"hmr: {root / 'a.py'} is now a symlink to {outside / 'evil.py'}"), stream="err"
    )
    write(root / "b.py", B_NEW)

    child.expect("f=old X=1 Y=2")
    line = child.expect(starts("hmr: reloaded"), stream="err")
    assert line.startswith("hmr: reloaded b in "), line


# -- output ------------------------------------------------------------------------------


def test_a_failed_reload_is_one_red_line_and_a_traceback_then_a_recovery_line(
    proj: Path, spawn: Callable[..., Child], core_env: dict[str, str]
) -> None:
    root = project(proj)
    env = dict(core_env, FORCE_COLOR="1")
    env.pop("NO_COLOR", None)
    child = start(spawn, root, env=env)

    write(root / "a.py", "X = 2\n\n\ndef f():\n    return 1 / 0\n\n\nf()\n")

    error = child.expect(contains("hmr: failed to reload a"), stream="err")
    assert error.startswith("\033[31mhmr: failed to reload a (")
    assert error.endswith("\033[0m")
    assert re.search(r"a\.py:5\b", error), error
    assert child.expect(starts("Traceback"), stream="err")
    frame = child.expect(contains('a.py", line 5, in f'), stream="err")
    assert str(root / "a.py") in frame
    child.expect("ZeroDivisionError: division by zero", stream="err")
    assert "f=old X=1" in child.expect(starts("tick "))

    write(root / "a.py", A_NEW)

    child.expect("f=new X=2")
    child.expect(contains("hmr: reloaded a (1 patched)"), stream="err")
    child.expect(contains("hmr: a recovered"), stream="err")


def test_a_refused_edit_undone_but_for_a_blank_line_is_said_recovered(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    """An enum member renamed is refused (a restart applies it).  Saved back with a blank
    line more, nothing was said and the refusal stood (saved back byte for byte, or after
    a syntax error, it said "recovered")."""
    root = project(proj)
    colors = "import enum\n\n\nclass Color(enum.Enum):\n    RED = 1\n"
    write(root / "colors.py", colors)
    write(root / "b.py", B_OLD + "\nimport colors\n")
    child = start(spawn, root, modules=("a", "b", "colors"))
    write(root / "colors.py", colors.replace("RED", "CRIMSON"))
    child.expect(contains("hmr: restart to apply: colors.Color changed its members"), stream="err")
    write(root / "colors.py", colors + "\n")
    child.expect(contains("hmr: colors recovered"), stream="err")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"", "is empty; a keeps running its old code", id="empty"),
        pytest.param(b"\n  \n", "is empty; a keeps running its old code", id="blank"),
        pytest.param(
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff",
            "is not Python source (it holds null bytes); a keeps running its old code",
            id="binary",
        ),
    ],
)
def test_a_bad_save_keeps_the_old_code_with_one_clear_line(
    proj: Path, spawn: Callable[..., Child], content: bytes, message: str
) -> None:
    root = project(proj)
    child = start(spawn, root)

    (root / "a.py").write_bytes(content)

    line = child.expect(contains(message), stream="err")
    assert line == f"hmr: {root / 'a.py'} {message}", line
    assert "f=old X=1" in child.expect(starts("tick "))
    write(root / "a.py", A_NEW)
    child.expect("f=new X=2")
    child.expect(reloaded("a"), stream="err")
    assert_never_half_applied(child)


@pytest.mark.parametrize("terminal", [True, False], ids=["force-color", "pipe"])
def test_clear_clears_the_terminal_before_each_reload(
    proj: Path, spawn: Callable[..., Child], core_env: dict[str, str], terminal: bool
) -> None:
    """On a terminal (a pipe that ``FORCE_COLOR`` says ends in one); a plain pipe or a
    log file would get the codes as text."""
    root = project(proj)
    env = dict(core_env, NO_COLOR="1")
    if terminal:
        env["FORCE_COLOR"] = "1"
    else:
        env.pop("FORCE_COLOR", None)
    child = start(spawn, root, "--clear", env=env)

    write(root / "a.py", A_NEW)

    line = child.expect(contains("hmr: reloaded a"), stream="err")
    if terminal:
        assert line.startswith("\033[H\033[2J\033[3Jhmr: reloaded a "), repr(line)
    else:
        assert line.startswith("hmr: reloaded a "), repr(line)


def test_a_thread_running_a_loop_calls_the_new_code(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    root = project(proj)
    write(
        root / "main.py",
        textwrap.dedent(
            """\
            import sys
            import threading
            import time

            import a
            import b


            def worker():
                while True:
                    sys.stdout.write(f"worker f={a.f()} X=1 Y={b.Y}\\n")
                    sys.stdout.flush()
                    time.sleep(0.02)


            threading.Thread(target=worker, daemon=True).start()
            sys.stdout.write("tick f=old X=1 Y=1\\n")
            sys.stdout.flush()
            threading.Event().wait()
            """
        ),
    )
    child = start(spawn, root)

    write(root / "a.py", A_NEW)

    # The thread never stopped: its next call runs the new body.
    child.expect("worker f=new")
    child.expect(reloaded("a"), stream="err")


# -- many folders -------------------------------------------------------------------

MANY_MAIN = """\
import sys
import time

import importlib

modules = [importlib.import_module(f"pkg{i:03d}.mod") for i in range({count})]
print("imported", len(modules), flush=True)
last = modules[-1]
seen = None
while True:
    value = last.f()
    if value != seen:
        print("f", value, flush=True)
        seen = value
    time.sleep(0.02)  # pacing only: the test waits for lines
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_hundreds_of_folders_are_watched_by_one_thread(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    """watchdog's observer took a thread (and an inotify instance) per folder: 200
    threads started while the program imported, and the user's 128 instances ran out.
    The default backend on Linux watches every folder from one thread."""
    count = 200
    for i in range(count):
        write(proj / f"pkg{i:03d}" / "__init__.py", "")
        write(proj / f"pkg{i:03d}" / "mod.py", "def f():\n    return 'old'\n")
    write(proj / "main.py", MANY_MAIN.replace("{count}", str(count)))
    root = Path(os.path.realpath(proj))
    child = spawn(["-v", "main.py"], cwd=root)
    child.expect("imported 200")
    # Logged once every folder of these modules is watched.
    child.expect(tracking(f"pkg{count - 1:03d}.mod"), stream="err")
    threads = len(os.listdir(f"/proc/{child.proc.pid}/task"))
    assert threads < 10, f"{threads} threads for {count} folders"

    write(root / f"pkg{count - 1:03d}" / "mod.py", "def f():\n    return 'new'\n")
    child.expect("f new")
    child.expect(reloaded(f"pkg{count - 1:03d}.mod"), stream="err")


SWITCH_MAIN = """\
import time

import pkg.mod

seen = None
while True:
    value = pkg.mod.f()
    if value != seen:
        print("f", value, flush=True)
        seen = value
    time.sleep(0.02)  # pacing only: the test waits for lines
"""


def test_a_branch_switch_that_makes_a_package_folder_anew_is_applied(
    proj: Path, spawn: Callable[..., Child]
) -> None:
    """git checkout deletes a folder and writes it again: the watch of the old one is
    gone with it.  The new folder's appearance in its watched parent says so."""
    write(proj / "pkg" / "__init__.py", "")
    write(proj / "pkg" / "mod.py", "def f():\n    return 'main'\n")
    write(proj / "main.py", SWITCH_MAIN)
    root = Path(os.path.realpath(proj))
    child = spawn(["-v", "main.py"], cwd=root)
    child.expect("f main")
    child.expect(tracking("pkg.mod"), stream="err")

    os.rename(root / "pkg", root / "pkg-main")  # the old tree, out of the way
    write(root / "pkg" / "__init__.py", "")
    write(root / "pkg" / "mod.py", "def f():\n    return 'feature'\n")
    child.expect("f feature")
    child.expect(reloaded("pkg.mod"), stream="err")
    # And the new folder is watched: a save in it is applied as usual.
    write(root / "pkg" / "mod.py", "def f():\n    return 'edited'\n")
    child.expect("f edited")


# -- a run that never ends -------------------------------------------------------------


def test_a_top_level_loop_that_never_ends_is_said_and_stopped_by_the_next_save(
    spawn: Callable[..., Child], tmp_path: Path
) -> None:
    """``while True: pass`` saved at the top level by mistake: its line is said, the
    program runs on, and saving the fix stops that run, puts the module back as it
    was (not half run) and applies the fix.  The watcher's thread was stuck in it for
    good: no later save applied, nothing said, X new and f old from then on."""
    proj = project(tmp_path)
    child = start(spawn, proj)
    write(proj / "a.py", "X = 2\nwhile True:\n    pass\n\n\ndef f():\n    return 'new'\n")
    child.expect("f=old X=2 Y=1")  # the run reached the loop (as the docs say it may)
    line = child.expect(starts("hmr: still reloading a: "), stream="err")
    # The loop's line: its ``while`` (3.13 and before) or its ``pass`` (3.14).
    assert re.search(rf"{re.escape(str(proj / 'a.py'))}:[23] has run for 3 s; save the", line)
    assert line.endswith("save the file again to stop it"), line
    write(proj / "a.py", A_NEW.replace("X = 2", "X = 3"))
    failed = child.expect(starts("hmr: failed to reload a "), stream="err")
    assert "Superseded: a.py was saved again after a ran for" in failed
    child.expect(reloaded("a"), stream="err")
    child.expect("f=new X=3 Y=1")
    assert not any("MISSING" in line for line in child.seen["out"])


LOOPING_DEPENDENT = """\
from a import X

while X == 2:
    pass
Y = X * 10
"""


def test_a_dependent_that_loops_is_stopped_by_the_next_save_of_the_module_it_follows(
    spawn: Callable[..., Child], tmp_path: Path
) -> None:
    """``a``'s edit makes its dependent ``b`` loop: the user undoes it in ``a.py``, the
    file they saved.  That save stops ``b``'s run (only a save of ``b.py`` did: ``a.py``'s
    were ignored for good), and applies; ``b`` follows it."""
    proj = project(tmp_path)
    write(proj / "b.py", LOOPING_DEPENDENT)
    child = start(spawn, proj)
    write(proj / "a.py", A_OLD.replace("X = 1", "X = 2"))
    child.expect(starts("hmr: still reloading b: "), stream="err")
    write(proj / "a.py", A_OLD.replace("X = 1", "X = 3"))
    failed = child.expect(starts("hmr: failed to reload b "), stream="err")
    assert "Superseded: a.py was saved again after b ran for" in failed
    child.expect("f=old X=3 Y=30")


def test_a_loop_that_catches_what_would_stop_it_is_said_to_need_a_restart(
    spawn: Callable[..., Child], tmp_path: Path
) -> None:
    """``except BaseException: pass`` in the loop: the run cannot be stopped; after a
    few tries one line says so (the watchdog tried once, then nothing was said)."""
    proj = project(tmp_path)
    child = start(spawn, proj)
    looping = "import time\n\nX = 2\nwhile True:\n    try:\n        time.sleep(0.01)\n"
    write(proj / "a.py", looping + "    except BaseException:\n        pass\n")
    child.expect(starts("hmr: still reloading a: "), stream="err")
    write(proj / "a.py", A_NEW)
    line = child.expect(contains("does not stop: it catches the exception"), stream="err")
    assert line.endswith("restart the program to apply the newer save"), line
