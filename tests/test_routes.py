"""Routes added, edited and removed in a running server, end to end (issue 16).

Each test starts a real server under ``python -m muckrack.hmr`` on both cores,
serves a request first (Flask protects its tables from then on), then saves
real files and, once the reload's log line is out, asks the server: a route
added serves; a route whose path or methods changed serves at its new place
and no longer at the old one; a route removed answers 404.  The framework's
own table is counted after every step (``app.url_map``, the routers'
``routes``, Django's resolver), so that no route is ever there twice, and the
process ID never changes.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .subprocesses import Child, contains, write
from .test_everyday_edits import edit, outcome_of, tracked
from .test_frameworks import Spawn, free_port, poll, wait_status


def status(port: int, path: str, method: str = "GET") -> tuple[int, str]:
    """(status, body) of one request, errors included."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def counts(child: Child, port: int) -> dict[str, Any]:
    """What the server's ``/count`` route says: its process ID and its route counts."""
    facts: dict[str, Any] = poll(child, port, lambda got: True, path="/count")
    return facts


def source_with(base: str, *blocks: str) -> str:
    return base + "".join(f"\n\n{block}\n" for block in blocks)


def uvicorn(spawn: Spawn, proj: Path, *modules: str) -> tuple[Child, int]:
    """``python -m muckrack.hmr -v -m uvicorn app:app`` in ``proj``, on a free port of
    127.0.0.1, once the watcher tracks ``modules``; the child and its port."""
    port = free_port()
    child = spawn(
        ["-v", "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)], cwd=proj
    )
    tracked(child, *modules)
    return child, port


# -- Flask: app routes, blueprint routes, after the first request ----------------------

FLASK_VIEWS = """\
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "index"
"""

FLASK_SHOP = """\
from flask import Blueprint

bp = Blueprint("shop", __name__, url_prefix="/shop")


@bp.route("/")
def shop():
    return "shop"
"""

FLASK_SERVER = """\
import os
import sys

from flask import jsonify

from shop import bp
from views import app

app.register_blueprint(bp)


@app.route("/count")
def count():
    return jsonify(pid=os.getpid(), rules=len(list(app.url_map.iter_rules())),
                   views=len(app.view_functions))


@app.route("/late")
def late():
    # The program itself adding a route while serving: Flask's guard still says no.
    try:
        app.add_url_rule("/later", "later", lambda: "later")
    except AssertionError as exc:
        return str(exc)
    return "added"


app.run(host="127.0.0.1", port=int(sys.argv[1]))
"""

ADDED_APP = '@app.route("{path}"{methods})\ndef added():\n    return "added {path}"'
ADDED_BP = '@bp.route("{path}"{methods})\ndef bought():\n    return "bought {path}"'


def test_flask_routes_added_edited_and_removed_after_a_request(proj: Path, spawn: Spawn) -> None:
    write(proj / "views.py", FLASK_VIEWS)
    write(proj / "shop.py", FLASK_SHOP)
    write(proj / "server.py", FLASK_SERVER)
    port = free_port()
    child = spawn(["-v", "server.py", str(port)], cwd=proj)
    tracked(child, "views", "shop")
    first = counts(child, port)  # a request served: Flask's guard is up
    pid, rules, views = first["pid"], first["rules"], first["views"]
    assert pid == child.proc.pid
    assert status(port, "/added")[0] == 404

    # 1. A route added to the app, then one to a blueprint registered long ago.
    edit(
        child,
        proj / "views.py",
        source_with(FLASK_VIEWS, ADDED_APP.format(path="/added", methods="")),
        "views",
    )
    assert status(port, "/added") == (200, "added /added")
    assert counts(child, port) == {"pid": pid, "rules": rules + 1, "views": views + 1}
    edit(
        child,
        proj / "shop.py",
        source_with(FLASK_SHOP, ADDED_BP.format(path="/buy", methods="")),
        "shop",
    )
    assert status(port, "/shop/buy") == (200, "bought /buy")
    assert counts(child, port) == {"pid": pid, "rules": rules + 2, "views": views + 2}

    # 2. Their paths change, and the blueprint route's methods: the old places 404.
    edit(
        child,
        proj / "views.py",
        source_with(FLASK_VIEWS, ADDED_APP.format(path="/moved", methods="")),
        "views",
    )
    assert status(port, "/moved") == (200, "added /moved")
    assert status(port, "/added")[0] == 404
    post = ', methods=["POST"]'
    edit(
        child,
        proj / "shop.py",
        source_with(FLASK_SHOP, ADDED_BP.format(path="/order", methods=post)),
        "shop",
    )
    assert status(port, "/shop/order", "POST") == (200, "bought /order")
    assert status(port, "/shop/order")[0] == 405
    assert status(port, "/shop/buy")[0] == 404
    assert counts(child, port) == {"pid": pid, "rules": rules + 2, "views": views + 2}

    # ... and its endpoint's name: one rule still, under the new name.
    renamed = ADDED_APP.format(path="/moved", methods=', endpoint="renamed"')
    edit(child, proj / "views.py", source_with(FLASK_VIEWS, renamed), "views")
    assert status(port, "/moved") == (200, "added /moved")
    assert counts(child, port) == {"pid": pid, "rules": rules + 2, "views": views + 2}

    # 3. Removed: gone from the url_map.
    edit(child, proj / "views.py", FLASK_VIEWS, "views")
    edit(child, proj / "shop.py", FLASK_SHOP, "shop")
    assert status(port, "/moved")[0] == 404
    assert status(port, "/shop/order", "POST")[0] == 404
    assert counts(child, port) == {"pid": pid, "rules": rules, "views": views}
    assert status(port, "/shop/") == (200, "shop")

    # 4. A hook declared after the first request: refused by name, nothing of the
    # edit applied (the route it adds too), and Flask's tables as they were.
    hooked = "def stamp():\n    pass\n\n\napp.before_request(stamp)"
    source = source_with(FLASK_VIEWS, ADDED_APP.format(path="/hooked", methods=""), hooked)
    write(proj / "views.py", source)
    line = child.expect(lambda line: line.startswith("hmr: restart to apply:"), stream="err")
    at = source.splitlines().index("app.before_request(stamp)") + 1
    assert line == (
        "hmr: restart to apply: @before_request on app 'views' after it served requests "
        f"at {os.path.realpath(proj / 'views.py')}:{at} (flask setup)"
    )
    assert status(port, "/hooked")[0] == 404
    assert counts(child, port) == {"pid": pid, "rules": rules, "views": views}
    edit(
        child,
        proj / "views.py",
        source_with(FLASK_VIEWS, ADDED_APP.format(path="/x", methods="")),
        "views",
    )
    assert status(port, "/x") == (200, "added /x")
    edit(child, proj / "views.py", FLASK_VIEWS, "views")

    # 5. The guard stays up for the program itself.
    code, body = status(port, "/late")
    assert code == 200
    assert "can no longer be called" in body
    assert counts(child, port) == {"pid": pid, "rules": rules, "views": views}


FACTORY_HOOKS = """\
from flask import g


def init(app):
    @app.before_request
    def stamp():
        g.stamp = "{stamp}"
{more}"""

FACTORY_AFTER = """
    @app.after_request
    def header(response):
        response.headers["X-New"] = "1"
        return response
"""

FACTORY_APP = """\
from flask import Flask, g

from . import api, hooks


def create_app():
    app = Flask(__name__)
    hooks.init(app)
    app.register_blueprint(api.bp)

    @app.route("/hello")
    def hello():
        return "{greeting} " + g.get("stamp", "-")

    return app
"""

FACTORY_API = """\
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api"{options})


@bp.route("/ping")
def ping():
    return "pong"
{more}"""

FACTORY_SERVER = """\
import sys

from webapp import create_app

create_app().run(host="127.0.0.1", port=int(sys.argv[1]))
"""


PLAIN_APP = 'def added():\n    return "plain"'
# A decorator that changes nothing: a def that gains it runs again, and keeps its function.
KEEP = "def keep(function):\n    return function"


def kept(stated: str) -> str:
    """``stated`` with its ``def stated`` under ``@keep``, and a new body."""
    return stated.replace("def stated", "@keep\ndef stated").replace(
        'return "stated"', 'return "stated again"'
    )


STATED = 'def stated():\n    return "stated"\n\n\napp.add_url_rule("/stated", view_func=stated)'


def test_flask_route_decorator_removed_takes_its_route_out(proj: Path, spawn: Spawn) -> None:
    """``@app.route`` (``@bp.route``) taken off a ``def`` that stays: its route went on
    serving (the live function, patched), and the reload said ``1 patched`` with no word
    of it.  The def ran again and registered it no more: its rules go, as a restart
    would have it.  A view registered by a statement of its own (``app.add_url_rule``)
    stays when its def gains a decorator."""
    write(proj / "views.py", source_with(FLASK_VIEWS, ADDED_APP.format(path="/a", methods="")))
    write(proj / "shop.py", source_with(FLASK_SHOP, ADDED_BP.format(path="/b", methods="")))
    write(proj / "server.py", FLASK_SERVER)
    port = free_port()
    child = spawn(["-v", "server.py", str(port)], cwd=proj)
    tracked(child, "views", "shop")
    first = counts(child, port)  # a request served: Flask's guard is up
    pid, rules, views = first["pid"], first["rules"], first["views"]
    assert status(port, "/a") == (200, "added /a")
    assert status(port, "/shop/b") == (200, "bought /b")

    edit(child, proj / "views.py", source_with(FLASK_VIEWS, PLAIN_APP), "views")
    assert status(port, "/a")[0] == 404
    assert counts(child, port) == {"pid": pid, "rules": rules - 1, "views": views - 1}
    bare = 'def bought():\n    return "bought"'
    edit(child, proj / "shop.py", source_with(FLASK_SHOP, bare), "shop")
    assert status(port, "/shop/b")[0] == 404
    assert counts(child, port) == {"pid": pid, "rules": rules - 2, "views": views - 2}

    # Put back: served again.
    again = source_with(FLASK_VIEWS, ADDED_APP.format(path="/a", methods=""))
    edit(child, proj / "views.py", again, "views")
    assert status(port, "/a") == (200, "added /a")

    # A view its own statement registers, whose def gains a decorator: it stays.
    edit(child, proj / "views.py", source_with(FLASK_VIEWS, STATED), "views")
    assert status(port, "/stated") == (200, "stated")
    edit(child, proj / "views.py", source_with(FLASK_VIEWS, KEEP, kept(STATED)), "views")
    assert status(port, "/stated") == (200, "stated again")
    assert status(port, "/") == (200, "index")


def test_flask_app_factory_closures_apply_and_setup_it_ran_once_is_refused(
    proj: Path, spawn: Spawn
) -> None:
    """The app-factory layout (``create_app()`` calls ``hooks.init(app)``): an edit of one
    hook's body, then another's, reach the live hooks (the second was lost: an equal
    compile of it, another object, hid the live closure).  A hook added inside the
    factory, which ran once, was dropped under a "reloaded" line; a blueprint made again
    took the routes added after it away from the app (404).  Both are refused now."""
    package = proj / "webapp"
    write(package / "__init__.py", FACTORY_APP.format(greeting="hello"))
    write(package / "hooks.py", FACTORY_HOOKS.format(stamp="s1", more=""))
    write(package / "api.py", FACTORY_API.format(options="", more=""))
    write(proj / "server.py", FACTORY_SERVER)
    port = free_port()
    child = spawn(["-v", "server.py", str(port)], cwd=proj)
    tracked(child, "webapp", "webapp.hooks", "webapp.api")
    wait_status(child, port, "/hello", 200, "hello s1")

    edit(child, package / "hooks.py", FACTORY_HOOKS.format(stamp="s2", more=""), "webapp.hooks")
    assert status(port, "/hello") == (200, "hello s2")
    edit(child, package / "__init__.py", FACTORY_APP.format(greeting="hi"), "webapp")
    assert status(port, "/hello") == (200, "hi s2")
    edit(child, package / "hooks.py", FACTORY_HOOKS.format(stamp="s3", more=""), "webapp.hooks")
    assert status(port, "/hello") == (200, "hi s3")

    # A hook added inside the factory's init(app): it ran once, at start-up.
    added = FACTORY_HOOKS.format(stamp="s3", more=FACTORY_AFTER)
    write(package / "hooks.py", added)
    line = child.expect(lambda line: line.startswith("hmr: restart to apply:"), stream="err")
    assert line == (
        "hmr: restart to apply: webapp.hooks.init() set up the app as the program started; "
        # (The line of the change, the hook's first; it said the def's, 4.)
        f"its change at {os.path.realpath(package / 'hooks.py')}:9 (flask setup); it does not "
        "run again, and its new setup applies at a restart"
    )
    request = urllib.request.Request(f"http://127.0.0.1:{port}/hello")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert "X-New" not in response.headers
    edit(child, package / "hooks.py", FACTORY_HOOKS.format(stamp="s4", more=""), "webapp.hooks")
    assert status(port, "/hello") == (200, "hi s4")

    # The registered blueprint made again (its options changed): refused.
    write(package / "api.py", FACTORY_API.format(options=", static_folder=None", more=""))
    line = child.expect(lambda line: line.startswith("hmr: restart to apply:"), stream="err")
    assert line.startswith("hmr: restart to apply: webapp.api.bp is a new Flask blueprint"), line
    more = '\n\n@bp.route("/x")\ndef x():\n    return "x"\n'
    edit(child, package / "api.py", FACTORY_API.format(options="", more=more), "webapp.api")
    assert status(port, "/api/x") == (200, "x")
    assert status(port, "/api/ping") == (200, "pong")


EXTENDED_APP = """\
from flask import Flask, current_app


class Counter:  # an extension, as Flask's docs shape them
    def __init__(self, step=1):
        self.step = step
        self.count = 0

    def init_app(self, app):
        app.extensions["counter"] = self


counter = Counter({options})


def create_app():
    app = Flask(__name__)
    counter.init_app(app)

    @app.route("/count")
    def count():
        extension = current_app.extensions["counter"]
        extension.count += extension.step
        return f"{{extension.count}} same={{extension is counter}}"

    return app
"""


def test_flask_extension_made_again_in_place_of_the_app_s_is_refused(
    proj: Path, spawn: Spawn
) -> None:
    """``db = SQLAlchemy(session_options=...)``: a new extension in place of the one the
    served app was set up with (``init_app``).  Before, the module took it, unregistered:
    with Flask-SQLAlchemy every request that used the database failed with 500 until a
    restart.  Refused now, as a new app is; the body edits around it still apply."""
    write(proj / "webapp" / "__init__.py", EXTENDED_APP.format(options=""))
    write(proj / "server.py", FACTORY_SERVER)
    port = free_port()
    child = spawn(["-v", "server.py", str(port)], cwd=proj)
    tracked(child, "webapp")
    wait_status(child, port, "/count", 200, "1 same=True")

    path = proj / "webapp" / "__init__.py"
    write(path, EXTENDED_APP.format(options="step=10"))
    line = child.expect(lambda line: line.startswith("hmr: restart to apply:"), stream="err")
    assert line == (
        f"hmr: restart to apply: webapp.counter is a new Counter at {os.path.realpath(path)}:13 "
        "(flask extension); the app was set up with the one made at start-up (init_app), "
        "and uses it"
    )
    assert status(port, "/count") == (200, "2 same=True")  # the one the app uses, as before
    edit(
        child,
        path,
        EXTENDED_APP.format(options="").replace("{extension.count}", "n={extension.count}"),
        "webapp",
    )
    assert status(port, "/count") == (200, "n=3 same=True")


CONFIGURED_APP = """\
from flask import Flask, current_app


def create_app():
    app = Flask(__name__)
    app.config.from_object({source})
    app.config["SET_HERE"] = "here"

    @app.route("/config")
    def config():
        keys = ("GREETING", "GONE", "SET_HERE")
        return " ".join(str(current_app.config.get(key)) for key in keys)

    return app
"""

SETTINGS_MODULE = """\
GREETING = "{greeting}"
{gone}SET_HERE = "{here}"
"""


@pytest.mark.parametrize(
    "source", ['"webapp.settings"', '"webapp.settings.Base"'], ids=["module", "class"]
)
def test_flask_config_read_from_a_module_follows_its_edits(
    proj: Path, spawn: Spawn, source: str
) -> None:
    """``app.config.from_object("webapp.settings")`` in the factory, which ran once: an
    edit of ``settings.py`` said it applied, and ``app.config`` kept the old values.
    Now the values it took follow (a name removed goes), as after a restart, but a value
    the program set itself since stays."""
    settings = SETTINGS_MODULE
    if source.endswith('.Base"'):
        settings = "class Base:\n" + "".join("    " + line + "\n" for line in settings.splitlines())
    write(proj / "webapp" / "__init__.py", CONFIGURED_APP.format(source=source))
    path = proj / "webapp" / "settings.py"
    write(path, settings.format(greeting="hello", gone='GONE = "gone"\n', here="module"))
    write(proj / "server.py", FACTORY_SERVER)
    port = free_port()
    child = spawn(["-v", "server.py", str(port)], cwd=proj)
    tracked(child, "webapp", "webapp.settings")
    wait_status(child, port, "/config", 200, "hello gone here")
    edit(
        child, path, settings.format(greeting="howdy", gone="", here="module 2"), "webapp.settings"
    )
    assert status(port, "/config") == (200, "howdy None here")


FLASK_FAILING = """\
@app.route("/half")
def half():
    return "half"


raise RuntimeError("a later statement fails")
"""


def test_flask_route_of_a_failed_reload_is_taken_back(proj: Path, spawn: Spawn) -> None:
    """A save adds a route, then raises: the module keeps its old namespace, and the
    app its old url_map; the fixed save adds the route once."""
    write(proj / "views.py", FLASK_VIEWS)
    write(proj / "shop.py", FLASK_SHOP)
    write(proj / "server.py", FLASK_SERVER)
    port = free_port()
    child = spawn(["-v", "server.py", str(port)], cwd=proj)
    tracked(child, "views", "shop")
    before = counts(child, port)

    write(proj / "views.py", source_with(FLASK_VIEWS, FLASK_FAILING))
    line = child.expect(outcome_of("views"), stream="err")
    assert line.startswith("hmr: failed to reload views "), line
    # The error handlers that put the tables back run right after that line.
    wait_status(child, port, "/half", 404, "Not Found")
    assert counts(child, port) == before

    fixed = FLASK_FAILING.replace('raise RuntimeError("a later statement fails")', "")
    write(proj / "views.py", source_with(FLASK_VIEWS, fixed))
    child.expect(outcome_of("views"), stream="err")
    assert status(port, "/half") == (200, "half")
    assert counts(child, port) == dict(before, rules=before["rules"] + 1, views=before["views"] + 1)


def test_flask_blueprint_registered_again_with_other_options_is_refused(
    proj: Path, spawn: Spawn
) -> None:
    """``app.register_blueprint(bp)`` given ``url_prefix="/x"`` after a request: Flask's
    own ``ValueError`` ("already registered") failed the save, with its traceback.  It is
    refused by name, as other setup once served; what it registered serves on, and the
    next edit applies."""
    write(proj / "views.py", FLASK_VIEWS)
    write(proj / "shop.py", FLASK_SHOP)
    web = "from shop import bp\nfrom views import app\n\napp.register_blueprint(bp)\n"
    write(proj / "web.py", web)
    server = FLASK_SERVER.replace("from shop import bp\n", "import web\n")
    write(proj / "server.py", server.replace("app.register_blueprint(bp)\n", ""))
    port = free_port()
    child = spawn(["-v", "server.py", str(port)], cwd=proj)
    tracked(child, "views", "shop", "web")
    before = counts(child, port)
    assert status(port, "/shop/") == (200, "shop")

    write(proj / "web.py", web.replace("(bp)", '(bp, url_prefix="/x")'))
    line = child.expect(lambda line: line.startswith("hmr: "), stream="err")
    assert line.startswith(
        "hmr: restart to apply: app.register_blueprint of blueprint 'shop' again"
    ), line
    assert line.endswith(
        "web.py:4 (flask setup); Flask registers a blueprint once: its routes "
        "stay as first registered until a restart"
    ), line
    assert status(port, "/shop/") == (200, "shop")
    assert status(port, "/x/")[0] == 404
    assert counts(child, port) == before

    edit(child, proj / "shop.py", FLASK_SHOP.replace('return "shop"', 'return "shop v2"'), "shop")
    assert status(port, "/shop/") == (200, "shop v2")


# -- FastAPI: app routes, routes of an included router -----------------------------------

FASTAPI_APP = """\
import os

from fastapi import FastAPI

import items

app = FastAPI()
app.include_router(items.router, prefix="/items")


@app.get("/count")
def count():
    return {"pid": os.getpid(), "app": len(app.routes), "items": len(items.router.routes)}
"""

FASTAPI_ITEMS = """\
from fastapi import APIRouter

router = APIRouter()


@router.get("/")
def listing():
    return "items"
"""

ADDED_GET = '@{owner}.{method}("{path}")\ndef {name}():\n    return "{name} {path}"'


def added(owner: str, name: str, path: str, method: str = "get") -> str:
    return ADDED_GET.format(owner=owner, name=name, path=path, method=method)


def openapi_paths(child: Child, port: int) -> set[str]:
    schema: dict[str, Any] = poll(child, port, lambda got: True, path="/openapi.json")
    return set(schema["paths"])


def test_fastapi_routes_added_edited_and_removed(proj: Path, spawn: Spawn) -> None:
    write(proj / "app.py", FASTAPI_APP)
    write(proj / "items.py", FASTAPI_ITEMS)
    child, port = uvicorn(spawn, proj, "app", "items")
    first = counts(child, port)
    pid, app_routes, item_routes = first["pid"], first["app"], first["items"]
    assert pid == child.proc.pid
    assert status(port, "/items/")[0] == 200

    # 1. Added: to the app, and to the router the app included at start-up.
    edit(child, proj / "app.py", source_with(FASTAPI_APP, added("app", "extra", "/extra")), "app")
    assert status(port, "/extra") == (200, '"extra /extra"')
    edit(
        child,
        proj / "items.py",
        source_with(FASTAPI_ITEMS, added("router", "one", "/one")),
        "items",
    )
    assert status(port, "/items/one") == (200, '"one /one"')
    assert counts(child, port) == {"pid": pid, "app": app_routes + 1, "items": item_routes + 1}
    assert {"/extra", "/items/one"} <= openapi_paths(child, port)

    # 2. Edited: a new path, and a new method.
    edit(child, proj / "app.py", source_with(FASTAPI_APP, added("app", "extra", "/more")), "app")
    assert status(port, "/more") == (200, '"extra /more"')
    assert status(port, "/extra")[0] == 404
    edit(
        child,
        proj / "items.py",
        source_with(FASTAPI_ITEMS, added("router", "one", "/one", "post")),
        "items",
    )
    assert status(port, "/items/one", "POST") == (200, '"one /one"')
    assert status(port, "/items/one")[0] == 405
    assert counts(child, port) == {"pid": pid, "app": app_routes + 1, "items": item_routes + 1}
    paths = openapi_paths(child, port)
    assert "/more" in paths
    assert "/extra" not in paths

    # 3. Removed.
    edit(child, proj / "app.py", FASTAPI_APP, "app")
    edit(child, proj / "items.py", FASTAPI_ITEMS, "items")
    assert status(port, "/more")[0] == 404
    assert status(port, "/items/one", "POST")[0] == 404
    assert counts(child, port) == {"pid": pid, "app": app_routes, "items": item_routes}
    assert not {"/more", "/items/one"} & openapi_paths(child, port)
    assert status(port, "/items/") == (200, '"items"')

    # 4. A middleware declared after requests were served (Starlette refuses it then):
    # it applies from the next request, and goes with its def.
    assert stamp_of(port, "/items/") is None
    edit(child, proj / "app.py", source_with(FASTAPI_APP, FASTAPI_STAMP), "app")
    assert stamp_of(port, "/items/") == "stamped"
    assert counts(child, port) == {"pid": pid, "app": app_routes, "items": item_routes}
    edit(child, proj / "app.py", FASTAPI_APP, "app")
    assert stamp_of(port, "/items/") is None


SAME_NAME_FASTAPI = (
    FASTAPI_APP
    + """

@app.get("/a")
def handler():
    return "a1"


@app.get("/b")
def handler():
    return "b1"
"""
)
SAME_NAME_FLASK = """\
from flask import Flask

app = Flask(__name__)


@app.route("/a", endpoint="a")
def view():
    return "a1"


@app.route("/b", endpoint="b")
def view():
    return "b1"
"""
SAME_NAME_FLASK_SERVER = """\
import os
import sys

from flask import jsonify

from views import app


@app.route("/count")
def count():
    return jsonify(pid=os.getpid(), rules=len(list(app.url_map.iter_rules())))


app.run(host="127.0.0.1", port=int(sys.argv[1]))
"""


@pytest.mark.parametrize("framework", ["fastapi", "flask"])
def test_routes_of_two_defs_of_one_name_keep_each_its_own(
    proj: Path, spawn: Spawn, framework: str
) -> None:
    """Two route functions of one name (legal: FastAPI's endpoints, Flask's with their own
    ``endpoint=``) each serve their route, as in a fresh start.  A body edit of the first
    took the second's route away (404, out of the OpenAPI schema), and a copied def
    added below took the first's: the routes of a def that ran again were told by its
    module and name, not by which of the two it was."""
    if framework == "fastapi":
        module, source = "app", SAME_NAME_FASTAPI
        write(proj / "app.py", source)
        write(proj / "items.py", FASTAPI_ITEMS)
        child, port = uvicorn(spawn, proj, "app", "items")
        table, quoted = "app", '"{}"'
    else:
        module, source = "views", SAME_NAME_FLASK
        write(proj / "views.py", source)
        write(proj / "server.py", SAME_NAME_FLASK_SERVER)
        port = free_port()
        child = spawn(["-v", "server.py", str(port)], cwd=proj)
        tracked(child, "views")
        table, quoted = "rules", "{}"
    first = counts(child, port)
    assert status(port, "/a") == (200, quoted.format("a1"))
    assert status(port, "/b") == (200, quoted.format("b1"))

    source = source.replace('"a1"', '"a2"')
    edit(child, proj / f"{module}.py", source, module)
    assert status(port, "/a") == (200, quoted.format("a2"))
    assert status(port, "/b") == (200, quoted.format("b1"))
    assert counts(child, port) == first

    copied = source.replace('"/b"', '"/c"').replace('"b"', '"c"').replace('"b1"', '"c1"')
    source += copied[copied.rindex("\n\n\n@app") :]
    edit(child, proj / f"{module}.py", source, module)
    assert status(port, "/a") == (200, quoted.format("a2"))
    assert status(port, "/b") == (200, quoted.format("b1"))
    assert status(port, "/c") == (200, quoted.format("c1"))
    assert counts(child, port) == {**first, table: first[table] + 1}
    if framework == "fastapi":
        assert {"/a", "/b", "/c"} <= openapi_paths(child, port)


FASTAPI_ORDERED = """\
import os

from fastapi import FastAPI

import things

app = FastAPI()
app.include_router(things.router, prefix="/things")


@app.get("/order")
def order():
    return {"pid": os.getpid(), "app": [getattr(route, "path", None) for route in app.routes],
            "things": [route.path for route in things.router.routes]}


@app.get("/users/{name}")
def user(name: str):
    return {"user": name}
"""

FASTAPI_THINGS = """\
from fastapi import APIRouter

router = APIRouter()


@router.get("/{item_id}")
def item(item_id: str):
    return {"item": item_id}


@router.get("/all")
def everything():
    return "all"
"""


def test_fastapi_route_decorator_removed_takes_its_route_out(proj: Path, spawn: Spawn) -> None:
    """``@app.get`` (``@router.get``) taken off a ``def`` that stays: its route went on
    serving, and stayed in the OpenAPI schema.  The def ran again and added it no more:
    it goes, as a restart would have it.  A route a statement of its own adds
    (``app.add_api_route``) stays when its def gains a decorator."""
    app_source = source_with(FASTAPI_APP, added("app", "extra", "/extra"))
    write(proj / "app.py", app_source)
    write(proj / "items.py", source_with(FASTAPI_ITEMS, added("router", "one", "/one")))
    child, port = uvicorn(spawn, proj, "app", "items")
    first = counts(child, port)
    pid, app_routes, item_routes = first["pid"], first["app"], first["items"]
    assert status(port, "/extra") == (200, '"extra /extra"')
    assert status(port, "/items/one") == (200, '"one /one"')

    bare = 'def extra():\n    return "bare"'
    edit(child, proj / "app.py", source_with(FASTAPI_APP, bare), "app")
    assert status(port, "/extra")[0] == 404
    edit(child, proj / "items.py", source_with(FASTAPI_ITEMS, "def one():\n    return 1"), "items")
    assert status(port, "/items/one")[0] == 404
    assert counts(child, port) == {"pid": pid, "app": app_routes - 1, "items": item_routes - 1}
    assert not {"/extra", "/items/one"} & openapi_paths(child, port)

    # A route its own statement adds, whose def gains a decorator: it stays.
    stated = 'def stated():\n    return "stated"\n\n\napp.add_api_route("/stated", stated)'
    edit(child, proj / "app.py", source_with(FASTAPI_APP, stated), "app")
    assert status(port, "/stated") == (200, '"stated"')
    edit(child, proj / "app.py", source_with(FASTAPI_APP, KEEP, kept(stated)), "app")
    assert status(port, "/stated") == (200, '"stated again"')
    assert counts(child, port)["app"] == app_routes


def test_fastapi_routes_follow_the_order_of_their_defs_as_in_a_fresh_start(
    proj: Path, spawn: Spawn
) -> None:
    """A router serves the first route that matches: a route goes where its def is among
    the routes of its file, as in a fresh start.  A new route went last, and a route
    above it that matched its path too (``/{item_id}``) answered in its place; a def
    moved above such a route (to be matched first) kept its route where it was."""
    write(proj / "app.py", FASTAPI_ORDERED)
    write(proj / "things.py", FASTAPI_THINGS)
    child, port = uvicorn(spawn, proj, "app", "things")
    first = poll(child, port, lambda got: True, path="/order")
    assert first["things"] == ["/{item_id}", "/all"]
    assert status(port, "/things/special") == (200, '{"item":"special"}')
    assert status(port, "/things/all") == (200, '{"item":"all"}')  # as in a fresh start

    # 1. Added above the route that matches it too, in an included router and in the app.
    special = '@router.get("/special")\ndef special():\n    return "special"\n\n\n'
    things = FASTAPI_THINGS.replace(
        '@router.get("/{item_id}")', special + '@router.get("/{item_id}")'
    )
    edit(child, proj / "things.py", things, "things")
    everyone = '@app.get("/users/everyone")\ndef everyone():\n    return "everyone"\n\n\n'
    edit(
        child,
        proj / "app.py",
        FASTAPI_ORDERED.replace(
            '@app.get("/users/{name}")', everyone + '@app.get("/users/{name}")'
        ),
        "app",
    )

    assert status(port, "/things/special") == (200, '"special"')
    assert status(port, "/things/other") == (200, '{"item":"other"}')
    assert status(port, "/users/everyone") == (200, '"everyone"')
    assert status(port, "/users/ann") == (200, '{"user":"ann"}')
    now = poll(child, port, lambda got: True, path="/order")
    assert now["pid"] == first["pid"]
    assert now["things"] == ["/special", "/{item_id}", "/all"]
    assert now["app"].index("/users/everyone") + 1 == now["app"].index("/users/{name}")
    assert len(now["app"]) == len(first["app"]) + 1

    # 2. A def moved, unchanged, above the route that shadowed it.
    route_all = '@router.get("/all")\ndef everything():\n    return "all"\n'
    moved = things.replace("\n\n\n" + route_all, "\n").replace(
        '@router.get("/{item_id}")', route_all + "\n\n" + '@router.get("/{item_id}")'
    )
    assert moved != things
    assert sorted(moved.splitlines()) == sorted(things.splitlines())  # only moved
    edit(child, proj / "things.py", moved, "things")

    assert status(port, "/things/all") == (200, '"all"')
    assert status(port, "/things/other") == (200, '{"item":"other"}')
    now = poll(child, port, lambda got: True, path="/order")
    assert now["pid"] == first["pid"]
    assert now["things"] == ["/special", "/all", "/{item_id}"]  # as a fresh start has them


FASTAPI_EVENTS = """\
import os

from fastapi import FastAPI

app = FastAPI()


@app.on_event("startup")
async def start():
    pass


@app.on_event("shutdown")
async def stop():
    os.write(1, b"stopped\\n")


@app.get("/count")
async def count():
    router = app.router
    return {"startup": len(router.on_startup), "shutdown": len(router.on_shutdown)}
"""


def test_fastapi_event_handlers_whose_signature_changed_are_not_added_again(
    proj: Path, spawn: Spawn
) -> None:
    """``@app.on_event(...)`` handlers whose signature was edited were added again: two
    entries each, and the shutdown handler ran twice at Ctrl-C (once in a fresh run)."""
    write(proj / "app.py", FASTAPI_EVENTS)
    child, port = uvicorn(spawn, proj, "app")
    assert poll(child, port, lambda got: True, path="/count") == {"startup": 1, "shutdown": 1}
    edited = FASTAPI_EVENTS.replace("def start():", "def start(kind='cold'):")
    edited = edited.replace("def stop():", "def stop(reason='bye'):")
    edit(child, proj / "app.py", edited, "app")
    assert poll(child, port, lambda got: True, path="/count") == {"startup": 1, "shutdown": 1}
    child.proc.send_signal(signal.SIGINT)
    assert child.wait() == 0
    assert child.seen["out"].count("stopped") == 1


AIOHTTP_SETTINGS = "MAX_BODY = 2**20\n"
AIOHTTP_APP = """\
from aiohttp import web

from settings import MAX_BODY

routes = web.RouteTableDef()


@routes.get("/")
async def index(request):
    return web.Response(text="index")


@routes.get("/count")
async def count(request):
    return web.json_response(
        {"routes": len(routes), "same": request.app is app, "db": request.app["db"]}
    )


async def connect(app):
    app["db"] = "connected"


app = web.Application(client_max_size=MAX_BODY)
app.on_startup.append(connect)
app.add_routes(routes)
"""
AIOHTTP_MAIN = """\
import sys

from aiohttp import web

from app import app

web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


def aiohttp_server(proj: Path, spawn: Spawn, source: str) -> tuple[Child, int]:
    """``main.py`` serving ``source`` (the app module) with aiohttp under the CLI, tracked."""
    pytest.importorskip("aiohttp")
    write(proj / "settings.py", AIOHTTP_SETTINGS)
    write(proj / "app.py", source)
    write(proj / "main.py", AIOHTTP_MAIN)
    port = free_port()
    child = spawn(["-v", "main.py", str(port)], cwd=proj)
    tracked(child, "app", "settings")
    return child, port


def test_aiohttp_route_tables_keep_one_entry_and_a_new_app_is_refused(
    proj: Path, spawn: Spawn
) -> None:
    """A ``RouteTableDef`` route whose def ran again (its signature edited) was added
    again (an app made from the table then refuses it); a save of ``MAX_BODY`` made a
    new ``web.Application`` that nothing served, bound in place of the served one:
    every request to a handler reading ``app["db"]`` failed with 500."""
    child, port = aiohttp_server(proj, spawn, AIOHTTP_APP)
    first = {"routes": 2, "same": True, "db": "connected"}
    assert poll(child, port, lambda got: True, path="/count") == first

    edited = AIOHTTP_APP.replace("def index(request):", "def index(request, *, kind='page'):")
    edit(child, proj / "app.py", edited, "app")
    assert status(port, "/") == (200, "index")
    assert poll(child, port, lambda got: True, path="/count") == first

    write(proj / "settings.py", "MAX_BODY = 2**21\n")
    said = child.expect(
        contains("restart to apply: app.app is a new aiohttp Application"), stream="err"
    )
    assert "(aiohttp app)" in said
    assert poll(child, port, lambda got: True, path="/count") == first


def test_aiohttp_routes_added_to_an_app_that_started_are_refused(proj: Path, spawn: Spawn) -> None:
    """aiohttp freezes an app's router as it starts: a new ``@routes.get`` of the table the
    app took its routes from was silently not served (404, and the save said it
    reloaded); a route added with ``app.router.add_get`` failed with "Cannot register a
    resource into frozen router", and so did every later save of the module.  Both are
    refused, with one line; the module's other edits apply once the route goes."""
    direct = "\n\nasync def plain(request):\n    return web.Response(text='{text}')\n\n\n"
    source = AIOHTTP_APP + direct.format(text="plain v1") + 'app.router.add_get("/plain", plain)\n'
    child, port = aiohttp_server(proj, spawn, source)
    assert poll(child, port, lambda got: True, path="/count")["routes"] == 2
    assert status(port, "/plain") == (200, "plain v1")

    added = (
        source
        + '\n\n@routes.get("/new")\nasync def new(request):\n    return web.Response(text="new")\n'
    )
    write(proj / "app.py", added)
    said = child.expect(contains("restart to apply: a route GET /new added"), stream="err")
    assert said.endswith("(aiohttp route); aiohttp froze the app's routes as it started"), said
    moved = source.replace('add_get("/plain"', 'add_get("/plain2"')
    write(proj / "app.py", moved)
    said = child.expect(contains("restart to apply: a route /plain2 added"), stream="err")
    assert "(aiohttp route)" in said
    # Back to the routes it started with: a body edit applies.
    edit(child, proj / "app.py", source.replace("plain v1", "plain v2"), "app")
    assert status(port, "/plain") == (200, "plain v2")
    # The refused @routes.get("/new") left no entry in the table (it stayed: 3).
    assert poll(child, port, lambda got: True, path="/count")["routes"] == 2
    assert not [line for line in child.seen["err"] if "frozen router" in line]


def test_aiohttp_routes_taken_from_an_app_that_started_are_refused(
    proj: Path, spawn: Spawn
) -> None:
    """A ``@routes.get`` line deleted from a def that stays, or the def deleted, left the
    started app's frozen router serving the old handler, and the save said it reloaded.
    Both are refused now, with one line; back to the routes it started with, an edit
    applies."""
    child, port = aiohttp_server(proj, spawn, AIOHTTP_APP)
    assert poll(child, port, lambda got: True, path="/count")["routes"] == 2  # (it listens)
    assert status(port, "/") == (200, "index")

    undecorated = AIOHTTP_APP.replace('@routes.get("/")\n', "")
    assert undecorated != AIOHTTP_APP
    write(proj / "app.py", undecorated.replace('text="index"', 'text="index v2"'))
    said = child.expect(contains("restart to apply: app.index lost its route GET /"), stream="err")
    assert said.endswith("(aiohttp route); aiohttp froze the app's routes as it started"), said
    assert "app.py:8 (aiohttp route)" in said  # the def's line, in the saved file
    assert status(port, "/") == (200, "index")  # nothing of the edit applied

    start = AIOHTTP_APP.index('@routes.get("/")')
    gone = AIOHTTP_APP[:start] + AIOHTTP_APP[AIOHTTP_APP.index('@routes.get("/count")') :]
    write(proj / "app.py", gone)
    child.expect(contains("restart to apply: app.index lost its route GET /"), stream="err")
    assert status(port, "/") == (200, "index")

    edit(child, proj / "app.py", AIOHTTP_APP.replace('text="index"', 'text="index v3"'), "app")
    assert status(port, "/") == (200, "index v3")
    assert poll(child, port, lambda got: True, path="/count")["routes"] == 2


def test_a_router_included_in_an_edit_keeps_the_routers_included_before(
    proj: Path, spawn: Spawn
) -> None:
    """FastAPI's entry for an included router has no endpoint (0.165): a new
    ``app.include_router`` line was taken for the first one made again, which it
    replaced, and that router's routes answered 404, silently."""
    write(proj / "app.py", FASTAPI_APP)
    write(proj / "items.py", FASTAPI_ITEMS)
    write(proj / "users.py", FASTAPI_ITEMS.replace('"items"', '"users"'))
    child, port = uvicorn(spawn, proj, "app", "items")
    counts(child, port)  # answering: tracked comes at the imports, before the listen
    assert status(port, "/items/") == (200, '"items"')

    included = FASTAPI_APP.replace("import items\n", "import items\nimport users\n").replace(
        'prefix="/items")\n',
        'prefix="/items")\napp.include_router(users.router, prefix="/users")\n',
    )
    edit(child, proj / "app.py", included, "app")

    assert status(port, "/users/") == (200, '"users"')
    assert status(port, "/items/") == (200, '"items"')
    assert {"/items/", "/users/"} <= openapi_paths(child, port)


def test_a_router_made_again_takes_the_place_of_its_include(proj: Path, spawn: Spawn) -> None:
    """``router = APIRouter(prefix=...)`` edited: the router is made again, and
    ``app.include_router(items.router)`` runs again for it.  FastAPI (0.165) added an
    entry for the new router beside the old one's at each such save (the app's routes
    grew by one a save, and the old prefix answered on): the new entry takes the old
    one's place."""
    app = FASTAPI_APP.replace(
        'app.include_router(items.router, prefix="/items")', ("app.include_router(items.router)")
    )
    write(proj / "app.py", app)
    items = FASTAPI_ITEMS.replace("APIRouter()", 'APIRouter(prefix="/items")')
    write(proj / "items.py", items)
    child, port = uvicorn(spawn, proj, "app", "items")
    first = counts(child, port)
    assert status(port, "/items/") == (200, '"items"')
    for prefix in ("/things", "/stuff"):
        edit(child, proj / "items.py", items.replace('"/items"', f'"{prefix}"'), "items")
        assert status(port, f"{prefix}/") == (200, '"items"')
        assert status(port, "/items/")[0] == 404
        assert counts(child, port)["app"] == first["app"]
        assert f"{prefix}/" in openapi_paths(child, port)


FASTAPI_STAMP = """\
@app.middleware("http")
async def stamp(request, call_next):
    response = await call_next(request)
    response.headers["x-stamp"] = "stamped"
    return response
"""


def stamp_of(port: int, path: str) -> str | None:
    """The ``x-stamp`` header of GET ``path``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.headers.get("x-stamp")


# -- Django: the URLconf of an app that the project's urls.py includes -------------------

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
SECRET_KEY = "only-for-the-tests"
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "mysite.urls"
INSTALLED_APPS = []
DATABASES = {}
"""

DJANGO_ROOT_URLS = """\
import os

from django.http import JsonResponse
from django.urls import URLResolver, get_resolver, include, path


def patterns(resolver):
    return sum(
        patterns(entry) if isinstance(entry, URLResolver) else 1 for entry in resolver.url_patterns
    )


def count(request):
    return JsonResponse({"pid": os.getpid(), "patterns": patterns(get_resolver())})


urlpatterns = [
    path("count", count),
    path("blog/", include("blog.urls")),
]
"""


def blog_urls(*extra: str) -> str:
    routes = "".join(f'    path("{route}", views.post),\n' for route in extra)
    return f"""\
from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
{routes}]
"""


BLOG_VIEWS = """\
from django.http import HttpResponse


def index(request):
    return HttpResponse("blog")


def post(request):
    return HttpResponse("post " + request.path)
"""


DRF_SETTINGS = (
    DJANGO_SETTINGS
    + """\
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}
"""
)

DRF_URLS = """\
from django.urls import include, path
from rest_framework.routers import DefaultRouter

from blog import api

router = DefaultRouter()
router.register("posts", api.PostViewSet, basename="post")
{more}
urlpatterns = {patterns}
"""

DRF_API = """\
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response


class PostSerializer(serializers.Serializer):
    title = serializers.CharField()
{field}

class PostViewSet(viewsets.ViewSet):
    serializer_class = PostSerializer

    def list(self, request):
        return Response({{"fields": sorted(self.serializer_class().fields)}})
{action}"""

DRF_ACTION = """
    @action(detail=False)
    def recent(self, request):
        return Response({"recent": "v1"})
"""


@pytest.mark.parametrize(
    "patterns", ['[path("", include(router.urls))]', '[path("x/", include([]))] + router.urls']
)
def test_drf_router_registrations_made_again_take_their_earlier_place(
    proj: Path, spawn: Spawn, patterns: str
) -> None:
    """A serializer edit makes its viewset again, and ``router.register(...)`` in the
    URLconf runs again: DRF refused the basename registered already, the URLconf's reload
    failed, and so did each later save (an ``@action`` added was never routed).  Now the
    entry takes its earlier place, and the router's patterns are made again in the list
    ``include(router.urls)`` holds, or in the URLconf's list that took them."""
    pytest.importorskip("rest_framework")
    write(proj / "manage.py", DJANGO_MANAGE)
    write(proj / "mysite" / "__init__.py", "")
    write(proj / "mysite" / "settings.py", DRF_SETTINGS)
    urls = write(proj / "mysite" / "urls.py", DRF_URLS.format(patterns=patterns, more=""))
    write(proj / "blog" / "__init__.py", "")
    api = proj / "blog" / "api.py"
    write(api, DRF_API.format(field="", action=""))
    port = free_port()
    child = spawn(["-v", "manage.py", "runserver", f"127.0.0.1:{port}"], cwd=proj)
    assert poll(child, port, lambda got: True, path="/posts/") == {"fields": ["title"]}
    assert status(port, "/posts/recent/")[0] == 404
    tracked(child, "blog.api", "mysite.urls")

    body = "    body = serializers.CharField()\n"
    edit(child, api, DRF_API.format(field=body, action=""), "blog.api")
    poll(child, port, lambda got: got == {"fields": ["body", "title"]}, path="/posts/")
    edit(child, api, DRF_API.format(field=body, action=DRF_ACTION), "blog.api")
    assert poll(child, port, lambda got: True, path="/posts/recent/") == {"recent": "v1"}

    # A new registration is routed (it was not: 404 until a restart), and its prefix
    # edited moves it.
    for prefix, gone in (("notes", None), ("memos", "notes")):
        more = f'router.register("{prefix}", api.PostViewSet, basename="note")\n'
        edit(child, urls, DRF_URLS.format(patterns=patterns, more=more), "mysite.urls")
        assert poll(child, port, lambda got: True, path=f"/{prefix}/") == {
            "fields": ["body", "title"]
        }
        if gone is not None:
            assert status(port, f"/{gone}/")[0] == 404
        assert status(port, "/posts/recent/") == (200, '{"recent":"v1"}')
    assert not [line for line in child.seen["err"] if "failed to reload" in line]


def test_django_patterns_of_an_included_urlconf_follow_edits(proj: Path, spawn: Spawn) -> None:
    write(proj / "manage.py", DJANGO_MANAGE)
    write(proj / "mysite" / "__init__.py", "")
    write(proj / "mysite" / "settings.py", DJANGO_SETTINGS)
    write(proj / "mysite" / "urls.py", DJANGO_ROOT_URLS)
    write(proj / "blog" / "__init__.py", "")
    write(proj / "blog" / "views.py", BLOG_VIEWS)
    write(proj / "blog" / "urls.py", blog_urls())
    port = free_port()
    child = spawn(["-v", "manage.py", "runserver", f"127.0.0.1:{port}"], cwd=proj)
    child.expect(f"hmr: watching {os.path.realpath(proj / 'blog')}", stream="err")
    first = counts(child, port)
    pid, patterns = first["pid"], first["patterns"]
    assert pid == child.proc.pid
    assert status(port, "/blog/") == (200, "blog")
    tracked(child, "blog.urls")

    # 1. A pattern added to the included URLconf.
    edit(child, proj / "blog" / "urls.py", blog_urls("first"), "blog.urls")
    assert status(port, "/blog/first") == (200, "post /blog/first")
    assert counts(child, port) == {"pid": pid, "patterns": patterns + 1}
    # 2. Its path edited.
    edit(child, proj / "blog" / "urls.py", blog_urls("second"), "blog.urls")
    assert status(port, "/blog/second") == (200, "post /blog/second")
    assert status(port, "/blog/first")[0] == 404
    assert counts(child, port) == {"pid": pid, "patterns": patterns + 1}
    # 3. Removed.
    edit(child, proj / "blog" / "urls.py", blog_urls(), "blog.urls")
    assert status(port, "/blog/second")[0] == 404
    assert counts(child, port) == {"pid": pid, "patterns": patterns}
    assert status(port, "/blog/") == (200, "blog")


BLOG_CONVERTERS = """\
class Year:
    regex = "{regex}"

    def to_python(self, value):
        return int(value)

    def to_url(self, value):
        return str(value)
"""

BLOG_YEAR_URLS = """\
from django.http import HttpResponse
from django.urls import path, register_converter

from . import converters, views

register_converter(converters.Year, "yyyy")


def year(request, year):
    return HttpResponse(f"year {year!r}")


urlpatterns = [
    path("", views.index),
    path("y/<yyyy:year>", year),
]
"""


def test_a_django_converter_registered_again_takes_its_place(
    proj: Path, spawn: Spawn, core_env: dict[str, str]
) -> None:
    """An edit of a URL converter's ``regex`` runs ``register_converter(Year, "yyyy")`` in
    the URLconf again: Django 6 raised "Converter 'yyyy' is already registered" (5.x
    warned: an error here), the URLconf failed to follow, and so did each later save it
    followed, until a restart.  Now the converter takes its own earlier place."""
    write(proj / "manage.py", DJANGO_MANAGE)
    write(proj / "mysite" / "__init__.py", "")
    write(proj / "mysite" / "settings.py", DJANGO_SETTINGS)
    write(proj / "mysite" / "urls.py", DJANGO_ROOT_URLS)
    write(proj / "blog" / "__init__.py", "")
    write(proj / "blog" / "views.py", BLOG_VIEWS)
    converters = proj / "blog" / "converters.py"
    write(converters, BLOG_CONVERTERS.format(regex="[0-9]{4}"))
    write(proj / "blog" / "urls.py", BLOG_YEAR_URLS)
    port = free_port()
    # Django 5's warning as an error, as Django 6 raises.
    env = {**core_env, "PYTHONWARNINGS": "error:Converter"}
    child = spawn(["-v", "manage.py", "runserver", f"127.0.0.1:{port}"], cwd=proj, env=env)
    child.expect(f"hmr: watching {os.path.realpath(proj / 'blog')}", stream="err")
    assert counts(child, port)["pid"] == child.proc.pid
    assert status(port, "/blog/y/2024") == (200, "year 2024")
    assert status(port, "/blog/y/24")[0] == 404
    tracked(child, "blog.converters", "blog.urls")

    edit(child, converters, BLOG_CONVERTERS.format(regex="[0-9]{2,4}"), "blog.converters")
    wait_status(child, port, "/blog/y/24", 200, "year 24")
    # A later save the URLconf follows applies too.
    edit(child, converters, BLOG_CONVERTERS.format(regex="[0-9]{3,4}"), "blog.converters")
    wait_status(child, port, "/blog/y/24", 404, "")
    assert status(port, "/blog/y/245") == (200, "year 245")
    assert not [line for line in child.seen["err"] if "failed to reload" in line]


# -- Starlette: the routes list of the app's own statement; websocket routes --------------

STARLETTE_APP = """\
import os

from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute


def count(request):
    return JSONResponse({{"pid": os.getpid(), "app": len(app.routes), "api": len(api)}})


def home(request):
    return PlainTextResponse("home")


def ping(request):
    return PlainTextResponse("pong")


async def echo(websocket):
    await websocket.accept()
    text = await websocket.receive_text()
    await websocket.send_text("echo " + text)
    await websocket.close()
{defs}

api = [Route("/ping", ping){api}]
routes = [
    Route("/count", count),
    Route("/", home),
    WebSocketRoute("/ws", echo),
    Mount("/api", routes=api),{routes}
]
app = Starlette(routes=routes)
{calls}
"""


def starlette_app(defs: str = "", api: str = "", routes: str = "", calls: str = "") -> str:
    return STARLETTE_APP.format(defs=defs, api=api, routes=routes, calls=calls)


EXTRA = '\n\ndef extra(request):\n    return PlainTextResponse("extra " + request.url.path)\n'
SHOUT = (
    "\n\nasync def shout(websocket):\n    await websocket.accept()\n"
    '    await websocket.send_text("shout " + await websocket.receive_text())\n'
    "    await websocket.close()\n"
)


def websocket_says(port: int, path: str, text: str) -> str | None:
    """What the server's websocket at ``path`` answers to ``text``; None if it refuses."""
    websocket = pytest.importorskip("websocket", reason="websocket-client is not installed")
    try:
        connection = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=5)
    except websocket.WebSocketBadStatusException:
        return None
    try:
        connection.send(text)
        answer: str = connection.recv()
        return answer
    finally:
        connection.close()


