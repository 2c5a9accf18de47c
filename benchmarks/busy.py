"""``python -m benchmarks.busy [--edits N]``: saves reaching a program that never rests.

A script computes without a pause in two threads (its main thread and one
more, as a server's worker thread under load) under ``python -m muckrack.hmr``,
on each core; the main thread calls ``work.value()`` between short slices of
computing (about 1 ms each) and prints each new value it sees.  The program
is started anew for each round.  1.5 s after it started computing, and then
every 0.4 s, the body of ``work.value()`` is rewritten (one save in place);
``work`` has a dependent, ``user``, that calls it at import time.  With
``--modules N`` the script first imports N more modules (a package, ``pkg``,
each with a few functions and a class), as a bigger program does, and
``--first-after S`` makes the first save S seconds after it started computing
(a save in the first moments, while the watcher still takes the modules in).  Per save:
the time from just before the write until the main thread sees the new
value, and ``user``'s (live), and the reload's own time (the CLI's ``hmr: reloaded`` line).
The first save of a process is reported apart from the rest: nothing that a
rest would have done before it (importing the engine) has run.

It exits 1 when a save is not live within a deadline or the output is wrong,
never because of a timing.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .__main__ import available_cores, env_for, fmt, median, quartiles

SCRIPT = """\
import sys, threading
import work, user


def compute(rounds):
    total = 0
    for index in range(rounds):
        total += index
    return total


def spin():
    while True:
        compute(100_000)


threading.Thread(target=spin, daemon=True).start()
print("computing", flush=True)
seen = None
while True:
    compute(20_000)
    now = (work.value(), user.SEEN)
    if now != seen:
        seen = now
        print("value", *now, flush=True)
"""

WORK = "def value():\n    return {n}\n"
# One of --modules' modules: what a module of a real program has at its top level.
EXTRA = """\
import os


def name_{n}():
    return os.path.basename(__file__)


class Thing{n}:
    def __init__(self, size):
        self.size = size

    def double(self):
        return self.size * 2


TABLE_{n} = {{index: str(index) for index in range(20)}}
"""
USER = "import work\n\nSEEN = work.value()\n"
FIRST_AFTER = 1.5
PAUSE = 0.4
DEADLINE = 30.0
RELOADED = re.compile(r"^hmr: reloaded work \(\+1 dependent, 1 patched\) in ([\d.]+) ms$")


def run_once(
    core: str, edits: int, folder: Path, modules: int = 0, first_after: float = FIRST_AFTER
) -> tuple[list[float], list[float]]:
    """One process: (live ms, reload ms) per save, the first save first."""
    (folder / "work.py").write_text(WORK.format(n=0))
    (folder / "user.py").write_text(USER)
    script = SCRIPT
    if modules:
        package = folder / "pkg"
        package.mkdir()
        (package / "__init__.py").write_text("")
        for n in range(modules):
            (package / f"m{n:04d}.py").write_text(EXTRA.format(n=n))
        imports = "".join(f"import pkg.m{n:04d}\n" for n in range(modules))
        script = script.replace("import work, user\n", "import work, user\n" + imports)
    (folder / "main.py").write_text(script)
    env = {**env_for(core), "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(
        [sys.executable, "-m", "muckrack.hmr", "main.py"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: queue.Queue[tuple[float, str]] = queue.Queue()
    err: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [out.put((time.monotonic(), line.strip())) for line in child.stdout or ()],
        daemon=True,
    ).start()
    threading.Thread(
        target=lambda: [err.put(line.strip()) for line in child.stderr or ()], daemon=True
    ).start()

    def expect(text: str) -> float:
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                when, line = out.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise SystemExit(f"{core}: no {text!r} within {DEADLINE} s") from None
            if line == text:
                return when
            if not line.startswith(("value", "computing")):
                raise SystemExit(f"{core}: unexpected output {line!r}")

    def reload_line() -> float:
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                line = err.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise SystemExit(f"{core}: no reload line within {DEADLINE} s") from None
            found = RELOADED.match(line)
            if found:
                return float(found.group(1))
            raise SystemExit(f"{core}: unexpected line {line!r}")

    live: list[float] = []
    reloads: list[float] = []
    try:
        expect("computing")
        expect("value 0 0")
        time.sleep(first_after)
        for n in range(1, edits + 1):
            began = time.monotonic()
            (folder / "work.py").write_text(WORK.format(n=n))
            live.append((expect(f"value {n} {n}") - began) * 1000)
            reloads.append(reload_line())
            time.sleep(PAUSE)
    finally:
        child.kill()
        child.wait()
    return live, reloads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.busy", description=__doc__)
    parser.add_argument("--edits", type=int, default=8, help="saves per process (8)")
    parser.add_argument("--runs", type=int, default=3, help="processes per core (3)")
    parser.add_argument(
        "--modules", type=int, default=0, help="more modules the script imports first (0)"
    )
    parser.add_argument(
        "--first-after",
        type=float,
        default=FIRST_AFTER,
        help=f"seconds from the start of the computing to the first save ({FIRST_AFTER})",
    )
    args = parser.parse_args(argv)
    rows = []
    for core in available_cores():
        first_live: list[float] = []
        first_reload: list[float] = []
        live: list[float] = []
        reloads: list[float] = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="hmr-busy-") as folder:
                each_live, each_reload = run_once(
                    core, args.edits, Path(folder), args.modules, args.first_after
                )
            first_live.append(each_live[0])
            first_reload.append(each_reload[0])
            live.extend(each_live[1:])
            reloads.extend(each_reload[1:])
        low, high = quartiles(live)
        rows.append(
            f"| {core} | {fmt(median(first_live))} | {fmt(median(first_reload))} "
            f"| {fmt(median(live))} [{fmt(low)}-{fmt(high)}] | {fmt(median(reloads))} |"
        )
    print("# Saves reaching a program that computes in two threads\n")
    print(f"- command: `python -m benchmarks.busy {' '.join(argv or sys.argv[1:])}`".rstrip())
    print(
        f"- {args.runs} processes per core, {args.edits} saves each, {args.modules} more modules,"
        f" the first save {args.first_after} s after the computing began; medians [quartiles]\n"
    )
    print("| core | first save: live ms | its reload ms | later saves: live ms | reload ms |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    print("\nAll result checks passed.")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
