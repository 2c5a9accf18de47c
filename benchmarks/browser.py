"""``python -m benchmarks.browser [--quick]``: save-to-repaint in a real headless Chromium.

A small Django app (``runserver``) shows a page; a headless Chromium (Debian's
``chromium`` and ``chromedriver``, driven by selenium) has it open.  Each edit
rewrites the view's text; the clock runs from just before the file is written
until the page that shows the new text reaches its next frame
(``requestAnimationFrame`` after the reloaded document ran its script): the
browser's own clock (``performance.timeOrigin + performance.now()``), on the
same machine as the writer's ``time.time()``.  Nobody touches the page.

Variants, each on its own server and port, edits round-robin:

* ``HMR, c core`` / ``HMR, py core``: ``python -m muckrack.hmr
  --reload-browser manage.py runserver`` (the module reloads in place; the
  page reloads on our ``reload`` event);
* ``django-browser-reload``: plain ``manage.py runserver`` with
  django-browser-reload installed as its README says (Django's autoreloader
  restarts the server; the page's listener sees the new server and reloads).

Medians over the edits (``--edits``, 10 by default) and the median of
per-round ratios are reported.  The run exits 1 when a result is wrong (an
edit that never shows, a restart under HMR), never because of a timing; it
exits 0 with one line when Chromium, its driver, selenium or
django-browser-reload is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .__main__ import available_cores, median, quartiles, ratios, rotate

DEADLINE = 30.0  # one edit showing (a restart reloader polls every second)

MANAGE = """\
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
from django.core.management import execute_from_command_line

execute_from_command_line(sys.argv)
"""

SETTINGS = """\
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEBUG = True
SECRET_KEY = "only-for-the-benchmark"
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "mysite.urls"
INSTALLED_APPS = ["django.contrib.staticfiles"{apps}]
MIDDLEWARE = [{middleware}]
DATABASES = {{}}
STATIC_URL = "static/"
"""

URLS = """\
from django.urls import include, path

from . import views

urlpatterns = [path("", views.page){more}]
"""

# The page says when it is shown: the frame after its script ran.
VIEWS = """\
from django.http import HttpResponse

PAGE = (
    "<html><head><title>bench</title></head><body><h1 id='title'>{text}</h1>"
    "<script>requestAnimationFrame(function () {{"
    " window.shownAt = performance.timeOrigin + performance.now(); }});</script>"
    "</body></html>"
)


def page(request):
    return HttpResponse(PAGE)
"""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def views(text: str) -> str:
    return VIEWS.replace("{text}", text).replace("{{", "{").replace("}}", "}")


def make_app(root: Path, with_django_browser_reload: bool) -> Path:
    """Write the Django app; returns the views module the edits rewrite."""
    apps = ', "django_browser_reload"' if with_django_browser_reload else ""
    middleware = (
        '"django_browser_reload.middleware.BrowserReloadMiddleware"'
        if with_django_browser_reload
        else ""
    )
    more = (
        ', path("__reload__/", include("django_browser_reload.urls"))'
        if with_django_browser_reload
        else ""
    )
    write(root / "manage.py", MANAGE)
    write(root / "mysite" / "__init__.py", "")
    write(root / "mysite" / "settings.py", SETTINGS.format(apps=apps, middleware=middleware))
    write(root / "mysite" / "urls.py", URLS.format(more=more))
    target = root / "mysite" / "views.py"
    write(target, views("start"))
    return target


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Variant:
    """One server, and the browser tab that shows its page."""

    name: str
    root: Path
    core: str | None = None  # None: django-browser-reload under plain runserver
    port: int = 0
    views: Path = field(init=False)
    proc: subprocess.Popen[bytes] | None = None
    tab: str = ""
    latencies: list[float] = field(default_factory=list)
    log: Path = field(init=False)

    def start(self) -> None:
        self.views = make_app(self.root, with_django_browser_reload=self.core is None)
        self.port = free_port()
        env = dict(os.environ, NO_COLOR="1", PYTHONUNBUFFERED="1")
        env.pop("MUCKRACK_HMR_NO_EXTENSIONS", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # restarts read .pyc files, as usual
        if self.core == "py":
            env["MUCKRACK_HMR_NO_EXTENSIONS"] = "1"
        prefix = [sys.executable]
        if self.core is not None:
            prefix += ["-m", "muckrack.hmr", "--reload-browser"]
        self.log = self.root.parent / f"{self.root.name}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [*prefix, "manage.py", "runserver", f"127.0.0.1:{self.port}"],
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=os.name == "posix",  # the autoreloader's child goes too
            )

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def browser() -> Any:
    """A headless Chromium, or None (with the reason printed) where there is none."""
    binary = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        print(
            "skipped: no chromium and chromedriver here (apt-get install chromium chromium-driver)"
        )
        return None
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        print("skipped: selenium is not installed (pip install -e '.[test]')")
        return None
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def shown(chrome: Any, text: str) -> float | None:
    """The page's frame time (epoch ms) once it shows ``text``; None before."""
    value = chrome.execute_script(
        "var t = document.getElementById('title');"
        "return t && t.textContent === arguments[0] && window.shownAt ? window.shownAt : null;",
        text,
    )
    return float(value) if value is not None else None


