"""``python -m benchmarks.first_edit [--quick] [--sizes 1000,5000] [--objects 0,1000000]``.

What a user meets, on the generated app (:mod:`benchmarks.generate`), through
the real CLI in a subprocess, on both cores (``MUCKRACK_HMR_NO_EXTENSIONS=1``
forces the pure one):

* the first edit: ``python -m muckrack.hmr main.py --stay ...`` runs, with
  its watcher; main.py imports the app, prints ``app: N modules registered``
  and stays alive and idle.  Exactly 1 s after that line, the body of
  ``marker()`` of one module (the core ``app.core.registry``, a mid-layer
  module or a leaf) is rewritten; then the same module is edited again, a
  series of times (the steady state), each edit once the previous one is live.
  Per edit: the reload's own time (the ms of the CLI's ``hmr: reloaded ...``
  line), the modules that ran (1 + its "+N dependents"), and the time from
  the write until main.py, polling the function it held since before the
  edit, prints the new value (``app: live ...``).  No warm-up call is made
  that a user would not make.  The floor: compiling the module's source and
  executing it alone, in a program with the app imported (``_child.py
  floor``).  One fresh process per first edit, runs interleaved.
* start-up: the wall time from starting the process until main.py reports
  its imports done, for ``python main.py`` and ``python -m muckrack.hmr
  main.py`` with the watcher on and with ``--no-watch``, interleaved round by
  round; and with callgrind, the instructions of each whole process (all
  threads, and the main thread alone).
* ``--objects N``: the same with N more live objects, made by main.py
  before its imports.
* ``--kinds``: other edits than ``marker()``'s body (see
  ``benchmarks.generate.EDITS``); ``helper`` edits the body of the core's
  ``helper()``, which every module calls in a function (and none at import
  time): the core alone.
* ``--busy``: main.py computes without a pause after its imports instead of
  resting (a server under load): the idle-time work never finds it idle.

It fails (exit status 1) on wrong results, never on timing: a program that
does not import the app or exits badly, an edit not live before a deadline,
a reload that runs another module than the edited one (nobody calls
``marker()`` at import time), any unexpected output (a failed reload, a
warning, a traceback).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .__main__ import (
    Run,
    available_cores,
    env_for,
    fmt,
    median,
    quartiles,
    ratios,
    rotate,
    rounds_for,
    source_state,
    table,
)
from .callgrind import Instructions, count_instructions
from .generate import CORE, EDITS, Info, edit, generate
from .pytest_watch import Watched

FIRST_EDIT_AFTER = 1.0  # seconds from "imports done" to the first edit
DEADLINE = 120.0  # the app's imports (5000 modules on a slow machine), one edit going live
TARGETS = ("core", "mid", "leaf")
WALL_TARGET = 1.10
INSTRUCTIONS_TARGET = 1.20

READY = re.compile(r"^app: (\d+) modules registered$")
RELOADED = re.compile(r"^hmr: reloaded (\S+)(?: \((.*)\))? in ([\d.]+) ms$")
DEPENDENTS = re.compile(r"\+(\d+) dependents?")
LIVE = re.compile(r"^app: live (\S+) (\S+) (\S+)$")


@dataclass(frozen=True)
class Edit:
    """One edit, as the user met it."""

    reload_ms: float
    """The reload's own time, from the CLI's log line."""
    live_ms: float
    """From the write of the file until the program saw the new code."""
    ran: int
    """Modules whose code ran (the edited one + the log line's dependents)."""


@dataclass
class Case:
    """The edits of one module, of one kind, on one core: first edits and the rest."""

    first: list[Edit] = field(default_factory=list)
    steady: list[Edit] = field(default_factory=list)


@dataclass
class Figures:
    """Everything measured for one size and one number of extra objects."""

    info: Info
    objects: int
    cases: dict[tuple[str, str, str], Case] = field(default_factory=dict)  # core, target, kind
    floor: dict[str, list[float]] = field(default_factory=dict)  # target -> ms
    startup: dict[str, list[float]] = field(default_factory=dict)  # variant -> ms
    instructions: dict[str, Instructions] = field(default_factory=dict)  # variant -> counts


# -- the programs ------------------------------------------------------------------


def cli_env(core: str | None) -> dict[str, str]:
    """A child's environment (``core`` None: no HMR); lines arrive as they are printed."""
    env = env_for(core)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("FORCE_COLOR", None)
    return env


def program_args(objects: int) -> list[str]:
    return ["main.py", *(["--objects", str(objects)] if objects else [])]


def startup_variants(cores: list[str]) -> dict[str, tuple[str | None, list[str]]]:
    """Variant name -> (core, command line before main.py's arguments)."""
    variants: dict[str, tuple[str | None, list[str]]] = {"plain": (None, [sys.executable])}
    for core in cores:
        cli = [sys.executable, "-m", "muckrack.hmr"]
        variants[f"hmr {core}"] = (core, cli)
        variants[f"hmr {core} --no-watch"] = (core, [*cli, "--no-watch"])
    return variants


def wait_ready(run: Run, child: Watched, info: Info, what: str) -> float | None:
    """Wait for main.py's "imports done" line; the time it came, or None (an error)."""
    try:
        arrived, line = child.wait_for(lambda line: READY.match(line) is not None, what, DEADLINE)
    except TimeoutError as exc:
        run.error(f"{what}: {exc}")
        return None
    match = READY.match(line)
    assert match is not None
    if int(match.group(1)) != info.registering:
        run.error(f"{what}: {line!r}, want {info.registering} modules registered")
        return None
    return arrived


# -- start-up --------------------------------------------------------------------------


def measure_startup(run: Run, figures: Figures, cores: list[str]) -> None:
    """Start to "imports done", every variant in fresh processes, round-robin."""
    info = figures.info
    assert info.root is not None
    variants = startup_variants(cores)

    def once(name: str) -> float:
        core, prefix = variants[name]
        what = f"N={info.n_modules} objects={figures.objects} start-up {name}"
        started = time.perf_counter()
        child = Watched([*prefix, *program_args(figures.objects)], info.root, cli_env(core))
        try:
            arrived = wait_ready(run, child, info, what)
            status = child.proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            status = -1  # still running after its imports: killed below
        finally:
            child.close()
        if status != 0:
            run.error(f"{what}: exit status {status}\n" + "\n".join(child.tail[-15:]))
        extra = [line for line in child.drain() if not READY.match(line)]
        if extra:
            run.error(f"{what}: unexpected output {extra[:5]}")
        return math.nan if arrived is None or status else (arrived - started) * 1000.0

    for name in variants:  # warm-up: .pyc files, the OS's file cache; not recorded
        once(name)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for index in range(rounds_for(run.args, info.n_modules)):
        for name in rotate(list(variants), index):
            samples[name].append(once(name))
    figures.startup = samples
    run.progress(
        f"N={info.n_modules} objects={figures.objects}: start-up "
        + ", ".join(f"{name} {median(values):.0f} ms" for name, values in samples.items())
    )


def measure_instructions(run: Run, figures_list: list[Figures], cores: list[str]) -> None:
    """Each start-up variant's whole process under callgrind, two at a time."""
    jobs = []
    for figures in figures_list:
        assert figures.info.root is not None
        for name, (core, prefix) in startup_variants(cores).items():
            env = cli_env(core)
            env["PYTHONHASHSEED"] = "0"  # the same dict layouts in every run
            cmd = [*prefix, *program_args(figures.objects)]
            jobs.append((figures, name, cmd, env, figures.info.root))
    run.progress(f"callgrind: {len(jobs)} processes, two at a time")

    def count(job: tuple[Figures, str, list[str], dict[str, str], Path]) -> None:
        figures, name, cmd, env, root = job
        try:
            figures.instructions[name] = count_instructions(cmd, env, root)
        except RuntimeError as exc:
            run.error(f"N={figures.info.n_modules} objects={figures.objects} callgrind: {exc}")

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(count, jobs))