def test_starlette_routes_list_follows_edits_in_the_live_app(proj: Path, spawn: Spawn) -> None:
    """The app's statement runs again and makes a new app: the one uvicorn serves takes
    its routes, and ``app`` stays the live object."""
    write(proj / "app.py", starlette_app())
    child, port = uvicorn(spawn, proj, "app")
    first = counts(child, port)
    pid, app_routes, api_routes = first["pid"], first["app"], first["api"]
    assert pid == child.proc.pid
    assert (app_routes, api_routes) == (4, 1)
    assert websocket_says(port, "/ws", "hi") == "echo hi"

    # 1. A route added to the app's list, one to a mounted list, one by a later call.
    edit(
        child,
        proj / "app.py",
        starlette_app(
            defs=EXTRA,
            api=', Route("/pong", ping)',
            routes='\n    Route("/extra", extra),',
            calls='app.add_route("/late", extra)',
        ),
        "app",
    )
    assert status(port, "/extra") == (200, "extra /extra")
    assert status(port, "/api/pong") == (200, "pong")
    assert status(port, "/late") == (200, "extra /late")
    assert counts(child, port) == {"pid": pid, "app": app_routes + 2, "api": api_routes + 1}

    # 2. Edited: new paths; the later call alone runs again, and its route is not twice.
    edit(
        child,
        proj / "app.py",
        starlette_app(
            defs=EXTRA,
            api=', Route("/pong", ping)',
            routes='\n    Route("/more", extra),',
            calls='app.add_route("/later", extra)',
        ),
        "app",
    )
    assert status(port, "/more") == (200, "extra /more")
    assert status(port, "/later") == (200, "extra /later")
    assert status(port, "/extra")[0] == 404
    assert status(port, "/late")[0] == 404
    assert counts(child, port) == {"pid": pid, "app": app_routes + 2, "api": api_routes + 1}

    # 3. Removed.
    edit(child, proj / "app.py", starlette_app(), "app")
    assert status(port, "/more")[0] == 404
    assert status(port, "/later")[0] == 404
    assert status(port, "/api/pong")[0] == 404
    assert counts(child, port) == {"pid": pid, "app": app_routes, "api": api_routes}
    assert status(port, "/") == (200, "home")
    assert status(port, "/api/ping") == (200, "pong")


