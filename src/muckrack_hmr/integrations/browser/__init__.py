"""``--reload-browser``: open pages follow the edits (reload, stylesheets swapped, errors shown).

Enabled by the CLI's option only.  The development servers are adjusted when
(and if) the program imports them: the application werkzeug's server
(Flask), Django's ``runserver`` or uvicorn (FastAPI, Starlette) is given is
wrapped (:mod:`.wsgi`, :mod:`.asgi`), so that its HTML pages carry the
script (:mod:`.page`) and its own origin serves the event stream.

What the pages are told (:mod:`.events`):

* a reload that applied (code, or a template read at import) -> ``reload``;
  a template saved in the app's template folders (Flask's, Django's, any
  Jinja ``FileSystemLoader``'s) -> ``reload`` too;
* a ``.css`` saved in the app's static folders -> ``css`` with its URL path,
  nothing reloaded (the watcher reports those files: ``Watcher.watch_files``);
* a reload that failed -> ``error`` (the overlay), until a save recovers.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING

from .._imports import when_imported, wrap_method
from .events import Events, error_event
from .folders import WebFolder, django_folders, flask_folders, inside, starlette_folders

if TYPE_CHECKING:
    from ...api import HMR
    from ...reload.reloader import ReloadResult
    from ...watch.bursts import FileSave

__all__ = ["Browser", "enable"]

log = logging.getLogger(__name__)

_MARK = "__muckrack_hmr_browser__"
# Saved files of a template folder that mean a page looks different.
_TEMPLATES = (".html", ".htm", ".jinja", ".jinja2", ".j2", ".txt", ".xml", ".svg", ".js")


class Browser:
    """The events of this process's pages, and what sends them."""

    def __init__(self, hmr: HMR) -> None:
        self.hmr = hmr
        self.events = Events()
        self._folders: list[WebFolder] = []
        self._digests: dict[str, bytes] = {}
        self._lock = threading.Lock()

    # -- reloads --------------------------------------------------------------

    def reloaded(self, result: ReloadResult) -> None:
        """A result hook: ``error`` for a failure, else ``reload`` (or ``ok``)."""
        if result.failed:
            name, exc = next(iter(result.failed.items()))
            self.events.publish("error", error_event(name, exc, self.hmr.project.roots))
        elif result.reloaded:
            self.events.publish("reload")
        elif result.recovered and self.events.error is not None:
            self.events.publish("ok")

    # -- files ----------------------------------------------------------------

    def serve(self, folders: list[WebFolder]) -> None:
        """Watch the stylesheets and templates of these folders (those in the project)."""
        watcher = self.hmr.watcher
        found = inside(folders, self.hmr.project.roots)
        with self._lock:
            new = [folder for folder in found if folder not in self._folders]
            self._folders.extend(new)
        if watcher is None:
            return
        for folder in new:
            suffixes = (".css",) if folder.url is not None else _TEMPLATES
            watcher.watch_files(folder.path, suffixes, self.saved)
            log.debug(
                "--reload-browser: watching %s (%s)",
                folder.path,
                f"stylesheets at {folder.url}" if folder.url else "templates",
            )

    def saved(self, files: tuple[FileSave, ...]) -> None:
        """A watcher's file listener: ``css`` for each stylesheet, ``reload`` for a template."""
        reload = False
        for save in files:
            if save.source is None:
                continue
            new = hashlib.blake2b(save.source, digest_size=16).digest()
            if self._digests.get(save.path) == new:
                continue  # touched, or saved as it was
            self._digests[save.path] = new
            url = self.url_of(save.path)
            if url is not None:
                self.events.publish("css", {"path": url})
            else:
                reload = True
        if reload:
            self.events.publish("reload")

    def url_of(self, path: str) -> str | None:
        """The URL path of a stylesheet in a static folder (None: not one)."""
        if not path.lower().endswith(".css"):
            return None
        for folder in self._folders:
            base = folder.path.rstrip(os.sep) + os.sep
            if folder.url is not None and path.startswith(base):
                return folder.url + path[len(base) :].replace(os.sep, "/")
        return None


_browsers: dict[int, Browser] = {}


def enable(hmr: HMR) -> Browser:
    """Send reloads to the browser: wrap the development servers' apps when imported."""
    browser = _browsers.get(id(hmr))
    if browser is not None:
        return browser
    browser = _browsers[id(hmr)] = Browser(hmr)
    hmr.add_result_hook(browser.reloaded)
    when_imported("werkzeug.serving", functools.partial(_patch_werkzeug, browser=browser))
    when_imported("django.core.servers.basehttp", functools.partial(_patch_django, browser=browser))
    when_imported("uvicorn.config", functools.partial(_patch_uvicorn, browser=browser))
    # Jinja's folders, wherever they are made (Flask's loaders, Starlette's Jinja2Templates).
    when_imported("jinja2.loaders", functools.partial(_patch_jinja, browser=browser))
    return browser


def _patch(
    cls: type, name: str, make: Callable[[Callable[..., object]], Callable[..., object]]
) -> None:
    wrap_method(cls, name, make, _MARK)


def _patch_werkzeug(serving: ModuleType, browser: Browser) -> None:
    from . import wsgi

    def make(original: Callable[..., object]) -> Callable[..., object]:
        def __init__(
            self: object, host: str, port: int, app: object, *args: object, **kw: object
        ) -> None:
            browser.serve(flask_folders(app))
            original(self, host, port, wsgi.wrap(app, browser.events), *args, **kw)  # type: ignore[arg-type]

        return __init__

    _patch(serving.BaseWSGIServer, "__init__", make)


def _patch_django(basehttp: ModuleType, browser: Browser) -> None:
    from . import wsgi

    def make(original: Callable[..., object]) -> Callable[..., object]:
        def set_app(self: object, application: object) -> None:
            try:
                browser.serve(django_folders())
            except Exception:  # settings the server will complain about itself
                log.debug("could not read Django's static and template folders", exc_info=True)
            original(self, wsgi.wrap(application, browser.events))  # type: ignore[arg-type]

        return set_app

    _patch(basehttp.WSGIServer, "set_app", make)


def _patch_uvicorn(config: ModuleType, browser: Browser) -> None:
    from . import asgi

    def make(original: Callable[..., object]) -> Callable[..., object]:
        def load(self: object) -> None:
            original(self)
            app = getattr(self, "loaded_app", None)
            if app is None:
                return
            browser.serve(starlette_folders(getattr(self, "app", None)) or starlette_folders(app))
            self.loaded_app = asgi.wrap(app, browser.events)  # type: ignore[attr-defined]

        return load

    _patch(config.Config, "load", make)


def _patch_jinja(loaders: ModuleType, browser: Browser) -> None:
    def make(original: Callable[..., object]) -> Callable[..., object]:
        def __init__(self: object, *args: object, **kwargs: object) -> None:
            original(self, *args, **kwargs)
            paths = getattr(self, "searchpath", None)
            if isinstance(paths, list):
                browser.serve([WebFolder(path, None) for path in paths if isinstance(path, str)])

        return __init__

    _patch(loaders.FileSystemLoader, "__init__", make)