# -- edits ---------------------------------------------------------------------------------


def target_name(info: Info, target: str) -> str:
    return {"core": info.core, "mid": info.mid, "leaf": info.leaf}[target]


def wait_applied(
    run: Run, child: Watched, name: str, kind: str, tag: str, written: float, what: str
) -> Edit | None:
    """Read lines until the edit is live and its reload logged; None on a wrong result."""
    live: float | None = None
    logged: tuple[float, int] | None = None
    while live is None or logged is None:
        try:
            arrived, line = child.wait_for(lambda line: True, what, DEADLINE)
        except TimeoutError as exc:
            run.error(f"{what}: {exc}")
            return None
        seen = LIVE.match(line)
        reloaded = RELOADED.match(line)
        if seen is not None and seen.groups() == (name, kind, tag):
            live = arrived
        elif reloaded is not None and reloaded.group(1) == name and logged is None:
            dependents = DEPENDENTS.search(reloaded.group(2) or "")
            ran = 1 + (int(dependents.group(1)) if dependents else 0)
            logged = (float(reloaded.group(3)), ran)
        else:
            run.error(f"{what}: unexpected output {line!r}")
            return None
    found = Edit(reload_ms=logged[0], live_ms=(live - written) * 1000.0, ran=logged[1])
    if found.ran != 1:
        run.error(f"{what}: {found.ran} modules ran, want only the edited one")
    return found


