"""Edits that cannot apply in place are named, with the fix, end to end (issue 16).

A Django model's fields: the class takes the edit, the database table does
not.  A real ``runserver`` under ``python -m muckrack.hmr`` on both cores; each
save of the models module must end in one line that names the kind of edit,
the model and fields, and the fix (a restart, a migration); an edit of
anything else in the module gives no such line.
"""

from __future__ import annotations

import os
from pathlib import Path

from .subprocesses import Child, write
from .test_everyday_edits import outcome_of, tracked
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


REFUSED = "hmr: restart to apply the edit of greet.models: Django model fields ("


def save_models(child: Child, path: Path, source: str) -> list[str]:
    """Save the models module; the lines that named a refused edit in its reload."""
    before = len(child.seen["err"])
    write(path, source)
    line = child.expect(outcome_of("greet.models"), stream="err")
    assert line.startswith("hmr: reloaded greet.models "), line
    return [line for line in child.seen["err"][before:] if line.startswith(REFUSED)]


def test_django_model_field_edit_is_named_with_its_fix(proj: Path, spawn: Spawn) -> None:
    write(proj / "manage.py", DJANGO_MANAGE)
    write(proj / "mysite" / "__init__.py", "")
    write(proj / "mysite" / "settings.py", SETTINGS)
    write(proj / "mysite" / "urls.py", URLS)
    write(proj / "greet" / "__init__.py", "")
    write(proj / "greet" / "models.py", models(""))
    port = free_port()
    child = spawn(["-v", "manage.py", "runserver", f"127.0.0.1:{port}"], cwd=proj)
    child.expect(f"hmr: watching {os.path.realpath(proj / 'greet')}", stream="err")
    first = poll(child, port, lambda got: True, path="/fields")
    assert first["fields"] == ["id", "name"]
    tracked(child, "greet.models")
    path = proj / "greet" / "models.py"
    title = "    title = models.CharField(max_length={})\n"

    # 1. A field added: the one line says what and how to apply it.
    assert save_models(child, path, models(title.format(20))) == [
        f"{REFUSED}greet.Item gained title); a migration may be needed (manage.py makemigrations)"
    ]
    # 2. Only a method changes: nothing to say.
    assert save_models(child, path, models(title.format(20), label="thing")) == []
    poll(child, port, lambda got: got["label"] == "thing", path="/fields")
    # 3. A field's options change, then it goes.
    fix = "; a migration may be needed (manage.py makemigrations)"
    changed = save_models(child, path, models(title.format(30)))
    assert changed == [f"{REFUSED}greet.Item changed title){fix}"]
    assert save_models(child, path, models("")) == [f"{REFUSED}greet.Item lost title){fix}"]
    assert poll(child, port, lambda got: True, path="/fields")["pid"] == first["pid"]