def test_starlette_websocket_routes_follow_edits(proj: Path, spawn: Spawn) -> None:
    write(proj / "app.py", starlette_app())
    child, port = uvicorn(spawn, proj, "app")
    first = counts(child, port)
    pid, app_routes = first["pid"], first["app"]
    assert websocket_says(port, "/ws", "hi") == "echo hi"
    assert websocket_says(port, "/shout", "hi") is None

    # 1. The handler's body: in place, the route table untouched.
    edit(child, proj / "app.py", starlette_app().replace('"echo "', '"said "'), "app")
    assert websocket_says(port, "/ws", "hi") == "said hi"
    assert counts(child, port)["app"] == app_routes

    # 2. Added, then moved, then removed.
    shout = '\n    WebSocketRoute("/shout", shout),'
    edit(child, proj / "app.py", starlette_app(defs=SHOUT, routes=shout), "app")
    assert websocket_says(port, "/shout", "hi") == "shout hi"
    assert counts(child, port) == {"pid": pid, "app": app_routes + 1, "api": 1}
    edit(
        child,
        proj / "app.py",
        starlette_app(defs=SHOUT, routes=shout.replace("/shout", "/yell")),
        "app",
    )
    assert websocket_says(port, "/yell", "hi") == "shout hi"
    assert websocket_says(port, "/shout", "hi") is None
    assert counts(child, port) == {"pid": pid, "app": app_routes + 1, "api": 1}
    edit(child, proj / "app.py", starlette_app(), "app")
    assert websocket_says(port, "/yell", "hi") is None
    assert websocket_says(port, "/ws", "hi") == "echo hi"
    assert counts(child, port) == {"pid": pid, "app": app_routes, "api": 1}


