"""``%load_ext muckrack_hmr`` in a real Jupyter kernel, driven with jupyter_client.

Each test starts an ipykernel kernel (on the core under test) in a
throwaway project, runs cells in it, saves new versions of the project's
modules, and reads what the next cells print.  Every wait is on a kernel
message or a save queued in the kernel, with a deadline.
"""

from __future__ import annotations

import os
import re
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .subprocesses import DEADLINE, Child, save_atomically, write

jupyter_client = pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")

# The kernel's start-up, loaded machine included.
START_DEADLINE = 60.0
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# A cell that waits (in the kernel) until the watcher has handed over one more save than
# the last such cell waited for: queued for the next cell, or applied already (when it came
# just before this cell started).  Each save of a test is one burst.
WAIT_FOR_SAVE = (
    "from muckrack_hmr.integrations.ipython import extension as _extension; "
    "_saves_seen = globals().get('_saves_seen', 0) + 1\n"
    f"assert _extension().wait_for_saves({DEADLINE}, _saves_seen), "
    "('no save arrived', sorted(_extension().watcher.pipeline.watched))"
)


@dataclass
class Cell:
    """What one cell printed."""

    stdout: str = ""
    stderr: str = ""
    error: str = ""
    results: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.stdout + self.stderr + self.error + "".join(self.results)


class Kernel:
    """A real ipykernel kernel and a client that runs cells in it."""

    def __init__(self, cwd: Path, env: dict[str, str], runtime: Path) -> None:
        self.manager = jupyter_client.KernelManager(kernel_name="python3")
        self.manager.connection_file = str(runtime / "kernel.json")
        self.manager.start_kernel(cwd=str(cwd), env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=START_DEADLINE)

    def start(self, code: str) -> str:
        """Send a cell; its message id (collect its output with :meth:`collect`)."""
        return str(self.client.execute(textwrap.dedent(code)))

    def collect(self, msg_id: str, timeout: float = DEADLINE) -> Cell:
        """The output of cell ``msg_id``, once the kernel is idle again."""
        cell = Cell()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"the cell did not finish in {timeout} s: {cell.text}")
            message = self.client.get_iopub_msg(timeout=left)
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    cell.stdout += content["text"]
                else:
                    cell.stderr += content["text"]
            elif kind == "error":
                cell.error += _ANSI.sub("", "\n".join(content["traceback"]))
            elif kind in ("execute_result", "display_data"):
                cell.results.append(content["data"].get("text/plain", ""))
            elif kind == "status" and content["execution_state"] == "idle":
                return cell

    def run(self, code: str, timeout: float = DEADLINE) -> Cell:
        """Run a cell; what it printed."""
        return self.collect(self.start(code), timeout)

    def ok(self, code: str) -> Cell:
        """Run a cell that must not raise."""
        cell = self.run(code)
        assert not cell.error, cell.error
        return cell

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@pytest.fixture
def kernel_project(tmp_path: Path) -> Path:
    root = tmp_path / "notebook"
    root.mkdir()
    return root


def start_kernel(cwd: Path, core_env: dict[str, str], tmp_path: Path) -> Kernel:
    """A kernel whose working folder is ``cwd``, on the core under test, nothing loaded."""
    env = dict(core_env)
    env["IPYTHONDIR"] = str(tmp_path / "ipython")  # no user profile, no shared history
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    return Kernel(cwd, env, runtime)


@pytest.fixture
def bare_kernel(kernel_project: Path, core_env: dict[str, str], tmp_path: Path) -> Iterator[Kernel]:
    """A kernel whose working folder is ``kernel_project``, the extension not loaded."""
    started = start_kernel(kernel_project, core_env, tmp_path)
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def kernel(bare_kernel: Kernel, core_env: dict[str, str]) -> Kernel:
    """A kernel whose working folder is ``kernel_project``, on the core under test, with
    ``%load_ext muckrack_hmr``."""
    bare_kernel.ok("%load_ext muckrack_hmr")
    # The core the kernel runs is the one under test.
    expected = "False" if core_env.get("MUCKRACK_HMR_NO_EXTENSIONS") else "True"
    assert bare_kernel.ok("import muckrack_hmr; print(muckrack_hmr.USING_EXTENSION)").stdout == (
        expected + "\n"
    )
    return bare_kernel


