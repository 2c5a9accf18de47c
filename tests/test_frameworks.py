"""Real web servers (Flask, FastAPI under uvicorn, Django) and a worker loop under HMR.

Each test starts ``python -m muckrack.hmr`` in a child process on both cores,
serving on 127.0.0.1 on a port the test picked, and goes through one sequence
of edits of real files, polling the HTTP endpoint with a deadline after each:

1. a helper module's function body changes;
2. the view module itself changes (a view registered in the framework's
   routing table);
3. the view module gets a syntax error: the error is logged with the file and
   line, and the old code keeps serving;
4. the fix applies;
5. what the framework derived from the code follows (Django's URL resolver
   and template loaders; a FastAPI dependency; an ``lru_cache``).

Every response carries ``os.getpid()``: it must stay the child's own process
ID throughout (no restart, no reloader child process).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .subprocesses import DEADLINE, Child, free_port, save_atomically, starts, write
from .test_validated_models import ORDERS

# The frameworks come with the test extra: a missing one is an error, not a skip.
for _framework in ("flask", "fastapi", "uvicorn", "django"):
    if importlib.util.find_spec(_framework) is None:
        raise ImportError(f"{_framework} is missing: pip install -e '.[test]'")

Spawn = Callable[..., Child]


# -- HTTP with deadlines -----------------------------------------------------------


def fetch(port: int, path: str = "/") -> tuple[int, str]:
    """(status, body) of one GET; raises OSError while nothing listens."""
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def poll(
    child: Child,
    port: int,
    want: Callable[[Any], bool],
    *,
    path: str = "/",
    parse: Callable[[str], Any] = json.loads,
    timeout: float = DEADLINE,
) -> Any:
    """GET ``path`` until the parsed 200 response satisfies ``want``; fail at the deadline."""
    deadline = time.monotonic() + timeout
    last: object = "no response"
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            child.wait()
            pytest.fail(
                f"the server exited with {child.proc.returncode}\n"
                f"--- stderr ---\n{child.stderr_text()[-4000:]}"
            )
        try:
            status, body = fetch(port, path)
        except OSError as exc:  # not listening yet
            last = exc
        else:
            last = (status, body[:300])
            if status == 200:
                value = parse(body)
                if want(value):
                    return value
        time.sleep(0.01)  # pacing between polls; the deadline bounds the wait
    pytest.fail(
        f"GET {path} never gave what the test waits for within {timeout:.0f} s; last: {last!r}\n"
        f"--- stderr (tail) ---\n{child.stderr_text()[-4000:]}"
    )


def failed_reload_line(child: Child, module: str, filename: str, line: int) -> str:
    """Wait for the one-line error of a failed reload; it names the file and line."""
    error = child.expect(starts(f"hmr: failed to reload {module} "), stream="err")
    assert re.search(rf"{re.escape(filename)}:{line}\b", error), error
    assert "SyntaxError" in error
    return error


# -- the shared sequence of edits ------------------------------------------------------


def helper_source(value: str) -> str:
    return f'''\
def greeting():
    return "{value}"
'''


def go_through_edits(
    child: Child,
    port: int,
    *,
    helper: Path,
    helper_source: Callable[[str], str] = helper_source,
    view: Path,
    view_module: str,
    view_source: Callable[[str], str],
    broken_view: str,
    broken_line: int,
) -> int:
    """Steps 1-4 of the module docstring; returns the server's process ID."""
    first = poll(child, port, lambda got: got["helper"] == "h1" and got["view"] == "v1")
    pid = first["pid"]
    # The process we started serves: no reloader child in between.
    assert pid == child.proc.pid

    # 1. A helper module.
    write(helper, helper_source("h2"))
    got = poll(child, port, lambda got: got["helper"] == "h2")
    assert (got["view"], got["pid"]) == ("v1", pid)

    # 2. The view module itself (saved the way editors that rename do).
    save_atomically(view, view_source("v2"))
    got = poll(child, port, lambda got: got["view"] == "v2")
    assert (got["helper"], got["pid"]) == ("h2", pid)

    # 3. A syntax error: logged with file and line; the old code keeps serving.
    write(view, broken_view)
    failed_reload_line(child, view_module, view.name, broken_line)
    status, body = fetch(port)
    assert status == 200
    assert json.loads(body) == {"pid": pid, "helper": "h2", "view": "v2"}

    # 4. The fix applies.
    write(view, view_source("v3"))
    got = poll(child, port, lambda got: got["view"] == "v3")
    assert (got["helper"], got["pid"]) == ("h2", pid)
    return int(pid)