def one_process(
    run: Run, figures: Figures, core: str, target: str, kind: str, index: int, edits: int
) -> None:
    """A fresh program: its first edit ``--first-after`` s after its imports, then
    ``edits`` more."""
    info = figures.info
    assert info.root is not None
    name = target_name(info, target)
    path = info.path_of(name)
    what = f"N={info.n_modules} objects={figures.objects} {core} {target} {kind}"
    cmd = [sys.executable, "-m", "muckrack.hmr", *program_args(figures.objects)]
    cmd += [*(["--busy"] if run.args.busy else []), "--stay", name]
    original = path.read_bytes()
    stat = path.stat()
    case = figures.cases.setdefault((core, target, kind), Case())
    child = Watched(cmd, info.root, cli_env(core))
    try:
        ready = wait_ready(run, child, info, what)
        if ready is None:
            return
        for number in range(edits + 1):
            if number == 0:
                time.sleep(max(0.0, ready + run.args.first_after - time.perf_counter()))
            else:
                time.sleep(run.args.pause)
            extra = child.drain()
            if extra:
                run.error(f"{what}: unexpected output {extra[:5]}")
            tag = f"r{index}e{number}"
            written = time.perf_counter()
            edit(path, kind, tag)
            found = wait_applied(run, child, name, kind, tag, written, f"{what} edit {number}")
            if found is None:
                return
            (case.steady if number else case.first).append(found)
    finally:
        child.close()
        path.write_bytes(original)
        # The same bytes and time as before: the .pyc written for them stays valid.
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def measure_edits(run: Run, figures: Figures, cores: list[str], kinds: list[str]) -> None:
    combos = [
        (core, target, kind)
        for core in cores
        for target in TARGETS
        for kind in kinds
        if kind != "helper" or target == "core"  # (the core's function alone)
    ]
    for index in range(run.args.runs):
        for core, target, kind in rotate(combos, index):
            one_process(run, figures, core, target, kind, index, run.args.edits)
    for (core, target, kind), case in figures.cases.items():
        run.progress(
            f"N={figures.info.n_modules} objects={figures.objects} {core} {target} {kind}: "
            f"first {median([e.reload_ms for e in case.first]):.1f} ms, "
            f"steady {median([e.reload_ms for e in case.steady]):.1f} ms"
        )


def measure_floor(run: Run, figures: Figures) -> None:
    info = figures.info
    assert info.root is not None
    names = [target_name(info, target) for target in TARGETS]
    reps = 5 if run.args.quick else 30
    what = f"N={info.n_modules} objects={figures.objects} floor"
    args = ["floor", str(info.root), CORE, str(figures.objects), str(reps), *names]
    _, result = run.child(what, args, None, info.root)
    if result is not None:
        ms = result["ms"]
        figures.floor = {target: ms[name] for target, name in zip(TARGETS, names, strict=True)}


# -- the report ------------------------------------------------------------------------------


def fmt_median(values: Sequence[float], digits: int = 1) -> str:
    if not values:
        return "n/a"
    low, high = quartiles(values)
    mid = median(values)
    if len(values) < 4:
        return fmt(mid, digits)
    return f"{fmt(mid, digits)} [{fmt(low, digits)}-{fmt(high, digits)}]"


def fmt_x(value: float, target: float | None = None) -> str:
    if math.isnan(value):
        return "n/a"
    digits = 2 if value < 10 else 1 if value < 100 else 0
    text = f"{value:,.{digits}f}x"
    if target is not None and value > target:
        text += " (over)"
    return text