def test_starlette_routes_of_a_failed_reload_are_taken_back(proj: Path, spawn: Spawn) -> None:
    write(proj / "app.py", starlette_app())
    child, port = uvicorn(spawn, proj, "app")
    before = counts(child, port)

    failing = 'app.add_route("/late", extra)\nraise RuntimeError("a later statement fails")'
    write(proj / "app.py", starlette_app(defs=EXTRA, calls=failing))
    line = child.expect(outcome_of("app"), stream="err")
    assert line.startswith("hmr: failed to reload app "), line
    wait_status(child, port, "/late", 404, "Not Found")
    assert counts(child, port) == before

    write(proj / "app.py", starlette_app(defs=EXTRA, calls='app.add_route("/late", extra)'))
    assert child.expect(outcome_of("app"), stream="err").startswith("hmr: reloaded app ")
    assert status(port, "/late") == (200, "extra /late")
    assert counts(child, port) == dict(before, app=before["app"] + 1)


FASTAPI_WEBSOCKETS = """\
import os

from fastapi import FastAPI, WebSocket

app = FastAPI()


@app.get("/count")
def count():
    return {{"pid": os.getpid(), "app": len(app.routes)}}


@app.websocket("/ws")
async def echo(websocket: WebSocket):
    await websocket.accept()
    await websocket.send_text("echo " + await websocket.receive_text())
    await websocket.close()
{extra}
"""

