"""``python -m benchmarks.ipython_cells [--quick] [--sizes 100,1000,5000]``: what a cell costs.

The per-cell cost of ``%load_ext muckrack_hmr`` next to ``%autoreload 2``, as
``sys.modules`` grows.  For each size N, N project modules are generated in a
temporary folder; for each setup a fresh interpreter makes an IPython shell
(``InteractiveShell``, what a Jupyter kernel runs cells with), imports the N
modules in a cell, and times ``run_cell("pass")`` many times:

* ``plain``: no extension (the floor);
* ``hmr-c`` / ``hmr-py``: ``%load_ext muckrack_hmr`` on the compiled / pure core;
* ``autoreload2``: ``%load_ext autoreload`` and ``%autoreload 2``.

The figure is the median wall time of one cell, and the cost is that less the
floor.  Each run also checks the setup works: after the timing, a module is
edited and the next cell must see the edit (exit status 1 otherwise, whatever
the timings).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETUPS = ("plain", "hmr-c", "hmr-py", "autoreload2")
SIZES = (100, 1000, 5000)
REPO = Path(__file__).resolve().parent.parent


def _write_modules(root: Path, count: int) -> list[str]:
    names = [f"mod_{index:05d}" for index in range(count)]
    for index, name in enumerate(names):
        (root / f"{name}.py").write_text(f"VALUE = {index}\n\n\ndef value():\n    return VALUE\n")
    return names


def child(setup: str, root: Path, count: int, cells: int) -> dict[str, object]:
    """In a fresh interpreter: time ``cells`` empty cells with ``count`` modules loaded."""
    from IPython.core.interactiveshell import InteractiveShell

    os.chdir(root)
    sys.path.insert(0, str(root))
    shell = InteractiveShell.instance()
    if setup.startswith("hmr"):
        shell.run_line_magic("load_ext", "muckrack_hmr")
    elif setup == "autoreload2":
        shell.run_line_magic("load_ext", "autoreload")
        shell.run_line_magic("autoreload", "2")
    names = sorted(path.stem for path in root.glob("mod_*.py"))
    for start in range(0, len(names), 500):
        result = shell.run_cell("import " + ", ".join(names[start : start + 500]))
        result.raise_error()
    if setup.startswith("hmr"):
        hmr = sys.modules["builtins"].__hmr__
        hmr.warm()  # the watcher's idle work, done now: not timed with the cells
    for _ in range(20):
        shell.run_cell("pass", store_history=False)  # warm-up
    times = []
    for _ in range(cells):
        start = time.perf_counter()
        shell.run_cell("pass", store_history=False)
        times.append(time.perf_counter() - start)
    ok = _edit_applies(shell, setup, root, names[0])
    return {
        "setup": setup,
        "modules": count,
        "sys_modules": len(sys.modules),
        "cell_us": statistics.median(times) * 1e6,
        "ok": ok,
    }


def _edit_applies(shell: object, setup: str, root: Path, name: str) -> bool:
    """Edit ``name``; does the next cell see it?  (Not asked of ``plain``.)"""
    if setup == "plain":
        return True
    path = root / f"{name}.py"
    loaded = None
    if setup.startswith("hmr"):
        from muckrack_hmr.integrations.ipython import extension

        loaded = extension()
        if loaded is None:
            return False
    seen = 0 if loaded is None else loaded.received
    # A later mtime, whatever the clock's tick: %autoreload compares mtimes.
    path.write_text("VALUE = 'edited'\n\n\ndef value():\n    return VALUE\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    if loaded is not None and not loaded.wait_for_saves(15, seen + 1):
        return False
    run = shell.run_cell  # type: ignore[attr-defined]
    run(f"import {name} as _edited; _seen = _edited.value()", store_history=False)
    return bool(shell.user_ns.get("_seen") == "edited")  # type: ignore[attr-defined]


def measure(setup: str, count: int, cells: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "project"
        root.mkdir()
        _write_modules(root, count)
        env = dict(os.environ, IPYTHONDIR=str(Path(folder) / "ipython"))
        env.pop("MUCKRACK_HMR_NO_EXTENSIONS", None)
        if setup == "hmr-py":
            env["MUCKRACK_HMR_NO_EXTENSIONS"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.ipython_cells",
                "--child",
                setup,
                str(root),
                str(count),
                str(cells),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"{setup} with {count} modules failed:\n{out.stderr}")
        result: dict[str, object] = json.loads(out.stdout.splitlines()[-1])
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ipython_cells")
    parser.add_argument("--quick", action="store_true", help="fewer cells, sizes 100 and 1000")
    parser.add_argument("--sizes", help="comma-separated module counts (default 100,1000,5000)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        setup, root, count, cells = args.child
        print(json.dumps(child(setup, Path(root), int(count), int(cells))))
        return 0
    sizes = [int(size) for size in args.sizes.split(",")] if args.sizes else list(SIZES)
    if args.quick and not args.sizes:
        sizes = [100, 1000]
    cells = 100 if args.quick else 500
    results = [measure(setup, count, cells) for count in sizes for setup in SETUPS]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"Per-cell wall time of run_cell('pass'), median of {cells} cells (µs)")
        print(f"{'modules':>8} {'sys.modules':>11} " + " ".join(f"{s:>12}" for s in SETUPS))
        for count in sizes:
            row = {r["setup"]: r for r in results if r["modules"] == count}
            print(
                f"{count:>8} {row['plain']['sys_modules']:>11} "
                + " ".join(f"{float(row[s]['cell_us']):>12.1f}" for s in SETUPS)  # type: ignore[arg-type]
            )
    failed = [r for r in results if not r["ok"]]
    for r in failed:
        print(f"FAILED: {r['setup']} with {r['modules']} modules did not apply an edit")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
