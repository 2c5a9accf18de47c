"""``python -m benchmarks.workers [--edits N] [--workers N]``: a save reaching every worker.

A script keeps a ``multiprocessing`` pool alive (fork, then spawn) under
``python -m muckrack.hmr``, on each core.  Each edit rewrites the body of the
function the workers run; the clock runs from just before the file is
written until the CLI's line for the save says every process applied it
(the supervisor logs it once all have answered).  Then the pool is asked,
every worker at once (a barrier), and each must return the new value with
its PID unchanged: the run exits 1 otherwise, never because of a timing.

The alternative people have, a restart of every worker, is measured as a
cold start of the same script with plain ``python`` until every worker of a
new pool has answered.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .__main__ import available_cores, median

SCRIPT = """\
import json, multiprocessing, os, sys
import work

_barrier = None


def _init(barrier):
    global _barrier
    _barrier = barrier


def task(_):
    _barrier.wait(timeout=20)
    return [work.value(), os.getpid()]


if __name__ == "__main__":
    kind, workers = sys.argv[1], int(sys.argv[2])
    ctx = multiprocessing.get_context(kind)
    with ctx.Pool(workers, initializer=_init, initargs=(ctx.Barrier(workers),)) as pool:
        print(json.dumps(pool.map(task, range(workers))), flush=True)
        if len(sys.argv) > 3:
            sys.exit(0)  # the restart baseline: one answer from every worker
        for line in sys.stdin:
            print(json.dumps(pool.map(task, range(workers))), flush=True)
"""


def _work(value: int) -> str:
    return f"def value():\n    return {value}\n"


def _save_to_every_worker(core: str, kind: str, workers: int, edits: int) -> list[float]:
    """Milliseconds from each save to the line saying every process applied it."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "work.py").write_text(_work(0))
        (root / "main.py").write_text(SCRIPT)
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1")
        env.pop("MUCKRACK_HMR_NO_EXTENSIONS", None)
        if core == "py":
            env["MUCKRACK_HMR_NO_EXTENSIONS"] = "1"
        proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "muckrack.hmr", "-v", "main.py", kind, str(workers)],
            cwd=root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        try:
            pids = {pid for _, pid in json.loads(proc.stdout.readline())}
            for line in proc.stderr:  # the watcher tracks the module: saves are seen
                if line.startswith("hmr: tracking ") and "work" in line:
                    break
            line_for = re.compile(rf"^hmr: reloaded work in {workers + 1} processes ")
            times = []
            for edit in range(1, edits + 1):
                started = time.perf_counter()
                (root / "work.py").write_text(_work(edit))
                for line in proc.stderr:
                    if line_for.match(line):
                        break
                    if "failed" in line:
                        raise SystemExit(f"a reload failed: {line}")
                times.append((time.perf_counter() - started) * 1000.0)
                proc.stdin.write("ask\n")
                proc.stdin.flush()
                answers = json.loads(proc.stdout.readline())
                if {value for value, _ in answers} != {edit} or {p for _, p in answers} != pids:
                    raise SystemExit(f"edit {edit}: not every worker runs it in place: {answers}")
            return times
        finally:
            proc.kill()
            proc.wait()


def _restart(kind: str, workers: int, runs: int) -> list[float]:
    """Milliseconds for a cold start of the script until every worker answered."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "work.py").write_text(_work(0))
        (root / "main.py").write_text(SCRIPT)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "main.py", kind, str(workers), "once"],
                cwd=root,
                check=True,
                capture_output=True,
            )
            times.append((time.perf_counter() - started) * 1000.0)
        return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workers")
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    print(f"save -> all {args.workers} workers run the new code (median of {args.edits} edits)")
    for kind in ("fork", "spawn"):
        restart = median(_restart(kind, args.workers, max(3, args.edits // 4)))
        for core in available_cores():
            hmr = median(_save_to_every_worker(core, kind, args.workers, args.edits))
            print(
                f"  {kind:6} {core:2} core: {hmr:7.1f} ms   "
                f"(restart of every worker: {restart:7.1f} ms, {restart / hmr:5.1f}x)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
