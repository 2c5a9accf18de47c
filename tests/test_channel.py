"""The channel's socket leaves nothing behind, and lets only our user in.

On Linux the hub listens on an abstract socket (a name, no file): a
supervisor killed with SIGKILL leaves nothing in the temporary folder.
Anyone may connect to an abstract name, so the hub closes the connections of
other users.  Elsewhere the socket is a file in a private folder, and the
folders that dead supervisors left are removed by the next one.
"""

from __future__ import annotations

import marshal
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from muckrack_hmr.processes import channel
from muckrack_hmr.processes.hub import Hub

from .subprocesses import DEADLINE, Child, Reaper, left_behind, write

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="Unix sockets, fork")

POOL = """\
import multiprocessing
import os
import sys

if __name__ == "__main__":
    pool = multiprocessing.get_context("fork").Pool(1)
    print("worker", pool.apply(os.getpid), flush=True)
    sys.stdin.readline()
"""


def test_a_killed_supervisor_leaves_nothing_in_the_temp_folder(
    proj: Path, tmp_path: Path, core_env: dict[str, str], spawn: Callable[..., Child], reap: Reaper
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    write(proj / "main.py", POOL)
    child = spawn(["-v", "main.py"], cwd=proj, env={**core_env, "TMPDIR": str(temp)}, stdin=True)
    worker = int(child.expect("worker").split()[1])
    reap.watch(child, [worker])
    child.expect(f"process {worker} joined", stream="err")
    child.proc.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    os.kill(worker, signal.SIGKILL)
    assert left_behind([worker]) == []
    assert [entry.name for entry in temp.iterdir()] == []


@pytest.mark.skipif(not channel.ABSTRACT, reason="the abstract namespace is Linux's")
def test_the_hub_listens_on_an_abstract_name() -> None:
    hub = Hub()
    try:
        assert hub.address.startswith("\0muckrack-hmr-")
        assert hub.folder is None
        assert channel.describe(hub.address).startswith("@muckrack-hmr-")
    finally:
        hub.close()


# Run by root, which then becomes another user: connect, say hello, print what the hub sends.
_FOREIGN = """\
import os, socket, sys
os.setgid(65534)
os.setuid(65534)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.settimeout(10)
sock.connect(sys.argv[1].replace("@", "\\0", 1))
try:
    sock.sendall(bytes.fromhex(sys.argv[2]))
    data = sock.recv(1)
except OSError:  # closed before the hello
    data = b""
print(repr(data))
"""


@pytest.mark.skipif(
    not channel.ABSTRACT or os.geteuid() != 0, reason="needs Linux and root (to be another user)"
)
def test_the_hub_refuses_another_user() -> None:
    hub = Hub()
    try:
        # A save the hello below would be sent at once, were the peer let in.
        hub.broadcast(["work"], [], {"work": b"secret = 1\n"})
        body = marshal.dumps({"op": "hello", "pid": 1, "seq": 0})
        hello = struct.pack("!I", len(body)) + body
        result = subprocess.run(
            [
                sys.executable,
                "-I",
                "-S",
                "-c",
                _FOREIGN,
                channel.describe(hub.address),
                hello.hex(),
            ],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "b''"  # closed, nothing sent
        assert hub.pids == []
        # Our own user is let in, and sent the save.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as ours:
            ours.settimeout(DEADLINE)
            ours.connect(hub.address)
            ours.sendall(hello)
            assert ours.recv(1) != b""
    finally:
        hub.close()


def test_stale_socket_folders_are_swept(tmp_path: Path) -> None:
    """Where the socket is a file (not Linux): a dead supervisor's folder goes at the next start."""
    old = time.time() - 3600

    def folder(name: str, *, listening: bool, age: float) -> tuple[Path, socket.socket]:
        path = tmp_path / name
        path.mkdir()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path / "channel"))
        if listening:
            sock.listen(1)
        else:
            sock.close()  # the file stays, nobody listens: a SIGKILLed supervisor's
        os.utime(path, (age, age))
        return path, sock

    stale, _ = folder("muckrack-hmr-dead", listening=False, age=old)
    live, live_sock = folder("muckrack-hmr-live", listening=True, age=old)
    young, _ = folder("muckrack-hmr-young", listening=False, age=time.time())
    other, _ = folder("someone-else", listening=False, age=old)
    try:
        assert channel.sweep_stale_folders(str(tmp_path)) == [str(stale)]
        assert not stale.exists()
        assert live.exists()
        assert young.exists()
        assert other.exists()
    finally:
        live_sock.close()