FASTAPI_SHOUT = """
@app.websocket("{path}")
async def shout(websocket: WebSocket):
    await websocket.accept()
    await websocket.send_text("shout " + await websocket.receive_text())
    await websocket.close()
"""


def fastapi_websockets(path: str | None = None) -> str:
    extra = FASTAPI_SHOUT.format(path=path) if path else ""
    return FASTAPI_WEBSOCKETS.format(extra=extra)


def test_fastapi_websocket_routes_follow_edits(proj: Path, spawn: Spawn) -> None:
    write(proj / "app.py", fastapi_websockets())
    child, port = uvicorn(spawn, proj, "app")
    first = counts(child, port)
    pid, app_routes = first["pid"], first["app"]
    assert websocket_says(port, "/ws", "hi") == "echo hi"

    # 1. The handler's body, in place.
    edit(child, proj / "app.py", fastapi_websockets().replace('"echo "', '"said "'), "app")
    assert websocket_says(port, "/ws", "hi") == "said hi"
    assert counts(child, port) == {"pid": pid, "app": app_routes}

    # 2. Added, moved, removed.
    edit(child, proj / "app.py", fastapi_websockets("/shout"), "app")
    assert websocket_says(port, "/shout", "hi") == "shout hi"
    assert counts(child, port) == {"pid": pid, "app": app_routes + 1}
    edit(child, proj / "app.py", fastapi_websockets("/yell"), "app")
    assert websocket_says(port, "/yell", "hi") == "shout hi"
    assert websocket_says(port, "/shout", "hi") is None
    assert counts(child, port) == {"pid": pid, "app": app_routes + 1}
    edit(child, proj / "app.py", fastapi_websockets(), "app")
    assert websocket_says(port, "/yell", "hi") is None
    assert counts(child, port) == {"pid": pid, "app": app_routes}

    # 3. The app's own statement edited: the app made again hands its routes to the live one.
    # (with a route added in the same save: it serves from the app uvicorn holds).
    remade = fastapi_websockets("/shout").replace("FastAPI()", 'FastAPI(title="Edited")')
    edit(child, proj / "app.py", remade, "app")
    assert websocket_says(port, "/shout", "hi") == "shout hi"
    assert websocket_says(port, "/ws", "hi") == "echo hi"
    assert counts(child, port) == {"pid": pid, "app": app_routes + 1}