# -- Flask -------------------------------------------------------------------------


def flask_views(view: str) -> str:
    return f'''\
import os

from flask import Flask, jsonify

import helpers

app = Flask(__name__)


@app.route("/")
def index():
    return jsonify(pid=os.getpid(), helper=helpers.greeting(), view="{view}")


@app.route("/twice")
def twice():
    return jsonify(pid=os.getpid(), value=helpers.greeting() * 2)
'''


FLASK_BROKEN = """\
import os

from flask import Flask, jsonify

import helpers

app = Flask(__name__)


@app.route("/")
def index(:
    return "never"
"""

FLASK_SERVER = """\
import sys

from views import app

app.run(host="127.0.0.1", port=int(sys.argv[1]), {options})
"""


def flask_project(proj: Path, options: str) -> None:
    write(proj / "helpers.py", helper_source("h1"))
    write(proj / "views.py", flask_views("v1"))
    write(proj / "server.py", FLASK_SERVER.format(options=options))


def test_flask_dev_server_reloads_in_place(proj: Path, spawn: Spawn) -> None:
    flask_project(proj, "use_reloader=False")
    port = free_port()
    child = spawn(["server.py", str(port)], cwd=proj)

    pid = go_through_edits(
        child,
        port,
        helper=proj / "helpers.py",
        view=proj / "views.py",
        view_module="views",
        view_source=flask_views,
        broken_view=FLASK_BROKEN,
        broken_line=11,
    )

    # 5. Another route of the app's url_map runs the edited helper too.
    assert poll(child, port, lambda got: True, path="/twice") == {"pid": pid, "value": "h2h2"}
    write(proj / "helpers.py", helper_source("h4"))
    got = poll(child, port, lambda got: got["value"] == "h4h4", path="/twice")
    assert got["pid"] == pid


def test_flask_debug_mode_serves_in_this_process(proj: Path, spawn: Spawn) -> None:
    """``debug=True`` turns werkzeug's restarting reloader on; under HMR it stays off."""
    flask_project(proj, "debug=True")
    port = free_port()
    child = spawn(["server.py", str(port)], cwd=proj)

    first = poll(child, port, lambda got: got["helper"] == "h1")
    assert first["pid"] == child.proc.pid
    child.expect("hmr: werkzeug's reloader is off", stream="err")
    # The debugger's console asks for a PIN, which werkzeug's reloader child says.
    child.expect(" * Debugger is active!", stream="err")
    pin = child.expect(" * Debugger PIN: ", stream="err")
    assert re.search(r"PIN: \d{3}-\d{3}-\d{3}$", pin), pin

    write(proj / "helpers.py", helper_source("h2"))
    got = poll(child, port, lambda got: got["helper"] == "h2")
    assert got["pid"] == child.proc.pid


QUART_VIEWS = """\
import os

from quart import Quart

app = Quart(__name__)
HITS = []


@app.route("/")
async def index():
    HITS.append(1)
    return {{"pid": os.getpid(), "view": "{view}", "hits": len(HITS)}}
"""


