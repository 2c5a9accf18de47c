"""``python -m benchmarks.real_suites [--quick]``: ``pytest --hmr`` on real projects' suites.

The projects are pinned sdists from PyPI (downloaded once into
``~/.cache/muckrack-hmr/sdists``, or ``$MUCKRACK_HMR_SDISTS``): more-itertools,
cachetools and toolz.  ``tests/test_real_suites.py`` saves each project's
``edits`` in turn and checks every outcome against cold ``pytest`` runs; this
benchmark measures, per project, what a developer waits for:

* a cold ``pytest`` of the suite (wall time, and pytest's own time per test);
* ``pytest --hmr``: from the save of a one-function body edit to the results
  (the loop's own figure), the number of tests run, against the target of
  1.2x pytest's own per-test cost for the tests run plus 50 ms;
* the first save (right after the first run) next to the median;
* full runs (``a``, 20; 3 with ``--quick``) against pytest's own time for a
  cold run;
* the memory of the ``pytest --hmr`` process after its first run, after one
  save, after all of them (50; 6 with ``--quick``), and after the full runs.

Medians.  It fails (exit status 1) on wrong results: a save whose run did not
come, or a failed test (the edits change no outcome); never on timing.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

SDISTS = Path(
    os.environ.get("MUCKRACK_HMR_SDISTS", Path.home() / ".cache" / "muckrack-hmr" / "sdists")
)

# A save: the path, then pairs of (text to replace, its replacement), all in one write;
# (None, text) writes a new file, (text, None) deletes it.
Edit = tuple[str | None, ...]

PROBE_CONFTEST = """\
import pytest


@pytest.fixture(autouse=True)
def _hmr_probe(request):
    yield
"""


@dataclass
class Project:
    """A pinned sdist, where its tests are, the edits saved in turn, and the benchmark's edit."""

    requirement: str
    args: list[str]
    edits: list[Edit]
    #: a one-function body edit the benchmark saves back and forth
    bench: Edit
    env: dict[str, str] = field(default_factory=dict)

    @property
    def folder(self) -> str:
        name, _, version = self.requirement.partition("==")
        return f"{name}-{version}"


def _conftest_edits(folder: str, probe: str) -> list[Edit]:
    """Add a conftest, make its autouse fixture fail the tests named with ``probe``, remove it."""
    path = f"{folder}/conftest.py"
    failing = PROBE_CONFTEST.replace(
        "    yield\n", f"    assert {probe!r} not in request.node.name\n    yield\n"
    )
    return [(path, None, PROBE_CONFTEST), (path, PROBE_CONFTEST, failing), (path, failing, None)]


MORE = "more_itertools/more.py"
RECIPES = "more_itertools/recipes.py"
CACHE = "src/cachetools/__init__.py"
KEYS = "src/cachetools/keys.py"
ITER = "toolz/itertoolz.py"
FUNC = "toolz/functoolz.py"

