"""``python -m benchmarks.latency [--quick]``: edit-to-live latency in real web servers.

For each framework (Flask's werkzeug dev server, FastAPI under uvicorn,
Django's ``runserver``) a small app is written to a temporary folder, once per
variant, and every variant's server runs at the same time on its own port:

* HMR: ``python -m muckrack.hmr ...`` on the compiled and on the pure core
  (and once more per ``--hmr-args`` set of options), with the framework's
  restarter off (Flask: ``use_reloader=False``; uvicorn: no ``--reload``;
  Django: plain ``runserver``, whose autoreloader HMR turns off);
* ``restart``: the framework's own restart reloader, without HMR (Flask:
  ``use_reloader=True`` with werkzeug's stat reloader; ``uvicorn --reload``;
  ``manage.py runserver``).

Then, round-robin over the variants with a rotating order, each edit rewrites
the body of a helper function the view returns, and the clock runs from just
before the file is written until an HTTP GET, polled tightly, returns the new
value.  Medians over the edits (``--edits``, at least 20 by default) and the
median of per-round ratios restart / HMR are reported.

The run checks its results, and exits 1 when one is wrong, never because of a
timing: every edit must go live before a deadline; under HMR the serving
process must be the one started, for every edit (same PID) with no failed
reload; under a restart reloader the PID must change on every edit (else the
baseline would not be a restart).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .__main__ import available_cores, median, quartiles, ratios, rotate

FRAMEWORKS = ("flask", "fastapi", "django")
LIVE_DEADLINE = 60.0  # a server's first answer
EDIT_DEADLINE = 30.0  # one edit going live (a restart reloader polls every second)


# -- the apps -----------------------------------------------------------------------


def _helper(value: str) -> str:
    return f'def value():\n    return "{value}"\n'


FLASK_VIEWS = """\
import os

from flask import Flask, jsonify

import helpers

app = Flask(__name__)


@app.route("/")
def index():
    return jsonify(pid=os.getpid(), value=helpers.value())
"""

FLASK_SERVER = """\
import logging
import sys

from views import app

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
app.run(host="127.0.0.1", port=int(sys.argv[1]), use_reloader={reloader}, reloader_type="stat")
"""

FASTAPI_APP = """\
import os

from fastapi import FastAPI

import helpers

app = FastAPI()


@app.get("/")
def index():
    return {"pid": os.getpid(), "value": helpers.value()}
"""

DJANGO_MANAGE = """\
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""

DJANGO_SETTINGS = """\
DEBUG = True
SECRET_KEY = "only-for-the-benchmark"
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "mysite.urls"
INSTALLED_APPS = []
DATABASES = {}
USE_TZ = True
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"django.server": {"level": "WARNING"}},  # no line per request
}
"""

DJANGO_VIEWS = """\
import os

from django.http import JsonResponse

from . import helpers


def index(request):
    return JsonResponse({"pid": os.getpid(), "value": helpers.value()})
"""

DJANGO_URLS = """\
from django.urls import path

from . import views

urlpatterns = [path("", views.index)]
"""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def make_app(framework: str, root: Path, reloader: bool) -> Path:
    """Write the app; returns the helper module the edits rewrite."""
    if framework == "flask":
        _write(root / "views.py", FLASK_VIEWS)
        _write(root / "server.py", FLASK_SERVER.format(reloader=reloader))
        helper = root / "helpers.py"
    elif framework == "fastapi":
        _write(root / "app.py", FASTAPI_APP)
        helper = root / "helpers.py"
    else:
        _write(root / "manage.py", DJANGO_MANAGE)
        _write(root / "mysite" / "__init__.py", "")
        _write(root / "mysite" / "settings.py", DJANGO_SETTINGS)
        _write(root / "mysite" / "views.py", DJANGO_VIEWS)
        _write(root / "mysite" / "urls.py", DJANGO_URLS)
        helper = root / "mysite" / "helpers.py"
    _write(helper, _helper("start"))
    return helper


def server_args(framework: str, port: int, restart: bool) -> list[str]:
    """The program's command line, after ``python`` or ``python -m muckrack.hmr``."""
    if framework == "flask":
        return ["server.py", str(port)]
    if framework == "fastapi":
        reload = ["--reload"] if restart else []
        return ["-m", "uvicorn", "app:app", *reload, "--host", "127.0.0.1", "--port", str(port)]
    return ["manage.py", "runserver", f"127.0.0.1:{port}"]


