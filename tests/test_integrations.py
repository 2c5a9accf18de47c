"""The framework integrations in-process: post-import hooks, restarters off, Django signals.

The end-to-end behaviour (real servers under the CLI) is in test_frameworks.py.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import Any

import pytest

from muckrack_hmr.integrations import _django_admin as django_admin
from muckrack_hmr.integrations import _django_signals, _imports
from muckrack_hmr.integrations import django as django_integration
from muckrack_hmr.integrations import uvicorn as uvicorn_integration
from muckrack_hmr.integrations import werkzeug as werkzeug_integration
from tests.conftest import Project
from tests.test_incremental import fresh


@pytest.fixture(autouse=True)
def _no_waiting_callbacks() -> Iterator[None]:
    yield
    _imports.forget_all()


# -- post-import hooks ------------------------------------------------------------------


def test_callback_runs_once_the_module_has_executed(project: Project) -> None:
    project.write("late.py", "VALUE = 41\nVALUE += 1\n")
    seen: list[Any] = []
    _imports.when_imported("late", lambda module: seen.append((module.__name__, module.VALUE)))
    assert seen == []  # nothing imported yet

    module = importlib.import_module("late")

    assert seen == [("late", 42)]
    # The module keeps its real loader: resource readers and tools see no wrapper.
    assert type(module.__loader__).__name__ == "SourceFileLoader"
    assert module.__spec__.loader is module.__loader__
    assert _imports._finder not in sys.meta_path or "late" not in _imports._finder.callbacks


def test_callback_runs_at_once_for_a_module_already_imported(project: Project) -> None:
    project.write("early.py", "VALUE = 1\n")
    importlib.import_module("early")
    seen: list[str] = []

    _imports.when_imported("early", lambda module: seen.append(module.__name__))

    assert seen == ["early"]


def test_a_failing_callback_is_logged_and_the_import_goes_on(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    project.write("fragile.py", "VALUE = 3\n")

    def broken(module: Any) -> None:
        raise RuntimeError("integration bug")

    _imports.when_imported("fragile", broken)
    with caplog.at_level(logging.ERROR, logger="muckrack_hmr"):
        module = importlib.import_module("fragile")

    assert module.VALUE == 3
    assert any("integration hook" in record.getMessage() for record in caplog.records)


def test_forget_all_takes_the_finder_away(project: Project) -> None:
    project.write("never.py", "VALUE = 1\n")
    seen: list[str] = []
    _imports.when_imported("never", lambda module: seen.append(module.__name__))
    assert _imports._finder in sys.meta_path

    _imports.forget_all()
    importlib.import_module("never")

    assert _imports._finder not in sys.meta_path
    assert seen == []


# -- werkzeug and uvicorn ---------------------------------------------------------------------


def test_werkzeug_reloader_serves_in_this_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    reloader = importlib.import_module("werkzeug._reloader")
    monkeypatch.setattr(reloader, "run_with_reloader", reloader.run_with_reloader)
    assert not getattr(reloader.run_with_reloader, "__muckrack_hmr__", False)

    werkzeug_integration.enable(hmr=None)

    ran: list[threading.Thread] = []
    reloader.run_with_reloader(lambda: ran.append(threading.current_thread()), extra_files=[])
    assert ran == [threading.current_thread()]  # no child process, no other thread


def test_uvicorn_reload_option_is_turned_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config_module = importlib.import_module("uvicorn.config")
    # uvicorn's own: an earlier test of this process may have had the integration adjust
    # it (enabled integrations stay), which the wrapper's __wrapped__ undoes.
    original = inspect.unwrap(config_module.Config.__init__)
    monkeypatch.setattr(config_module.Config, "__init__", original)
    assert config_module.Config("app:app", reload=True).reload is True

    uvicorn_integration.enable(hmr=None)

    with caplog.at_level(logging.INFO, logger="muckrack_hmr"):
        reloading = config_module.Config("app:app", reload=True, workers=3)
        several = config_module.Config("app:app", workers=3)
    assert (reloading.reload, reloading.workers, reloading.should_reload) == (False, 1, False)
    assert several.workers == 3  # left as asked, with a warning
    messages = [record.getMessage() for record in caplog.records]
    assert any("--reload is off" in message for message in messages)
    assert any("3 worker processes" in message for message in messages)


# -- Django ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "pattern", "expected"),
    [
        ("page.html", "**/*", True),
        ("blog/post.html", "**/*", True),
        ("fr/LC_MESSAGES/django.mo", "**/*.mo", True),
        ("fr/LC_MESSAGES/django.po", "**/*.mo", False),
        ("page.html", "*.html", True),
        ("blog/post.html", "*.html", False),
        ("blog/post.html", "blog/*.html", True),
    ],
)
def test_watch_dir_globs(relative: str, pattern: str, expected: bool) -> None:
    assert django_integration._matches(PurePath(relative), pattern) is expected


def test_django_file_changed_receivers_hear_of_watched_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    autoreload = importlib.import_module("django.utils.autoreload")
    # Only this test's receiver: Django's own (django.template.autoreload's, connected
    # when another test of this process imported it) would read settings not set here.
    monkeypatch.setattr(autoreload.file_changed, "receivers", [])
    monkeypatch.setattr(autoreload.file_changed, "sender_receivers_cache", {})
    templates = tmp_path / "templates"
    signals = django_integration.FileSignals()
    signals.watch_dir(templates, "**/*")
    signals.watch_dir(tmp_path / "locale", "**/*.mo")
    heard: list[Path] = []

    def receiver(sender: Any, file_path: Path, **kwargs: Any) -> bool:
        heard.append(file_path)
        return file_path.suffix != ".mo"  # handled; a catalog "needs a restart"

    autoreload.file_changed.connect(receiver)
    try:
        with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
            signals.changed(templates / "blog" / "post.html")
            signals.changed(templates / "views.py")  # Python: the HMR watcher's
            signals.changed(tmp_path / "elsewhere.html")  # nobody asked for it
            signals.changed(tmp_path / "locale" / "fr" / "django.mo")
            signals.changed(tmp_path / "locale" / "fr" / "django.mo")
    finally:
        autoreload.file_changed.disconnect(receiver)

    catalog = tmp_path / "locale" / "fr" / "django.mo"
    assert heard == [templates / "blog" / "post.html", catalog, catalog]
    warnings = [record.getMessage() for record in caplog.records]
    assert warnings == [f"{catalog} changed; Django applies it only when the server restarts"]


def test_django_restarter_is_replaced_when_autoreload_is_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    autoreload = importlib.import_module("django.utils.autoreload")
    monkeypatch.setattr(autoreload, "run_with_reloader", autoreload.run_with_reloader)
    hooks: list[Any] = []
    pre_hooks: list[Any] = []

    class FakeHMR:
        def add_pre_reload_hook(self, hook: Any) -> None:
            pre_hooks.append(hook)

        def add_post_reload_hook(self, hook: Any) -> None:
            hooks.append(hook)

        def add_refusal_check(self, check: Any) -> None:
            checks.append(check)

        def add_error_handler(self, handler: Any) -> None:
            pass

        def add_result_hook(self, hook: Any) -> None:
            results.append(hook)

    checks: list[Any] = []
    results: list[Any] = []
    fake = FakeHMR()
    django_integration.enable(fake)

    assert autoreload.run_with_reloader is django_integration.run_in_place
    # (_reloading's own hooks first: the admin registrations follow the reload in progress)
    assert pre_hooks[1:] == [
        django_integration.remember_models,
        django_integration.remember_settings,
        django_integration.remember_application,
        django_integration.remember_ready,
        django_integration.remember_middleware_hooks,
        django_integration._quiet_model_registration,
        django_admin.note_registrations,
    ]
    # The admin's URL patterns are rebuilt before the URL resolvers are dropped.
    assert hooks[1:] == [
        django_integration._loud_model_registration,
        django_admin.follow_registrations,
        django_integration.refresh_caches,
        _django_signals.tidy_receivers,
    ]
    assert results == [django_integration._loud_model_registration]
    assert [(c.func, c.args) for c in checks] == [(django_integration.check_edit, (fake,))]


# -- Flask's guard, lifted for our reload alone --------------------------------------------

GUARDED_VIEWS = """\
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "index"
"""

# The reload adds a route, and meanwhile another thread of the program tries to.
GUARDED_ADDITION = """\
import threading


