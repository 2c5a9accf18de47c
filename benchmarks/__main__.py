"""``python -m benchmarks [--quick] [--sizes 100,1000] [--plot DIR]``: the HMR benchmark report.

For each size N a codebase is generated (:mod:`benchmarks.generate`) in a
temporary folder, and each core (compiled ``c``, pure ``py``) is measured in
fresh interpreters, one per measurement, so that import caches are cold:

a. cold restart: wall time of ``python main.py``, and of the same program
   under ``python -m muckrack.hmr --no-watch``;
b. import-wrapper overhead on a cold import: ``time.perf_counter`` around
   the import of the whole app in one process, plain vs after
   ``muckrack_hmr.install([root])``;
c. import-wrapper overhead on a repeated lazy ``import json`` made by a
   function of a tracked project module (``timeit``, plain vs hooked,
   interleaved in one process);
d. ``__hmr__.reload_module`` latency of a leaf, a mid and the core module
   after an edit of a function body, with the number of modules re-executed;
e. cold restart / reload.

Variants that are compared run interleaved, round-robin with a rotating
order, and ratios are medians of per-round ratios.  Every run also checks
its results (the new code is visible after a reload, the re-executed modules
are exactly the ones early cutoff must run (``marker()`` is called by nobody
at import time, so only the edited module), in dependency order, the
dependency graph matches the generated imports, ...): the exit
status is 1 when any check fails, whatever the timings.

``--plot DIR`` also measures edit-to-live latency in the web servers
(:mod:`benchmarks.latency`, or its ``--json`` output given with
``--latency-json``) and draws both sets of figures as PNGs into DIR
(:mod:`benchmarks.plot`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .generate import Info, generate

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CHILD = HERE / "_child.py"
CORES = ("c", "py")


# -- plumbing -------------------------------------------------------------------


def available_cores() -> list[str]:
    try:
        from muckrack_hmr import _hmr_core  # noqa: F401
    except ImportError:
        return ["py"]
    return list(CORES)


def env_for(core: str | None) -> dict[str, str]:
    """The environment of a child: ``core`` None means no HMR at all."""
    env = dict(os.environ)
    env.pop("MUCKRACK_HMR_NO_EXTENSIONS", None)
    # .pyc files are wanted: the cold-import figures are for a warmed cache.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    env["NO_COLOR"] = "1"
    if core == "py":
        env["MUCKRACK_HMR_NO_EXTENSIONS"] = "1"
    return env


def rotate(items: Sequence[Any], shift: int) -> list[Any]:
    shift %= len(items)
    return list(items[shift:]) + list(items[:shift])


def median(values: Sequence[float]) -> float:
    values = [value for value in values if not math.isnan(value)]
    return statistics.median(values) if values else math.nan


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    return [a / b for a, b in zip(numerators, denominators, strict=True) if b > 0]


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    values = sorted(value for value in values if not math.isnan(value))
    if len(values) < 2:
        return (values[0], values[0]) if values else (math.nan, math.nan)
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


class Run:
    """One benchmark session: the settings, the errors found, progress output."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.errors: list[str] = []
        self.python = sys.executable

    def error(self, message: str) -> None:
        self.errors.append(message)
        print(f"  ERROR: {message}", file=sys.stderr, flush=True)

    def progress(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def run(
        self, what: str, cmd: list[str], env: dict[str, str], cwd: Path
    ) -> tuple[float, subprocess.CompletedProcess[str] | None]:
        """Run ``cmd``; its wall time in ms, and the finished process (None on failure)."""
        start = time.perf_counter()
        proc = subprocess.run(
            cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=900
        )
        elapsed = (time.perf_counter() - start) * 1000.0
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            self.error(f"{what}: exit status {proc.returncode}\n{tail}")
            return math.nan, None
        return elapsed, proc

    def child(
        self, what: str, args: list[str], core: str | None, cwd: Path
    ) -> tuple[float, dict[str, Any] | None]:
        """Run ``benchmarks/_child.py``; its wall time and the JSON it printed last."""
        elapsed, proc = self.run(what, [self.python, str(CHILD), *args], env_for(core), cwd)
        if proc is None:
            return elapsed, None
        try:
            result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            self.error(f"{what}: no JSON result in {proc.stdout[-500:]!r}")
            return elapsed, None
        for message in result.get("errors", []):
            self.error(f"{what}: {message}")
        return elapsed, result


# -- one size -------------------------------------------------------------------


def info_json(info: Info) -> dict[str, Any]:
    assert info.root is not None
    return {
        "root": str(info.root),
        "repo": str(REPO),
        "n_modules": info.n_modules,
        "leaf": info.leaf,
        "mid": info.mid,
        "core": info.core,
        "registering": info.registering,
        "deps": info.deps,
        "expected": {
            kind: sorted(info.expected_reload(name))
            for kind, name in (("leaf", info.leaf), ("mid", info.mid), ("core", info.core))
        },
    }


def measure_size(run: Run, n: int, cores: list[str]) -> dict[str, Any]:
    args = run.args
    tmp = Path(tempfile.mkdtemp(prefix=f"hmr-bench-{n}-"))
    root = tmp / "proj"
    try:
        started = time.perf_counter()
        info = generate(root, n, seed=args.seed)
        generate_s = time.perf_counter() - started
        info_path = tmp / "info.json"
        info_path.write_text(json.dumps(info_json(info)))
        run.progress(
            f"N={n}: generated {n} modules + {len(info.packages)} packages in {generate_s:.2f}s "
            f"under {root}; leaf={info.leaf} mid={info.mid} core={info.core}"
        )
        result: dict[str, Any] = {"info": info, "n_packages": len(info.packages)}
        result["cold"] = measure_cold(run, info, cores)
        result["lazy"] = measure_lazy(run, info, cores)
        result["reload"] = measure_reload(run, info, info_path, cores)
        if cores == ["c", "py"]:
            result["hotpaths"] = measure_hotpaths(run, info)
        return result
    finally:
        if args.keep:
            run.progress(f"N={n}: kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def measure_cold(run: Run, info: Info, cores: list[str]) -> dict[str, list[float]]:
    """a. and b.: every variant in its own fresh process, round-robin."""
    assert info.root is not None
    root = info.root
    main = str(info.main)
    expected_line = f"app: {info.registering} modules registered"
    n_loaded = info.n_modules + len(info.packages)

    def restart(core: str | None) -> Callable[[], float]:
        if core is None:
            cmd = [run.python, main]
        else:
            cmd = [run.python, "-m", "muckrack.hmr", "--no-watch", "-q", main]

        def measure() -> float:
            what = f"N={info.n_modules} restart {core or 'plain'}"
            elapsed, proc = run.run(what, cmd, env_for(core), root)
            if proc is not None and expected_line not in proc.stdout:
                run.error(f"{what}: printed {proc.stdout.strip()!r}, want {expected_line!r}")
            return elapsed

        return measure

    def cold_import(core: str | None) -> Callable[[], float]:
        def measure() -> float:
            what = f"N={info.n_modules} import {core or 'plain'}"
            variant = "plain" if core is None else "hmr"
            _, result = run.child(what, ["import", str(root), variant], core, root)
            if result is None:
                return math.nan
            if result["loaded"] != n_loaded or result["registered"] != info.registering:
                run.error(
                    f"{what}: loaded {result['loaded']} modules (want {n_loaded}), "
                    f"registry has {result['registered']} (want {info.registering})"
                )
            if core is not None and result["tracked"] != n_loaded:
                run.error(f"{what}: {result['tracked']} modules tracked, want {n_loaded}")
            return float(result["ms"])

        return measure

    def startup() -> float:
        return run.run("python -c pass", [run.python, "-c", "pass"], env_for(None), root)[0]

    variants: dict[str, Callable[[], float]] = {"startup": startup}
    variants["restart-plain"] = restart(None)
    for core in cores:
        variants[f"restart-{core}"] = restart(core)
    variants["import-plain"] = cold_import(None)
    for core in cores:
        variants[f"import-{core}"] = cold_import(core)

    # Warm-up: writes the .pyc files (of the app and of muckrack_hmr) and
    # fills the OS file cache; not recorded.
    for measure in variants.values():
        measure()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for index in range(rounds_for(run.args, info.n_modules)):
        for name in rotate(names, index):
            samples[name].append(variants[name]())
    run.progress(
        f"N={info.n_modules}: cold: "
        + ", ".join(f"{name} {median(values):.1f} ms" for name, values in samples.items())
    )
    return samples


def rounds_for(args: argparse.Namespace, n: int) -> int:
    """Fresh processes per cold variant: more for small (cheap, noisier) codebases."""
    if args.rounds is not None:
        return int(args.rounds)
    if args.quick:
        return 3
    return 15 if n <= 200 else 7 if n <= 2000 else 5


def measure_lazy(run: Run, info: Info, cores: list[str]) -> dict[str, dict[str, list[float]]]:
    """c.: one process per core and chunk, cores alternating; plain/hooked inside."""
    assert info.root is not None
    samples: dict[str, dict[str, list[float]]] = {
        core: {"plain_ns": [], "hmr_ns": []} for core in cores
    }
    for chunk in range(run.args.lazy_processes):
        for core in rotate(cores, chunk):
            what = f"N={info.n_modules} lazy import {core}"
            _, result = run.child(
                what,
                [
                    "lazy",
                    str(info.root),
                    info.leaf,
                    str(run.args.lazy_number),
                    str(run.args.lazy_rounds),
                ],
                core,
                info.root,
            )
            if result is not None:
                samples[core]["plain_ns"] += result["plain_ns"]
                samples[core]["hmr_ns"] += result["hmr_ns"]
    run.progress(
        f"N={info.n_modules}: lazy import: "
        + ", ".join(
            f"{core} {median(s['plain_ns']):.0f} -> {median(s['hmr_ns']):.0f} ns"
            for core, s in samples.items()
        )
    )
    return samples


def measure_hotpaths(run: Run, info: Info) -> dict[str, Any]:
    """f.: the graph's hot paths on the app's graph, both cores side by side in one process."""
    assert info.root is not None
    rounds = 5 if run.args.quick else 30
    what = f"N={info.n_modules} hot paths"
    _, result = run.child(
        what, ["hotpaths", str(info.root), info.core, str(rounds)], None, info.root
    )
    if result is None:
        return {}
    run.progress(
        f"N={info.n_modules}: hot paths: "
        + "; ".join(
            f"{label} c {median(t['c']):.3f} ms, py {median(t['py']):.3f} ms"
            for label, t in result["ms"].items()
        )
    )
    return dict(result["ms"])


def measure_reload(
    run: Run, info: Info, info_path: Path, cores: list[str]
) -> dict[str, dict[str, list[dict[str, float]]]]:
    """d.: per core, a few processes (cores alternating), each editing round-robin."""
    assert info.root is not None
    samples: dict[str, dict[str, list[dict[str, float]]]] = {core: {} for core in cores}
    processes = run.args.reload_processes
    reps = max(1, math.ceil(run.args.reload_edits / processes))
    for chunk in range(processes):
        for core in rotate(cores, chunk):
            what = f"N={info.n_modules} reload {core}"
            tag = f"edit-{core}-{chunk}"
            _, result = run.child(what, ["reload", str(info_path), str(reps), tag], core, info.root)
            if result is not None:
                for kind, values in result["results"].items():
                    samples[core].setdefault(kind, []).extend(values)
                samples[core]["memory"] = [result["memory"]]
    run.progress(
        f"N={info.n_modules}: reload: "
        + "; ".join(
            f"{core} "
            + ", ".join(
                f"{kind} {median([v['wall'] for v in values]):.2f} ms"
                for kind, values in by_kind.items()
                if kind != "memory"
            )
            for core, by_kind in samples.items()
        )
    )
    return samples


# -- the report -----------------------------------------------------------------


def fmt(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def fmt_ratio(values: Sequence[float]) -> str:
    if not values:
        return "n/a"
    low, high = quartiles(values)
    return f"{median(values):.2f}x [{low:.2f}-{high:.2f}]"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def source_state() -> str:
    """The git commit measured, the modified files of src/, and a stale-build warning."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    text = f"git {head}"
    modified = [line[3:] for line in status if not line.startswith("??")]
    if modified:
        text += f", with uncommitted changes to {', '.join(modified)}"
    try:
        from muckrack_hmr import _hmr_core

        built = Path(_hmr_core.__file__).stat().st_mtime
        pyx = REPO / "src" / "_hmr_core.pyx"
        if pyx.exists() and pyx.stat().st_mtime > built:
            text += " (WARNING: the compiled core is older than src/_hmr_core.pyx)"
    except (ImportError, OSError, TypeError):
        pass
    return text


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return (
            "| "
            + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
            + " |"
        )

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def report(run: Run, results: dict[int, dict[str, Any]], cores: list[str], argv: list[str]) -> str:
    import muckrack_hmr

    args = run.args
    out: list[str] = []
    out.append("# muckrack-python-hmr benchmarks")
    out.append("")
    out.append(f"- command: `{shlex.join([sys.executable, '-m', 'benchmarks', *argv])}`")
    out.append(
        f"- machine: {platform.platform()}; {cpu_model()}; {os.cpu_count()} CPUs (os.cpu_count)"
    )
    out.append(
        f"- python: {platform.python_implementation()} {platform.python_version()} "
        f"({sys.executable})"
    )
    out.append(
        f"- muckrack-python-hmr {muckrack_hmr.__version__}; cores measured: {', '.join(cores)}"
    )
    rounds = ", ".join(f"{rounds_for(args, n)} for N={n}" for n in results)
    out.append(
        f"- rounds: {rounds} fresh processes per variant (cold), "
        f"{args.lazy_processes}x{args.lazy_rounds} rounds of {args.lazy_number:,} calls "
        f"(lazy import), {args.reload_edits} edits per module and core (reload); seed {args.seed}"
    )
    out.append(f"- source: {source_state()}")
    out.append("- every figure is a median; ratios are medians of per-round ratios [quartiles]")
    out.append("")
    for n, result in results.items():
        info: Info = result["info"]
        out.append(
            f"- N={n}: {n} modules + {result['n_packages']} packages; leaf `{info.leaf}` "
            f"(dependents: {len(info.transitive_dependents(info.leaf))}), mid `{info.mid}` "
            f"({len(info.transitive_dependents(info.mid))}), core `{info.core}` "
            f"({len(info.transitive_dependents(info.core))})"
        )
    out.append("")

    out.append("## a. Cold restart: wall time of a fresh process (ms)")
    out.append("")
    header = ["N", "python -c pass", "python main.py"]
    for core in cores:
        header += [f"hmr {core}", f"hmr {core} / plain"]
    rows = []
    for n, result in results.items():
        cold = result["cold"]
        row = [str(n), fmt(median(cold["startup"])), fmt(median(cold["restart-plain"]))]
        for core in cores:
            row.append(fmt(median(cold[f"restart-{core}"])))
            row.append(fmt_ratio(ratios(cold[f"restart-{core}"], cold["restart-plain"])))
        rows.append(row)
    out.append(table(header, rows))
    out.append("")
    out.append("`hmr X` = `python -m muckrack.hmr --no-watch -q main.py` on core X.")
    out.append("")

    out.append("## b. Import-wrapper overhead on a cold import of the whole app")
    out.append("")
    out.append("`time.perf_counter` around main.py's imports, one fresh process per run (ms).")
    out.append("")
    header = ["N", "plain"]
    for core in cores:
        header += [f"hmr {core}", f"{core} / plain"]
    if len(cores) == 2:
        header.append("py / c")
    rows = []
    for n, result in results.items():
        cold = result["cold"]
        row = [str(n), fmt(median(cold["import-plain"]))]
        for core in cores:
            row.append(fmt(median(cold[f"import-{core}"])))
            row.append(fmt_ratio(ratios(cold[f"import-{core}"], cold["import-plain"])))
        if len(cores) == 2:
            row.append(fmt_ratio(ratios(cold["import-py"], cold["import-c"])))
        rows.append(row)
    out.append(table(header, rows))
    out.append("")

    out.append("## c. Import-wrapper overhead on a repeated lazy `import json`")
    out.append("")
    out.append(
        "`timeit` of a function of a tracked project module (the leaf) doing `import json`, "
        "original `__import__` vs the tracker's, interleaved in one process (ns per call, "
        "the call of the function included)."
    )
    out.append("")
    header = ["N", "core", "plain ns", "hmr ns", "overhead ns", "hmr / plain"]
    rows = []
    for n, result in results.items():
        for core in cores:
            lazy = result["lazy"][core]
            overhead = [h - p for h, p in zip(lazy["hmr_ns"], lazy["plain_ns"], strict=True)]
            rows.append(
                [
                    str(n),
                    core,
                    fmt(median(lazy["plain_ns"])),
                    fmt(median(lazy["hmr_ns"])),
                    fmt(median(overhead)),
                    fmt_ratio(ratios(lazy["hmr_ns"], lazy["plain_ns"])),
                ]
            )
    out.append(table(header, rows))
    out.append("")

    out.append("## d./e. Reload latency by edit, against its floor and a restart")
    out.append("")
    out.append(
        "`__hmr__.reload_module(name)` after an edit of the leaf, mid or core module: `body` "
        "rewrites `marker()`, `constant` a module constant (`LABEL`), `method` a method of a "
        "class (its instances made before the edit are checked too). Columns: the modules "
        "whose code ran (early cutoff: nothing reads these at import time, so only the edited "
        "module, however many import it), the wall time around the call, the floor (compile "
        "and exec of the edited module's source alone, in a scratch module), reload / floor, "
        "and `python main.py` / reload. Measured after `remember_sources()` and `warm()`, as "
        "the watcher leaves a running program."
    )
    out.append("")
    header = [
        "N",
        "core",
        "edit",
        "re-executed",
        "wall ms",
        "floor ms",
        "reload / floor",
        "restart / reload",
    ]
    rows = []
    for n, result in results.items():
        restart = median(result["cold"]["restart-plain"])
        for core in cores:
            for kind, values in result["reload"][core].items():
                if kind == "memory":
                    continue
                if not values:
                    rows.append([str(n), core, kind, "n/a", "n/a", "n/a", "n/a", "n/a"])
                    continue
                counts = sorted({int(v["n"]) for v in values})
                wall = median([v["wall"] for v in values])
                rows.append(
                    [
                        str(n),
                        core,
                        kind,
                        "/".join(map(str, counts)),
                        fmt(wall, 2),
                        fmt(median([v["floor"] for v in values]), 2),
                        fmt_ratio(
                            ratios([v["wall"] for v in values], [v["floor"] for v in values])
                        ),
                        f"{restart / wall:,.0f}x",
                    ]
                )
    out.append(table(header, rows))
    out.append("")

    out.append("## f. Compiled core against the pure twin, per hot path")
    out.append("")
    out.append(
        "The import hook: the overhead of a repeated lazy import over the plain one (from c.). "
        "The graph: the app's import graph copied into both cores in one process, each query "
        "timed on both, interleaved (ms per call): the dependents of the core module plus "
        "their topological order (what a reload of it plans), and the importers that bound "
        "a name from it (what rebinding traverses)."
    )
    out.append("")
    header = ["N", "hot path", "c", "py", "py / c"]
    rows = []
    for n, result in results.items():
        lazy = result["lazy"]
        if "c" in lazy and "py" in lazy:
            overhead = {
                core: [
                    h - p for h, p in zip(lazy[core]["hmr_ns"], lazy[core]["plain_ns"], strict=True)
                ]
                for core in ("c", "py")
            }
            rows.append(
                [
                    str(n),
                    "import hook, repeated lazy import (overhead ns)",
                    fmt(median(overhead["c"])),
                    fmt(median(overhead["py"])),
                    f"{median(overhead['py']) / max(median(overhead['c']), 1e-9):.1f}x",
                ]
            )
        for label, timing in result.get("hotpaths", {}).items():
            rows.append(
                [
                    str(n),
                    f"graph: {label} (ms)",
                    fmt(median(timing["c"]), 3),
                    fmt(median(timing["py"]), 3),
                    fmt_ratio(ratios(timing["py"], timing["c"])),
                ]
            )
    out.append(table(header, rows))
    out.append("")

    out.append("## g. Bookkeeping memory")
    out.append("")
    out.append(
        "What the HMR's records hold in the running program after `remember_sources()` and "
        "`warm()`: the import graph, the tracker's record of import statements, the project "
        "filter's baselines, and the source store (its index and the analysis of every module; "
        "the source snapshots themselves are kept in an unlinked temporary file). KB, from a "
        "walk of those objects (`benchmarks/_child.py: bookkeeping_bytes`)."
    )
    out.append("")
    header = ["N", "core", "graph", "tracker", "project", "sources", "total", "per module"]
    rows = []
    for n, result in results.items():
        for core in cores:
            memory = result["reload"][core].get("memory")
            if not memory:
                continue
            sizes = memory[-1]
            rows.append(
                [str(n), core]
                + [fmt(sizes[part] / 1024) for part in ("graph", "tracker", "project", "sources")]
                + [fmt(sizes["total"] / 1024), fmt(sizes["total"] / n / 1024, 2)]
            )
    out.append(table(header, rows))
    return "\n".join(out)


def measure_latencies(run: Run) -> dict[str, dict[str, list[float]]]:
    """Edit-to-live latency per framework and server (ms), for ``--plot``."""
    from . import latency

    if run.args.latency_json is not None:
        loaded: dict[str, dict[str, list[float]]] = json.loads(
            run.args.latency_json.read_text(encoding="utf-8")
        )
        return loaded
    latency_args = latency.parse_args(["--quick"] if run.args.quick else [])
    cores = available_cores()
    errors = latency.Errors()
    found: dict[str, dict[str, list[float]]] = {}
    for framework in latency.FRAMEWORKS:
        run.progress(f"latency: {framework}, {latency_args.edits} edits per server")
        variants = latency.measure_framework(framework, cores, latency_args, errors)
        found[framework] = {variant.name: variant.latencies for variant in variants}
    run.errors.extend(f"latency: {message}" for message in errors)
    return found


# -- main -------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="N=100 only and few rounds: a smoke test that fails on wrong results",
    )
    parser.add_argument("--sizes", help="comma-separated module counts (default: 100,1000)")
    parser.add_argument(
        "--rounds",
        type=int,
        help="fresh processes per cold variant (default: 15 for N<=200, 7 for N<=2000, else 5)",
    )
    parser.add_argument("--lazy-number", type=int, help="calls per timeit round (default 1e6)")
    parser.add_argument("--lazy-rounds", type=int, help="timeit rounds per process (default 3)")
    parser.add_argument("--lazy-processes", type=int, help="processes per core (default 2)")
    parser.add_argument("--reload-edits", type=int, help="edits per module and core (default 8)")
    parser.add_argument(
        "--reload-processes", type=int, help="reload processes per core (default 2)"
    )
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--keep", action="store_true", help="keep the generated codebases")
    parser.add_argument(
        "--plot",
        metavar="DIR",
        type=Path,
        help="also measure edit-to-live latency in the web servers (benchmarks.latency; "
        "3 edits with --quick) and draw reload-vs-restart.png and edit-to-live.png into DIR",
    )
    parser.add_argument(
        "--latency-json",
        metavar="FILE",
        type=Path,
        help="with --plot: draw the latencies of an earlier `python -m benchmarks.latency "
        "--json FILE` instead of measuring them again",
    )
    args = parser.parse_args(argv)
    if args.latency_json is not None and args.plot is None:
        parser.error("--latency-json needs --plot")
    quick = args.quick
    defaults = {
        "sizes": "100" if quick else "100,1000",
        "lazy_number": 100_000 if quick else 1_000_000,
        "lazy_rounds": 3,
        "lazy_processes": 1 if quick else 2,
        "reload_edits": 3 if quick else 8,
        "reload_processes": 1 if quick else 2,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    try:
        args.sizes = [int(size) for size in str(args.sizes).split(",") if size.strip()]
    except ValueError:
        parser.error(f"--sizes: not a comma-separated list of integers: {args.sizes!r}")
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    for key in ("lazy_number", "lazy_rounds", "lazy_processes", "reload_edits"):
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be at least 1")
    if args.reload_processes < 1:
        parser.error("--reload-processes must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    run = Run(args)
    cores = available_cores()
    if cores != list(CORES):
        run.progress("WARNING: the compiled core is not built: measuring the pure core only")
    started = time.perf_counter()
    results: dict[int, dict[str, Any]] = {}
    for n in args.sizes:
        results[n] = measure_size(run, n, cores)
    latencies = measure_latencies(run) if args.plot is not None else {}
    elapsed = time.perf_counter() - started
    print(report(run, results, cores, argv))
    print()
    if args.plot is not None:
        from . import plot

        command = shlex.join(["python", "-m", "benchmarks", *argv])
        for path in plot.draw(args.plot, results, cores, latencies, command):
            print(f"wrote {path}")
        print()
    print(f"Total runtime: {elapsed:.1f} s")
    if run.errors:
        print()
        print(f"FAILED: {len(run.errors)} wrong result(s):")
        for message in run.errors:
            print(f"- {message}")
        return 1
    print("All result checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