def restart_reloader_name(framework: str) -> str:
    """Which restart reloader the framework picks here (it depends on what is installed)."""

    def installed(module: str) -> bool:
        import importlib.util

        return importlib.util.find_spec(module) is not None

    if framework == "flask":
        # Not watchdog: werkzeug's watchdog reloader watches every folder on
        # sys.path recursively, and with watchdog 7 (which also reports files
        # opened for reading) its inotify queue overflows on a busy machine
        # and edits are lost.
        return "werkzeug reloader, stat polling"
    if framework == "fastapi":
        return "uvicorn --reload, " + ("watchfiles" if installed("watchfiles") else "stat polling")
    return "runserver autoreloader, " + ("watchman" if installed("pywatchman") else "stat polling")


# -- servers --------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int) -> dict[str, Any] | None:
    """One GET / ; None while nothing (or a restarting server) answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            return None
        result: dict[str, Any] = json.loads(body)
        return result
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()


@dataclass
class Variant:
    """One server of one framework: ours on a core, or the framework's restarter."""

    framework: str
    name: str  # "restart", or "HMR, c core" and the like
    root: Path
    core: str | None = None  # None: the framework's restart reloader
    hmr_args: list[str] = field(default_factory=list)
    helper: Path = field(init=False)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    latencies: list[float] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)

    @property
    def restart(self) -> bool:
        return self.core is None

    def start(self, python: str) -> None:
        self.helper = make_app(self.framework, self.root, reloader=self.restart)
        self.port = free_port()
        env = dict(os.environ)
        env.pop("MUCKRACK_HMR_NO_EXTENSIONS", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # restarts read .pyc files, as usual
        env["NO_COLOR"] = "1"
        env["PYTHONUNBUFFERED"] = "1"
        if self.core == "py":
            env["MUCKRACK_HMR_NO_EXTENSIONS"] = "1"
        args = server_args(self.framework, self.port, self.restart)
        prefix = [python] if self.restart else [python, "-m", "muckrack.hmr", *self.hmr_args]
        self.log = self.root.parent / f"{self.root.name}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [*prefix, *args],
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: a restart reloader's children go with it.
                start_new_session=os.name == "posix",
            )

    def wait_live(self, want: Callable[[dict[str, Any]], bool], deadline: float) -> float | None:
        """Poll until a response satisfies ``want``; the time it came, or None."""
        assert self.proc is not None
        end = time.perf_counter() + deadline
        while time.perf_counter() < end:
            got = get(self.port)
            if got is not None and want(got):
                self.pids.append(int(got["pid"]))
                return time.perf_counter()
            if self.proc.poll() is not None:
                return None
        return None

    def log_text(self) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        if os.name == "posix":
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        else:
            proc.kill()
            proc.wait(timeout=10)


# -- one framework ------------------------------------------------------------------------


class Errors(list[str]):
    def add(self, message: str) -> None:
        self.append(message)
        print(f"  ERROR: {message}", file=sys.stderr, flush=True)


def hmr_variants(cores: list[str], args: argparse.Namespace) -> list[tuple[str, str, list[str]]]:
    """(column name, core, CLI options) of each HMR server."""
    found = []
    for options in args.hmr_args:
        for core in cores:
            name = f"HMR, {core} core" + (f", {options}" if options else "")
            found.append((name, core, shlex.split(options)))
    return found