MOD = """\
CONST = 1


def f():
    return "old"


class C:
    def m(self):
        return "old m"
"""

MOD_NEW = """\
CONST = 2


def f():
    return "new"


class C:
    def m(self):
        return "new m"
"""


def _save(kernel: Kernel, path: Path, source: str) -> Cell:
    """Save ``source`` to ``path`` and wait, in a cell, until the kernel has it queued."""
    save_atomically(path, source)
    # Longer than the cell's own wait: a save that never comes fails in the cell, with why.
    cell = kernel.run(WAIT_FOR_SAVE, timeout=DEADLINE + 10)
    assert not cell.error, cell.error
    return cell


def test_next_cell_sees_the_save(kernel: Kernel, kernel_project: Path) -> None:
    mod = write(kernel_project / "mod.py", MOD)
    write(kernel_project / "dep.py", "from mod import CONST\n\nDOUBLE = CONST * 2\n")
    kernel.ok("from mod import f, CONST, C\nimport dep\nc = C()")
    before = kernel.ok("print(f(), CONST, c.m(), dep.DOUBLE)")
    assert before.stdout == "old 1 old m 2\n"

    waited = _save(kernel, mod, MOD_NEW)
    after = kernel.ok("print(f(), CONST, c.m(), dep.DOUBLE)")
    # The notebook's own ``from`` bindings, an old instance, a dependent's import-time value.
    assert after.stdout.splitlines()[-1] == "new 2 new m 4"
    # One line, in the output of the cell that follows the save (the waiting cell, when the
    # save came before it started).
    shown = (waited.stdout + after.stdout).splitlines()
    reloads = [line for line in shown if line.startswith("hmr: reloaded")]
    assert len(reloads) == 1, after.stdout
    assert reloads[0].startswith("hmr: reloaded mod (+1 dependent")
    # Applied once: the cell after that has nothing to say.
    assert kernel.ok("print(f())").stdout == "new\n"


def test_a_save_right_after_the_cell_that_imported_the_module_reaches_the_next_cell(
    kernel: Kernel, kernel_project: Path
) -> None:
    """The module's folder was watched from the watcher's next look after the import:
    a save in between was found then, and the cell run before that got the old code."""
    mod = write(kernel_project / "fresh_mod.py", MOD)
    assert kernel.ok("import fresh_mod\nprint(fresh_mod.f())").stdout == "old\n"
    save_atomically(mod, MOD_NEW)  # at once: no cell waits for the save
    after = kernel.ok("print(fresh_mod.f(), fresh_mod.CONST)")
    assert after.stdout.splitlines()[-1] == "new 2", after.stdout
    assert any(line.startswith("hmr: reloaded fresh_mod") for line in after.stdout.splitlines())


def test_a_module_imported_before_the_extension_follows_a_save_made_before_the_next_cell(
    bare_kernel: Kernel, kernel_project: Path
) -> None:
    """A module imported before ``%load_ext`` (``ipython -i app.py``, a first cell) was
    classified at the next cell: its file's state then, the save included, was taken for
    what ran, and the save was never applied."""
    mod = write(kernel_project / "mod.py", MOD)
    bare_kernel.ok("import mod\nfrom mod import f")
    bare_kernel.ok("%load_ext muckrack_hmr")
    waited = _save(bare_kernel, mod, MOD_NEW)
    after = bare_kernel.ok("print(mod.f(), f(), mod.CONST)")
    assert after.stdout.splitlines()[-1] == "new new 2", after.stdout
    # Its source was kept at %load_ext: the edit was applied statement by statement.
    shown = waited.stdout + after.stdout
    assert "hmr: reloaded mod (2 patched)" in shown, shown


# Each garbage collection adds or takes away an entry of sys.modules, as a thread of the
# kernel that imports while a collection lets it run does (3.10 and 3.11 collect as they
# allocate; 3.12+ between bytecodes, which a copy in one step never meets).
CHURN = """\
import gc, sys
_churn = [0]


def _churn_modules(phase, info):
    if phase == "start":
        _churn[0] += 1
        if "_churned" in sys.modules:
            del sys.modules["_churned"]
        else:
            sys.modules["_churned"] = sys


gc.callbacks.append(_churn_modules)
gc.set_threshold(1)
"""

UNCHURN = """\
gc.set_threshold(700)
gc.callbacks.remove(_churn_modules)
print("collections:", _churn[0])
"""


