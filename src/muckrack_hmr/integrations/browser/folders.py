"""Which folders of a web app hold its stylesheets and its templates, and at which URL.

Read from the app the server is given (Flask), from the settings (Django's
staticfiles finders and template directories) or from the app's routes
(Starlette's and FastAPI's ``StaticFiles`` mounts).  Only folders inside the
project count: an installed package's static files (Django's admin) are not
the developer's edits, and their paths never leave the process.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["WebFolder", "django_folders", "find_app", "flask_folders", "starlette_folders"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebFolder:
    """A folder of stylesheets served under ``url`` (a path ending in ``/``), or of templates
    (``url`` None)."""

    path: str
    url: str | None


def _static(path: object, url: object) -> WebFolder | None:
    if not isinstance(path, (str, os.PathLike)) or not isinstance(url, str) or "://" in url:
        return None
    return WebFolder(os.fspath(path), url.rstrip("/") + "/")


def find_app(app: object, kind: type | None, attribute: str | None = None) -> object | None:
    """The first object of ``kind`` (or with ``attribute``) in a chain of wrappers' ``.app``."""
    seen = 0
    while app is not None and seen < 8:
        if (kind is not None and isinstance(app, kind)) or (
            attribute is not None and hasattr(type(app), attribute)
        ):
            return app
        app = getattr(app, "app", None) or getattr(app, "application", None)
        seen += 1
    return None


def flask_folders(app: object) -> list[WebFolder]:
    """A Flask app's static folder, and the template folders of the app and its blueprints."""
    flask = sys.modules.get("flask")
    found = find_app(app, flask.Flask) if flask is not None else None
    if found is None:
        return []
    folders: list[WebFolder] = []
    static = _static(getattr(found, "static_folder", None), getattr(found, "static_url_path", None))
    if static is not None:
        folders.append(static)
    blueprints = getattr(found, "blueprints", {})
    for owner in [found, *blueprints.values()]:
        template_folder = getattr(owner, "template_folder", None)
        root = getattr(owner, "root_path", None)
        if isinstance(template_folder, str) and isinstance(root, str):
            folders.append(WebFolder(os.path.join(root, template_folder), None))
    return folders


def django_folders() -> list[WebFolder]:
    """The staticfiles finders' folders under ``STATIC_URL``, and the template directories."""
    from django.conf import settings

    folders: list[WebFolder] = []
    url = getattr(settings, "STATIC_URL", None)
    if isinstance(url, str) and "django.contrib.staticfiles" in settings.INSTALLED_APPS:
        from django.contrib.staticfiles.finders import get_finders

        for finder in get_finders():
            for prefix, root in getattr(finder, "locations", ()):
                sub = f"{prefix.strip('/')}/" if prefix else ""
                folder = _static(root, url.rstrip("/") + "/" + sub)
                if folder is not None:
                    folders.append(folder)
            for storage in getattr(finder, "storages", {}).values():
                folder = _static(getattr(storage, "location", None), url)
                if folder is not None:
                    folders.append(folder)
    try:
        from django.template.autoreload import get_template_directories
    except ImportError:  # Django < 3.2
        return folders
    folders.extend(WebFolder(os.fspath(path), None) for path in get_template_directories())
    return folders


def starlette_folders(app: object) -> list[WebFolder]:
    """The folders of the ``StaticFiles`` mounts of a Starlette (or FastAPI) app."""
    found = find_app(app, None, "routes")
    if found is None:
        return []
    folders: list[WebFolder] = []
    pending: list[tuple[str, Iterable[object]]] = [("", getattr(found, "routes", ()))]
    while pending:
        base, routes = pending.pop()
        for route in routes:
            path = getattr(route, "path", None)
            inner = getattr(route, "app", None)
            if not isinstance(path, str) or inner is None:
                continue
            directory = getattr(inner, "directory", None)
            if directory is not None:
                folder = _static(directory, base + path)
                if folder is not None:
                    folders.append(folder)
            elif hasattr(inner, "routes") and type(route).__name__ == "Mount":
                pending.append((base + path, inner.routes))
    return folders


def inside(folders: Iterable[WebFolder], roots: Iterable[str]) -> list[WebFolder]:
    """The folders that exist inside a project root (by their real paths)."""
    bases = tuple(os.path.realpath(root).rstrip(os.sep) + os.sep for root in roots)
    kept: dict[tuple[str, str | None], WebFolder] = {}
    for folder in folders:
        real = os.path.realpath(folder.path)
        if os.path.isdir(real) and (real + os.sep).startswith(bases):
            kept.setdefault((real, folder.url), WebFolder(real, folder.url))
    return list(kept.values())