def edits_table(results: list[Figures], kinds: list[str]) -> str:
    header = [
        "N",
        "objects",
        "core",
        "edited module",
        "first edit ms",
        "steady ms",
        "first / steady",
        "modules run",
        "floor ms",
        "first / floor",
        "steady / floor",
        "live ms: first, steady",
    ]
    rows = []
    for figures in results:
        for (core, target, kind), case in figures.cases.items():
            first = median([e.reload_ms for e in case.first])
            steady = median([e.reload_ms for e in case.steady])
            floor = median(figures.floor.get(target, []))
            ran = sorted({e.ran for e in case.first + case.steady})
            label = f"{target} `{target_name(figures.info, target)}`"
            rows.append(
                [
                    str(figures.info.n_modules),
                    f"{figures.objects:,}",
                    core,
                    label if kinds == ["body"] else f"{label} {kind}",
                    fmt_median([e.reload_ms for e in case.first]),
                    fmt_median([e.reload_ms for e in case.steady]),
                    fmt_x(first / steady),
                    "/".join(map(str, ran)) or "n/a",
                    fmt(floor, 2),
                    fmt_x(first / floor),
                    fmt_x(steady / floor),
                    f"{fmt(median([e.live_ms for e in case.first]))}, "
                    f"{fmt(median([e.live_ms for e in case.steady]))}",
                ]
            )
    return table(header, rows)


def startup_table(results: list[Figures], cores: list[str]) -> str:
    header = ["N", "objects", "`python main.py` ms"]
    for core in cores:
        header += [f"hmr {core} ms", "/ plain", f"{core} --no-watch ms", "/ plain"]
    rows = []
    for figures in results:
        plain = figures.startup.get("plain", [])
        row = [str(figures.info.n_modules), f"{figures.objects:,}", fmt_median(plain, 0)]
        for core in cores:
            for name in (f"hmr {core}", f"hmr {core} --no-watch"):
                values = figures.startup.get(name, [])
                row += [fmt_median(values, 0), fmt_x(median(ratios(values, plain)), WALL_TARGET)]
        rows.append(row)
    return table(header, rows)


def instructions_table(results: list[Figures], cores: list[str]) -> str:
    header = ["N", "objects", "variant", "instructions", "/ plain", "main thread", "/ plain"]
    rows = []
    for figures in results:
        counts = figures.instructions
        plain = counts.get("plain")
        if plain is None:
            continue
        for name in startup_variants(cores):
            count = counts.get(name)
            if count is None:
                continue
            rows.append(
                [
                    str(figures.info.n_modules),
                    f"{figures.objects:,}",
                    "`python main.py`" if name == "plain" else name,
                    f"{count.total / 1e9:.3f} G",
                    fmt_x(count.total / plain.total, INSTRUCTIONS_TARGET),
                    f"{count.main_thread / 1e9:.3f} G",
                    fmt_x(count.main_thread / plain.main_thread, INSTRUCTIONS_TARGET),
                ]
            )
    return table(header, rows)