def test_load_ext_while_a_collection_changes_sys_modules(
    bare_kernel: Kernel, kernel_project: Path
) -> None:
    """``%load_ext`` walked ``sys.modules`` entry by entry to find the modules imported
    from the notebook's folders: a garbage collection in the walk that let a thread import
    broke it with "dictionary changed size during iteration" (seen on 3.10)."""
    mod = write(kernel_project / "mod.py", MOD)
    bare_kernel.ok("import mod\nfrom mod import f")
    loaded = bare_kernel.ok(CHURN + "%load_ext muckrack_hmr\n" + UNCHURN)
    assert int(loaded.stdout.split("collections:")[1]) > 0, loaded.stdout
    waited = _save(bare_kernel, mod, MOD_NEW)
    after = bare_kernel.ok("print(mod.f(), f(), mod.CONST)")
    assert after.stdout.splitlines()[-1] == "new new 2", waited.stdout + after.stdout


def test_a_save_the_last_cell_made_reaches_the_next_cell(
    kernel: Kernel, kernel_project: Path
) -> None:
    """``%%writefile``, or a cell that writes the module: the next cell ran the old code
    when the save's file events were still in the OS's queue as it looked, or when the
    watcher had taken them and was judging them (in about one run in six)."""
    path = kernel_project / "written.py"
    write(path, "def f():\n    return 0\n")
    kernel.ok("import written, pathlib\npath = pathlib.Path('written.py')")
    for version in range(1, 21):
        kernel.ok(f"path.write_text('def f():\\n    return {version}\\n')")
        after = kernel.ok("print(written.f())")
        assert after.stdout.splitlines()[-1] == str(version), (version, after.stdout)


def test_the_folders_the_notebook_moves_to_or_adds_are_followed(
    core_env: dict[str, str], kernel_project: Path, tmp_path: Path
) -> None:
    """A notebook in ``notebooks/`` that does ``%cd ..`` (or puts ``../src`` on
    ``sys.path``) imported its package from outside the folder loaded in: nothing of it
    was tracked, with no word, and no save ever applied (``%autoreload 2`` has them)."""
    notebooks = kernel_project / "notebooks"
    notebooks.mkdir()
    write(kernel_project / "pyproject.toml", "[project]\nname = 'mypkg'\n")
    core = write(kernel_project / "mypkg" / "core.py", MOD)
    write(kernel_project / "mypkg" / "__init__.py", "")
    lib = write(tmp_path / "src" / "lib.py", "def g():\n    return 'old g'\n")
    lib2 = write(tmp_path / "src2" / "lib2.py", "def h():\n    return 'old h'\n")
    kernel = start_kernel(notebooks, core_env, tmp_path)
    try:
        kernel.ok("%load_ext muckrack_hmr")
        # A folder with no sign of a project is not one (a home folder, say).
        assert "watching" not in kernel.ok(f"%cd {tmp_path / 'src'}").stdout
        kernel.ok(f"%cd {kernel_project}")
        moved = kernel.ok("from mypkg import core\nprint(core.f())")
        assert f"hmr: watching {os.path.realpath(kernel_project)}" in moved.stdout
        _save(kernel, core, MOD_NEW)
        assert kernel.ok("print(core.f())").stdout.splitlines()[-1] == "new"

        kernel.ok(f"import sys\nsys.path.append({str(tmp_path / 'src')!r})")
        kernel.ok("from lib import g")
        _save(kernel, lib, "def g():\n    return 'new g'\n")
        assert kernel.ok("print(g())").stdout.splitlines()[-1] == "new g"

        # The folder put on sys.path and the import in one cell (the usual first cell).
        kernel.ok(f"sys.path.append({str(tmp_path / 'src2')!r})\nfrom lib2 import h")
        assert "lib2" in kernel.ok("%hmr").stdout
        _save(kernel, lib2, "def h():\n    return 'new h'\n")
        assert kernel.ok("print(h())").stdout.splitlines()[-1] == "new h"
    finally:
        kernel.close()