@app.route("/added")
def added():
    return "added"


OTHER_THREAD = []


def _try():
    try:
        app.add_url_rule("/other", "other", lambda: "other")
    except AssertionError as exc:
        OTHER_THREAD.append(str(exc))


_thread = threading.Thread(target=_try)
_thread.start()
_thread.join()
"""


def test_flask_guard_is_lifted_only_for_the_reloading_thread(project: Project, hmr: Any) -> None:
    from muckrack_hmr import integrations

    integrations.activate(hmr)
    try:
        project.write("guarded_views.py", GUARDED_VIEWS)
        views = importlib.import_module("guarded_views")
        client = views.app.test_client()
        assert client.get("/").data == b"index"  # the guard is up from here on
        with pytest.raises(AssertionError, match="can no longer be called"):
            views.app.add_url_rule("/early", "early", lambda: "early")

        project.write("guarded_views.py", GUARDED_VIEWS + "\n\n" + GUARDED_ADDITION)
        result = hmr.reload("guarded_views")

        assert result.reloaded == ["guarded_views"]
        assert not result.failed
        assert client.get("/added").data == b"added"
        assert client.get("/other").status_code == 404
        assert len(views.OTHER_THREAD) == 1
        assert "can no longer be called" in views.OTHER_THREAD[0]
        # And after the reload, for this thread too.
        with pytest.raises(AssertionError, match="can no longer be called"):
            views.app.add_url_rule("/late", "late", lambda: "late")
        rules = sorted(rule.rule for rule in views.app.url_map.iter_rules())
        assert rules == ["/", "/added", "/static/<path:filename>"]
    finally:
        integrations.deactivate()


STAMPED_VIEWS = """\
from flask import Flask

app = Flask(__name__)


def stamp(tag):
    def decorate(view):
        def stamped():
            return view() + tag

        stamped.__name__ = view.__name__
        return stamped

    return decorate


@app.route("/gz")
@stamp("-v1")
def gz():
    return "gz"
