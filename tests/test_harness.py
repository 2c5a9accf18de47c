"""The test harness itself: a child's cleanup never hangs the run."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from .subprocesses import Child, gone

# A child that starts a grandchild with its own output pipes, says the
# grandchild's PID, and waits: as a server whose worker outlives it.
_PARENT = """\
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
print("grandchild", grandchild.pid, flush=True)
time.sleep(300)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_close_kills_a_grandchild_holding_the_pipes_and_returns(tmp_path: Path) -> None:
    child = Child([], cwd=tmp_path, env={}, command=("-c", _PARENT))
    grandchild = int(child.expect("grandchild").split()[1])
    assert not gone(grandchild)
    # In a thread: a close that blocked (on a pipe its reader thread still
    # reads, held open by the grandchild) would otherwise hang this test too.
    closer = threading.Thread(target=child.close, daemon=True)
    started = time.monotonic()
    closer.start()
    closer.join(timeout=30)
    assert not closer.is_alive(), "Child.close() blocked"
    assert time.monotonic() - started < 30
    deadline = time.monotonic() + 10
    while not gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the process table, with a deadline
    assert gone(grandchild)