PROJECTS = {
    "more-itertools": Project(
        "more-itertools==10.5.0",
        ["tests"],
        [
            # a body that behaves the same, then one that does not, and back
            (
                MORE,
                "iter(partial(take, n, iter(iterable)), [])",
                "iter(partial(take, n, iter(iterable)), list())",
            ),
            (
                RECIPES,
                "    return list(islice(iterable, n))\n",
                "    return list(islice(iterable, n))[:4]\n",
            ),
            (
                RECIPES,
                "    return list(islice(iterable, n))[:4]\n",
                "    return list(islice(iterable, n))\n",
            ),
            # a default argument
            (
                MORE,
                "def chunked(iterable, n, strict=False):",
                "def chunked(iterable, n, strict=True):",
            ),
            (
                MORE,
                "def chunked(iterable, n, strict=True):",
                "def chunked(iterable, n, strict=False):",
            ),
            # module constants, one of them new
            (RECIPES, "_marker = object()\n", "_marker = object()\n_UNUSED = 1\n"),
            ("more_itertools/__init__.py", "__version__ = '10.5.0'", "__version__ = '10.5.1'"),
            # __all__ and a star import: the name goes from the package, and comes back
            (MORE, "    'chunked',\n", ""),
            (MORE, "    'chunked_even',\n", "    'chunked',\n    'chunked_even',\n"),
            # a rename, with the old name kept as an alias (one save), and back
            (
                MORE,
                "def first(iterable, default=_marker):",
                "def first_item(iterable, default=_marker):",
                "def last(iterable, default=_marker):",
                "first = first_item\n\n\ndef last(iterable, default=_marker):",
            ),
            (
                MORE,
                "def first_item(iterable, default=_marker):",
                "def first(iterable, default=_marker):",
                "first = first_item\n\n\ndef last(iterable, default=_marker):",
                "def last(iterable, default=_marker):",
            ),
            # a test file
            (
                "tests/test_recipes.py",
                "t = mi.take(5, range(10))\n        self.assertEqual(t, [0, 1, 2, 3, 4])",
                "t = mi.take(5, range(10))\n        self.assertEqual(t, [0, 1, 2, 3])",
            ),
            *_conftest_edits("tests", "chunked"),
        ],
        bench=(MORE, "take, n, iter(iterable)), [])", "take, n, iter(iterable)), list())"),
    ),
    "cachetools": Project(
        "cachetools==5.5.0",
        ["tests"],
        [
            # a class attribute of a slotted class, and back
            (
                CACHE,
                "    __slots__ = ()\n\n",
                "    __slots__ = ()\n    UNIT = 2\n\n",
            ),
            (
                CACHE,
                "    def __getitem__(self, _):\n        return 1\n",
                "    def __getitem__(self, _):\n        return self.UNIT\n",
            ),
            (CACHE, "    UNIT = 2\n", "    UNIT = 1\n"),
            # a body of the key functions every cache decorator uses, and back
            (KEYS, "    return key\n", "    return key + (None,)\n"),
            (KEYS, "    return key + (None,)\n", "    return key\n"),
            # a default argument
            (
                CACHE,
                "def cached(cache, key=keys.hashkey, lock=None, info=False):",
                "def cached(cache, key=keys.typedkey, lock=None, info=False):",
            ),
            (
                CACHE,
                "def cached(cache, key=keys.typedkey, lock=None, info=False):",
                "def cached(cache, key=keys.hashkey, lock=None, info=False):",
            ),
            # module constants and __all__
            (CACHE, '__version__ = "5.5.0"', '__version__ = "5.5.1"'),
            (CACHE, '    "MRUCache",\n', ""),
            (CACHE, '    "LRUCache",\n', '    "LRUCache",\n    "MRUCache",\n'),
            # a rename with an alias (one save), and back
            (
                KEYS,
                "def methodkey(self, *args, **kwargs):",
                "def method_key(self, *args, **kwargs):",
                "def typedkey(*args, **kwargs):",
                "methodkey = method_key\n\n\ndef typedkey(*args, **kwargs):",
            ),
            (
                KEYS,
                "def method_key(self, *args, **kwargs):",
                "def methodkey(self, *args, **kwargs):",
                "methodkey = method_key\n\n\ndef typedkey(*args, **kwargs):",
                "def typedkey(*args, **kwargs):",
            ),
            *_conftest_edits("tests", "lru"),
        ],
        bench=(KEYS, "    return key\n", "    key = key\n    return key\n"),
        env={"PYTHONPATH": "src"},
    ),
    "toolz": Project(
        "toolz==1.0.0",
        ["toolz/tests"],
        [
            (
                ITER,
                "    return next(iter(seq))\n",
                "    return next(iter(seq)) if seq != 'ABC' else 'B'\n",
            ),
            (
                ITER,
                "    return next(iter(seq)) if seq != 'ABC' else 'B'\n",
                "    return next(iter(seq))\n",
            ),
            (
                ITER,
                "    return itertools.islice(seq, n)\n",
                "    return itertools.islice(seq, n + 1)\n",
            ),
            (
                ITER,
                "    return itertools.islice(seq, n + 1)\n",
                "    return itertools.islice(seq, n)\n",
            ),
            # a slotted class's method body and a new class attribute
            (
                FUNC,
                "    __slots__ = 'first', 'funcs'\n",
                "    __slots__ = 'first', 'funcs'\n    LIMIT = 0\n",
            ),
            (
                FUNC,
                "        for f in self.funcs:\n            ret = f(ret)\n",
                "        for f in self.funcs[self.LIMIT :]:\n            ret = f(ret)\n",
            ),
            (FUNC, "    LIMIT = 0\n", "    LIMIT = 1\n"),
            (FUNC, "    LIMIT = 1\n", "    LIMIT = 0\n"),
            # a default argument
            (ITER, "def unique(seq, key=None):", "def unique(seq, key=str):"),
            (ITER, "def unique(seq, key=str):", "def unique(seq, key=None):"),
            # a new function exported through __all__ (a star import binds it), and back
            (
                ITER,
                "__all__ = ('remove', ",
                "__all__ = ('second_last', 'remove', ",
                "def last(seq):",
                "def second_last(seq):\n    return tail(2, seq)[0]\n\n\ndef last(seq):",
            ),
            (
                ITER,
                "__all__ = ('second_last', 'remove', ",
                "__all__ = ('remove', ",
                "def second_last(seq):\n    return tail(2, seq)[0]\n\n\ndef last(seq):",
                "def last(seq):",
            ),
            *_conftest_edits("toolz/tests", "first"),
        ],
        bench=(
            ITER,
            "    return next(iter(seq))\n",
            "    return next(iter(seq)) if True else None\n",
        ),
    ),
}


