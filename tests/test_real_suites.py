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
from collections.abc import Callable
from pathlib import Path

import pytest
from benchmarks.real_suites import PROJECTS, Project, Unavailable, apply_edit, fetch_sdist, unpack

from .subprocesses import RUN_TIMEOUT, Run, Watch
from .test_pytest_plugin import BY_EXECUTION


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


@pytest.mark.real_suites
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_a_real_suite_gives_the_answers_of_cold_runs_after_every_edit(
    name: str,
    tmp_path: Path,
    watch: Callable[..., Watch],
    core_env: dict[str, str],
    cold_cache: Path,
) -> None:
    project = PROJECTS[name]
    assert len(project.edits) >= 15
    if not BY_EXECUTION and (
        name != "cachetools" or core_env.get("MUCKRACK_HMR_NO_EXTENSIONS") == "1"
    ):
        # Before 3.12 every edit re-runs a suite whole (selection by imports):
        # one suite on one core checks those answers; all would take minutes.
        pytest.skip("before Python 3.12: cachetools on the compiled core only")
    try:
        root = unpack(fetch_sdist(project.requirement, project.folder), tmp_path)
    except Unavailable as exc:
        pytest.skip(str(exc))
    env = dict(core_env, **project.env)
    session = watch(root, *project.args, env=project.env)
    latest = session.run(RUN_TIMEOUT).outcomes
    cold = cold_pytest(root, project, env, cold_cache)
    assert cold
    assert latest == cold
    total = len(cold)
    ran_counts = []
    for step, edit in enumerate(project.edits):
        what = apply_edit(root, edit)
        print(f"step {step}: {what}")  # shown with the failure
        run = session.run(RUN_TIMEOUT)
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