"""


def test_flask_a_route_made_again_matches_at_every_moment_of_its_replacement(
    project: Project, hmr: Any
) -> None:
    """A view whose decorator changed is registered again: its old rule was taken out
    before the new one went in, and a request in between (another thread, a gunicorn
    worker's reload thread) got a 404 (13 in 3,392 requests over 40 saves of httpbin)."""
    from werkzeug.exceptions import NotFound

    from muckrack_hmr import integrations

    integrations.activate(hmr)
    try:
        project.write("stamped_views.py", STAMPED_VIEWS)
        views = importlib.import_module("stamped_views")
        client = views.app.test_client()
        assert client.get("/gz").data == b"gz-v1"
        url_map = views.app.url_map
        met: list[object] = []
        add = url_map.add

        def add_watched(rule: Any) -> None:
            # What a request to the route meets as the new rule goes in.
            try:
                endpoint, _ = url_map.bind("localhost").match("/gz")
                met.append(endpoint in views.app.view_functions)
            except NotFound:
                met.append(404)
            add(rule)

        url_map.add = add_watched
        project.write("stamped_views.py", STAMPED_VIEWS.replace('"-v1"', '"-v2"'))
        result = hmr.reload("stamped_views")
        assert (result.reloaded, result.failed) == (["stamped_views"], {})
        assert met == [True]
        assert client.get("/gz").data == b"gz-v2"
        assert [rule.rule for rule in url_map.iter_rules() if rule.endpoint == "gz"] == ["/gz"]
    finally:
        integrations.deactivate()


APP_FACTORY = """\
from flask import Flask


def create_app():
    app = Flask(__name__)

    @app.route("/")
    def index():
        return "index"
{more}
    return app
"""

APP_FACTORY_HOOK = """
    @app.after_request
    def stamp(response):
        response.headers["X-Stamp"] = "1"
        return response
"""


@pytest.mark.parametrize("apps", [1, 2])
def test_flask_a_factory_that_ran_once_is_refused_one_run_per_test_is_patched(
    project: Project, hmr: Any, apps: int
) -> None:
    """A hook added in ``create_app()``: with one app made (a server's), the factory does
    not run again, and the edit is refused (it was said to apply); with an app per test,
    the factory runs again, and the next app has the hook."""
    from muckrack_hmr import integrations

    integrations.activate(hmr)
    try:
        project.write("factory_app.py", APP_FACTORY.format(more=""))
        module = importlib.import_module("factory_app")
        made = [module.create_app() for _ in range(apps)]
        assert made[0].test_client().get("/").data == b"index"

        project.write("factory_app.py", APP_FACTORY.format(more=APP_FACTORY_HOOK))
        result = hmr.reload("factory_app")
        fresh = module.create_app().test_client().get("/")
        if apps == 1:
            assert [(r.kind, r.what) for r in result.refused] == [
                (
                    "flask setup",
                    "factory_app.create_app() set up the app as the program started; its change",
                )
            ]
            assert "X-Stamp" not in fresh.headers  # the old factory still runs
        else:
            assert result.reloaded == ["factory_app"]
            assert not result.refused
            assert fresh.headers["X-Stamp"] == "1"
    finally:
        integrations.deactivate()


OWN_CODE = """\
def init(app):
    level = 1
    try:
        app.config["A"] = level
    except KeyError:
        pass

    @app.before_request
    def stamp():
        return None
"""


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        ("level = 1", "level = 2", 2),  # a statement of its own
        ('"A"', '"B"', 4),  # one inside its try
        ("pass", "raise", 6),  # one in a handler
        ("before_request", "after_request", 8),  # a nested def's decorator
        ("return None", "return 1", None),  # a nested def's body: not its own
        ("    level = 1\n", "", 2),  # a line taken away: the next one kept
        ("        return None\n", "        return None\n    app.x = 1\n", 11),  # one added
    ],
)
def test_the_line_of_a_change_of_a_function_s_own_code(
    old: str, new: str, line: int | None
) -> None:
    from muckrack_hmr.integrations._reloading import own_change_at

    edited = OWN_CODE.replace(old, new)
    assert edited != OWN_CODE
    assert own_change_at(OWN_CODE.encode(), edited.encode(), "init") == line
    assert own_change_at(OWN_CODE.encode(), edited.encode(), "missing") is None


FACTORY_VIEWS = """\
from flask import Flask

app = Flask(__name__)


def make_view(text):
    def view():
        return text

    return view


app.add_url_rule("/a", "a", make_view("{a}"))
app.add_url_rule("/b", "b", make_view("b"))
"""


def declared_at(module: Any, source: str, decorator: str) -> str:
    """Where a refusal declared by ``decorator`` (its first line in ``source``) is said to
    be: the line Python runs it at (3.10: the ``def`` line below a decorator that is no
    call)."""
    line = next(at for at, text in enumerate(source.splitlines(), 1) if text == decorator)
    below = sys.version_info < (3, 11) and not decorator.endswith(")")
    return f"at {module.__file__}:{line + below}"


HOOKED = """\


@app.before_request
def hook():
    pass
"""


def test_flask_views_of_a_factory_are_replaced_one_by_one(project: Project, hmr: Any) -> None:
    """Views made by one factory share a def: the statement that ran again replaces its
    own rule, not its siblings'; a hook added after the first request is refused by
    name (its registry appends: a second run would call it twice), and nothing of the
    edit stays."""
    from muckrack_hmr import integrations

    integrations.activate(hmr)
    try:
        project.write("factory_views.py", FACTORY_VIEWS.format(a="a"))
        views = importlib.import_module("factory_views")
        client = views.app.test_client()
        assert client.get("/a").data == b"a"

        project.write("factory_views.py", FACTORY_VIEWS.format(a="a2"))
        assert hmr.reload("factory_views").reloaded == ["factory_views"]
        assert (client.get("/a").data, client.get("/b").data) == (b"a2", b"b")
        assert sorted(views.app.view_functions) == ["a", "b", "static"]
        assert len(list(views.app.url_map.iter_rules())) == 3

        source = FACTORY_VIEWS.format(a="a3") + HOOKED
        project.write("factory_views.py", source)
        result = hmr.reload("factory_views")
        assert not result.failed
        at = declared_at(views, source, "@app.before_request")
        assert [str(refusal) for refusal in result.refused] == [
            "restart to apply: @before_request on app 'factory_views' after it served "
            f"requests {at} (flask setup)"
        ]
        assert "factory_views" not in hmr.reloader.failing
        assert views.app.before_request_funcs == {}
        assert not hasattr(views, "hook")
        assert (client.get("/a").data, client.get("/b").data) == (b"a2", b"b")
        assert len(list(views.app.url_map.iter_rules())) == 3
        # Outside a reload the guard is Flask's own.
        with pytest.raises(AssertionError, match="can no longer be called"):
            views.app.before_request(lambda: None)
    finally:
        integrations.deactivate()


