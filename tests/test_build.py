"""Building and selecting the core: the compiler fallback and the env override."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import muckrack_hmr

REPO = Path(__file__).resolve().parent.parent


def test_env_var_forces_the_pure_core() -> None:
    code = (
        "import muckrack_hmr, muckrack_hmr._core as c; "
        "print(muckrack_hmr.USING_EXTENSION, c.core.__name__)"
    )
    env = {k: v for k, v in os.environ.items() if k != "MUCKRACK_HMR_NO_EXTENSIONS"}
    forced = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "MUCKRACK_HMR_NO_EXTENSIONS": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert forced.stdout.split() == ["False", "muckrack_hmr._core_py"]
    default = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    try:
        import muckrack_hmr._hmr_core  # noqa: F401
    except ImportError:
        assert default.stdout.split() == ["False", "muckrack_hmr._core_py"]
    else:
        assert default.stdout.split() == ["True", "muckrack_hmr._hmr_core"]


def test_version_says_which_core_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "muckrack_hmr", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert muckrack_hmr.__version__ in result.stdout
    expected = "compiled core" if muckrack_hmr.USING_EXTENSION else "pure-Python core"
    assert expected in result.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="CC=false is a POSIX idiom")
def test_build_without_a_compiler_warns_and_falls_back(tmp_path: Path) -> None:
    pytest.importorskip("Cython")
    pytest.importorskip("setuptools")
    for name in ("setup.py", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(
        REPO / "src",
        tmp_path / "src",
        ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.c", "__pycache__", "*.egg-info"),
    )
    env = dict(os.environ, CC="false", LDSHARED="false")
    env.pop("MUCKRACK_HMR_NO_EXTENSIONS", None)
    result = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "falling back to the pure-Python core" in result.stderr
    assert not list((tmp_path / "src" / "muckrack_hmr").glob("_hmr_core*.so"))