def _importing_on_a_thread_of_ours(name: str) -> Any:
    """A thread named as ours, started on ``import name``; returned once inside it."""
    import threading

    from muckrack_hmr.processes import joining

    started = threading.Event()

    def importing() -> None:
        started.set()
        __import__(name)

    ours = threading.Thread(target=importing, name="muckrack-hmr-test-import", daemon=True)
    ours.start()
    assert started.wait(10)
    deadline = time.monotonic() + 10
    while not joining._ours_importing() and time.monotonic() < deadline:
        time.sleep(0.001)  # until the thread is inside the import
    return ours


def test_a_fork_waits_while_a_thread_of_ours_imports(tmp_path: Path) -> None:
    """A pre-fork server forks at start-up, while the watcher imports what it needs: a
    child forked in the middle of that import would inherit the module's import lock
    held by a thread it does not have, and hang at its first import of it."""
    import importlib
    import threading

    from muckrack_hmr.processes import joining

    (tmp_path / "slow_to_import.py").write_text(
        "import builtins\nbuiltins._muckrack_test_gate.wait(10)\nDONE = True\n"
    )
    gate = threading.Event()
    builtins_module = importlib.import_module("builtins")
    builtins_module._muckrack_test_gate = gate  # type: ignore[attr-defined]
    sys.path.insert(0, str(tmp_path))
    ours = _importing_on_a_thread_of_ours("slow_to_import")
    try:
        assert joining._ours_importing()
        threading.Timer(0.05, gate.set).start()
        joining._let_our_imports_end(time.monotonic() + 10)
        assert "slow_to_import" in sys.modules
        assert sys.modules["slow_to_import"].DONE
        assert not joining._ours_importing()
    finally:
        gate.set()
        ours.join(10)
        sys.path.remove(str(tmp_path))
        sys.modules.pop("slow_to_import", None)
        del builtins_module._muckrack_test_gate  # type: ignore[attr-defined]


def test_a_fork_lets_an_import_of_ours_that_needs_the_hook_end_first(
    tmp_path: Path, hmr: Any
) -> None:
    """The watcher, choosing its backend at start-up, imported a module whose own
    imports need the import hook's lock; a pre-fork server forking then held that
    lock while it waited for the import to end: 5 s lost, then a child forked with
    the module's import lock held, which hung at its first import of that module."""
    import builtins
    import threading

    from muckrack_hmr.processes import joining

    (tmp_path / "gated_import.py").write_text(
        "import builtins\nbuiltins._muckrack_test_gate.wait(10)\nimport gated_inner\nDONE = True\n"
    )
    (tmp_path / "gated_inner.py").write_text("X = 1\n")
    gate = threading.Event()
    builtins._muckrack_test_gate = gate  # type: ignore[attr-defined]
    sys.path.insert(0, str(tmp_path))
    ours = _importing_on_a_thread_of_ours("gated_import")
    try:
        threading.Timer(0.05, gate.set).start()
        began = time.monotonic()
        joining.hold_engine(hmr)
        try:
            waited = time.monotonic() - began
            assert sys.modules["gated_import"].DONE
        finally:
            joining.after_fork_in_parent()
        assert waited < 2.0, f"the fork waited {waited:.1f} s for an import it blocked"
        assert hmr.tracker.lock.acquire(timeout=1)  # let go after the fork
        hmr.tracker.lock.release()
    finally:
        gate.set()
        ours.join(10)
        sys.path.remove(str(tmp_path))
        for name in ("gated_import", "gated_inner"):
            sys.modules.pop(name, None)
        del builtins._muckrack_test_gate  # type: ignore[attr-defined]