# -- Django's admin: an edited admin.py registers its ModelAdmins again -------------------

ADMIN_SETTINGS = """\
DEBUG = True
SECRET_KEY = "only-for-the-tests"
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "mysite.urls"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "greet",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
"""

# What the admin holds: each registered model's list_display, and whether the
# admin URL of the model calls the ModelAdmin registered now.
ADMIN_URLS = """\
import os

from django.contrib import admin
from django.http import JsonResponse
from django.urls import Resolver404, path, resolve


def served_by(label):
    try:
        # (the admin answers other paths with its catch-all view)
        return getattr(resolve(f"/admin/greet/{label}/").func, "model_admin", None)
    except Resolver404:
        return None


def registry(request):
    return JsonResponse({
        "pid": os.getpid(),
        "admins": {
            model._meta.model_name: {
                "list_display": list(model_admin.list_display),
                "served": served_by(model._meta.model_name) is model_admin,
            }
            for model, model_admin in admin.site._registry.items()
            if model._meta.app_label == "greet"
        },
        "tag_url": served_by("tag") is not None,
    })


urlpatterns = [path("registry", registry), path("admin/", admin.site.urls)]
"""

ADMIN_MODELS = """\
from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=50)


class Tag(models.Model):
    label = models.CharField(max_length=50)
"""