def report(run: Run, results: list[Figures], cores: list[str], argv: list[str]) -> str:
    args = run.args
    out = [
        "# What a user meets: the first edit, the steady state, start-up",
        "",
        f"- command: `{shlex.join([sys.executable, '-m', 'benchmarks.first_edit', *argv])}`",
        f"- source: {source_state()}; {os.cpu_count()} CPUs; cores measured: {', '.join(cores)}",
        f"- {args.runs} fresh processes per edited module and core (first edits), each then "
        f"{args.edits} more edits {args.pause:g} s apart (steady); start-up: "
        + ", ".join(f"{rounds_for(args, n)} rounds at N={n}" for n in args.sizes)
        + "; medians [quartiles], ratios are medians of per-round ratios",
        "",
        "## Edits: `python -m muckrack.hmr main.py`, watcher on",
        "",
        f"The first edit is written {args.first_after:g} s after main.py reports its imports "
        + ("done, main.py computing without a pause since (`--busy`)" if args.busy else "done")
        + "; ms = the reload's own time (the `hmr: reloaded` line); modules run = the edited "
        "one + the line's dependents (a body edit must run it alone); floor = compile + exec "
        "of the module's source alone; live = from the write until main.py, polling the "
        "function it held, sees the new code.",
        "",
        edits_table(results, args.kinds),
        "",
        "## Start-up: from the start of the process to main.py's imports done (ms)",
        "",
        f"`hmr X` = `python -m muckrack.hmr main.py` (watcher on) on core X. "
        f"Target: {WALL_TARGET:.2f}x.",
        "",
        startup_table(results, cores),
    ]
    if any(figures.instructions for figures in results):
        out += [
            "",
            "## Start-up in instructions (callgrind, the whole process)",
            "",
            f"Target: {INSTRUCTIONS_TARGET:.2f}x. With the watcher on, the total is not steady "
            "under callgrind: the watcher's idle-time work (keeping sources, analyzing "
            "modules) is paced by the wall clock, and everything runs about 40x slower; the "
            "main thread's count is the program's own path.",
            "",
            instructions_table(results, cores),
        ]
    return "\n".join(out)


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.first_edit", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="N=100, one process per case, 3 edits, no callgrind: fails on wrong results",
    )
    parser.add_argument("--sizes", help="comma-separated module counts (default 1000)")
    parser.add_argument(
        "--objects", help="comma-separated counts of extra live objects (default 0)"
    )
    parser.add_argument(
        "--kinds",
        default="body,helper",
        help=f"comma-separated edit kinds, of {', '.join(EDITS)} (default body,helper)",
    )
    parser.add_argument("--runs", type=int, help="processes per edited module and core (3)")
    parser.add_argument("--edits", type=int, help="steady-state edits per process (10)")
    parser.add_argument("--pause", type=float, help="seconds between steady edits (0.3)")
    parser.add_argument(
        "--first-after",
        type=float,
        default=FIRST_EDIT_AFTER,
        help=f"seconds from the imports done to the first edit (default {FIRST_EDIT_AFTER:g}; "
        "0.05: saved before the start-up's bookkeeping is done)",
    )
    parser.add_argument(
        "--busy",
        action="store_true",
        help="main.py computes without a pause after its imports (a server under load), "
        "instead of resting: the edits' figures only",
    )
    parser.add_argument(
        "--rounds", type=int, help="start-up rounds per variant (7 for N<=2000, else 5)"
    )
    parser.add_argument(
        "--callgrind",
        help="comma-separated sizes to count instructions for (default 1000; 'none')",
    )
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--keep", action="store_true", help="keep the generated codebases")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "sizes": "100" if quick else "1000",
        "objects": "0,100000" if quick else "0",
        "runs": 1 if quick else 3,
        "edits": 3 if quick else 10,
        "pause": 0.1 if quick else 0.3,
        "callgrind": "none" if quick else "1000",
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)

    def numbers(option: str, text: str) -> list[int]:
        if text == "none":
            return []
        try:
            return [int(item) for item in text.split(",") if item.strip()]
        except ValueError:
            parser.error(f"--{option}: not a comma-separated list of integers: {text!r}")

    args.sizes = numbers("sizes", args.sizes)
    args.objects = numbers("objects", args.objects)
    args.callgrind = numbers("callgrind", args.callgrind)
    args.kinds = [kind for kind in args.kinds.split(",") if kind]
    unknown = sorted(set(args.kinds) - set(EDITS))
    if unknown:
        parser.error(f"--kinds: unknown {unknown}")
    if min(args.runs, args.edits, args.rounds or 1) < 1:
        parser.error("--runs, --edits and --rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    run = Run(args)
    cores = available_cores()
    if args.callgrind and shutil.which("valgrind") is None:
        run.progress("valgrind is not installed: no instruction counts")
        args.callgrind = []
    started = time.perf_counter()
    results: list[Figures] = []
    for n in args.sizes:
        # Always the same folder: paths end up in hashed strings, and
        # callgrind's counts must not move with a random name.
        root = Path(tempfile.gettempdir()) / f"hmr-first-edit-{n}"
        shutil.rmtree(root, ignore_errors=True)
        info = generate(root, n, seed=args.seed)
        run.progress(f"N={n}: generated under {root}; mid {info.mid}, leaf {info.leaf}")
        try:
            for objects in args.objects:
                figures = Figures(info, objects)
                results.append(figures)
                measure_startup(run, figures, cores)
                measure_floor(run, figures)
                measure_edits(run, figures, cores, args.kinds)
            if n in args.callgrind:
                measure_instructions(run, [f for f in results if f.info is info], cores)
        finally:
            if not args.keep:
                shutil.rmtree(root, ignore_errors=True)
    elapsed = time.perf_counter() - started
    print(report(run, results, cores, argv))
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