def test_a_module_imported_in_the_cell_that_put_its_folder_on_sys_path_follows_later_saves(
    core_env: dict[str, str], kernel_project: Path, tmp_path: Path
) -> None:
    """The usual first cell, ``sys.path.append("../src")`` and ``import core``, then cells
    that only read ``core``: its folder was followed from the next cell, but a module that
    imports nothing was judged project code only when something looked at the tracked
    modules (``%hmr``), and every save made until then was taken for the code that runs
    (in a trial, all four saves of a run were lost).  The folder counts from the import
    on: followed at the next cell, a save made before it was taken for the code that
    runs, and lost, silently."""
    core = write(tmp_path / "src" / "core.py", "FACTOR = 2\n")
    kernel = start_kernel(kernel_project, core_env, tmp_path)
    try:
        kernel.ok("%load_ext muckrack_hmr")
        first = kernel.ok(f"import sys; sys.path.append({str(tmp_path / 'src')!r})\nimport core")
        # (_save saves, then runs a cell: the save comes before the next cell.)
        for factor in (3, 4):
            _save(kernel, core, f"FACTOR = {factor}\n")
            assert kernel.ok("print(core.FACTOR)").stdout.splitlines()[-1] == str(factor)
        assert f"hmr: watching {os.path.realpath(tmp_path / 'src')}" in first.stdout
    finally:
        kernel.close()


def test_a_folder_put_on_sys_path_before_the_extension_loaded_is_followed(
    core_env: dict[str, str], kernel_project: Path, tmp_path: Path
) -> None:
    """``sys.path.append("../src")`` in a cell before ``%load_ext``: the folder was never
    followed, and ``%hmr watch`` said its modules were tracked while they were not."""
    src = tmp_path / "src"
    early = write(src / "early.py", "def f():\n    return 'old early'\n")
    late = write(src / "late.py", "def g():\n    return 'old late'\n")
    kernel = start_kernel(kernel_project, core_env, tmp_path)
    try:
        kernel.ok(f"import sys; sys.path.append({str(src)!r})\nimport early")
        loaded = kernel.ok("%load_ext muckrack_hmr")
        assert f"hmr: watching {os.path.realpath(src)}" in loaded.stdout
        kernel.ok("import late")
        _save(kernel, early, "def f():\n    return 'new early'\n")
        _save(kernel, late, "def g():\n    return 'new late'\n")
        shown = kernel.ok("print(early.f(), late.g())").stdout
        assert shown.splitlines()[-1] == "new early new late"
    finally:
        kernel.close()


def test_an_interrupted_reload_says_so_keeps_the_old_code_and_the_save_applies_again(
    kernel: Kernel, kernel_project: Path, tmp_path: Path
) -> None:
    """Interrupting the kernel while a save's new code runs (a long top level) before a
    cell: IPython printed "Error in callback" and the tool's own frames, and the save was
    dropped for good, with nothing said (``%hmr``: no save waiting, no reload)."""
    slow = write(kernel_project / "slow.py", "A = 1\n\ndef f():\n    return 'v1'\n")
    kernel.ok("import slow")
    running = tmp_path / "running"
    kernel.ok("%hmr off")  # the save waits in the queue until the cell chosen below
    # (One statement: the interrupt, sent once the file is there, lands in it.)
    long_top_level = (
        f"import pathlib, time\npathlib.Path({str(running)!r}).touch(); time.sleep(120)\n"
        "A = 2\n\ndef f():\n    return 'v2'\n"
    )
    _save(kernel, slow, long_top_level)
    kernel.ok("%hmr on")
    cell = kernel.start("print(slow.f(), slow.A)")
    deadline = time.monotonic() + DEADLINE
    while not running.exists():
        assert time.monotonic() < deadline, "the save's new code never ran"
        time.sleep(0.01)
    kernel.manager.interrupt_kernel()
    interrupted = kernel.collect(cell)
    assert "Error in callback" not in interrupted.text
    assert "_hmr_core" not in interrupted.text
    assert "reloader.py" not in interrupted.text
    assert "slow.py:2; the old code keeps running (save again to apply it)" in interrupted.stderr, (
        interrupted.text
    )
    assert "hmr: reloading slow was interrupted at " in interrupted.stderr
    # Put back as it was, and the cell ran with it.
    assert interrupted.stdout.splitlines()[-1] == "v1 1"
    assert "interrupted the reload of slow" in kernel.ok("%hmr").stdout
    # The same content saved again is applied (here without its wait).
    _save(kernel, slow, long_top_level.replace("time.sleep(120)", "time.sleep(0)"))
    assert kernel.ok("print(slow.f(), slow.A)").stdout.splitlines()[-1] == "v2 2"