BLUEPRINT_APP = """\
from flask import Blueprint, Flask

app = Flask(__name__)
shop = Blueprint("shop", __name__)


@shop.route("/buy")
def buy():
    return "{buy}"


app.register_blueprint(shop, url_prefix="/shop")
"""

BLUEPRINT_HOOKS = """\


@shop.before_request
def count():
    pass


@app.errorhandler(404)
def missing(error):
    return "missing", 404


@app.template_filter()
def shout(text):
    return text.upper()


@shop.app_template_filter()
def whisper(text):
    return text.lower()


@shop.before_app_request
def everywhere():
    pass
"""


def test_flask_hooks_declared_after_requests_are_refused_and_put_back(
    project: Project, hmr: Any
) -> None:
    """A blueprint's hook, an app's error handler and template filter, and a blueprint's
    app-wide filter and hook, declared after the app served requests, are refused by
    name, one line each (the blueprint's filter took three: Flask's own inner setup
    calls were refused too); Flask's tables are as before, and so is the route the same
    edit changed."""
    from muckrack_hmr import integrations

    integrations.activate(hmr)
    try:
        project.write("bp_views.py", BLUEPRINT_APP.format(buy="bought"))
        views = importlib.import_module("bp_views")
        client = views.app.test_client()
        assert client.get("/shop/buy").data == b"bought"
        views.app.jinja_env  # noqa: B018  (made at the first template: its tables too)
        before = {
            "before": dict(views.app.before_request_funcs),
            "errors": {key: dict(value) for key, value in views.app.error_handler_spec.items()},
            "filters": dict(views.app.jinja_env.filters),
        }

        source = BLUEPRINT_APP.format(buy="bought v2") + BLUEPRINT_HOOKS
        project.write("bp_views.py", source)
        result = hmr.reload("bp_views")

        assert not result.failed
        hook, handler, filter_, app_filter, app_hook = (
            declared_at(views, source, decorator)
            for decorator in (
                "@shop.before_request",
                "@app.errorhandler(404)",
                "@app.template_filter()",
                "@shop.app_template_filter()",
                "@shop.before_app_request",
            )
        )
        assert [str(refusal) for refusal in result.refused] == [
            "restart to apply: @before_request on blueprint 'shop' after its registration "
            f"{hook} (flask setup)",
            "restart to apply: @errorhandler on app 'bp_views' after it served requests "
            f"{handler} (flask setup)",
            "restart to apply: @template_filter on app 'bp_views' after it served requests "
            f"{filter_} (flask setup)",
            "restart to apply: @app_template_filter on blueprint 'shop' after its "
            f"registration {app_filter} (flask setup)",
            "restart to apply: @before_app_request on blueprint 'shop' after its "
            f"registration {app_hook} (flask setup)",
        ]
        assert views.app.before_request_funcs == before["before"]
        assert views.shop.before_request_funcs == {}
        assert {key: dict(value) for key, value in views.app.error_handler_spec.items()} == before[
            "errors"
        ]
        assert views.app.jinja_env.filters == before["filters"]
        assert client.get("/shop/buy").data == b"bought"
        assert client.get("/nowhere").status_code == 404
        assert client.get("/nowhere").data != b"missing"
    finally:
        integrations.deactivate()


HOOKED_APP = """\
from {package} import {cls}

app = {cls}(__name__)
bp = Blueprint("shop", __name__)
CALLS = []


@app.before_request
{async_}def stamp({params}):
    CALLS.append("{tag}")


@bp.before_request
{async_}def shop_stamp({params}):
    CALLS.append("shop {tag}")


@bp.route("/buy")
{async_}def buy():
    return "bought"


app.register_blueprint(bp, url_prefix="/shop")
"""


@pytest.mark.parametrize("served", [False, True], ids=["fresh", "served"])
@pytest.mark.parametrize("framework", ["flask", "quart"])
def test_a_hook_whose_def_runs_again_is_declared_once(
    project: Project, hmr: Any, framework: str, served: bool
) -> None:
    """A hook's def edited so that it runs again (a signature edit) declared its live
    function again: the table held it twice, and a request called it twice (Flask before
    its first request, Quart always); Flask after its first request refused the edit.
    Now it is held once, runs its new code, and the edit applies."""
    import asyncio

    from muckrack_hmr import integrations

    pytest.importorskip(framework)
    cls = {"flask": "Flask, Blueprint", "quart": "Quart, Blueprint"}[framework]
    fill = {
        "package": framework,
        "cls": cls,
        "async_": "async " if framework == "quart" else "",
    }
    source = HOOKED_APP.replace("{cls}(__name__)", cls.split(",")[0] + "(__name__)")

    def get(views: Any, path: str) -> None:
        client = views.app.test_client()
        if framework == "flask":
            assert client.get(path).status_code == 200
        else:
            asyncio.run(client.get(path))

    integrations.activate(hmr)
    try:
        project.write("hooked.py", source.format(**fill, params="", tag="v1"))
        views = importlib.import_module("hooked")
        if served:
            get(views, "/shop/buy")
            assert views.CALLS == ["v1", "shop v1"]
            views.CALLS.clear()
        stamp, shop_stamp = views.stamp, views.shop_stamp

        for params, tag in (("*args", "v2"), ("*more", "v3")):
            project.write("hooked.py", source.format(**fill, params=params, tag=tag))
            result = hmr.reload("hooked")
            assert (result.failed, result.refused) == ({}, []), result
            assert views.app.before_request_funcs[None] == [stamp]
            assert views.bp.before_request_funcs[None] == [shop_stamp]
            get(views, "/shop/buy")
            assert [tag, f"shop {tag}"] == views.CALLS
            views.CALLS.clear()
    finally:
        integrations.deactivate()


