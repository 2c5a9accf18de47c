"""``pytest --hmr`` on the test suites of real projects, checked against cold ``pytest`` runs.

Each project is a pinned sdist from PyPI (downloaded once into
``~/.cache/muckrack-hmr/sdists``, or ``$MUCKRACK_HMR_SDISTS``), unpacked into
a temporary folder.  ``pytest --hmr`` runs its suite, then a fixed sequence
of edits is saved one by one: function bodies, default arguments, module
constants, ``__all__``, a rename, a class attribute of a slotted class, test
files and a conftest.  After each one, every test's latest outcome under
``pytest --hmr`` (re-run or not) must equal its outcome in a cold ``pytest``
of the same tree: no mismatch, no test left out.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .subprocesses import RUN_TIMEOUT, Child
from .test_pytest_plugin import BY_EXECUTION, PLUGIN, Run, Watch

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
    """A pinned sdist, where its tests are, and the edits saved in turn."""

    requirement: str
    args: list[str]
    edits: list[Edit]
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
    ),
}


def _sdist(requirement: str, folder: str) -> Path:
    """The pinned sdist, downloaded once; skips the test when it cannot be had."""
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
            pytest.skip(f"cannot download {requirement}: {result.stderr.strip()[-300:]}")
    return found[0]


def _unpack(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    (top,) = [path for path in into.iterdir() if path.is_dir()]
    return top


@pytest.fixture
def cold_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Cold runs of the same tree, shared by the cores' tests (and xdist's workers)."""
    folder = tmp_path_factory.getbasetemp().parent / "cold-runs"
    folder.mkdir(exist_ok=True)
    return folder


def cold_pytest(root: Path, project: Project, env: dict[str, str], cache: Path) -> dict[str, str]:
    """Outcome per test id of a cold ``pytest -v`` of the tree at ``root``."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{sys.version}\n{project.requirement}\n".encode())
    for path in sorted(root.rglob("*.py")):
        digest.update(f"{path.relative_to(root)}\n".encode())
        digest.update(path.read_bytes())
    saved = cache / f"{digest.hexdigest()}.txt"
    if not saved.exists():
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", *project.args],
            cwd=root,
            env=dict(env, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1"),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-2000:]
        partial = saved.with_suffix(f".{os.getpid()}")
        partial.write_text(result.stdout)
        partial.replace(saved)
    return Run(saved.read_text().splitlines()).outcomes


def _apply(root: Path, edit: Edit) -> str:
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


@pytest.fixture
def session_for(core_env: dict[str, str]) -> Iterator[object]:
    children: list[Child] = []

    def start(root: Path, project: Project) -> Watch:
        env = dict(core_env, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", **project.env)
        child = Child(
            [*PLUGIN, "--hmr", "-v", "-p", "no:cacheprovider", *project.args],
            cwd=root,
            env=env,
            command=("-u", "-m", "pytest"),
        )
        children.append(child)
        return Watch(child)

    try:
        yield start
    finally:
        for child in children:
            child.close()


@pytest.mark.real_suites
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_a_real_suite_gives_the_answers_of_cold_runs_after_every_edit(
    name: str, tmp_path: Path, session_for: object, core_env: dict[str, str], cold_cache: Path
) -> None:
    project = PROJECTS[name]
    assert len(project.edits) >= 15
    if not BY_EXECUTION and (
        name != "cachetools" or core_env.get("MUCKRACK_HMR_NO_EXTENSIONS") == "1"
    ):
        # Before 3.12 every edit re-runs a suite whole (selection by imports):
        # one suite on one core checks those answers; all would take minutes.
        pytest.skip("before Python 3.12: cachetools on the compiled core only")
    root = _unpack(_sdist(project.requirement, project.folder), tmp_path)
    env = dict(core_env, **project.env)
    start = session_for
    assert callable(start)
    session = start(root, project)
    latest = session.run().outcomes
    cold = cold_pytest(root, project, env, cold_cache)
    assert cold
    assert latest == cold
    total = len(cold)
    ran_counts = []
    for step, edit in enumerate(project.edits):
        what = _apply(root, edit)
        print(f"step {step}: {what}")  # shown with the failure
        run = session.run()
        latest.update(run.outcomes)
        ran_counts.append(len(run.outcomes))
        cold = cold_pytest(root, project, env, cold_cache)
        missing = sorted(set(cold) - set(latest))
        wrong = {
            test: (latest[test], outcome)
            for test, outcome in cold.items()
            if test in latest and latest[test] != outcome
        }
        context = f"{name}, step {step} ({what}): {len(run.outcomes)} ran"
        assert not missing, f"{context}: never ran {missing[:5]}"
        assert not wrong, f"{context}: (--hmr, cold) differ for {dict(list(wrong.items())[:5])}"
        for test in set(latest) - set(cold):  # gone from the tree
            del latest[test]
    if BY_EXECUTION:  # most edits touch a few functions: most runs are a part of the suite
        assert sorted(ran_counts)[len(ran_counts) // 2] < total / 2, ran_counts
    shutil.rmtree(root, ignore_errors=True)