def test_an_error_raised_by_a_module_a_cell_imports_shows_no_frame_of_the_tool(
    kernel: Kernel, kernel_project: Path
) -> None:
    """On the compiled core, two frames of the import hook showed per import level
    ("src/_hmr_core.pyx:902, in ..._tracked_import()", "Could not get source"), as no
    kernel without the extension shows; the pure core's were hidden already (its frame
    says ``__tracebackhide__``); now neither core's hook leaves a frame."""
    write(kernel_project / "outer.py", "import inner\n")
    write(kernel_project / "inner.py", "X = 1\nraise RuntimeError('boom at import')\n")
    failed = kernel.run("import outer")
    assert "RuntimeError: boom at import" in failed.error
    assert "inner.py" in failed.error
    assert "outer.py" in failed.error
    assert "_hmr_core" not in failed.error
    assert "Could not get source" not in failed.error


def test_failed_reload_shows_the_error_and_keeps_the_old_code(
    kernel: Kernel, kernel_project: Path
) -> None:
    mod = write(kernel_project / "mod.py", MOD)
    kernel.ok("from mod import f")

    waited = _save(kernel, mod, MOD.replace("def f():", "def f(:"))
    broken = kernel.ok("print(f())")
    assert broken.stdout.splitlines()[-1] == "old"
    shown = waited.stderr + broken.stderr  # the cell that follows the save shows it
    assert "failed to reload mod" in shown
    assert f"{mod}:4" in shown or f"{os.path.realpath(mod)}:4" in shown
    assert "SyntaxError" in shown

    # An exception at import time: the user's line, in the user's traceback.
    raising = MOD_NEW + '\n\nraise ValueError("boom at import")\n'
    waited = _save(kernel, mod, raising)
    failed = kernel.ok("print(f())")
    assert failed.stdout.splitlines()[-1] == "old"
    shown = waited.stderr + failed.stderr
    assert "ValueError: boom at import" in shown
    assert 'mod.py", line 13, in <module>' in shown
    assert "muckrack_hmr" not in shown.replace("muckrack_hmr.", "")

    _save(kernel, mod, MOD_NEW)
    assert kernel.ok("print(f())").stdout.splitlines()[-1] == "new"


def test_save_during_a_long_cell_waits_for_the_next(
    kernel: Kernel, kernel_project: Path, tmp_path: Path
) -> None:
    mod = write(kernel_project / "mod.py", MOD)
    kernel.ok("from mod import f")
    started = tmp_path / "started"
    long_cell = kernel.start(
        f"import pathlib\npathlib.Path({str(started)!r}).touch()\n"
        f"{WAIT_FOR_SAVE}\nprint('during', f())\n"
    )
    deadline = time.monotonic() + DEADLINE
    while not started.exists():
        assert time.monotonic() < deadline, "the long cell never started"
        time.sleep(0.01)
    save_atomically(mod, MOD_NEW)
    during = kernel.collect(long_cell)
    assert not during.error, during.error
    # Queued while the cell ran, not applied under it.
    assert during.stdout == "during old\n"
    after = kernel.ok("print('after', f())")
    assert after.stdout.splitlines()[-1] == "after new"
    assert "hmr: reloaded mod" in after.stdout


