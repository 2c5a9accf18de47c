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

gunicorn (sync workers, where it is installed): the clock runs from the
write until the CLI's line for the save; then HTTP requests (bounded) must
see every worker PID serve the new value.  Its alternative is gunicorn's
own ``--reload``, without HMR: from the write until new workers, as many as
``--workers``, serve the new value.

``--app N`` (default 1000; 0 skips it): the workers of a pool import the
generated app of N modules (:mod:`benchmarks.generate`; the pool's parent
never does), and 1 s after they answered, the core module's ``helper()``
(which every module calls in a function) and ``marker()`` are edited, the
first save and then the steady state: per save, the reload's own time in the
slowest process (the CLI's line) and the modules that ran.  Each save must
run the core module alone, and every worker must return the new value.
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


# The supervising process at rest, after the saves: how long its CPU time is read over
# (seconds), after a pause for its idle-time work to finish.
_REST = 3.0
_SETTLE = 2.0


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far (Linux's /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _at_rest(pid: int) -> float | None:
    """The share of a core process ``pid`` uses while nothing is saved (in percent)."""
    time.sleep(_SETTLE)  # the measured span, not a synchronisation: nothing is awaited
    before = _cpu_seconds(pid)
    started = time.perf_counter()
    time.sleep(_REST)
    after = _cpu_seconds(pid)
    if before is None or after is None:
        return None
    return 100.0 * (after - before) / (time.perf_counter() - started)


def _env(core: str, **more: str) -> dict[str, str]:
    """The environment of a run on ``core`` ("c" or "py")."""
    env = dict(os.environ, NO_COLOR="1", **more)
    env.pop("MUCKRACK_HMR_NO_EXTENSIONS", None)
    if core == "py":
        env["MUCKRACK_HMR_NO_EXTENSIONS"] = "1"
    return env


def _under_the_cli(root: Path, env: dict[str, str], args: list[str]) -> subprocess.Popen[str]:
    """``python -m muckrack.hmr *args`` in ``root``, its three streams piped."""
    return subprocess.Popen(
        [sys.executable, "-u", "-m", "muckrack.hmr", *args],
        cwd=root,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _save_to_every_worker(
    core: str, kind: str, workers: int, edits: int, rest: list[float]
) -> list[float]:
    """Milliseconds from each save to the line saying every process applied it; the
    supervising process's CPU use at rest afterwards is appended to ``rest``."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "work.py").write_text(_work(0))
        (root / "main.py").write_text(SCRIPT)
        env = _env(core, PYTHONDONTWRITEBYTECODE="1")
        proc = _under_the_cli(root, env, ["-v", "main.py", kind, str(workers)])
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
            share = _at_rest(proc.pid)
            if share is not None:
                rest.append(share)
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


WSGI_APP = """\
import json, os


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps([value(), os.getpid()]).encode()]


def value():
    return {value}
"""

# The longest any wait here may take (seconds): a run that exceeds it is broken.
_PATIENCE = 30.0


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _served(port: int, value: int, workers: int, old: set[int] | None) -> set[int]:
    """GET / until ``workers`` PIDs served ``value`` (and, with ``old``, only PIDs not in it)."""
    import urllib.request

    seen: set[int] = set()
    deadline = time.monotonic() + _PATIENCE
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                found, pid = json.loads(response.read())
        except OSError:
            time.sleep(0.002)  # no worker listens for a moment (a restart): bounded
            continue
        if found == value and (old is None or pid not in old):
            seen.add(pid)
            if len(seen) == workers:
                return seen
    raise SystemExit(f"not every gunicorn worker served {value} within {_PATIENCE:.0f} s")


def _gunicorn(
    root: Path, port: int, workers: int, env: dict[str, str], hmr: bool
) -> subprocess.Popen[str]:
    command = ["-m", "muckrack.hmr", "-v"] if hmr else []
    command += ["-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}"]
    command += [] if hmr else ["--reload"]
    import gunicorn.config

    if hasattr(gunicorn.config, "ControlSocketDisable"):
        command.append("--no-control-socket")
    return subprocess.Popen(
        [sys.executable, "-u", *command, "app:app"],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if hmr else subprocess.DEVNULL,
        text=True,
    )


def _gunicorn_save(core: str | None, workers: int, edits: int) -> list[float]:
    """Milliseconds from each save to the CLI's line (``core``), or to every worker
    restarted by gunicorn's ``--reload`` serving it (``None``)."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "app.py").write_text(WSGI_APP.format(value=0))
        env = _env(core or "c", PYTHONDONTWRITEBYTECODE="1")
        port = _free_port()
        proc = _gunicorn(root, port, workers, env, hmr=core is not None)
        try:
            pids = _served(port, 0, workers, None)
            if proc.stderr is not None:
                for line in proc.stderr:  # the watcher tracks the app: saves are seen
                    if line.startswith("hmr: tracking ") and "app" in line:
                        break
            line_for = re.compile(rf"^hmr: reloaded app in {workers} processes ")
            times = []
            for edit in range(1, edits + 1):
                started = time.perf_counter()
                (root / "app.py").write_text(WSGI_APP.format(value=edit))
                if proc.stderr is None:  # gunicorn's --reload: new workers
                    pids = _served(port, edit, workers, pids)
                    times.append((time.perf_counter() - started) * 1000.0)
                    continue
                for line in proc.stderr:
                    if line_for.match(line):
                        break
                    if "failed" in line:
                        raise SystemExit(f"a reload failed: {line}")
                times.append((time.perf_counter() - started) * 1000.0)
                if _served(port, edit, workers, None) != pids:
                    raise SystemExit(f"edit {edit}: not every gunicorn worker runs it in place")
            return times
        finally:
            proc.terminate()
            proc.wait(timeout=_PATIENCE)


APP_SCRIPT = """\
import json, multiprocessing, os, sys

_barrier = None


def _init(barrier, root):
    global _barrier
    _barrier = barrier
    sys.path.insert(0, root)
    import main  # noqa: F401  (the generated app: every module)


def task(kind):
    _barrier.wait(timeout=60)
    from app.core import registry

    return [registry.helper("") if kind == "helper" else registry.marker(), os.getpid()]


if __name__ == "__main__":
    kind, workers = sys.argv[1], int(sys.argv[2])
    ctx = multiprocessing.get_context(kind)
    barrier = ctx.Barrier(workers)
    with ctx.Pool(workers, initializer=_init, initargs=(barrier, os.getcwd())) as pool:
        print(json.dumps(pool.map(task, ["helper"] * workers)), flush=True)
        for line in sys.stdin:
            print(json.dumps(pool.map(task, [line.strip()] * workers)), flush=True)
"""

# The CLI's line for a save the workers of the app applied: its modules and its time.
_APP_LINE = re.compile(
    r"^hmr: reloaded app\.core\.registry(?: \(\+(\d+) dependents?[^)]*\)| \([^)]*\))? "
    r"in (\d+) processes.* in ([\d.]+) ms \(slowest\)"
)


def _app_in_workers(
    core: str, kind: str, workers: int, size: int, edits: int
) -> dict[str, list[float]]:
    """Per kind of edit (``helper``, ``body``): the reload's ms in the slowest process of
    each save, the first one first (made 1 s after the workers imported the app)."""
    from .generate import CORE, edit, generate

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        info = generate(root, size)
        (root / "pool.py").write_text(APP_SCRIPT)
        core_path = info.path_of(CORE)
        env = _env(core)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # the app's second start: from its caches
        subprocess.run(
            [sys.executable, "main.py"], cwd=root, env=env, check=True, capture_output=True
        )
        proc = _under_the_cli(root, env, ["pool.py", kind, str(workers)])
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        try:
            pids = {pid for _, pid in json.loads(proc.stdout.readline())}
            time.sleep(1.0)  # the first save, 1 s after the workers imported the app
            found: dict[str, list[float]] = {"helper": [], "body": []}
            for number in range(edits):
                for what, times in found.items():
                    tag = f"{what}-{number}"
                    edit(core_path, what, tag)
                    for line in proc.stderr:
                        match = _APP_LINE.match(line)
                        if match:
                            break
                        if "failed" in line or "Traceback" in line:
                            raise SystemExit(f"a reload failed: {line}")
                    else:
                        raise SystemExit("the program ended")
                    if match.group(1) or int(match.group(2)) != workers:
                        raise SystemExit(f"{what} edit {number}: not the core alone: {line}")
                    times.append(float(match.group(3)))
                    proc.stdin.write(f"{what}\n")
                    proc.stdin.flush()
                    answers = json.loads(proc.stdout.readline())
                    if {value for value, _ in answers} != {tag} or {p for _, p in answers} != pids:
                        raise SystemExit(
                            f"{what} edit {number}: not every worker runs it: {answers}"
                        )
            return found
        finally:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workers")
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--app", type=int, default=1000, help="modules of the app (0: skip)")
    args = parser.parse_args(argv)
    if args.app:
        print(
            f"an app of {args.app} modules in {args.workers} workers: the reload's time in the "
            "slowest process, first save (1 s after start) and steady median"
        )
        for kind in ("fork", "spawn"):
            for core in available_cores():
                found = _app_in_workers(core, kind, args.workers, args.app, max(args.edits // 4, 3))
                cells = "   ".join(
                    f"{what}: first {times[0]:6.1f} ms, steady {median(times[1:]):6.1f} ms"
                    for what, times in found.items()
                )
                print(f"  {kind:6} {core:2} core: {cells}")
    print(f"save -> all {args.workers} workers run the new code (median of {args.edits} edits)")
    for kind in ("fork", "spawn"):
        restart = median(_restart(kind, args.workers, max(3, args.edits // 4)))
        for core in available_cores():
            rest: list[float] = []
            hmr = median(_save_to_every_worker(core, kind, args.workers, args.edits, rest))
            idle = f"; supervisor at rest: {rest[0]:.2f}% of a core" if rest else ""
            print(
                f"  {kind:6} {core:2} core: {hmr:7.1f} ms   "
                f"(restart of every worker: {restart:7.1f} ms, {restart / hmr:5.1f}x){idle}"
            )
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        print("  gunicorn: not installed, skipped")
        return 0
    reload = median(_gunicorn_save(None, args.workers, max(3, args.edits // 4)))
    for core in available_cores():
        hmr = median(_gunicorn_save(core, args.workers, args.edits))
        print(
            f"  gunicorn {core:2} core: {hmr:7.1f} ms   "
            f"(gunicorn --reload: {reload:7.1f} ms, {reload / hmr:5.1f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