FLASK_FACTORY = """\
from flask import Flask, current_app

from settings import Config

MADE = []


def create_app(config_class=Config):
    app = Flask(__name__)
    app.config.from_object(config_class)
    MADE.append(app)

    @app.route("/")
    def index():
        return current_app.config["GREETING"]

    return app
"""


def test_flask_an_app_made_again_in_place_of_the_served_one_is_refused(
    project: Project, hmr: Any
) -> None:
    """``wsgi.app = create_app()``, and ``create_app`` reads ``settings.Config``: a save
    of the config ran the statement again, which made a second app that nothing served,
    while the server went on with the first and its old config (the line said
    "reloaded").  It is refused by name now, ``wsgi.app`` stays the served app; an
    app that served no request yet is made again as before.  The config values the
    served app took from ``settings.Config`` (``from_object``) follow, as after a
    restart."""
    from muckrack_hmr import integrations

    integrations.activate(hmr)
    try:
        project.write("settings.py", "class Config:\n    GREETING = 'v1'\n")
        project.write("factory.py", FLASK_FACTORY)
        project.write("wsgi.py", "from factory import create_app\n\napp = create_app()\n")
        project.write("cli.py", "from factory import create_app\n\ntool = create_app()\n")
        wsgi, cli = (importlib.import_module(name) for name in ("wsgi", "cli"))
        hmr.remember_sources()
        served, unserved = wsgi.app, cli.tool
        assert served.test_client().get("/").data == b"v1"

        project.write("settings.py", "class Config:\n    GREETING = 'v2'\n")
        result = hmr.reload("settings")

        where = f"{wsgi.__file__}:3"
        assert [str(refusal) for refusal in result.refused] == [
            f"restart to apply: wsgi.app is a new Flask app at {where} (flask app); the "
            "server serves the app made at start-up, with the config and extensions set up then"
        ]
        assert wsgi.app is served
        assert served.test_client().get("/").data == b"v2"
        assert "cli" in result.reloaded
        assert cli.tool is not unserved
        assert cli.tool.test_client().get("/").data == b"v2"
    finally:
        integrations.deactivate()


FASTAPI_FACTORY = """\
from fastapi import FastAPI

app = FastAPI()


def make_endpoint(text):
    def endpoint():
        return text

    return endpoint


app.add_api_route("{a}", make_endpoint("a"))
app.add_api_route("/b", make_endpoint("b"))


@app.get("{c}")
def c():
    return "c"
"""


def test_fastapi_routes_of_a_factory_are_replaced_one_by_one(project: Project, hmr: Any) -> None:
    """A top-level def's route moves to its new path.  Endpoints made by a factory share
    its def: a statement that ran again replaces only a route of the same path and
    methods, never a sibling's (so a factory route's old path stays: the documented limit)."""
    from muckrack_hmr import integrations

    integrations.activate(hmr)
    try:
        project.write("factory_app.py", FASTAPI_FACTORY.format(a="/a", c="/c"))
        module = importlib.import_module("factory_app")
        first = [route.path for route in module.app.routes]
        assert first[-3:] == ["/a", "/b", "/c"]

        project.write("factory_app.py", FASTAPI_FACTORY.format(a="/a2", c="/c2"))
        assert hmr.reload("factory_app").reloaded == ["factory_app"]

        paths = [route.path for route in module.app.routes]
        assert sorted(paths) == sorted([*first[:-3], "/a", "/a2", "/b", "/c2"])
    finally:
        integrations.deactivate()


FASTAPI_SETUP = """\
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

app = FastAPI()


@app.get("/a")
def a():
    raise KeyError("a")
"""

FASTAPI_STAMP = """\


@app.middleware("http")
async def stamp(request, call_next):
    response = await call_next(request)
    response.headers["x-stamp"] = "{stamp}"
    return response


@app.exception_handler(KeyError)
async def missing(request, exc):
    return PlainTextResponse("missing {stamp}", status_code=404)
{after}"""


class _Response:
    def __init__(self, status_code: int, headers: dict[str, str], text: str) -> None:
        self.status_code, self.headers, self.text = status_code, headers, text