def measure_framework(
    framework: str, cores: list[str], args: argparse.Namespace, errors: Errors
) -> list[Variant]:
    tmp = Path(tempfile.mkdtemp(prefix=f"hmr-latency-{framework}-"))
    variants = [
        Variant(framework, name, tmp / f"hmr{index}", core, options)
        for index, (name, core, options) in enumerate(hmr_variants(cores, args))
    ]
    variants.append(Variant(framework, "restart", tmp / "restart"))
    try:
        for variant in variants:
            variant.start(sys.executable)
        for variant in variants:
            if variant.wait_live(lambda got: got["value"] == "start", LIVE_DEADLINE) is None:
                errors.add(
                    f"{framework} {variant.name}: the server never answered\n"
                    + variant.log_text()[-3000:]
                )
                return []
        # Let the watchers finish starting (and HMR's idle-time analysis run)
        # before the first edit.
        time.sleep(args.pause)
        for edit in range(args.edits):
            for variant in rotate(variants, edit):
                measure_edit(variant, edit, errors)
                # A restarted server answers before its reloader has looked at
                # the files: an edit made then would be missed by design.
                time.sleep(args.pause)
        for variant in variants:
            check_variant(variant, errors)
        return variants
    finally:
        for variant in variants:
            variant.stop()
        if args.keep:
            print(f"  kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def measure_edit(variant: Variant, edit: int, errors: Errors) -> None:
    value = f"edit{edit}"
    pid_before = variant.pids[-1]
    started = time.perf_counter()
    with variant.helper.open("w", encoding="utf-8") as handle:  # saved in place
        handle.write(_helper(value))
    live = variant.wait_live(lambda got: got["value"] == value, EDIT_DEADLINE)
    if live is None:
        errors.add(
            f"{variant.framework} {variant.name}: edit {edit} not live within "
            f"{EDIT_DEADLINE:.0f} s\n{variant.log_text()[-3000:]}"
        )
        variant.latencies.append(float("nan"))
        return
    variant.latencies.append((live - started) * 1000.0)
    pid = variant.pids[-1]
    if variant.restart and pid == pid_before:
        errors.add(f"{variant.framework} restart: edit {edit} went live without a restart")


def check_variant(variant: Variant, errors: Errors) -> None:
    if variant.restart or variant.proc is None:
        return
    strangers = sorted(set(variant.pids) - {variant.proc.pid})
    if strangers:
        errors.add(
            f"{variant.framework} {variant.name}: served by PIDs {strangers}, "
            f"not by the process started ({variant.proc.pid})"
        )
    text = variant.log_text()
    if "hmr: failed" in text or "Traceback" in text:
        errors.add(f"{variant.framework} {variant.name}: a reload failed\n{text[-3000:]}")


# -- report ------------------------------------------------------------------------------


def fmt_ms(values: list[float]) -> str:
    mid = median(values)
    low, high = quartiles(values)
    if mid != mid:  # nan
        return "n/a"
    return f"{mid:.1f} ms [{low:.1f}-{high:.1f}]"


def report(results: dict[str, list[Variant]], cores: list[str], args: argparse.Namespace) -> None:
    names = [name for name, _, _ in hmr_variants(cores, args)]
    print()
    print(
        f"Edit-to-live latency: median [quartiles] over {args.edits} edits per server, "
        f"from writing the file to the first HTTP response with the new value"
    )
    print(
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )
    print()
    header = ["framework", *names, "restart reloader", f"restart / {names[0]}"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for framework, variants in results.items():
        if not variants:
            continue
        by_name = {variant.name: variant for variant in variants}
        restart = by_name["restart"]
        ratio = median(ratios(restart.latencies, by_name[names[0]].latencies))
        cells = [framework, *(fmt_ms(by_name[name].latencies) for name in names)]
        cells += [f"{fmt_ms(restart.latencies)} ({restart_reloader_name(framework)})"]
        cells += [f"{ratio:.0f}x" if ratio == ratio else "n/a"]
        print("| " + " | ".join(cells) + " |")
    print()
    if args.json:
        data = {
            framework: {variant.name: variant.latencies for variant in variants}
            for framework, variants in results.items()
        }
        Path(args.json).write_text(json.dumps(data, indent=1))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 edits, short pauses (for CI)")
    parser.add_argument("--edits", type=int, help="edits per server (default 20; quick: 3)")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS), help="comma-separated subset")
    parser.add_argument("--cores", help="comma-separated subset of c,py (default: both)")
    parser.add_argument(
        "--hmr-args",
        action="append",
        metavar="OPTIONS",
        help="options for python -m muckrack.hmr, as one string (--hmr-args='--debounce 5'); "
        "repeat it to compare several sets side by side (default: the CLI's defaults)",
    )
    parser.add_argument(
        "--pause", type=float, help="seconds between edits (default 1.0; quick: 0.7)"
    )
    parser.add_argument("--json", help="write the raw latencies (ms) to this file")
    parser.add_argument("--keep", action="store_true", help="keep the generated apps")
    args = parser.parse_args(argv)
    if args.edits is None:
        args.edits = 3 if args.quick else 20
    if not args.hmr_args:
        args.hmr_args = [""]
    if args.pause is None:
        args.pause = 0.7 if args.quick else 1.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cores = available_cores()
    if args.cores:
        cores = [core for core in args.cores.split(",") if core in cores]
    frameworks = [name for name in args.frameworks.split(",") if name]
    unknown = sorted(set(frameworks) - set(FRAMEWORKS))
    if unknown or not cores or args.edits < 1:
        print(f"bad arguments: frameworks {unknown}, cores {cores}", file=sys.stderr)
        return 2
    errors = Errors()
    results: dict[str, list[Variant]] = {}
    for framework in frameworks:
        servers = len(cores) * len(args.hmr_args) + 1
        print(f"{framework}: {args.edits} edits x {servers} servers", file=sys.stderr)
        started = time.perf_counter()
        results[framework] = measure_framework(framework, cores, args, errors)
        print(f"{framework}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    report(results, cores, args)
    if errors:
        print(f"{len(errors)} wrong result(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