def test_quart_app_run_serves_in_this_process(proj: Path, spawn: Spawn) -> None:
    """``app.run()`` (Quart's quick start) watches files itself, and on a save replaced the
    process with plain ``python`` (``os.execv``): the hooks gone, the state too, every
    later save a cold restart.  Its reloader is off: the save reloads in place."""
    pytest.importorskip("quart")
    write(proj / "views.py", QUART_VIEWS.format(view="v1"))
    port = free_port()
    write(proj / "run.py", f'from views import app\n\napp.run(host="127.0.0.1", port={port})\n')
    child = spawn(["run.py"], cwd=proj)
    first = poll(child, port, lambda got: got["view"] == "v1")
    assert first["pid"] == child.proc.pid
    child.expect("hmr: Quart's reloader is off", stream="err")
    write(proj / "views.py", QUART_VIEWS.format(view="v2"))
    got = poll(child, port, lambda got: got["view"] == "v2")
    assert got["pid"] == child.proc.pid
    assert got["hits"] > first["hits"]  # the same process, its state kept
    # Still this program under the CLI, not python run.py exec'd in its place (Linux).
    cmdline = Path(f"/proc/{child.proc.pid}/cmdline")
    if cmdline.exists():
        assert b"muckrack.hmr" in cmdline.read_bytes()


LITESTAR_APP = """\
import os

from litestar import Litestar, get

HITS = []


def started(app):
    app.state.started = os.getpid()


@get("/")
async def index() -> dict:
    HITS.append(1)
    return {{"pid": os.getpid(), "hits": len(HITS), "routes": len(app.routes),
            "started": app.state.started}}


@get("/items")
async def items({params}) -> dict:
    return {{"pid": os.getpid(), "q": {q}}}
{more}

app = Litestar(route_handlers=[index, items{handlers}], on_startup=[started])
"""

LITESTAR_MORE = """
@get("/more")
async def more() -> dict:
    return {"pid": os.getpid(), "more": True}
"""