def test_hmr_magic(kernel: Kernel, kernel_project: Path, tmp_path: Path) -> None:
    write(kernel_project / "settings.txt", "first")
    write(
        kernel_project / "conf.py",
        "import pathlib\n\nVALUE = pathlib.Path('settings.txt').read_text()\n",
    )
    mod = write(kernel_project / "mod.py", "import conf\n\n\ndef f():\n    return 'old'\n")
    kernel.ok("import mod, conf")

    status = kernel.ok("%hmr").stdout
    assert f"watched folders: {os.path.realpath(kernel_project)}" in status
    assert "tracked modules (2): conf, mod" in status or "tracked modules (2): mod, conf" in status

    graph = kernel.ok("%hmr graph conf").stdout
    assert "conf imports: nothing" in graph
    assert "conf imported by: mod" in graph

    # A module that read a data file at import: run again whole on request.
    write(kernel_project / "settings.txt", "second")
    reloaded = kernel.ok("%hmr reload conf\nprint(conf.VALUE)")
    assert "hmr: reloaded conf" in reloaded.stdout
    assert reloaded.stdout.splitlines()[-1] == "second"

    # Off: saves wait; on: the next cell applies them.
    assert "off" in kernel.ok("%hmr off").stdout
    _save(kernel, mod, "import conf\n\n\ndef f():\n    return 'new'\n")
    assert kernel.ok("print(mod.f())").stdout == "old\n"
    assert kernel.ok("%hmr on").stdout.strip() == "hmr: on"
    assert kernel.ok("print(mod.f())").stdout.splitlines()[-1] == "new"
    assert "reloaded mod" in kernel.ok("%hmr").stdout
    # With no NAME: what changed on disk since the code that runs, in every tracked
    # module (it said "unknown: %hmr reload"); a save held by %hmr off goes in.
    nothing = kernel.ok("%hmr reload")
    assert nothing.stderr.startswith("hmr: nothing changed on disk"), nothing
    assert "reloaded" not in nothing.stdout, nothing
    kernel.ok("%hmr off")
    _save(kernel, mod, "import conf\n\n\ndef f():\n    return 'newer'\n")
    applied = kernel.ok("%hmr reload\nprint(mod.f())")
    assert "hmr: reloaded mod" in applied.stdout, applied
    assert "nothing changed" not in applied.stderr, applied  # (it said both)
    assert applied.stdout.splitlines()[-1] == "newer"
    kernel.ok("%hmr on")
    # A word it does not know is said to be one, before the usage.
    unknown = kernel.ok("%hmr bogus").stderr
    assert unknown.startswith("hmr: unknown: %hmr bogus\n%hmr "), unknown
    # A command it knows, given what it does not take: said so (it said "unknown").
    for given, said in (
        ("graph", "takes one module NAME"),
        ("watch", "takes a folder DIR"),
        ("reload conf mod", "takes one module NAME, or nothing"),
    ):
        wrong = kernel.ok(f"%hmr {given}").stderr
        assert wrong.startswith(f"hmr: %hmr {given}: {said}\n%hmr "), wrong
    # A module never imported: one line, on why (it said "nothing reloaded" too).
    never = kernel.ok("%hmr reload nosuch")
    lines = (never.stdout + never.stderr).splitlines()
    assert len(lines) == 1, never
    assert "nosuch" in lines[0], never

    # Another folder, watched from now on.
    other = tmp_path / "elsewhere"
    lib = write(other / "lib.py", "def g():\n    return 'old g'\n")
    assert "watching" in kernel.ok(f"%hmr watch {other}").stdout
    again = kernel.ok(f"%hmr watch {other}")  # said once (it said "watching" again)
    assert again.stderr == f"hmr: already watching {os.path.realpath(other)}\n", again
    assert "watching" not in again.stdout, again
    kernel.ok(f"import sys; sys.path.insert(0, {str(other)!r})\nfrom lib import g")
    _save(kernel, lib, "def g():\n    return 'new g'\n")
    assert kernel.ok("print(g())").stdout.splitlines()[-1] == "new g"


def test_autoreload_on_too(kernel: Kernel, kernel_project: Path) -> None:
    mod = write(
        kernel_project / "mod.py",
        "import builtins\n\nbuiltins.RUNS = getattr(builtins, 'RUNS', 0) + 1\n\n\n"
        "def f():\n    return 'old'\n",
    )
    kernel.ok("%load_ext autoreload\n%autoreload 2")
    first = kernel.ok("import mod")
    assert "%autoreload is on too" in first.stderr
    waited = _save(kernel, mod, mod.read_text().replace("'old'", "'new'"))
    after = kernel.ok("print(mod.f(), RUNS)")
    # Applied once, statement by statement: the module's top level did not run again.
    assert after.stdout.splitlines()[-1] == "new 1"
    assert "%autoreload is on too" not in waited.stderr + after.stderr


def _terminal_ipython(
    core_env: dict[str, str], folder: Path, tmp_path: Path, *, under_the_cli: bool
) -> Child:
    """Terminal IPython in ``folder``, one line per cell: ``python -m IPython``, or
    ``python -m muckrack.hmr -m IPython``."""
    shell = ["--simple-prompt", "--no-banner", "--colors=nocolor", "-i"]
    return Child(
        ["-m", "IPython", *shell] if under_the_cli else shell,
        cwd=folder,
        env=dict(core_env, IPYTHONDIR=str(tmp_path / "ipython")),
        command=("-u", "-m", "muckrack.hmr" if under_the_cli else "IPython"),
        stdin=True,
    )