def _asgi_get(app: Any, path: str) -> _Response:
    """GET ``path`` from the ASGI ``app`` in this thread (an error it raises after its 500
    response went out, as Starlette's does, is the server's business: dropped)."""
    import asyncio

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    try:
        asyncio.run(app(scope, receive, send))
    except Exception:
        if not sent:
            raise
    start = next(message for message in sent if message["type"] == "http.response.start")
    headers = {key.decode(): value.decode() for key, value in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return _Response(start["status"], headers, body.decode())


def test_fastapi_middleware_and_handlers_declared_after_requests_take_effect(
    project: Project, hmr: Any
) -> None:
    """Starlette refuses a middleware once it served ("Cannot add middleware after an
    application has started"), and a handler added then never reached the stack built
    before it: in a reload both apply from the next request; a middleware whose def ran
    again takes its own place; a failed reload puts the app back."""
    from muckrack_hmr import integrations

    integrations.activate(hmr)
    try:
        project.write("setup_app.py", FASTAPI_SETUP)
        module = importlib.import_module("setup_app")
        assert _asgi_get(module.app, "/a").status_code == 500  # served: the stack is built
        assert module.app.middleware_stack is not None

        def check(stamp: str) -> None:
            response = _asgi_get(module.app, "/a")
            assert (response.status_code, response.text) == (404, f"missing {stamp}")
            assert response.headers["x-stamp"] == stamp

        project.write("setup_app.py", FASTAPI_SETUP + FASTAPI_STAMP.format(stamp="1", after=""))
        result = hmr.reload("setup_app")
        assert (result.reloaded, result.failed, result.refused) == (["setup_app"], {}, [])
        check("1")
        count = len(module.app.user_middleware)

        def position() -> int:
            dispatches = [item.kwargs.get("dispatch") for item in module.app.user_middleware]
            return [getattr(d, "__name__", None) for d in dispatches].index("stamp")

        # The decorator lines moved down (a line above): nothing runs again.
        stamped = "\n# moved\n" + FASTAPI_STAMP.format(stamp="2", after="")
        project.write("setup_app.py", FASTAPI_SETUP + stamped)
        assert hmr.reload("setup_app").reloaded == ["setup_app"]
        check("2")
        # Its signature changed: the statement runs again, and takes its own place.
        edited = stamped.replace("(request, call_next)", "(request, call_next, extra=None)")
        project.write("setup_app.py", FASTAPI_SETUP + edited)
        where = position()
        assert hmr.reload("setup_app").reloaded == ["setup_app"]
        check("2")
        assert (len(module.app.user_middleware), position()) == (count, where)

        # A failed reload: its middleware goes, the app is as it was.
        broken = FASTAPI_STAMP.format(stamp="3", after="\nraise RuntimeError('broken')\n")
        project.write("setup_app.py", FASTAPI_SETUP + broken.replace("stamp", "stamp3"))
        assert "setup_app" in hmr.reload("setup_app").failed
        assert len(module.app.user_middleware) == count
        check("2")

        # Both defs removed: their middleware and handler go with them.
        project.write("setup_app.py", FASTAPI_SETUP)
        assert hmr.reload("setup_app").reloaded == ["setup_app"]
        response = _asgi_get(module.app, "/a")
        assert response.status_code == 500
        assert "x-stamp" not in response.headers
        assert len(module.app.user_middleware) == count - 1

        # A middleware class added by a call, then its statement edited: one entry, and
        # a failed reload takes back what it added before the app served again.
        gzip = "\nfrom starlette.middleware.gzip import GZipMiddleware\n\n"
        added = gzip + "app.add_middleware(GZipMiddleware, minimum_size={size})\n"
        project.write("setup_app.py", FASTAPI_SETUP + added.format(size=1000))
        assert hmr.reload("setup_app").reloaded == ["setup_app"]
        assert len(module.app.user_middleware) == count
        project.write("setup_app.py", FASTAPI_SETUP + added.format(size=2000))
        assert hmr.reload("setup_app").reloaded == ["setup_app"]
        project.write("setup_app.py", FASTAPI_SETUP + added.format(size=3000) + "raise KeyError\n")
        assert "setup_app" in hmr.reload("setup_app").failed
        sizes = [item.kwargs.get("minimum_size") for item in module.app.user_middleware]
        assert (len(sizes), sizes.count(2000)) == (count, 1)
        assert _asgi_get(module.app, "/a").status_code == 500
    finally:
        integrations.deactivate()


# -- Starlette: the app the server holds takes the routes of its edited statement ---------

STARLETTE_APP = """\
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route


def home(request):
    return PlainTextResponse("home")


app = Starlette(routes=[Route("/", home){routes}], middleware=[{middleware}])
app.router.routes.append(Route("{appended}", home, name="appended"))
"""


def test_starlette_app_made_again_hands_its_tables_to_the_live_app(
    project: Project, hmr: Any
) -> None:
    """The live app keeps its identity; routes appended by a statement that ran again are
    there once; changed middleware makes Starlette build its stack again."""
    from muckrack_hmr import integrations

    integrations.activate(hmr)
    try:
        project.write("star_app.py", STARLETTE_APP.format(routes="", middleware="", appended="/a"))
        project.write(
            "star_more.py", 'from star_app import app, home\n\napp.add_route("/more", home)\n'
        )
        module = importlib.import_module("star_app")
        importlib.import_module("star_more")
        live = module.app
        live.middleware_stack = live.build_middleware_stack()  # as at its first request
        assert [route.path for route in live.routes] == ["/", "/a", "/more"]

        # The app's statement: a route and a middleware added (the append runs again too).
        gzip = "Middleware(GZipMiddleware)"
        project.write(
            "star_app.py",
            STARLETTE_APP.format(routes=', Route("/b", home)', middleware=gzip, appended="/a"),
        )
        assert hmr.reload("star_app").reloaded == ["star_app", "star_more"]
        assert module.app is live
        # Another module's route on the app: its statement ran again, on the live app.
        assert [route.path for route in live.routes] == ["/", "/b", "/a", "/more"]
        assert importlib.import_module("star_more").app is live
        assert [item.cls for item in live.user_middleware] == [module.GZipMiddleware]
        assert live.middleware_stack is None  # built again at the next request

        # The append alone ran again (another name): its route takes the earlier one's place.
        live.middleware_stack = live.build_middleware_stack()
        edited = STARLETTE_APP.format(routes=', Route("/b", home)', middleware=gzip, appended="/a")
        project.write("star_app.py", edited.replace('name="appended"', 'name="again"'))
        assert hmr.reload("star_app").reloaded == ["star_app"]
        assert module.app is live
        assert [(route.path, route.name) for route in live.routes] == [
            ("/", "home"),
            ("/b", "home"),
            ("/a", "again"),
            ("/more", "home"),
        ]
        assert live.middleware_stack is not None  # nothing of it changed: kept
    finally:
        integrations.deactivate()


RECEIVERS = """\
from django.dispatch import receiver

from pings import ping

{defs}
"""
RECEIVER = """\
@receiver(ping{extra})
def {name}(sender, **kw):
    return "{tag}"
"""


def test_django_receivers_renamed_re_decorated_or_deleted_are_connected_once(
    project: Project, hmr: Any
) -> None:
    """A receiver renamed, given other ``@receiver`` arguments, or deleted: each signal
    calls what a cold start of the file would connect, once."""
    pytest.importorskip("django")
    from muckrack_hmr import integrations

    integrations.activate(hmr)
    try:
        project.write("pings.py", "from django.dispatch import Signal\n\nping = Signal()\n")

        def save(*defs: tuple[str, str, str]) -> None:
            source = "\n\n".join(
                RECEIVER.format(name=name, tag=tag, extra=extra) for name, tag, extra in defs
            )
            project.write("recv.py", RECEIVERS.format(defs=source))

        def answers(sender: object = None) -> list[str]:
            return sorted(str(result) for _, result in pings.ping.send(sender))

        save(("on_ping", "v1", ""))
        pings, _recv = fresh(hmr, "pings", "recv")
        assert answers() == ["v1"]
        save(("on_ping2", "v2", ""))  # renamed
        assert hmr.reload_module("recv")[0] == ["recv"]
        assert answers() == ["v2"]
        save(("on_ping2", "v3", ", dispatch_uid='u'"))  # other arguments
        assert hmr.reload_module("recv")[0] == ["recv"]
        assert answers() == ["v3"]
        save(("on_ping2", "v4", ", sender=int"))  # only for int now
        assert hmr.reload_module("recv")[0] == ["recv"]
        assert (answers(), answers(int)) == ([], ["v4"])
        save()  # deleted
        hmr.reload_module("recv")
        assert (answers(), answers(int)) == ([], [])
    finally:
        integrations.deactivate()


TYPER_CLI = """\
import typer

app = typer.Typer()
{commands}
"""

TYPER_COMMAND = """
@app.command({args})
def {name}(who: str{more}):
    print("{tag} " + who)
"""


def test_typer_commands_declared_again_or_deleted_are_declared_once(
    project: Project, hmr: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """An option added to a command's signature runs its ``@app.command()`` again: a
    one-command app stayed one command (it became a group of two, and ``bob`` a command
    it did not know); a command renamed or deleted goes, as a fresh start has it."""
    pytest.importorskip("typer")
    from muckrack_hmr import integrations

    integrations.activate(hmr)
    try:

        def save(*commands: tuple[str, str, str, str]) -> None:
            source = "".join(
                TYPER_COMMAND.format(name=name, tag=tag, more=more, args=args)
                for name, tag, more, args in commands
            )
            project.write("tycli.py", TYPER_CLI.format(commands=source))

        def run(*args: str) -> str:
            import typer.main

            capsys.readouterr()
            command = typer.main.get_command(tycli.app)
            command.main(list(args), standalone_mode=False)
            return capsys.readouterr().out.strip()

        def names() -> list[str]:
            return [info.callback.__name__ for info in tycli.app.registered_commands]

        save(("hello", "v1", "", ""))
        (tycli,) = fresh(hmr, "tycli")
        assert run("bob") == "v1 bob"
        save(("hello", "v2", ", loud: bool = False", ""))  # an option: the def runs again
        assert hmr.reload("tycli").reloaded == ["tycli"]
        assert (names(), run("bob")) == (["hello"], "v2 bob")
        save(("hello", "v2", ", loud: bool = False", ""), ("bye", "b1", "", ""))
        assert hmr.reload("tycli").reloaded == ["tycli"]
        save(("hello", "v3", ", loud: bool = False", "'hi'"), ("bye", "b1", "", ""))
        assert hmr.reload("tycli").reloaded == ["tycli"]
        assert names() == ["hello", "bye"]
        assert (run("hi", "ann"), run("bye", "ann")) == ("v3 ann", "b1 ann")
        save(("bye", "b2", "", ""))  # hello deleted: bye alone is the app
        hmr.reload("tycli")
        assert (names(), run("ann")) == (["bye"], "b2 ann")
    finally:
        integrations.deactivate()


def test_atexit_register_works_while_the_engine_is_half_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``atexit.register`` asks the engine whether this thread applies a reload: while the
    engine's module was being imported on another thread (the watcher's first idle step)
    and a program's import registered a handler (``multiprocessing.util``), it raised
    AttributeError ("partially initialized module"), and a pool could not start."""
    import atexit
    import types

    from muckrack_hmr.integrations import exit_handlers

    exit_handlers.enable()
    half = types.ModuleType("muckrack_hmr.reload.reloader")  # (no ``applying`` yet)
    monkeypatch.setitem(sys.modules, "muckrack_hmr.reload.reloader", half)
    ran: list[str] = []

    def handler() -> None:
        ran.append("ran")

    assert atexit.register(handler) is handler
    atexit.unregister(handler)


FALCON_RESOURCES = """\
class Things:
    def __init__(self):
        self.hits = 0

    def on_get(self, req, resp):
        self.hits += 1
        resp.media = {{"hits": self.hits}}

    def on_get_item(self, req, resp, key):
        resp.media = {{"key": key}}
{more}"""

FALCON_APP = """\
import falcon

from falcon_resources import Things

app = falcon.App()
things = Things()
app.add_route("/things", things)
app.add_route("/things/{key}", things, suffix="item")
"""


def test_falcon_a_responder_added_to_a_routed_resource_is_routed(
    project: Project, hmr: Any
) -> None:
    """Falcon maps a route's methods to its resource's responders once, as ``add_route``
    runs: an ``on_post`` added to the class (the instance kept, with its state) was
    answered 405, and a responder taken away stayed routed."""
    from muckrack_hmr import integrations

    pytest.importorskip("falcon")
    from falcon import testing

    integrations.activate(hmr)
    try:
        project.write("falcon_resources.py", FALCON_RESOURCES.format(more=""))
        project.write("falcon_app.py", FALCON_APP)
        app = importlib.import_module("falcon_app")
        hmr.remember_sources()
        client = testing.TestClient(app.app)
        assert client.simulate_get("/things").json == {"hits": 1}
        assert client.simulate_post("/things").status_code == 405

        post = (
            "\n    def on_post(self, req, resp):\n        resp.media = {'posted': self.hits}\n"
            "\n    def on_delete_item(self, req, resp, key):\n        resp.media = {'gone': key}\n"
        )
        project.write("falcon_resources.py", FALCON_RESOURCES.format(more=post))
        assert not hmr.reload("falcon_resources").failed
        assert client.simulate_post("/things").json == {"posted": 1}  # the state kept
        assert client.simulate_delete("/things/a").json == {"gone": "a"}
        assert client.simulate_delete("/things").status_code == 405

        project.write("falcon_resources.py", FALCON_RESOURCES.format(more=""))
        assert not hmr.reload("falcon_resources").failed
        assert client.simulate_post("/things").status_code == 405
        assert client.simulate_delete("/things/a").status_code == 405
        assert client.simulate_get("/things").json == {"hits": 2}
        assert client.simulate_get("/things/b").json == {"key": "b"}
    finally:
        integrations.deactivate()


BOTTLE_VIEWS = """\
from bottle import Bottle

app = Bottle()


@app.route("/info")
def info():
    return {{"rules": [route.rule for route in app.routes]}}


@app.route("{path}")
def {name}({params}):
    return "{name}"
{more}"""


def _bottle_get(app: Any, path: str) -> tuple[str, bytes]:
    """A GET through the app's WSGI interface: (status, body)."""
    import io

    got: list[str] = []
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
    }
    body = b"".join(app(environ, lambda status, headers, *_: got.append(status)))
    return got[0].split()[0], body


