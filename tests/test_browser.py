"""``--reload-browser``: pages that follow the edits, in a real headless Chromium (issue 16).

The browser tests start a real Flask, Django and FastAPI app under
``python -m muckrack.hmr --reload-browser`` (on both cores) and drive Debian's
``chromium`` through ``chromedriver`` and selenium: a saved stylesheet is
swapped in place (the page is not reloaded: a value typed into an input and a
mark left in ``window`` stay), a view edit changes the page with no action
from the test, and a syntax error shows the overlay until a save fixes it.
Where Chromium or its driver is missing they skip with one line; they are
never faked.  The other tests check the parts without a browser: nothing is
injected without the option or into JSON, the stream answers loopback
clients only, and it carries the events.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from muckrack_hmr.cli.parsing import parse
from muckrack_hmr.config import load_settings
from muckrack_hmr.integrations.browser.asgi import BrowserASGI
from muckrack_hmr.integrations.browser.events import Events, error_event, stream
from muckrack_hmr.integrations.browser.page import EVENTS_PATH, SCRIPT, inject, is_loopback
from muckrack_hmr.integrations.browser.wsgi import BrowserWSGI

from .subprocesses import Child, write
from .test_everyday_edits import tracked
from .test_frameworks import DJANGO_MANAGE, Spawn, fetch, free_port, poll

# Each wait of a browser test is bounded by this (seconds).
WAIT = 15.0

# -- the page: the script, where it goes, who may listen --------------------------------


def test_the_script_goes_before_the_last_body_end_and_nowhere_without_one() -> None:
    page = b"<html><body><p>a</p><!-- </body> --></BODY ></html>"
    injected = inject(page)
    assert injected is not None
    assert injected == b"<html><body><p>a</p><!-- </body> -->" + SCRIPT + b"</BODY ></html>"
    assert EVENTS_PATH.encode() in SCRIPT
    assert inject(b"<div>a fragment, an htmx partial</div>") is None


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.7", False),
        ("192.168.1.20", False),
        ("::ffff:192.168.1.20", False),
        ("fe80::1%eth0", False),
        ("localhost", False),  # servers give addresses, never names
        ("", False),
        (None, False),
    ],
)
def test_only_loopback_clients_count_as_local(host: object, local: bool) -> None:
    assert is_loopback(host) is local


# -- WSGI: werkzeug (Flask) and Django's runserver ------------------------------------------


def _wsgi_app(body: bytes, content_type: str, *, length: bool = True, stream: bool = False):  # type: ignore[no-untyped-def]
    def app(environ: dict[str, object], start_response: Any) -> Any:
        headers = [("Content-Type", content_type)]
        if length:
            headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        if stream:
            return iter([body])  # a generator-like body of unknown length
        return [body]

    return app


def _call_wsgi(
    app: Any,
    path: str = "/",
    remote: str = "127.0.0.1",
    *,
    method: str = "GET",
    threaded: bool = True,
) -> tuple[str, dict[str, str], Any]:
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> Any:
        started["status"] = status
        started["headers"] = {k.lower(): v for k, v in headers}
        return lambda data: None

    environ = {
        "PATH_INFO": path,
        "REMOTE_ADDR": remote,
        "REQUEST_METHOD": method,
        "wsgi.multithread": threaded,
        "wsgi.multiprocess": False,
    }
    body = app(environ, start_response)
    return started["status"], started["headers"], body


PAGE = b"<html><body><h1>hi</h1></body></html>"


def test_wsgi_html_gets_the_script_and_its_new_length() -> None:
    app = BrowserWSGI(_wsgi_app(PAGE, "text/html; charset=utf-8"), Events())
    status, headers, body = _call_wsgi(app)
    content = b"".join(body)
    assert status == "200 OK"
    assert content == PAGE.replace(b"</body>", SCRIPT + b"</body>")
    assert headers["content-length"] == str(len(content))


@pytest.mark.parametrize(
    ("kind", "length", "streamed", "remote"),
    [
        ("application/json", True, False, "127.0.0.1"),  # not a page
        ("text/html", False, True, "127.0.0.1"),  # streamed: never read ahead
        ("text/html", True, False, "10.1.2.3"),  # a client on the network
    ],
    ids=["json", "streamed", "remote"],
)
def test_wsgi_leaves_other_responses_alone(
    kind: str, length: bool, streamed: bool, remote: str
) -> None:
    inner = _wsgi_app(PAGE, kind, length=length, stream=streamed)
    app = BrowserWSGI(inner, Events())
    _status, headers, body = _call_wsgi(app, remote=remote)
    assert b"".join(body) == PAGE
    assert headers.get("content-length") == (str(len(PAGE)) if length else None)


def test_wsgi_leaves_fragments_and_head_requests_alone() -> None:
    fragment = b"<div>a partial</div>"
    app = BrowserWSGI(_wsgi_app(fragment, "text/html"), Events())
    _status, headers, body = _call_wsgi(app)
    assert (b"".join(body), headers["content-length"]) == (fragment, str(len(fragment)))
    app = BrowserWSGI(_wsgi_app(PAGE, "text/html"), Events())
    _status, headers, body = _call_wsgi(app, method="HEAD")
    assert headers["content-length"] == str(len(PAGE))


def test_wsgi_event_stream_refuses_other_clients_and_carries_events() -> None:
    events = Events()
    app = BrowserWSGI(_wsgi_app(PAGE, "text/html"), events)
    status, _headers, body = _call_wsgi(app, EVENTS_PATH, remote="192.168.1.20")
    assert status.startswith("403")
    assert b"this machine only" in b"".join(body)

    # A server that answers one request at a time is not held by a stream.
    assert _call_wsgi(app, EVENTS_PATH, threaded=False)[0].startswith("204")

    status, headers, body = _call_wsgi(app, EVENTS_PATH)
    assert status == "200 OK"
    assert headers["content-type"] == "text/event-stream"
    chunks = iter(body)
    assert next(chunks).startswith(b"retry:")
    events.publish("css", {"path": "/static/site.css"})
    assert next(chunks) == b'id: 1\nevent: css\ndata: {"path":"/static/site.css"}\n\n'
    body.close()  # the page went away: the generator ends


def test_a_standing_error_is_sent_first_until_a_save_recovers() -> None:
    events = Events()
    events.publish("error", {"file": "app.py", "line": 3, "message": "SyntaxError: x"})
    first = next(stream(events))
    assert b"event: error" in first
    assert b'"file":"app.py"' in first
    events.publish("ok")
    assert b"event: error" not in next(stream(events))


def test_an_error_event_names_project_files_only(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    path = root / "pkg" / "views.py"
    try:
        compile("def f(:\n", str(path), "exec")
    except SyntaxError as exc:
        data = error_event("pkg.views", exc, [str(root)])
    assert data == {
        "module": "pkg.views",
        "file": "pkg/views.py",
        "line": 1,
        "message": "SyntaxError: invalid syntax",
    }
    outside = OSError(f"cannot open {root}/data/x.json and /etc/passwd")
    data = error_event("pkg.views", outside, [str(root)])
    assert data["file"] is None  # raised here, in the test: not a project file
    assert str(root) not in json.dumps(data)


# -- ASGI: uvicorn (FastAPI, Starlette) ------------------------------------------------------


def _asgi_app(body: bytes, content_type: bytes, *, length: bool = True):  # type: ignore[no-untyped-def]
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", content_type)]
        if length:
            headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        half = len(body) // 2
        await send({"type": "http.response.body", "body": body[:half], "more_body": True})
        await send({"type": "http.response.body", "body": body[half:], "more_body": False})

    return app


def _call_asgi(app: Any, path: str = "/", client: str = "127.0.0.1") -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # never disconnects
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": path, "client": (client, 50000), "headers": []}
    asyncio.run(app(scope, receive, send))
    return sent


def test_asgi_html_gets_the_script_json_and_streams_do_not() -> None:
    html = _call_asgi(BrowserASGI(_asgi_app(PAGE, b"text/html; charset=utf-8"), Events()))
    start, body = html
    content = body["body"]
    assert content == PAGE.replace(b"</body>", SCRIPT + b"</body>")
    assert (b"content-length", str(len(content)).encode()) in start["headers"]

    for inner, client in (
        (_asgi_app(PAGE, b"application/json"), "127.0.0.1"),
        (_asgi_app(PAGE, b"text/html", length=False), "127.0.0.1"),
        (_asgi_app(PAGE, b"text/html"), "10.1.2.3"),
    ):
        sent = _call_asgi(BrowserASGI(inner, Events()), client=client)
        assert b"".join(m.get("body", b"") for m in sent[1:]) == PAGE


def test_asgi_event_stream_refuses_other_clients_and_carries_events() -> None:
    events = Events()
    app = BrowserASGI(_asgi_app(PAGE, b"text/html"), events)
    refused = _call_asgi(app, EVENTS_PATH, client="192.168.1.20")
    assert refused[0]["status"] == 403

    sent: list[dict[str, Any]] = []

    async def main() -> None:
        gone = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if len(sent) == 2:  # the stream is open: an event from another thread
                threading.Thread(target=events.publish, args=("reload",)).start()
            elif len(sent) == 3:
                gone.set()

        scope = {"type": "http", "path": EVENTS_PATH, "client": ("::1", 50000)}
        await asyncio.wait_for(app(scope, receive, send), WAIT)

    asyncio.run(main())
    assert sent[0]["status"] == 200
    assert sent[1]["body"].startswith(b"retry:")
    assert sent[2]["body"] == b"id: 1\nevent: reload\ndata: {}\n\n"


# -- the option ---------------------------------------------------------------------------


def test_the_option_is_off_by_default_and_set_by_the_command_line_or_pyproject(
    tmp_path: Path,
) -> None:
    assert "reload_browser" not in parse(["-v", "app.py"]).given
    assert parse(["--reload-browser", "app.py"]).given["reload_browser"] is True
    assert parse(["--no-reload-browser", "app.py"]).given["reload_browser"] is False
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.muckrack-hmr]\nreload-browser = true\n")
    assert load_settings(str(pyproject)) == {"reload_browser": True}


# -- real servers -------------------------------------------------------------------------

FLASK_APP = """\
import sys