def test_terminal_ipython(core_env: dict[str, str], kernel_project: Path, tmp_path: Path) -> None:
    """``ipython -i``: the same extension in the terminal shell, a line per cell."""
    mod = write(kernel_project / "mod.py", MOD)
    child = _terminal_ipython(core_env, kernel_project, tmp_path, under_the_cli=False)
    try:
        child.send("%load_ext muckrack_hmr")
        child.send("from mod import f, CONST; print('before', f(), CONST)")
        child.expect("before old 1")
        save_atomically(mod, MOD_NEW)
        child.send(WAIT_FOR_SAVE.replace("\n", "; ") + "; print('queued')")
        child.expect("queued")
        child.send("print('after', f(), CONST)")
        child.expect("after new 2")
        child.send("exit")
        assert child.wait() == 0
        reloads = [line for line in child.seen["out"] if "hmr: reloaded mod" in line]
        assert len(reloads) == 1, child.seen["out"]
    finally:
        child.close()


def test_terminal_ipython_under_the_cli_says_each_reload_once(
    core_env: dict[str, str], kernel_project: Path, tmp_path: Path
) -> None:
    """``python -m muckrack.hmr -m IPython``: the CLI's watcher applies saves, and its
    log shows them; ``%load_ext`` printed each line a second time, and ``%hmr`` said
    "last reloads: none".  The notebook's ``from mod import CONST`` was never rebound:
    its namespace's name (``__main__``) had been judged no project code (IPython's own
    ``__main__``).  ``%hmr off`` said saves wait, and the watcher applied them."""
    mod = write(kernel_project / "mod.py", MOD)
    child = _terminal_ipython(core_env, kernel_project, tmp_path, under_the_cli=True)
    try:
        child.send("%load_ext muckrack_hmr")
        child.send("from mod import f, CONST; print('before', f(), CONST)")
        child.expect("before old 1")
        save_atomically(mod, MOD_NEW)
        # Until the reload is over: its result reaches %hmr's history after the new code
        # runs (on the CLI watcher's thread).
        child.send(
            "import time; from muckrack_hmr.integrations.ipython import extension as _x\n"
            "_end = time.monotonic() + 10\n"
            "while not _x().history and time.monotonic() < _end: time.sleep(0.01)\n"
        )
        child.send("print('after', f(), CONST)")
        child.expect("after new 2")
        child.send("%hmr")
        child.expect(lambda line: "reloaded mod" in line and "hmr: " not in line)
        child.send("%hmr off")
        child.expect(
            lambda line: "has no effect under python -m muckrack.hmr" in line, stream="err"
        )
        child.send("exit")
        assert child.wait() == 0
        said = [
            line
            for stream in ("out", "err")
            for line in child.seen[stream]
            if "hmr: reloaded mod" in line
        ]
        assert len(said) == 1, (child.seen["out"], child.seen["err"])
    finally:
        child.close()


def _skipped(aimport: str) -> list[str]:
    """The modules ``%aimport`` lists as skipped."""
    lines = aimport.splitlines()
    return lines[lines.index("Modules to skip:") + 1].split()


def test_unloading_gives_autoreload_its_modules_back(kernel: Kernel, kernel_project: Path) -> None:
    """The extension has ``%autoreload`` skip the modules it reloads; after
    ``%unload_ext`` they stayed skipped, and no edit reached the notebook any more."""
    mod = write(kernel_project / "mod.py", MOD)
    kernel.ok("%load_ext autoreload\n%autoreload 2")
    kernel.ok("import mod")
    assert "mod" in _skipped(kernel.ok("%aimport").stdout)
    kernel.ok("%unload_ext muckrack_hmr")
    assert "mod" not in _skipped(kernel.ok("%aimport").stdout)
    # A second later: %autoreload compares modification times.
    save_atomically(mod, MOD_NEW)
    os.utime(mod, (time.time() + 2, time.time() + 2))
    assert kernel.ok("print(mod.f())").stdout.splitlines()[-1] == "new"