def test_bottle_a_route_moved_renamed_or_deleted_leaves_no_old_rule(
    project: Project, hmr: Any
) -> None:
    """``@app.route("/old")`` made ``/new``: ``/old`` was served on by the same function,
    and each signature edit added the rule again; a view renamed or deleted stayed routed."""
    from muckrack_hmr import integrations

    pytest.importorskip("bottle")
    integrations.activate(hmr)

    def views(path: str, name: str = "old", params: str = "", more: str = "") -> str:
        return BOTTLE_VIEWS.format(path=path, name=name, params=params, more=more)

    try:
        project.write("bottle_views.py", views("/old"))
        module = importlib.import_module("bottle_views")
        hmr.remember_sources()
        app = module.app
        assert _bottle_get(app, "/old") == ("200", b"old")

        steps = [
            (views("/new"), {"/new": b"old"}, ["/old"]),  # moved
            (views("/new", params="*args"), {"/new": b"old"}, ["/old"]),  # its signature
            (views("/new", name="renamed"), {"/new": b"renamed"}, ["/old"]),  # renamed
            (views("/new", name="renamed", more="\nX = 1 / 0\n"), {"/new": b"renamed"}, []),
            (views("/info2", name="info2"), {"/info2": b"info2"}, ["/new"]),
        ]
        for source, served, gone in steps:
            project.write("bottle_views.py", source)
            result = hmr.reload("bottle_views")
            assert bool(result.failed) == ("1 / 0" in source), result
            for path, body in served.items():
                assert _bottle_get(app, path) == ("200", body), path
            for path in gone:
                assert _bottle_get(app, path)[0] == "404", path
            assert len(app.routes) == 2, [route.rule for route in app.routes]
    finally:
        integrations.deactivate()