from flask import Flask, jsonify

import views

app = Flask(__name__)
app.add_url_rule("/", "page", views.page)
app.add_url_rule("/api", "api", lambda: jsonify(items=[1, 2]))
app.run(host="127.0.0.1", port=int(sys.argv[1]))
"""


def page_source(text: str, *, broken: bool = False) -> str:
    """A views module whose ``page()`` returns an HTML page showing ``text``."""
    head = "def page(request=None:" if broken else "def page(request=None):"
    return f"""\
HTML = (
    '<html><head><link rel="stylesheet" href="/static/site.css"></head>'
    '<body><h1 id="title">{text}</h1><input id="name"></body></html>'
)


{head}
    return HTML
"""


def test_nothing_is_injected_without_the_option_or_into_json(proj: Path, spawn: Spawn) -> None:
    write(proj / "app.py", FLASK_APP)
    write(proj / "views.py", page_source("one"))
    for option in ([], ["--reload-browser"]):
        port = free_port()
        child = spawn([*option, "app.py", str(port)], cwd=proj)
        page = poll(child, port, lambda body: True, parse=str)
        api = poll(child, port, lambda body: True, path="/api", parse=str)
        status, _body = fetch(port, EVENTS_PATH) if not option else (None, None)
        assert json.loads(api) == {"items": [1, 2]}
        if option:
            assert page.count("data-muckrack-hmr") == 1
            assert page.index("data-muckrack-hmr") < page.index("</body>")
        else:
            assert "muckrack" not in page
            assert status == 404  # no stream either: the app's own 404
        child.close()


# -- in a real browser ---------------------------------------------------------------------------


def _chromium() -> tuple[str, str] | None:
    browser = next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
    )
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the module's tests (skipped, in one line, without one)."""
    found = _chromium()
    if found is None:
        pytest.skip("no chromium and chromedriver here (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=found[1]), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def until(driver: Any, condition: Any, what: str, child: Child) -> Any:
    """Wait (at most ``WAIT`` s) until ``condition(driver)`` is truthy; fail saying ``what``."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.02).until(condition)
    except TimeoutException:
        pytest.fail(f"timed out waiting for {what}\n--- stderr ---\n{child.stderr_text()[-3000:]}")


def _title(driver: Any) -> str:
    return str(
        driver.execute_script(
            "var t = document.getElementById('title'); return t ? t.textContent : '';"
        )
    )


def _color(driver: Any) -> str:
    return str(
        driver.execute_script("return getComputedStyle(document.getElementById('title')).color")
    )


def _overlay(driver: Any) -> str | None:
    text = driver.execute_script(
        "var o = document.getElementById('muckrack-hmr-overlay'); return o ? o.textContent : null;"
    )
    return None if text is None else str(text)


def go_through_the_loop(
    driver: Any, child: Child, port: int, views: Path, source: Any, css: Path, broken_file: str
) -> None:
    """The three things a page does: a stylesheet swapped, a view edit, an error shown."""
    # The server listens once its start-up is done (a Django server checks its project
    # first): the watcher may track the views before.
    poll(child, port, lambda _: True, parse=str)
    driver.get(f"http://127.0.0.1:{port}/")
    until(driver, lambda d: _title(d) == "one", "the page", child)
    until(driver, lambda d: _color(d) == "rgb(255, 0, 0)", "the first stylesheet", child)
    # The stream is open before the first save (the page's script connected).
    until(
        driver,
        lambda d: d.execute_script("return window.__muckrackHmr.readyState === 1"),
        "the page's event stream",
        child,
    )
    name = driver.find_element("id", "name")
    name.send_keys("typed by hand")
    driver.execute_script("window.sameDocument = true;")

    # 1. A stylesheet saved: swapped in place, the page keeps what it holds.
    write(css, "#title { color: rgb(0, 0, 255); }\n")
    until(driver, lambda d: _color(d) == "rgb(0, 0, 255)", "the new stylesheet", child)
    assert driver.execute_script("return window.sameDocument === true")
    assert driver.find_element("id", "name").get_property("value") == "typed by hand"

    # 2. A view edited: the page shows it, with no action from the test.
    write(views, source("two"))
    until(driver, lambda d: _title(d) == "two", "the edited view", child)
    assert driver.execute_script("return window.sameDocument === undefined")  # it reloaded

    # 3. A syntax error: the overlay says where; the fix clears it.
    write(views, source("two", broken=True))
    shown = until(driver, _overlay, "the error overlay", child)
    line = source("two", broken=True).splitlines().index("def page(request=None:") + 1
    assert f"{broken_file}:{line}" in shown
    assert "SyntaxError" in shown
    assert "/" + str(views.parent).strip("/") not in shown  # no path outside the project
    write(views, source("three"))
    until(driver, lambda d: _overlay(d) is None and _title(d) == "three", "the fix", child)

    # 4. Broken again, then saved back exactly as it runs (an undo): nothing reloads,
    # and the overlay goes all the same.
    driver.execute_script("window.sameDocument = true;")
    write(views, source("three", broken=True))
    until(driver, _overlay, "the error overlay, again", child)
    write(views, source("three"))
    until(driver, lambda d: _overlay(d) is None, "the overlay gone after the undo", child)
    assert driver.execute_script("return window.sameDocument === true")


DJANGO_SETTINGS = """\
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEBUG = True
SECRET_KEY = "only-for-the-tests"
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "site_.urls"
INSTALLED_APPS = ["django.contrib.staticfiles"]
DATABASES = {}
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
"""

DJANGO_URLS = """\
from django.http import HttpResponse
from django.urls import path

from . import views

urlpatterns = [path("", lambda request: HttpResponse(views.page(request)))]
"""


FASTAPI_APP = """\
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

import views

app = FastAPI()
app.mount("/static", StaticFiles(directory="static"), name="static")


@app.get("/", response_class=HTMLResponse)
def index():
    return views.page()
"""


def flask_site(proj: Path, port: int) -> tuple[list[str], str]:
    """Write a Flask app; (the CLI's arguments, its views module's name)."""
    write(proj / "app.py", FLASK_APP)
    write(proj / "views.py", page_source("one"))
    return ["app.py", str(port)], "views"


def django_site(proj: Path, port: int) -> tuple[list[str], str]:
    write(proj / "manage.py", DJANGO_MANAGE.replace("mysite.settings", "site_.settings"))
    write(proj / "site_" / "__init__.py", "")
    write(proj / "site_" / "settings.py", DJANGO_SETTINGS)
    write(proj / "site_" / "urls.py", DJANGO_URLS)
    write(proj / "site_" / "views.py", page_source("one"))
    return ["manage.py", "runserver", f"127.0.0.1:{port}"], "site_.views"


def fastapi_site(proj: Path, port: int) -> tuple[list[str], str]:
    write(proj / "app.py", FASTAPI_APP)
    write(proj / "views.py", page_source("one"))
    return ["-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)], "views"


# One test, parametrised: where Chromium is missing, one line says so.
@pytest.mark.e2e
@pytest.mark.parametrize("site", [flask_site, django_site, fastapi_site], ids=lambda f: f.__name__)
def test_the_page_follows_a_stylesheet_a_view_edit_and_an_error(
    proj: Path, spawn: Spawn, chromium: Any, site: Any
) -> None:
    port = free_port()
    args, views = site(proj, port)
    write(proj / "static" / "site.css", "#title { color: rgb(255, 0, 0); }\n")
    child = spawn(["-v", "--reload-browser", *args], cwd=proj)
    tracked(child, views)
    path = proj.joinpath(*views.split(".")).with_suffix(".py")
    relative = path.relative_to(proj).as_posix()
    go_through_the_loop(
        chromium, child, port, path, page_source, proj / "static" / "site.css", relative
    )