def test_litestar_app_made_again_gives_the_served_app_its_routes(proj: Path, spawn: Spawn) -> None:
    """A handler added to ``route_handlers=[...]`` (or one with a new parameter: Litestar
    reads a handler's signature as the app is made) made a new app, which uvicorn never
    served: 404, the parameter never read, and the save said it reloaded."""
    pytest.importorskip("litestar")

    def source(params: str = "", q: str = "None", more: str = "", handlers: str = "") -> str:
        return LITESTAR_APP.format(params=params, q=q, more=more, handlers=handlers)

    write(proj / "app.py", source())
    port = free_port()
    child = spawn(
        ["-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)], cwd=proj
    )
    first = poll(child, port, lambda got: True)
    pid, routes = first["pid"], first["routes"]
    assert first["started"] == pid
    assert fetch(port, "/more")[0] == 404

    write(proj / "app.py", source(more=LITESTAR_MORE, handlers=", more"))
    assert poll(child, port, lambda got: True, path="/more") == {"pid": pid, "more": True}
    write(proj / "app.py", source("q: int = 0", "q", LITESTAR_MORE, ", more"))
    got = poll(child, port, lambda got: got["q"] == 7, path="/items?q=7")
    assert got["pid"] == pid
    now = poll(child, port, lambda got: True)
    # The same app, its state from the start-up kept, one route more.
    assert now["pid"] == pid
    assert now["started"] == pid
    assert now["hits"] > first["hits"]
    assert now["routes"] == routes + 1


FLASK_TEMPLATED = """\
import sys

from flask import Flask, render_template

app = Flask(__name__)


@app.route("/")
def page():
    return render_template("page.html")


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]))
"""


def test_a_flask_template_saved_shows_without_debug_mode(proj: Path, spawn: Spawn) -> None:
    """Jinja reads a template's file again only in debug mode, by default: ``flask run``
    without ``--debug`` served the old page until a restart."""
    write(proj / "server.py", FLASK_TEMPLATED)
    write(proj / "templates" / "page.html", "template one\n")
    port = free_port()
    child = spawn(["server.py", str(port)], cwd=proj)
    assert poll_text(child, port, lambda text: "template one" in text)

    write(proj / "templates" / "page.html", "template two\n")

    assert poll_text(child, port, lambda text: "template two" in text)


def poll_text(child: Child, port: int, ready: Callable[[str], bool]) -> bool:
    """GET / until its body satisfies ``ready``, within DEADLINE (the log on failure)."""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        try:
            status, text = fetch(port)
        except OSError:
            status, text = 0, ""
        if status == 200 and ready(text):
            return True
        time.sleep(0.02)
    raise AssertionError(f"no matching page in {DEADLINE} s\n{child.stderr_text()}")


# -- FastAPI under uvicorn ---------------------------------------------------------------


def fastapi_app(view: str) -> str:
    return f'''\
import os

from fastapi import Depends, FastAPI

import helpers

app = FastAPI()


@app.get("/")
async def index():
    return {{"pid": os.getpid(), "helper": helpers.greeting(), "view": "{view}"}}


@app.get("/user")
def user(name: str = Depends(helpers.current_user)):
    return {{"pid": os.getpid(), "user": name}}
'''


FASTAPI_BROKEN = """\
import os

from fastapi import FastAPI

import helpers

app = FastAPI()


@app.get("/")
async def index():
    return {"pid": os.getpid(),
"""


def fastapi_helpers(greeting: str, user: str) -> str:
    return f'''\
def greeting():
    return "{greeting}"


def current_user():
    return "{user}"
'''


def uvicorn_project(proj: Path) -> None:
    write(proj / "helpers.py", fastapi_helpers("h1", "alice"))
    write(proj / "app.py", fastapi_app("v1"))


def test_fastapi_under_uvicorn_reloads_in_place(proj: Path, spawn: Spawn) -> None:
    uvicorn_project(proj)
    port = free_port()
    child = spawn(
        ["-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)], cwd=proj
    )

    pid = go_through_edits(
        child,
        port,
        helper=proj / "helpers.py",
        helper_source=lambda greeting: fastapi_helpers(greeting, "alice"),
        view=proj / "app.py",
        view_module="app",
        view_source=fastapi_app,
        broken_view=FASTAPI_BROKEN,
        broken_line=12,
    )

    # 5. A dependency FastAPI resolved when the route was declared runs its new code.
    assert poll(child, port, lambda got: True, path="/user") == {"pid": pid, "user": "alice"}
    write(proj / "helpers.py", fastapi_helpers("h2", "bob"))
    got = poll(child, port, lambda got: got["user"] == "bob", path="/user")
    assert got["pid"] == pid


def fastapi_typed(kind: str, extra: str, header: str) -> str:
    return f"""\
import os

from fastapi import Depends, FastAPI, Header

app = FastAPI()


def caller({header}):
    return {header.split(":", maxsplit=1)[0]}


@app.get("/items/{{item_id}}")
def item(item_id: {kind}{extra}, who=Depends(caller)):
    return {{"pid": os.getpid(), "type": type(item_id).__name__, "who": who,
            "routes": len(app.routes)}}
"""


def test_fastapi_route_whose_parameters_changed_is_made_again_in_place(
    proj: Path, spawn: Spawn
) -> None:
    """FastAPI reads an endpoint's parameters when the route is made: an edited
    annotation, a new query parameter, or a dependency that now reads a header must
    change what the running server validates, with no route added."""
    write(proj / "app.py", fastapi_typed("int", "", 'x_user: str = "anon"'))
    port = free_port()
    child = spawn(
        ["-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)], cwd=proj
    )
    first = poll(child, port, lambda got: True, path="/items/5")
    assert (first["type"], first["who"]) == ("int", "anon")
    routes = first["routes"]
    assert fetch(port, "/items/abc")[0] == 422  # not an int
    assert (
        "item_id"
        in poll(child, port, lambda got: True, path="/openapi.json")["paths"]["/items/{item_id}"][
            "get"
        ]["parameters"][0]["name"]
    )

    # 1. The annotation: the same URL is now valid, as a str.
    write(proj / "app.py", fastapi_typed("str", "", 'x_user: str = "anon"'))
    got = poll(child, port, lambda got: got["type"] == "str", path="/items/abc")
    assert (got["pid"], got["routes"]) == (first["pid"], routes)
    # 2. Only the dependency changed (the route's def did not run again): it reads a
    # header now, which the route FastAPI made from it must require.
    write(proj / "app.py", fastapi_typed("str", "", "x_user: str = Header()"))
    wait_status(child, port, "/items/abc", 422, '"x-user"')
    # 3. A new required query parameter.
    write(proj / "app.py", fastapi_typed("str", ", q: int", "x_user: str = Header()"))
    wait_status(child, port, "/items/abc", 422, '"q"')
    schema = poll(child, port, lambda got: True, path="/openapi.json")
    names = {p["name"] for p in schema["paths"]["/items/{item_id}"]["get"]["parameters"]}
    assert {"item_id", "q", "x-user"} <= names  # /docs shows them: the schema was dropped
    assert fetch(port, "/items/abc?q=1")[0] == 422  # the header is required now
    assert child.proc.pid == first["pid"]


FASTAPI_DEPS = """\
from fastapi import Header


def get_token(x_token: str = Header(default="anon"){extra}):
    return "tok-" + x_token{more}
"""


def test_fastapi_a_dependency_s_new_parameter_reaches_the_routes_of_an_included_router(
    proj: Path, spawn: Spawn
) -> None:
    """``deps.get_token`` gains a query parameter; the route that depends on it is on an
    ``APIRouter`` the app included.  The route was made again, but FastAPI (0.165 and
    later) serves an included router's routes from a cache that was never told: the
    server went on ignoring the parameter, the line said "reloaded"."""
    write(proj / "deps.py", FASTAPI_DEPS.format(extra="", more=""))
    write(
        proj / "items.py",
        "from fastapi import APIRouter, Depends\n\nfrom deps import get_token\n\n"
        'router = APIRouter(prefix="/items")\n\n\n@router.get("")\n'
        "def items(token: str = Depends(get_token)):\n"
        '    return {"token": token}\n',
    )
    write(
        proj / "app.py",
        "from fastapi import FastAPI\n\nimport items\n\napp = FastAPI()\n"
        "app.include_router(items.router)\n",
    )
    port = free_port()
    child = spawn(
        ["-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)], cwd=proj
    )
    assert poll(child, port, lambda got: True, path="/items?q=zz") == {"token": "tok-anon"}

    write(proj / "deps.py", FASTAPI_DEPS.format(extra=', q: str = ""', more=' + "/q=" + q'))
    # (The new body answers first, "tok-anon/q=", until the route is made again.)
    got = poll(child, port, lambda got: got["token"].endswith("zz"), path="/items?q=zz")
    assert got == {"token": "tok-anon/q=zz"}


def test_fastapi_routes_validate_with_a_model_edited_under_a_string_annotation(
    proj: Path, spawn: Spawn
) -> None:
    """``Order`` names ``Item`` by a string, and ``carts.Cart`` names ``Order`` by one.  The
    routes copied their schemas as FastAPI made them.  After an edit of ``Item``'s
    default, both answered with the old one (a fresh start answers with the new), while
    the line said "reloaded": no class statement read ``Item``, none ran again."""
    write(proj / "orders.py", ORDERS.format(qty=1))
    write(
        proj / "carts.py",
        "from pydantic import BaseModel\n\nimport orders\n\n\n"
        "class Cart(BaseModel):\n    order: 'orders.Order'\n",
    )
    write(
        proj / "app.py",
        "from fastapi import FastAPI\n\nfrom carts import Cart\nfrom orders import Order\n\n"
        "app = FastAPI()\nITEMS = {'items': [{'name': 'a'}]}\n\n\n"
        '@app.get("/order", response_model=Order)\ndef order():\n    return ITEMS\n\n\n'
        '@app.get("/cart", response_model=Cart)\ndef cart():\n    return {"order": ITEMS}\n',
    )
    port = free_port()
    child = spawn(
        ["-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)], cwd=proj
    )
    items = [{"name": "a", "qty": 1}]
    assert poll(child, port, lambda got: True, path="/order") == {"items": items}
    assert poll(child, port, lambda got: True, path="/cart") == {"order": {"items": items}}

    write(proj / "orders.py", ORDERS.format(qty=7))
    items = [{"name": "a", "qty": 7}]
    assert poll(child, port, lambda got: got == {"items": items}, path="/order")
    assert poll(child, port, lambda got: got == {"order": {"items": items}}, path="/cart")


def wait_status(child: Child, port: int, path: str, status: int, text: str) -> tuple[int, str]:
    """GET ``path`` until it answers ``status`` with ``text`` in the body; fail at the deadline.

    Nothing listening yet is a wait too: the watcher may say it tracks the app's
    modules (``tracked``) before the server binds its port, on a loaded machine."""
    deadline = time.monotonic() + DEADLINE
    last: object = None
    while time.monotonic() < deadline:
        assert child.proc.poll() is None, child.stderr_text()[-4000:]
        try:
            got = fetch(port, path)
        except OSError as exc:  # not listening yet
            last = exc
        else:
            last = got
            if got[0] == status and text in got[1]:
                return got
        time.sleep(0.05)
    tail = child.stderr_text()[-4000:]
    pytest.fail(f"GET {path}: never {status} with {text}; last {last}\n{tail}")


def test_uvicorn_reload_option_serves_in_this_process(proj: Path, spawn: Spawn) -> None:
    """``uvicorn --reload`` would serve from a child process; under HMR it stays off."""
    uvicorn_project(proj)
    port = free_port()
    child = spawn(
        ["-m", "uvicorn", "app:app", "--reload", "--host", "127.0.0.1", "--port", str(port)],
        cwd=proj,
    )

    first = poll(child, port, lambda got: got["helper"] == "h1")
    assert first["pid"] == child.proc.pid
    child.expect("hmr: uvicorn's --reload is off", stream="err")
    # (Not before it, from uvicorn: "Will watch for changes in these directories".)
    assert not [line for line in child.seen["err"] if "Will watch" in line]

    write(proj / "helpers.py", fastapi_helpers("h2", "alice"))
    got = poll(child, port, lambda got: got["helper"] == "h2")
    assert got["pid"] == child.proc.pid


# -- Django ------------------------------------------------------------------------------

DJANGO_MANAGE = """\
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""

DJANGO_SETTINGS = """\
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEBUG = True
SECRET_KEY = "only-for-the-tests"
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "mysite.urls"
INSTALLED_APPS = []
DATABASES = {}
USE_TZ = True
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
    }
]
"""


def django_views(view: str) -> str:
    return f'''\
import os

from django.http import JsonResponse
from django.shortcuts import render

from . import helpers


def index(request):
    return JsonResponse({{"pid": os.getpid(), "helper": helpers.greeting(), "view": "{view}"}})


def page(request):
    return render(request, "page.html", {{"pid": os.getpid()}})
'''


DJANGO_BROKEN = """\
import os

from django.http import JsonResponse
from django.shortcuts import render

from . import helpers


def index(request)
    return JsonResponse({})
"""


def django_urls(*extra: str) -> str:
    routes = "".join(f'    path("{route}", views.index),\n' for route in extra)
    return f"""\
from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("page", views.page),
{routes}]
"""


def django_project(proj: Path) -> None:
    write(proj / "manage.py", DJANGO_MANAGE)
    write(proj / "mysite" / "__init__.py", "")
    write(proj / "mysite" / "settings.py", DJANGO_SETTINGS)
    write(proj / "mysite" / "helpers.py", helper_source("h1"))
    write(proj / "mysite" / "views.py", django_views("v1"))
    write(proj / "mysite" / "urls.py", django_urls())
    write(proj / "templates" / "page.html", "template one, pid {{ pid }}\n")


def page_text(body: str) -> str:
    return body.strip()


TAGS = """\
from django import template

register = template.Library()


@register.simple_tag
def {name}():
    return "{name} says hi"
"""


def test_a_django_template_tag_library_made_while_serving_loads(proj: Path, spawn: Spawn) -> None:
    """A new ``templatetags/<name>.py`` of an installed app: Django finds its libraries
    once, as its template engine starts, and ``{% load <name> %}`` answered "'<name>' is
    not a registered tag library" until a restart, whatever was saved.  It loads now:
    the library saved before the template that uses it, and after it."""
    django_project(proj)
    write(
        proj / "mysite" / "settings.py",
        DJANGO_SETTINGS.replace("INSTALLED_APPS = []", 'INSTALLED_APPS = ["mysite"]'),
    )
    write(proj / "mysite" / "templatetags" / "__init__.py", "")
    port = free_port()
    child = spawn(["-v", "manage.py", "runserver", f"127.0.0.1:{port}"], cwd=proj)
    child.expect(f"hmr: watching {os.path.realpath(proj / 'mysite')}", stream="err")
    wait_status(child, port, "/page", 200, "template one")

    # The library first, then the template that loads it.
    write(proj / "mysite" / "templatetags" / "first_tags.py", TAGS.format(name="first"))
    save_atomically(proj / "templates" / "page.html", "{% load first_tags %}{% first %}\n")
    wait_status(child, port, "/page", 200, "first says hi")
    # The template first: the page fails until the library is there, then renders.
    save_atomically(proj / "templates" / "page.html", "{% load later_tags %}{% later %}\n")
    wait_status(child, port, "/page", 500, "later_tags")
    write(proj / "mysite" / "templatetags" / "later_tags.py", TAGS.format(name="later"))
    wait_status(child, port, "/page", 200, "later says hi")
    # The new library is a module of the program's like any: its edits apply.
    edited = TAGS.format(name="later").replace('"later says hi"', '"later says bye"')
    write(proj / "mysite" / "templatetags" / "later_tags.py", edited)
    wait_status(child, port, "/page", 200, "later says bye")


def test_a_django_asgi_app_under_uvicorn_serves_and_reloads(proj: Path, spawn: Spawn) -> None:
    """``-m uvicorn mysite.asgi:application``: uvicorn calls the app with no arguments to
    tell a factory (a TypeError: not one).  The engine's wrapper of Django's handler took
    any arguments and returned a coroutine, which uvicorn served as the app: every
    request a 500 ("'coroutine' object is not callable")."""
    django_project(proj)
    write(
        proj / "mysite" / "asgi.py",
        """\
        import os

        from django.core.asgi import get_asgi_application

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
        application = get_asgi_application()
        """,
    )
    port = free_port()
    child = spawn(
        ["-m", "uvicorn", "mysite.asgi:application", "--host", "127.0.0.1", "--port", str(port)],
        cwd=proj,
    )
    first = poll(child, port, lambda got: got["view"] == "v1")
    assert first["pid"] == child.proc.pid
    write(proj / "mysite" / "views.py", django_views("v2"))
    assert poll(child, port, lambda got: got["view"] == "v2")["pid"] == child.proc.pid
    assert "factory detected" not in child.stderr_text()


@pytest.mark.parametrize("noreload", [[], ["--noreload"]], ids=["reloader", "noreload"])
def test_django_runserver_reloads_in_place_with_or_without_noreload(
    proj: Path, spawn: Spawn, noreload: list[str]
) -> None:
    """Without --noreload, Django's autoreloader would serve from a child process; with
    it, the template loaders' resets were skipped.  Both run in place, the same way."""
    django_project(proj)
    port = free_port()
    child = spawn(["-v", "manage.py", "runserver", f"127.0.0.1:{port}", *noreload], cwd=proj)
    # The package folder is watched from its first import on; wait for it, so
    # that the first edit does not race the watch being set up.
    child.expect(f"hmr: watching {os.path.realpath(proj / 'mysite')}", stream="err")

    pid = go_through_edits(
        child,
        port,
        helper=proj / "mysite" / "helpers.py",
        view=proj / "mysite" / "views.py",
        view_module="mysite.views",
        view_source=django_views,
        broken_view=DJANGO_BROKEN,
        broken_line=9,
    )
    assert "hmr: Django's autoreloader is off" in child.stderr_text()

    # 5a. The URL resolver Django cached is dropped: a new route serves.
    status, _ = fetch(port, "/added")
    assert status == 404
    write(proj / "mysite" / "urls.py", django_urls("added"))
    got = poll(child, port, lambda got: got["view"] == "v3", path="/added")
    assert got["pid"] == pid

    # 5b. The compiled template Django cached is dropped when the template changes.
    expected = f"template one, pid {pid}"
    assert poll(child, port, lambda text: True, path="/page", parse=page_text) == expected
    write(proj / "templates" / "page.html", "template two, pid {{ pid }}\n")
    poll(
        child, port, lambda text: text == f"template two, pid {pid}", path="/page", parse=page_text
    )

    # 6. SIGTERM ends it as without us: with 0, as Django's reloader does (it ended by
    # the signal); by the signal with --noreload (it ended with 0).
    child.proc.send_signal(signal.SIGTERM)
    assert child.wait() == (-signal.SIGTERM if noreload else 0)


# -- a plain worker loop -------------------------------------------------------------------

WORKER = """\
import importlib.util
import json
import os
import sys
import time

import tasks

while True:
    sys.stdout.write(json.dumps({"pid": os.getpid(), "result": tasks.work()}) + "\\n")
    sys.stdout.flush()
    time.sleep(0.01)  # the loop's own pace; the test waits for lines
"""


def worker_tasks(view: str) -> str:
    return f'''\
import functools

import helpers


@functools.lru_cache(maxsize=None)
def label():
    return "{view}"


def work():
    return f"{{helpers.greeting()}}-{{label()}}"
'''


WORKER_BROKEN = """\
import helpers


def work():
    return helpers.greeting() +
"""


class Lines:
    """The worker's JSON lines, read with a deadline."""

    def __init__(self, child: Child) -> None:
        self.child = child

    def until(self, result: str) -> dict[str, Any]:
        line = self.child.expect(f'"result": "{result}"')
        facts: dict[str, Any] = json.loads(line)
        return facts

    def next(self) -> dict[str, Any]:
        facts: dict[str, Any] = json.loads(self.child.expect(starts("{")))
        return facts


def test_worker_loop_runs_new_code_in_place(proj: Path, spawn: Spawn) -> None:
    write(proj / "helpers.py", helper_source("h1"))
    write(proj / "tasks.py", worker_tasks("v1"))
    write(proj / "worker.py", WORKER)
    child = spawn(["worker.py"], cwd=proj)
    lines = Lines(child)

    pid = lines.until("h1-v1")["pid"]
    assert pid == child.proc.pid

    # 1. A helper module.
    write(proj / "helpers.py", helper_source("h2"))
    assert lines.until("h2-v1")["pid"] == pid

    # 2. The module the loop calls; the lru_cache it holds is emptied, so the
    #    cached label follows too.
    save_atomically(proj / "tasks.py", worker_tasks("v2"))
    assert lines.until("h2-v2")["pid"] == pid

    # 3. A syntax error: logged, and the loop goes on with the old code.
    write(proj / "tasks.py", WORKER_BROKEN)
    failed_reload_line(child, "tasks", "tasks.py", 5)
    assert lines.next() == {"pid": pid, "result": "h2-v2"}

    # 4. The fix applies.
    write(proj / "tasks.py", worker_tasks("v3"))
    assert lines.until("h2-v3")["pid"] == pid