def wait_shown(chrome: Any, text: str, deadline: float) -> float | None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with contextlib.suppress(Exception):  # a page being replaced answers nothing
            at = shown(chrome, text)
            if at is not None:
                return at
        time.sleep(0.005)  # pacing between looks; the browser's clock times the edit
    return None


def ready(chrome: Any, variant: Variant) -> bool:
    """Open the variant's page in its own tab; True once it shows and listens."""
    chrome.switch_to.new_window("tab")
    variant.tab = chrome.current_window_handle
    end = time.monotonic() + 60
    while time.monotonic() < end:
        with contextlib.suppress(Exception):
            chrome.get(f"http://127.0.0.1:{variant.port}/")
            if shown(chrome, "start") is not None:
                break
        time.sleep(0.2)  # the server is starting
    else:
        return False
    if variant.core is None:
        # django-browser-reload listens from a shared worker, out of the page's sight.
        time.sleep(1.5)
        return True
    while time.monotonic() < end:  # our script's EventSource is open
        if chrome.execute_script("return !!window.__muckrackHmr && __muckrackHmr.readyState == 1"):
            return True
        time.sleep(0.02)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.browser", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 edits (for CI)")
    parser.add_argument("--edits", type=int, help="edits per server (default 10; quick: 3)")
    args = parser.parse_args(argv)
    edits = args.edits or (3 if args.quick else 10)
    if importlib.util.find_spec("django") is None:
        print("skipped: Django is not installed")
        return 0
    variants_of = [(f"HMR, {core} core", core) for core in available_cores()]
    if importlib.util.find_spec("django_browser_reload") is not None:
        variants_of.append(("django-browser-reload", None))
    else:
        print("note: django-browser-reload is not installed (pip install -e '.[bench]')")
    chrome = browser()
    if chrome is None:
        return 0
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hmr-browser-bench-") as tmp:
        variants = [
            Variant(name, Path(tmp) / f"app{i}", core) for i, (name, core) in enumerate(variants_of)
        ]
        try:
            for variant in variants:
                variant.start()
            for variant in variants:
                if not ready(chrome, variant):
                    errors.append(
                        f"{variant.name}: the page never showed\n{variant.log.read_text()[-2000:]}"
                    )
            for edit in range(edits if not errors else 0):
                for variant in rotate(variants, edit):
                    chrome.switch_to.window(variant.tab)
                    text = f"edit {edit}"
                    started = time.time() * 1000.0
                    variant.views.write_text(views(text), encoding="utf-8")
                    at = wait_shown(chrome, text, DEADLINE)
                    if at is None:
                        errors.append(f"{variant.name}: edit {edit} never showed")
                        continue
                    variant.latencies.append(at - started)
                    time.sleep(0.3 if variant.core is not None else 1.5)  # let it settle
        finally:
            chrome.quit()
            for variant in variants:
                variant.stop()
        for variant in variants:
            if variant.core is not None and "autoreloader is off" not in variant.log.read_text():
                errors.append(f"{variant.name}: Django's autoreloader was not turned off")
    report(variants, edits)
    for error in errors:
        print(f"ERROR: {error}", file=sys.stderr)
    return 1 if errors else 0


def report(variants: list[Variant], edits: int) -> None:
    print(
        f"save-to-repaint, Django runserver, headless Chromium; {edits} edits each; "
        f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
    )
    baseline = next((v for v in variants if v.core is None), None)
    for variant in variants:
        if not variant.latencies:
            continue
        low, high = quartiles(variant.latencies)
        line = (
            f"  {variant.name:<24} median {median(variant.latencies):8.1f} ms"
            f"  (IQR {low:.1f}-{high:.1f})"
        )
        if baseline is not None and variant is not baseline and baseline.latencies:
            count = min(len(baseline.latencies), len(variant.latencies))
            faster = median(ratios(baseline.latencies[:count], variant.latencies[:count]))
            line += f"  {faster:.0f}x faster than django-browser-reload"
        print(line)


if __name__ == "__main__":
    sys.exit(main())