class Unavailable(Exception):
    """The sdist cannot be downloaded (no network, no index)."""


def fetch_sdist(requirement: str, folder: str) -> Path:
    """The pinned sdist, downloaded once into :data:`SDISTS` (:class:`Unavailable` if not)."""
    SDISTS.mkdir(parents=True, exist_ok=True)
    found = sorted(SDISTS.glob(f"{folder}.tar.gz")) or sorted(
        SDISTS.glob(f"{folder.replace('-', '_')}.tar.gz")
    )
    if not found:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                requirement,
                "-d",
                str(SDISTS),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        found = sorted(SDISTS.glob(f"{folder}.tar.gz")) or sorted(
            SDISTS.glob(f"{folder.replace('-', '_')}.tar.gz")
        )
        if result.returncode or not found:
            raise Unavailable(f"cannot download {requirement}: {result.stderr.strip()[-300:]}")
    return found[0]


def unpack(archive: Path, into: Path) -> Path:
    """Unpack an sdist into ``into``; its top folder."""
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    (top,) = [path for path in into.iterdir() if path.is_dir()]
    return top


def apply_edit(root: Path, edit: Edit) -> str:
    """Save ``edit`` under ``root`` (one write); what it did, in words."""
    relative, *pairs = edit
    assert relative is not None
    path = root / relative
    old, new = pairs[0], pairs[1]
    if old is None:
        assert new is not None
        path.write_text(new)
        return f"add {relative}"
    if new is None:
        path.unlink()
        return f"delete {relative}"
    text = path.read_text()
    for old, new in zip(pairs[::2], pairs[1::2], strict=True):
        assert old is not None
        assert new is not None
        assert text.count(old) == 1, f"{relative}: {old!r} is not there exactly once"
        text = text.replace(old, new)
    path.write_text(text)
    return f"{relative}: {str(pairs[0]).strip()[:50]!r} -> {str(pairs[1]).strip()[:50]!r}"


# -- the benchmark -----------------------------------------------------------------------

RESULTS = re.compile(r"hmr: (\d+) tests? ran in [\d.]+ ms; results ([\d.]+) ms after the save")
FULL = re.compile(r"hmr: (\d+) tests? ran in [\d.]+ ms; results ([\d.]+) ms after the command")
COLD = re.compile(r"\b(\d+) passed\b.* in ([\d.]+)s")
DEADLINE = 120.0


def _env(project: Project) -> dict[str, str]:
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", **project.env)
    env.pop("MUCKRACK_HMR_NO_EXTENSIONS", None)
    # As users run pytest: rewritten test modules are cached on disk, for both sides.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _cold(root: Path, project: Project, rounds: int) -> tuple[float, float, int]:
    """Median wall ms of a cold ``pytest -q``, pytest's own ms, and the tests passed."""
    walls, owns, count = [], [], 0
    for _ in range(rounds):
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *project.args],
            cwd=root,
            env=_env(project),
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )
        walls.append((time.perf_counter() - started) * 1000)
        match = COLD.search(result.stdout)
        if match:
            count = int(match.group(1))
            owns.append(float(match.group(2)) * 1000)
    return statistics.median(walls), statistics.median(owns) if owns else float("nan"), count


def _lines(stream: object, into: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line.rstrip("\n"))
    into.put(None)


def _passed(seen: list[str], pattern: re.Pattern[str]) -> re.Match[str] | None:
    """The run's figures line, if the run came and no test failed (None otherwise)."""
    matches = [match for match in map(pattern.search, seen) if match]
    if not matches or any(" failed" in line and "==" in line for line in seen):
        return None
    return matches[-1]


