"""Cold-import overhead in instructions, with valgrind's callgrind.

``python -m benchmarks.callgrind [--size 1000]`` generates the app, then runs
its cold import (``.pyc`` files warm) under callgrind for: no HMR, the
compiled core and the pure core.  Each variant runs twice, once importing the
app and once stopping just before, so the difference is the import alone
(interpreter start-up and ``install()`` cancel out).  Instruction counts do not
depend on what else the machine is doing, so one run of each is enough: this
is the steady figure behind the noisy wall-clock ratio of ``python -m
benchmarks`` (section b).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.generate import generate

CHILD = r"""
import sys
root, variant, import_app = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
sys.path.insert(0, root)
import muckrack_hmr
from muckrack_hmr import _core_py
if variant == "c":
    muckrack_hmr.install([root])
elif variant == "py":
    muckrack_hmr.install([root], core=_core_py)
if import_app:
    main = root + "/main.py"
    exec(compile(open(main).read(), main, "exec"), {"__name__": "__bench__", "__file__": main})
"""


@dataclass(frozen=True)
class Instructions:
    """What callgrind counted for one process."""

    total: int
    """Every thread's instructions."""
    main_thread: int
    """The main thread's alone (the program's own path, without background threads)."""


def count_instructions(
    cmd: list[str], env: dict[str, str], cwd: Path | None = None
) -> Instructions:
    """Instructions executed by the process ``cmd`` under callgrind, in all and per thread."""
    with tempfile.TemporaryDirectory(prefix="hmr-callgrind-out-") as out:
        result = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--separate-threads=yes",
                f"--callgrind-out-file={out}/callgrind.out",
                *cmd,
            ],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"{cmd} under callgrind: exit status {result.returncode}\n{tail}")
        total = re.search(r"Collected\s*:\s*(\d+)", result.stderr)
        # One file per thread; the main thread is the first.
        main = re.search(r"(?m)^summary:\s*(\d+)", Path(out, "callgrind.out-01").read_text())
    if total is None or main is None:
        raise RuntimeError(f"no instruction count in callgrind's output:\n{result.stderr}")
    return Instructions(int(total.group(1)), int(main.group(1)))


def instructions(root: Path, variant: str, import_app: bool) -> int:
    """Instructions executed by one child process under callgrind."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONHASHSEED"] = "0"  # the same dict layouts in every run
    cmd = [sys.executable, "-c", CHILD, str(root), variant, "1" if import_app else "0"]
    return count_instructions(cmd, env).total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.callgrind", description=__doc__)
    parser.add_argument("--size", type=int, default=1000, help="modules in the app (1000)")
    options = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed", file=sys.stderr)
        return 2
    # Always the same folder: with a random one, the plain import's count
    # moved by up to 1.5% between runs (paths end up in hashed strings).
    root = Path(tempfile.gettempdir()) / f"hmr-callgrind-{options.size}"
    shutil.rmtree(root, ignore_errors=True)
    try:
        generate(root, options.size)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run([sys.executable, str(root / "main.py")], env=env, check=True)
        # And our own modules: otherwise the first measured run compiles them
        # (and writes their .pyc files), which counts against the import.
        for variant in ("c", "py"):
            subprocess.run(
                [sys.executable, "-c", CHILD, str(root), variant, "0"], env=env, check=True
            )
        counts = {
            variant: instructions(root, variant, True) - instructions(root, variant, False)
            for variant in ("plain", "c", "py")
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    plain = counts["plain"]
    print(f"cold import of a generated {options.size}-module app, in instructions (callgrind)")
    print("| variant | instructions | / plain |")
    print("|---|---|---|")
    for variant, count in counts.items():
        print(f"| {variant} | {count:,} | {count / plain:.3f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