def test_unloading_leaves_no_thread_of_ours(kernel: Kernel, kernel_project: Path) -> None:
    """``%unload_ext`` stops the watcher and removes the hook: the reload watchdog's thread
    (started by a reload) went on waking every half second in the kernel."""
    mod = write(kernel_project / "mod.py", MOD)
    kernel.ok("import mod, threading")
    _save(kernel, mod, MOD_NEW)
    assert kernel.ok("print(mod.f())").stdout.splitlines()[-1] == "new"
    ours = "print(sorted(t.name for t in threading.enumerate() if 'muckrack-hmr' in t.name))"
    assert "muckrack-hmr-watchdog" in kernel.ok(ours).stdout
    kernel.ok("%unload_ext muckrack_hmr")
    assert kernel.ok(ours).stdout.splitlines()[-1] == "[]"


def test_a_save_made_while_unloaded_applies_at_the_next_load(
    kernel: Kernel, kernel_project: Path
) -> None:
    """``%unload_ext``, a save, ``%load_ext``: the file as it was at the load was taken for
    the code that runs, and the save was lost for good, silently.  It applies at the load,
    as a save does (the module's state kept)."""
    mod = write(kernel_project / "mod.py", "STATE = []\n\n\ndef f():\n    return 'old'\n")
    kernel.ok("import mod\nmod.STATE.append(1)")
    kernel.ok("%unload_ext muckrack_hmr")
    save_atomically(mod, "STATE = []\n\n\ndef f():\n    return 'new'\n")
    loaded = kernel.ok("%load_ext muckrack_hmr")
    assert "hmr: reloaded mod" in loaded.stdout, loaded
    assert kernel.ok("print(mod.f(), mod.STATE)").stdout.splitlines()[-1] == "new [1]"
    # And the saves after it, as ever.
    _save(kernel, mod, "STATE = []\n\n\ndef f():\n    return 'newer'\n")
    assert kernel.ok("print(mod.f(), mod.STATE)").stdout.splitlines()[-1] == "newer [1]"


def test_a_forced_reload_while_off_applies_only_its_module(
    kernel: Kernel, kernel_project: Path
) -> None:
    a = write(kernel_project / "a.py", "def f():\n    return 'old a'\n")
    write(kernel_project / "b.py", "def g():\n    return 'b'\n")
    kernel.ok("import a, b")
    kernel.ok("%hmr off")
    _save(kernel, a, "def f():\n    return 'new a'\n")
    reloaded = kernel.ok("%hmr reload b\nprint(a.f())")
    assert "reloaded b" in reloaded.stdout
    assert "reloaded a" not in reloaded.stdout
    assert reloaded.stdout.splitlines()[-1] == "old a"
    kernel.ok("%hmr on")
    assert kernel.ok("print(a.f())").stdout.splitlines()[-1] == "new a"


RESOURCE = """\
import threading

from muckrack_hmr import hot

VERSION = 1
stop = threading.Event()
worker = threading.Thread(target=stop.wait, name="res-worker", daemon=True)
worker.start()
cache = hot.keep("cache", dict)
handed = dict(hot.data)


def halt(data):
    stop.set()
    worker.join(5)
    data["stopped"] = data.get("stopped", 0) + 1


hot.on_dispose(halt)
"""


def test_dispose_and_keep_in_the_kernel(kernel: Kernel, kernel_project: Path) -> None:
    path = write(kernel_project / "res.py", RESOURCE)
    count = "sum(t.name == 'res-worker' for t in threading.enumerate())"
    kernel.ok("import threading, res\nres.cache['hits'] = 1")
    for version in range(2, 6):
        _save(kernel, path, RESOURCE.replace("VERSION = 1", f"VERSION = {version}"))
        cell = kernel.ok(f"print(res.VERSION, {count}, res.cache, res.handed)")
        assert (
            cell.stdout.splitlines()[-1]
            == f"{version} 1 {{'hits': 1}} {{'stopped': {version - 1}}}"
        )


def test_importing_the_package_imports_no_ipython() -> None:
    """The extension's entry points are in muckrack_hmr; IPython waits for %load_ext."""
    import subprocess
    import sys

    code = "import sys, muckrack_hmr; print(sorted(m for m in sys.modules if 'IPython' in m))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"
    assert callable(__import__("muckrack_hmr").load_ipython_extension)