def _hmr(
    root: Path, project: Project, saves: int, full_runs: int, errors: list[str]
) -> dict[str, object]:
    """``pytest --hmr``: results per save, tests run, full runs (``a``), memory."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "muckrack.hmr.pytest_plugin",
            "--hmr",
            "-q",
            "-p",
            "no:cacheprovider",
            *project.args,
        ],
        cwd=root,
        env=_env(project),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_lines, args=(child.stdout, lines), daemon=True).start()

    def until_watching() -> list[str]:
        seen: list[str] = []
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError("pytest --hmr ended:\n" + "\n".join(seen[-20:]))
            seen.append(line)
            if line.startswith("hmr: watching"):
                return seen
        raise RuntimeError("no run within the deadline:\n" + "\n".join(seen[-20:]))

    memory = {}
    results, ran, full = [], [], []
    try:
        until_watching()
        memory["first run"] = _rss_mb(child.pid)
        relative, old, new = project.bench[0], project.bench[1], project.bench[2]
        assert relative is not None
        assert old is not None
        assert new is not None
        for index in range(saves):
            forth = (relative, old, new) if index % 2 == 0 else (relative, new, old)
            apply_edit(root, forth)
            seen = until_watching()
            match = _passed(seen, RESULTS)
            if match is None:
                errors.append(f"{project.requirement}: save {index}: " + " / ".join(seen[-4:]))
                continue
            ran.append(int(match.group(1)))
            results.append(float(match.group(2)))
            if index == 0:
                memory["1 save"] = _rss_mb(child.pid)
        memory[f"{saves} saves"] = _rss_mb(child.pid)
        assert child.stdin is not None
        for index in range(full_runs):
            child.stdin.write("a\n")
            child.stdin.flush()
            seen = until_watching()
            match = _passed(seen, FULL)
            if match is None:
                errors.append(f"{project.requirement}: full run {index}: " + " / ".join(seen[-4:]))
                continue
            full.append(float(match.group(2)))
        if full_runs:
            memory[f"{full_runs} full runs"] = _rss_mb(child.pid)
    finally:
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
    return {"results": results, "ran": ran, "full": full, "memory": memory}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_suites")
    parser.add_argument("--quick", action="store_true", help="6 saves and 1 cold run")
    parser.add_argument("--saves", type=int, help="saves per project (default 50)")
    parser.add_argument(
        "--project", action="append", choices=sorted(PROJECTS), help="only these (repeatable)"
    )
    args = parser.parse_args(argv)
    saves = args.saves or (6 if args.quick else 50)
    full_runs = 3 if args.quick else 20
    cold_rounds = 1 if args.quick else 3
    errors: list[str] = []
    rows = []
    started = time.perf_counter()
    for name, project in sorted(PROJECTS.items()):
        if args.project and name not in args.project:
            continue
        with tempfile.TemporaryDirectory(prefix="hmr-real-") as temp:
            try:
                root = unpack(fetch_sdist(project.requirement, project.folder), Path(temp))
            except Unavailable as exc:
                print(f"{name}: skipped: {exc}")
                continue
            wall, own, count = _cold(root, project, cold_rounds)
            measured = _hmr(root, project, saves, full_runs, errors)
            results = measured["results"]
            ran = measured["ran"]
            assert isinstance(results, list)
            assert isinstance(ran, list)
            memory = measured["memory"]
            assert isinstance(memory, dict)
            median_ran = statistics.median(ran) if ran else float("nan")
            target = 1.2 * own / max(count, 1) * median_ran + 50.0
            median_ms = statistics.median(results) if results else float("nan")
            first_ms = results[0] if results else float("nan")
            full = measured["full"]
            assert isinstance(full, list)
            full_ms = statistics.median(full) if full else float("nan")
            row = (project, count, wall, own, median_ran, first_ms, median_ms, target, full_ms)
            rows.append((*row, memory))
            print(f"{name}: done", flush=True)
    print()
    print(f"# pytest --hmr on real suites ({sys.version.split()[0]}, compiled core)")
    print()
    print(f"- command: `python -m benchmarks.real_suites{' --quick' if args.quick else ''}`")
    print(
        f"- {saves} saves of a one-function body edit per project, back and forth, the first"
        f" right after the first run; then {full_runs} full runs (`a`)"
    )
    print()
    print(
        "| project | tests | cold `pytest` ms (pytest's own) | `--hmr` save to results ms: "
        "first, median | tests run | target ms | median / target | full run `a` ms "
        "| RSS MB: first run, 1 save, all saves, full runs |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for project, count, wall, own, ran, first, median, target, full_ms, memory in rows:
        mem = ", ".join(f"{value:.0f}" for value in memory.values())
        print(
            f"| {project.requirement} | {count} | {wall:.0f} ({own:.0f}) | {first:.0f}, "
            f"{median:.0f} | {ran:g} | {target:.0f} | {median / target:.2f}x | {full_ms:.0f} "
            f"| {mem} |"
        )
    print()
    print(f"Total runtime: {time.perf_counter() - started:.1f} s")
    if errors:
        print(f"FAILED: {len(errors)} wrong result(s):")
        for message in errors:
            print(f"- {message}")
        return 1
    print("All result checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