def greet_admin(form: str, item: str, tag: str | None = None, tail: str = "") -> str:
    """greet/admin.py: ItemAdmin (and TagAdmin), with ``@admin.register`` or ``site.register``."""
    source = "from django.contrib import admin\n\nfrom .models import Item, Tag\n"
    for model, display in (("Item", item), ("Tag", tag)):
        if display is None:
            continue
        body = f"class {model}Admin(admin.ModelAdmin):\n    list_display = {display}\n"
        if form == "decorator":
            source += f"\n\n@admin.register({model})\n{body}"
        else:
            source += f"\n\n{body}\n\nadmin.site.register({model}, {model}Admin)\n"
    return source + tail


def saved(child: Child, path: Path, source: str) -> str:
    """Save ``path``; the line that ends the reload of greet.admin."""
    write(path, source)
    line: str = child.expect(outcome_of("greet.admin"), stream="err")
    return line


@pytest.mark.parametrize("form", ["decorator", "call"])
def test_django_admin_registrations_follow_edits(proj: Path, spawn: Spawn, form: str) -> None:
    pytest.importorskip("django.contrib.admin")
    write(proj / "manage.py", DJANGO_MANAGE)
    write(proj / "mysite" / "__init__.py", "")
    write(proj / "mysite" / "settings.py", ADMIN_SETTINGS)
    write(proj / "mysite" / "urls.py", ADMIN_URLS)
    write(proj / "greet" / "__init__.py", "")
    write(proj / "greet" / "models.py", ADMIN_MODELS)
    admin_py = proj / "greet" / "admin.py"
    write(admin_py, greet_admin(form, '["name"]'))
    port = free_port()
    child = spawn(["-v", "manage.py", "runserver", f"127.0.0.1:{port}"], cwd=proj)
    child.expect(f"hmr: watching {os.path.realpath(proj / 'greet')}", stream="err")

    def registry(want: dict[str, list[str]]) -> None:
        def matches(got: dict[str, Any]) -> bool:
            shown = {name: admin["list_display"] for name, admin in got["admins"].items()}
            return shown == want

        got = poll(child, port, matches, path="/registry")
        assert got["pid"] == child.proc.pid
        assert all(admin["served"] for admin in got["admins"].values()), got

    registry({"item": ["name"]})
    tracked(child, "greet.admin")

    # 1. list_display edited: the new ModelAdmin replaces the old one (no AlreadyRegistered).
    assert saved(child, admin_py, greet_admin(form, '["name", "id"]')).startswith(
        "hmr: reloaded greet.admin "
    )
    registry({"item": ["name", "id"]})
    # 2. A syntax error fails; its fix applies.
    assert saved(child, admin_py, greet_admin(form, '["name", "id"')).startswith(
        "hmr: failed to reload greet.admin"
    )
    registry({"item": ["name", "id"]})
    assert saved(child, admin_py, greet_admin(form, '["id"]')).startswith(
        "hmr: reloaded greet.admin "
    )
    registry({"item": ["id"]})
    # 3. A reload that fails after its registration: the previous ModelAdmin is back.
    line = saved(child, admin_py, greet_admin(form, '["pk"]', tail="\n1 / 0\n"))
    assert line.startswith("hmr: failed to reload greet.admin"), line
    assert "ZeroDivisionError" in line
    registry({"item": ["id"]})
    # 4. A second model registered: its admin URL serves it; then edited again.
    for display in ('["label"]', '["label", "id"]'):
        assert saved(child, admin_py, greet_admin(form, '["id"]', display)).startswith(
            "hmr: reloaded greet.admin "
        )
        registry({"item": ["id"], "tag": json.loads(display)})
    # 5. Its registration removed (the ModelAdmin class with it): unregistered, no admin URL.
    assert saved(child, admin_py, greet_admin(form, '["name"]')).startswith(
        "hmr: reloaded greet.admin "
    )
    registry({"item": ["name"]})
    assert poll(child, port, lambda got: True, path="/registry")["tag_url"] is False
