"""A live demo: ``python -m muckrack_hmr.demo``.

It writes a two-file program to a temporary folder, runs it under
``python -m muckrack.hmr``, edits one of its files while it runs, and shows
the program picking up the new code without restarting.  Then it leaves the
program running so you can edit the file yourself (Ctrl-C stops it);
``--once`` stops right after the automatic edit.
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

GREET_V1 = """\
def message(count):
    return f"tick {count}: hello from the original code"
"""

GREET_V2 = """\
def message(count):
    return f"tick {count}: HELLO FROM THE EDITED CODE (same process, counter kept)"
"""

APP = """\
import os
import time

from greet import message

print(f"demo: process {os.getpid()} started", flush=True)
count = 0
while True:
    count += 1
    print(message(count), flush=True)
    time.sleep(0.5)
"""


def _pump(stream: object, lines: queue.Queue[str]) -> None:
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        lines.put(line)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m muckrack_hmr.demo", description=__doc__)
    parser.add_argument("--once", action="store_true", help="stop after the automatic edit")
    parser.add_argument(
        "--graph",
        metavar="FILE",
        help="have the program write its import graph to FILE (see --graph of the CLI)",
    )
    options = parser.parse_args(argv)
    graph = ["--graph", os.path.abspath(options.graph)] if options.graph else []
    with tempfile.TemporaryDirectory(prefix="muckrack-hmr-demo-") as folder:
        root = Path(folder)
        (root / "greet.py").write_text(GREET_V1)
        (root / "app.py").write_text(APP)
        print(f"demo: running {root / 'app.py'} under `python -m muckrack.hmr`\n", flush=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        child = subprocess.Popen(
            [sys.executable, "-m", "muckrack.hmr", "--debounce", "5", *graph, str(root / "app.py")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        # ``timeout`` and service managers stop with SIGTERM: clean up as for Ctrl-C.
        signal.signal(signal.SIGTERM, _interrupt)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_pump, args=(child.stdout, lines), daemon=True).start()
        try:
            return _show(child, lines, root / "greet.py", options.once)
        except KeyboardInterrupt:
            return 0
        finally:
            child.terminate()
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()


def _show(child: subprocess.Popen[str], lines: queue.Queue[str], greet: Path, once: bool) -> int:
    deadline = time.monotonic() + 30
    ticks = 0
    edited = False
    announced = False
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if child.poll() is not None:
                print("demo: the program exited unexpectedly", file=sys.stderr)
                return 1
            continue
        print("  | " + line, end="", flush=True)
        if line.startswith("tick"):
            ticks += 1
        if ticks == 3 and not edited:
            edited = True
            print(f"\ndemo: editing {greet.name} while the program runs...\n", flush=True)
            greet.write_text(GREET_V2)
        if edited and not announced and "EDITED" in line:
            announced = True
            print(
                textwrap.dedent(
                    """
                    demo: the running program now runs the new code: same process,
                    demo: and the loop counter kept counting.
                    """
                ),
                flush=True,
            )
            if once:
                return 0
            print(f"demo: now edit {greet} yourself and save; Ctrl-C stops.\n", flush=True)
            deadline = float("inf")
    print("demo: the edit was not picked up within 30 s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
