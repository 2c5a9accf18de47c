"""Edits that cannot apply in place are refused whole, named, with the fix (issue 16).

A refused edit is not applied at all (the module keeps its old code, nothing
half-applied); other modules of the same reload apply; one line names the
kind of edit, what changed and the fix.  The kinds of the engine itself
(class layout, enums) are in test_patching; here: the API a module or an
integration refuses with (both cores), and Django's model fields and
settings under a real ``runserver`` (``python -m muckrack.hmr``, both cores).
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from muckrack_hmr.reload.refusals import Refusal, RefusedEdit, locate

from .conftest import Project
from .subprocesses import Child, starts, write
from .test_everyday_edits import edit, outcome_of, tracked
from .test_frameworks import Spawn, free_port, poll
from .test_routes import DJANGO_MANAGE

SETTINGS = """\
DEBUG = True
SECRET_KEY = "only-for-the-tests"
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "mysite.urls"
INSTALLED_APPS = ["greet"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
"""

URLS = """\
import os

from django.http import JsonResponse
from django.urls import path

from greet.models import Item


def fields(request):
    return JsonResponse({"pid": os.getpid(), "fields": [f.name for f in Item._meta.fields],
                         "label": str(Item(name="n"))})


urlpatterns = [path("fields", fields)]
"""


def models(fields: str, label: str = "item") -> str:
    return f'''\
from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=10)
{fields}
    def __str__(self):
        return "{label}"
'''


# -- the API: __hmr__.refuse from the module, add_refusal_check from an integration --------

GUARDED = """\
VERSION = {version}

if VERSION > 1:
    __hmr__.refuse("database schema", f"{{__name__}}.VERSION is {{VERSION}}", "run the migrations")


def f():
    return "v{version}"
"""


def test_a_module_refuses_its_own_edit_and_other_modules_still_apply(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture
) -> None:
    project.write("a.py", GUARDED.format(version=1))
    project.write("b.py", "def g():\n    return 'old'\n")
    a, b = importlib.import_module("a"), importlib.import_module("b")
    f = a.f
    errors: list[tuple[str, BaseException]] = []
    hmr.add_error_handler(lambda name, exc: errors.append((name, exc)))
    project.write("a.py", GUARDED.format(version=2))
    project.write("b.py", "def g():\n    return 'new'\n")
    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        result = hmr.reloader.reload_result(["a", "b"])
    where = f"{a.__file__}:4"  # the statement that declares it
    refusal = Refusal("database schema", "a", "a.VERSION is 2", "run the migrations", where)
    assert result.refused == [refusal]
    assert result.reloaded == ["b"]
    assert (a.VERSION, a.f, f()) == (1, f, "v1")  # nothing of a's edit
    assert b.g() == "new"
    assert [(name, type(exc)) for name, exc in errors] == [("a", RefusedEdit)]
    assert [r.getMessage() for r in caplog.records if "restart" in r.getMessage()] == [
        f"restart to apply: a.VERSION is 2 at {where} (database schema); run the migrations"
    ]
    # Outside a reload of the module (its first import, say), refuse does nothing.
    assert hmr.refuse("database schema", "nothing") is False
    # The edit that passes the check applies whole.
    project.write("a.py", GUARDED.format(version=1).replace('"v1"', '"v1 again"'))
    assert hmr.reload("a").refused == []
    assert f() == "v1 again"


def test_a_module_refused_for_a_change_it_follows_is_not_said_recovered_for_its_file(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """``models`` is refused for what its import ``base`` changed (a Django abstract base
    gained a field): its own file holds the code that runs, which says nothing of that
    refusal.  Before, a later look at ``models`` as saved (a reload asked for it, the
    watcher judged its file) said ``models recovered`` and forgot the refusal."""
    project.write("base.py", "VERSION = 1\n")
    source = (
        "import base\n\nif base.VERSION > 1:\n"
        "    __hmr__.refuse('schema', 'models.Post gained flag')\n\n\ndef m():\n    return {n}\n"
    )
    project.write("models.py", source.format(n=1))
    models = importlib.import_module("models")
    project.write("models.py", source.format(n=2))  # (an edit of its own first)
    assert hmr.reload("models").reloaded == ["models"]
    project.write("base.py", "VERSION = 2\n")
    result = hmr.reload("base")
    assert (result.reloaded, [r.module for r in result.refused]) == (["base"], ["models"])
    with caplog.at_level(logging.INFO, logger="muckrack_hmr"):
        again = hmr.reloader.reload_result(["models"])
    assert again.recovered == []
    assert "models" in hmr.reloader.refused
    assert not [r for r in caplog.records if "recovered" in r.getMessage()]
    assert models.m() == 2


def test_a_refusal_check_refuses_a_module_whole(project: Project, hmr: Any) -> None:
    source = "LIMIT = {limit}\n\n\nclass C:\n    def m(self):\n        return {limit}\n"
    project.write("a.py", source.format(limit=1))
    a = importlib.import_module("a")
    C = a.C
    import sys

    def no_lower_limit(name: str) -> None:
        module = sys.modules[name]
        if name == "a" and module.LIMIT < 1:
            hmr.refuse("limits", f"a.LIMIT went down to {module.LIMIT}", module=name)

    hmr.add_refusal_check(no_lower_limit)
    project.write("a.py", source.format(limit=0))
    result = hmr.reload("a")
    where = f"{a.__file__}:1"
    assert result.refused == [Refusal("limits", "a", "a.LIMIT went down to 0", "", where)]
    assert (a.LIMIT, a.C, C().m()) == (1, C, 1)
    project.write("a.py", source.format(limit=2))
    assert hmr.reload("a").reloaded == ["a"]
    assert (a.LIMIT, a.C, C().m()) == (2, C, 2)
    hmr.remove_refusal_check(no_lower_limit)


# -- Django: model fields and settings under runserver -----------------------------------

REFUSED = "hmr: restart to apply: "
FIX = "; a migration may be needed (manage.py makemigrations)"


def refused_after(child: Child, path: Path, source: str) -> str:
    """Save ``path``; the line that refuses its edit."""
    write(path, source)
    line = child.expect(
        lambda line: line.startswith((REFUSED, "hmr: reloaded ", "hmr: failed ")), stream="err"
    )
    assert line.startswith(REFUSED), line
    return line


def django_served(
    proj: Path, spawn: Spawn, urls: str, settings: str = SETTINGS
) -> tuple[Child, int, dict[str, Any]]:
    """The Django project (one model, ``greet.models.Item``) under ``runserver``, once it
    answers and the watcher tracks the model: the child, its port, ``/fields``."""
    write(proj / "manage.py", DJANGO_MANAGE)
    write(proj / "mysite" / "__init__.py", "")
    write(proj / "mysite" / "settings.py", settings)
    write(proj / "mysite" / "urls.py", urls)
    write(proj / "greet" / "__init__.py", "")
    write(proj / "greet" / "models.py", models(""))
    port = free_port()
    child = spawn(["-v", "manage.py", "runserver", f"127.0.0.1:{port}"], cwd=proj)
    child.expect(f"hmr: watching {os.path.realpath(proj / 'greet')}", stream="err")
    first: dict[str, Any] = poll(child, port, lambda got: True, path="/fields")
    tracked(child, "greet.models")
    return child, port, first


def test_a_django_model_that_runs_again_raises_no_warning_of_django_s(
    proj: Path, spawn: Spawn
) -> None:
    """A method added to a model runs its class statement again; the reload puts the
    live class back in Django's registry, so Django's "was already registered ...
    Reloading models is not advised" warning said nothing true (it is kept for a
    program's own duplicate model, outside reloads)."""
    urls = URLS.replace(
        '"label": str(Item(name="n"))}',
        '"label": str(Item(name="n")), "filters": len(__import__("warnings").filters)}',
    )
    child, port, first = django_served(proj, spawn, urls)

    method = "    def shout(self):\n        return 'shout'\n\n"
    write(proj / "greet" / "models.py", models(method, label="more"))

    line = child.expect(outcome_of("greet.models"), stream="err")
    assert line.startswith("hmr: reloaded greet.models"), line
    got = poll(child, port, lambda got: got["label"] == "more", path="/fields")
    assert got["filters"] == first["filters"]  # nothing left behind
    assert not any("already registered" in each for each in child.seen["err"]), child.stderr_text()


def test_django_model_fields_and_settings_are_refused_with_their_fix(
    proj: Path, spawn: Spawn
) -> None:
    child, port, first = django_served(proj, spawn, URLS)
    assert first["fields"] == ["id", "name"]
    path = proj / "greet" / "models.py"
    title = "    title = models.CharField(max_length={})\n"

    # 1. A field added, and a method edited in the same save: nothing applies.
    line = refused_after(child, path, models(title.format(20), label="thing"))
    at = f"at {os.path.realpath(path)}:"
    field = 6  # the line of the field it names
    assert line == f"{REFUSED}greet.models.Item gained title {at}{field} (django model fields){FIX}"
    assert poll(child, port, lambda got: True, path="/fields")["label"] == "item"
    # 2. The field goes again: the method's edit applies alone.
    write(path, models("", label="thing"))
    assert child.expect(outcome_of("greet.models"), stream="err").startswith(
        "hmr: reloaded greet.models"
    )
    poll(child, port, lambda got: got["label"] == "thing", path="/fields")
    # 3. A field's options change: refused again.
    write(path, models(title.format(20), label="thing"))  # (itself refused: gained)
    child.expect(starts(REFUSED), stream="err")
    line = refused_after(child, path, models("    name = models.CharField(max_length=30)\n"))
    assert line.startswith(f"{REFUSED}greet.models.Item changed name {at}6 (django model fields)")
    # 4. The settings module: Django read it at start-up.  A comment or a blank line
    # changes no setting: not refused (before, any save of it was, and with
    # --restart-on-refused restarted the server for nothing).
    settings = proj / "mysite" / "settings.py"
    write(settings, "# the site's settings\n\n" + SETTINGS + "\n# end\n")
    line = child.expect(outcome_of("mysite.settings"), stream="err")
    assert line.startswith("hmr: reloaded mysite.settings"), line
    # Blank lines at its end: nothing moves, nothing runs (it was refused: "changed its
    # settings").  The next save, of another module, says it reloaded, and nothing else.
    refusals = sum(line.startswith(REFUSED) for line in child.seen["err"])
    write(settings, "# the site's settings\n\n" + SETTINGS + "\n# end\n\n\n")
    edit(child, path, models("", label="blank"), "greet.models")
    assert sum(line.startswith(REFUSED) for line in child.seen["err"]) == refusals
    line = refused_after(child, settings, SETTINGS + "DEBUG = False\n")
    assert line == (
        f"{REFUSED}mysite.settings changed DEBUG at {os.path.realpath(settings)} "
        "(django settings); Django read its settings at start-up"
    )
    got = poll(child, port, lambda got: True, path="/fields")
    assert (got["pid"], got["fields"]) == (first["pid"], ["id", "name"])


WSGI = """\
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
application = get_wsgi_application()
{wrap}"""

WSGI_WRAP = """

def tagged(app):
    def serve(environ, start_response):
        def start(status, headers, *info):
            return start_response(status, [*headers, ("X-Tag", "yes")], *info)

        return app(environ, start)

    return serve


application = tagged(application)
"""


def test_a_django_application_made_again_is_refused(proj: Path, spawn: Spawn) -> None:
    """``application`` of the module ``WSGI_APPLICATION`` names, wrapped in a middleware by
    an edit: the server serves the application it loaded at start-up, so the edit cannot
    apply without a restart.  Before, the reload said it applied and nothing changed.  An
    edit of the module that leaves the application as it is applies."""
    settings = SETTINGS + 'WSGI_APPLICATION = "mysite.wsgi.application"\n'
    wsgi = proj / "mysite" / "wsgi.py"
    write(wsgi, WSGI.format(wrap=""))
    child, port, first = django_served(proj, spawn, URLS, settings)  # (wsgi tracked first)

    line = refused_after(child, wsgi, WSGI.format(wrap=WSGI_WRAP))
    assert line.startswith(f"{REFUSED}mysite.wsgi.application is a new application at "), line
    assert line.endswith("(django application); the server serves the one it loaded at start-up"), (
        line
    )
    write(wsgi, "# the server's entry point\n" + WSGI.format(wrap=""))
    line = child.expect(outcome_of("mysite.wsgi"), stream="err")
    assert line.startswith("hmr: "), line
    assert "restart to apply" not in line, line
    got = poll(child, port, lambda got: True, path="/fields")
    assert got["pid"] == first["pid"]


APPS = """\
from django.apps import AppConfig


class GreetConfig(AppConfig):
    name = "greet"

    def ready(self):
        from . import models

        models.READY = "{value}"
"""


def test_an_edit_of_what_an_app_config_s_ready_does_is_refused(proj: Path, spawn: Spawn) -> None:
    """``AppConfig.ready()`` ran once, as Django started (where receivers are connected):
    an edit of what it does applies at a restart only.  Before, the reload said it applied
    (``1 patched``) and nothing it set up ever happened.  Its class's other methods apply."""
    write(proj / "greet" / "apps.py", APPS.format(value="v1"))
    urls = URLS.replace(
        '"label": str(Item(name="n"))}', '"ready": __import__("greet.models").models.READY}'
    )
    child, port, first = django_served(proj, spawn, urls)
    assert first["ready"] == "v1"
    said = [line.removeprefix("hmr: tracking ").split(", ") for line in child.seen["err"]]
    if not any("greet.apps" in names for names in said):  # (the line django_served saw)
        tracked(child, "greet.apps")
    path = proj / "greet" / "apps.py"
    line = refused_after(child, path, APPS.format(value="v2"))
    at = f"{os.path.realpath(path)}:7"
    assert line == (
        f"{REFUSED}greet.apps.GreetConfig.ready() ran as Django started; its change at {at} "
        "(django app ready); it does not run again, and what it sets up now applies at a restart"
    )
    # Another method of the config: applies.
    write(path, APPS.format(value="v1") + "\n    def label_of(self):\n        return 'l'\n")
    assert child.expect(outcome_of("greet.apps"), stream="err").startswith(
        "hmr: reloaded greet.apps"
    )
    assert poll(child, port, lambda got: True, path="/fields")["ready"] == "v1"


MIDDLEWARE = """\
class Stamp:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["X-Stamp"] = "{value}"
        return response
{hook}"""

HOOK = """
    def process_view(self, request, view, args, kwargs):
        return None
"""


def test_a_hook_added_to_a_django_middleware_is_refused(proj: Path, spawn: Spawn) -> None:
    """Django collects a middleware's ``process_view`` (``process_exception``,
    ``process_template_response``) once, as it loads the middleware: one added later
    was never called, though the reload said it applied.  Its methods' bodies apply."""
    write(proj / "greet" / "middleware.py", MIDDLEWARE.format(value="v1", hook=""))
    settings = SETTINGS + 'MIDDLEWARE = ["greet.middleware.Stamp"]\n'
    child, _port, _first = django_served(proj, spawn, URLS, settings)
    path = proj / "greet" / "middleware.py"
    line = refused_after(child, path, MIDDLEWARE.format(value="v1", hook=HOOK))
    assert line == (
        f"{REFUSED}greet.middleware.Stamp gained process_view at {os.path.realpath(path)}:10 "
        "(django middleware); Django collected the middleware's hooks as it loaded it"
    )
    write(path, MIDDLEWARE.format(value="v2", hook=""))
    assert child.expect(outcome_of("greet.middleware"), stream="err").startswith(
        "hmr: reloaded greet.middleware"
    )


# -- the watcher: a refused edit is said once, where it is, and its undo is said too -------

LOOPING = """\
import time

import other
import work

while True:
    time.sleep(0.02)
"""


def test_a_refused_edit_names_its_line_once_and_its_undo_says_recovered(
    proj: Path, spawn: Spawn
) -> None:
    """A refused save is one line naming the file and line of what it changed.  A save
    of a module beside it (whose burst looks at recently changed files of the folder)
    does not say it again; a refusal after a failed save is no recovery; the undo is."""
    write(proj / "base.py", "class Base:\n    pass\n\n\nclass Other:\n    pass\n")
    original = "from base import Base, Other\n\n\nclass Thing(Base):\n    pass\n"
    work = write(proj / "work.py", original)
    write(proj / "other.py", "def g():\n    return 1\n")
    write(proj / "main.py", LOOPING)
    child = spawn(["-v", "main.py"], cwd=proj)
    tracked(child, "work", "other")
    refused = f"{REFUSED}work.Thing changed its bases (now Other) at {os.path.realpath(work)}:4"

    write(work, original.replace("Thing(Base)", "Thing(Other)"))
    assert child.expect(starts(REFUSED), stream="err") == f"{refused} (class layout)"
    write(proj / "other.py", "def g():\n    return 2\n")
    child.expect(outcome_of("other"), stream="err")
    # A broken save, then the refused edit again: refused again, and nothing recovered.
    write(work, original.replace("Thing(Base)", "Thing(Other)") + "oops(\n")
    child.expect(outcome_of("work"), stream="err")
    write(work, original.replace("Thing(Base)", "Thing(Other)") + "\n")
    assert child.expect(starts(REFUSED), stream="err") == f"{refused} (class layout)"
    # The edit undone: said, as for a failed one.
    write(work, original)
    child.expect("hmr: work recovered", stream="err")
    said = ("hmr: restart", "hmr: failed", "hmr: work")
    lines = [line for line in child.seen["err"] if line.startswith(said)]
    head = refused.split(" (", maxsplit=1)[0]
    assert [line.split(" (", maxsplit=1)[0] for line in lines] == [
        head,
        "hmr: failed to reload work",
        head,
        "hmr: work recovered",
    ], child.stderr_text()


def test_a_refusal_is_located_at_the_statement_it_names() -> None:
    source = b"class Outer:\n    x = 1\n\n    class Inner:\n        pass\n\n\nLIMIT: int = 3\n"
    found = locate(
        [
            Refusal("class layout", "m", "m.Outer.Inner changed its bases (now B)"),
            Refusal("limits", "m", "m.LIMIT went down"),
            Refusal("limits", "m", "something else changed"),
            Refusal("limits", "m", "m.Outer changed", location="elsewhere.py:9"),
        ],
        "/p/m.py",
        source,
    )
    assert [each.location for each in found] == [
        "/p/m.py:4",
        "/p/m.py:8",
        "/p/m.py",
        "elsewhere.py:9",
    ]