BOTTLE_ORDERED = """\
from bottle import Bottle

app = Bottle()


@app.route("/items/<item_id:int>")
def by_id({params}):
    return "by_id {{}}".format(item_id)


@app.route("/items/<name>")
def by_name(name):
    return "by_name " + name
{keep}"""

BOTTLE_KEEP = """

@app.route("/keep")
def keep():
    return "{tag}"
"""


def test_bottle_a_route_edited_keeps_its_place_and_one_put_back_stays(
    project: Project, hmr: Any
) -> None:
    """Bottle tries its dynamic rules in order: a signature edit put ``/items/<item_id:int>``
    last, and ``/items/<name>`` answered ``/items/5``.  A view deleted and put back (an
    undo) was dropped again by the next edit of another view, and the route of the view
    put back held a function later edits did not reach."""
    from muckrack_hmr import integrations

    pytest.importorskip("bottle")
    integrations.activate(hmr)

    def views(params: str = "item_id", keep: str | None = "v1") -> str:
        more = BOTTLE_KEEP.format(tag=keep) if keep else ""
        return BOTTLE_ORDERED.format(params=params, keep=more)

    try:
        project.write("bottle_ordered.py", views())
        module = importlib.import_module("bottle_ordered")
        hmr.remember_sources()
        app = module.app
        assert _bottle_get(app, "/items/5") == ("200", b"by_id 5")
        for source, keep in (
            (views("item_id, fmt='d'"), b"v1"),  # its signature: its place kept
            (views("item_id, fmt='d'", keep=None), None),  # keep deleted
            (views("item_id, fmt='d'"), b"v1"),  # put back
            (views("item_id"), b"v1"),  # another view's edit
            (views("item_id", keep="v2"), b"v2"),  # keep's body: its route runs it
        ):
            project.write("bottle_ordered.py", source)
            assert not hmr.reload("bottle_ordered").failed
            assert _bottle_get(app, "/items/5") == ("200", b"by_id 5")
            assert _bottle_get(app, "/items/x") == ("200", b"by_name x")
            if keep is None:
                assert _bottle_get(app, "/keep")[0] == "404"
            else:
                assert _bottle_get(app, "/keep") == ("200", keep)
    finally:
        integrations.deactivate()
