"""Django under HMR: ``runserver`` serves in this process, and Django's caches follow reloads.

* Django's autoreloader (``runserver`` without ``--noreload``) restarts the
  program in a child process that never loads the import hooks, and kills it
  on every save.  Under HMR, :func:`django.utils.autoreload.run_with_reloader`
  runs the server right here instead, as ``--noreload`` does.
* What Django's reloader did besides restarting is kept (in ``runserver``,
  or wherever ``run_with_reloader`` is called): the receivers of its
  ``autoreload_started`` signal name the non-Python files they care about
  (template folders, translation catalogs), and on a change of one of them
  the ``file_changed`` signal goes out, so that Django resets its template
  loaders or its translations itself.  Python files are the HMR watcher's.
* After each module reload, the URL resolvers are dropped
  (:func:`django.urls.clear_url_caches`: an edited ``urlpatterns`` is read
  again), and so are the patterns each ``include()`` read (its resolver sits
  in the including ``urlpatterns``, which did not run again: an app's
  URLconf that gained, changed or lost a pattern is read again too); the
  template loaders are reset (a compiled template holds the filters and tags
  of its time).
* An edited ``admin.py`` registers its ModelAdmins again, in place of the
  old ones (see :mod:`._django_admin`).
* Three edits cannot apply in place, and are refused (nothing of the module's
  edit applies; one line says why, with the fix): a model's fields (the
  database table does not follow: a restart, and a migration), the
  settings module (Django copied its values at start-up), and what an
  ``AppConfig.ready()`` does itself (it ran once, as Django started: a
  receiver it would connect now never would be).  So is a middleware class
  that gained or lost a hook (``process_view``, ``process_exception``,
  ``process_template_response``): Django collected them as it loaded the
  middleware; its methods' bodies apply.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path, PurePath
from types import CodeType, ModuleType
from typing import TYPE_CHECKING, cast

from .. import collector
from ..reload.refusals import (
    DJANGO_APP_READY,
    DJANGO_APPLICATION,
    DJANGO_MIDDLEWARE,
    DJANGO_MODEL_FIELDS,
    DJANGO_SETTINGS,
)
from ..threads import signals_to_main_thread
from . import _django_admin, _django_signals, _reloading
from ._imports import when_imported, wrap_method

if TYPE_CHECKING:
    from typing import Protocol

    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers.api import BaseObserver

    from ..api import HMR

    class _Apps(Protocol):
        """Django's app registry (``django.apps.apps``), as far as this module reads it."""

        ready_event: threading.Event


__all__ = [
    "FileSignals",
    "check_edit",
    "enable",
    "refresh_caches",
    "remember_models",
    "run_in_place",
]

log = logging.getLogger(__name__)

_MARK = "__muckrack_hmr__"


def enable(hmr: HMR) -> None:
    """Turn Django's restarter off and refresh Django's caches after each reload."""
    when_imported("django.utils.autoreload", _replace_restarter)
    when_imported("django.core.management.commands.runserver", _in_place_with_noreload_too)
    when_imported("django.core.handlers.wsgi", _file_signals_where_served)
    when_imported("django.core.handlers.asgi", _file_signals_where_served)
    when_imported("django.contrib.admin.sites", _django_admin.enable_for)
    when_imported("django.dispatch.dispatcher", _django_signals.enable_for)
    when_imported("django.urls.converters", _converters_made_again)
    when_imported("django.template.defaulttags", _libraries_found_late)
    _reloading.enable(hmr)
    hmr.add_pre_reload_hook(remember_models)
    hmr.add_pre_reload_hook(remember_settings)
    hmr.add_pre_reload_hook(remember_application)
    hmr.add_pre_reload_hook(remember_ready)
    hmr.add_pre_reload_hook(remember_middleware_hooks)
    hmr.add_pre_reload_hook(_quiet_model_registration)
    hmr.add_post_reload_hook(_loud_model_registration)
    hmr.add_result_hook(_loud_model_registration)
    hmr.add_pre_reload_hook(_django_admin.note_registrations)
    # Before the URL resolvers are dropped: the admin's patterns are built again first.
    hmr.add_post_reload_hook(_django_admin.follow_registrations)
    hmr.add_post_reload_hook(refresh_caches)
    hmr.add_post_reload_hook(_django_signals.tidy_receivers)
    hmr.add_refusal_check(functools.partial(check_edit, hmr))


# -- the restarter ----------------------------------------------------------------


def _replace_restarter(autoreload: ModuleType) -> None:
    if getattr(autoreload.run_with_reloader, _MARK, False):
        return
    setattr(autoreload, "run_with_reloader", run_in_place)  # noqa: B010 (a module's attribute)


# runserver --noreload asked for (run in place all the same, see below).
_noreload = False


def _in_place_with_noreload_too(runserver: ModuleType) -> None:
    """``runserver --noreload`` runs as without it: in place, with the file signals that
    reset Django's template loaders (``--noreload`` skipped them: a saved template that
    had been rendered stayed as it was)."""
    command = runserver.Command
    run = command.run
    if getattr(run, _MARK, False):
        return

    def run_here(self: object, **options: object) -> object:
        global _noreload
        _noreload = not options.get("use_reloader", True)
        options["use_reloader"] = True  # run_with_reloader is run_in_place here
        return run(self, **options)

    setattr(run_here, _MARK, True)
    command.run = run_here


def run_in_place(main_func: Callable[..., object], *args: object, **kwargs: object) -> None:
    """Stands in for ``run_with_reloader``: run the server in this process."""
    from django.apps import apps

    log.info("Django's autoreloader is off; saved modules are reloaded in this process")
    # SIGTERM ends the server with 0, as it does under Django's reloader (both of its
    # processes set this); runserver --noreload dies by the signal, as without us.
    if not _noreload:
        with contextlib.suppress(ValueError):  # not the main thread: left as it is
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signals = _start_file_signals(apps)
    try:
        main_func(*args, **kwargs)
    except KeyboardInterrupt:
        pass  # as Django's reloader does
    finally:
        signals.stop()


setattr(run_in_place, _MARK, True)

# The process whose file signals run (see FileSignals): a fork child has none of them.
_signals_in = 0
_signals_lock = threading.Lock()


def _start_file_signals(apps: _Apps) -> FileSignals:
    """Start this process's file signals (once its apps are ready, on a thread)."""
    global _signals_in
    signals = FileSignals()
    with _signals_lock:
        _signals_in = os.getpid()
    with signals_to_main_thread():  # its observer's threads too: Ctrl-C stops the server
        threading.Thread(
            target=collector.ours(signals.run_when_ready),
            args=(apps,),
            name="muckrack-hmr-django",
            daemon=True,
        ).start()
    return signals


def _libraries_found_late(defaulttags: ModuleType) -> None:
    """``{% load new_tags %}`` of a template tag library made since Django started (a new
    ``templatetags/new_tags.py`` of an installed app): Django found its libraries once,
    as its template engine started, and said "'new_tags' is not a registered tag library"
    until a restart.  A name it does not know is looked for among the installed apps'
    libraries again, and the library found is imported and added."""
    original = getattr(defaulttags, "find_library", None)
    error = getattr(defaulttags, "TemplateSyntaxError", None)
    if (
        not callable(original)
        or getattr(original, _MARK, False)
        or not (isinstance(error, type) and issubclass(error, Exception))
    ):
        return
    refused: type[Exception] = error

    def find_library(parser: object, name: str) -> object:
        try:
            return original(parser, name)
        except refused:
            library = _library_made_since(name)
            libraries = getattr(parser, "libraries", None)
            if library is None or not isinstance(libraries, dict):
                raise
            libraries[name] = library  # (the engine's own table: its next templates too)
            log.debug("template tag library %s found since Django started", name)
            return library

    functools.update_wrapper(find_library, original)
    setattr(find_library, _MARK, True)
    setattr(defaulttags, "find_library", find_library)  # noqa: B010


def _library_made_since(name: str) -> object:
    """The installed apps' template tag library ``name``, imported; None if none has it."""
    from django.template.backends import django as backend
    from django.template.library import import_library

    installed = backend.get_installed_libraries
    clear = getattr(installed, "cache_clear", None)  # (cached in some Django versions)
    if callable(clear):
        clear()
    path = installed().get(name)
    return None if path is None else import_library(path)


# The converters registered again by a reload: their patterns are compiled again.
_converted_again: set[str] = set()


def _converters_made_again(converters: ModuleType) -> None:
    """``register_converter(Year, "yyyy")`` run again by a reload (the URLconf follows an
    edit of ``Year``): the converter takes the place of the one the statement's last run
    registered.  Django 6 raises "Converter 'yyyy' is already registered" (5.x warns), and
    the URLconf's reload, and each later one, failed until a restart."""
    original = getattr(converters, "register_converter", None)
    registered = getattr(converters, "REGISTERED_CONVERTERS", None)
    if (
        not callable(original)
        or getattr(original, _MARK, False)
        or not isinstance(registered, dict)
    ):
        return

    def register_converter(converter: type, type_name: str) -> None:
        old = registered.get(type_name)
        if (
            old is not None
            and _reloading.current() is not None
            and _reloading.same_def(type(old), converter)
        ):
            del registered[type_name]

            def undo() -> None:  # a failed reload puts back the converter too
                registered[type_name] = old
                with contextlib.suppress(Exception):
                    converters.get_converters.cache_clear()

            _reloading.on_failure(undo)
        original(converter, type_name)
        if old is not None:
            # The patterns that use it were compiled with the old one (refresh_caches).
            _converted_again.add(type_name)

    functools.update_wrapper(register_converter, original)
    setattr(register_converter, _MARK, True)
    setattr(converters, "register_converter", register_converter)  # noqa: B010


def _file_signals_where_served(handlers: ModuleType) -> None:
    """A process that serves Django without ``runserver`` (a gunicorn or uvicorn worker)
    starts the file signals as it makes its handler, or at its first request: a saved
    template reached no worker that had rendered it (their loaders kept the compiled
    one) until a ``.py`` save."""
    for name in ("WSGIHandler", "ASGIHandler"):
        cls = getattr(handlers, name, None)
        if isinstance(cls, type):
            # As the handler is made (a worker loading the app), or at the first request
            # of a worker forked from the process that made it (gunicorn --preload).
            wrap_method(cls, "__init__", _starting_file_signals, _MARK)
            wrap_method(cls, "__call__", _starting_file_signals, _MARK)


def _starting_file_signals(original: Callable[..., object]) -> Callable[..., object]:
    import inspect

    def start_here() -> None:
        global _signals_in
        if _signals_in == os.getpid():
            return
        with _signals_lock:
            if _signals_in == os.getpid():
                return  # (another thread of the worker's came first)
            _signals_in = os.getpid()
        from django.apps import apps

        _start_file_signals(apps)

    if inspect.iscoroutinefunction(original):
        # ``ASGIHandler.__call__``'s own parameters: called without them, it raises the
        # TypeError at once.  (uvicorn calls the app with none, to tell a factory: a
        # wrapper that took anything returned a coroutine, which uvicorn then served as
        # the app, and every request failed.)
        async def serve_async(self: object, scope: object, receive: object, send: object) -> object:
            start_here()
            return await original(self, scope, receive, send)

        return serve_async

    def serve(self: object, *args: object, **kwargs: object) -> object:
        made = original(self, *args, **kwargs)  # (a handler made first: its apps are ready)
        start_here()
        return made

    return serve


# -- caches derived from the code -----------------------------------------------


def refresh_caches(module_name: str) -> None:
    """Drop Django's URL resolvers and reset its template loaders (a post-reload hook)."""
    apps_module = sys.modules.get("django.apps")
    if apps_module is None or not apps_module.apps.ready:
        return
    from django.urls import clear_url_caches

    clear_url_caches()
    _forget_included_patterns()
    if _converted_again:
        _compile_again(set(_converted_again))
        _converted_again.clear()
    try:
        from django.template.autoreload import reset_loaders
    except ImportError:  # Django < 3.2
        return
    reset_loaders()


def _forget_included_patterns() -> None:
    """Each ``include()`` resolver reachable from the root URLconf reads its patterns again.

    Only resolvers that read theirs already: no URLconf is imported here.
    """
    from django.conf import settings
    from django.urls import URLResolver

    root = sys.modules.get(getattr(settings, "ROOT_URLCONF", None) or "")
    pending = list(getattr(root, "urlpatterns", None) or ())
    seen: set[int] = set()
    while pending:
        resolver = pending.pop()
        if not isinstance(resolver, URLResolver) or id(resolver) in seen:
            continue
        seen.add(id(resolver))
        state = vars(resolver)
        if "url_patterns" not in state:
            continue  # never read: it will read the current ones
        # What Django's cached_property and _populate() derived from the patterns.
        del state["url_patterns"]
        resolver._reverse_dict = {}
        resolver._namespace_dict = {}
        resolver._app_dict = {}
        resolver._callback_strs = set()
        resolver._populated = False
        try:
            pending.extend(resolver.url_patterns)
        except Exception:  # an URLconf left broken: Django says why on the next request
            log.debug("could not read the patterns of %r", resolver, exc_info=True)


def _compile_again(names: set[str]) -> None:
    """The path patterns reachable from the root URLconf that use one of the converters
    ``names`` (``<yyyy:year>``) take its new regex and converter: each compiled its route
    as it was made, and a pattern whose statement did not run again kept the old one."""
    from django.conf import settings
    from django.urls import URLResolver, resolvers

    uses = tuple(f"<{name}:" for name in names)
    root = sys.modules.get(getattr(settings, "ROOT_URLCONF", None) or "")
    pending = list(getattr(root, "urlpatterns", None) or ())
    seen: set[int] = set()
    while pending:
        entry = pending.pop()
        if id(entry) in seen:
            continue
        seen.add(id(entry))
        pattern = getattr(entry, "pattern", None)
        route = getattr(pattern, "_route", None)
        if pattern is not None and isinstance(route, str) and any(use in route for use in uses):
            with contextlib.suppress(Exception):  # a route Django itself refuses now
                made = resolvers._route_to_regex(route, getattr(pattern, "_is_endpoint", False))
                if hasattr(pattern, "_regex"):
                    setattr(pattern, "_regex", made[0])  # noqa: B010 (Django's own field)
                setattr(pattern, "converters", made[1])  # noqa: B010
                setattr(pattern, "_regex_dict", {})  # noqa: B010
                vars(pattern).pop("regex", None)  # the descriptor's compiled regex
        if isinstance(entry, URLResolver):
            with contextlib.suppress(Exception):
                pending.extend(entry.url_patterns)


# -- edits that need a restart: model fields, settings -------------------------------

# module -> {model: {field name: the field's deconstruction}} before its reload
_models_before: dict[str, dict[str, dict[str, object]]] = {}


def _model_fields(module_name: str) -> dict[str, dict[str, object]] | None:
    """The fields of each model ``module_name`` defines (``module.Model``), as migrations
    see them.

    None before Django's models are ready.
    """
    apps_module = sys.modules.get("django.apps")
    if apps_module is None or not apps_module.apps.models_ready:
        return None
    found: dict[str, dict[str, object]] = {}
    for model in apps_module.apps.get_models():
        if model.__module__ != module_name:
            continue
        meta = model._meta
        fields: dict[str, object] = {}
        for field in [*meta.local_fields, *meta.local_many_to_many]:
            try:
                fields[field.name] = field.deconstruct()[1:]
            except Exception:  # a custom field that cannot say: compared by its class
                fields[field.name] = type(field)
        found[f"{module_name}.{model.__qualname__}"] = fields
    return found


# Django's warning when a model class runs again ("Model 'shop.item' was already
# registered. Reloading models is not advised..."): the reload puts the live class
# back in the registry (see _reloading), so it says nothing true.  Only while a
# module reloads: a program's own duplicate model still gets it.
_REGISTERED_AGAIN = r"Model '[^']*' was already registered"


def _registered_again_filter() -> tuple[object, ...] | None:
    for entry in warnings.filters:
        pattern = entry[1]
        if entry[0] == "ignore" and getattr(pattern, "pattern", None) == _REGISTERED_AGAIN:
            return entry
    return None


def _quiet_model_registration(module_name: str) -> None:
    if _registered_again_filter() is None:
        warnings.filterwarnings("ignore", _REGISTERED_AGAIN, RuntimeWarning)


def _loud_model_registration(*_: object) -> None:
    entry = _registered_again_filter()
    if entry is not None:
        cast("list[object]", warnings.filters).remove(entry)  # a list, in fact


def remember_models(module_name: str) -> None:
    """Note the fields of the models of ``module_name`` (a pre-reload hook)."""
    _models_before.pop(module_name, None)
    fields = _model_fields(module_name)
    if fields is not None:
        _models_before[module_name] = fields


# (module, an AppConfig's qualified name) -> the code of the ready() that ran at start-up
_ready_ran: dict[tuple[str, str], CodeType] = {}


def remember_ready(module_name: str) -> None:
    """Note the code of the ``ready()`` of each app config of ``module_name`` that ran (a
    pre-reload hook; once, as it ran as Django started)."""
    apps_module = sys.modules.get("django.apps")
    if apps_module is None or not apps_module.apps.ready:
        return
    for config in apps_module.apps.get_app_configs():
        cls = type(config)
        key = (module_name, cls.__qualname__)
        if cls.__module__ != module_name or key in _ready_ran:
            continue
        code = getattr(cls.__dict__.get("ready"), "__code__", None)
        if isinstance(code, CodeType):
            _ready_ran[key] = code


# The methods of a middleware that Django looks for once, as it loads the middleware.
_MIDDLEWARE_HOOKS = ("process_view", "process_exception", "process_template_response")
# module -> {a middleware class's name in it: the hooks it had} before its reload
_hooks_before: dict[str, dict[str, frozenset[str]]] = {}


def _middleware_hooks(module_name: str) -> dict[str, frozenset[str]] | None:
    """The hooks each middleware class of ``settings.MIDDLEWARE`` in ``module_name`` has."""
    conf = sys.modules.get("django.conf")
    module = sys.modules.get(module_name)
    if conf is None or module is None or not conf.settings.configured:
        return None
    found: dict[str, frozenset[str]] = {}
    for path in getattr(conf.settings, "MIDDLEWARE", None) or ():
        where, _, name = str(path).rpartition(".")
        if where == module_name:
            cls = module.__dict__.get(name)
            if isinstance(cls, type):
                found[name] = frozenset(h for h in _MIDDLEWARE_HOOKS if hasattr(cls, h))
    return found


def remember_middleware_hooks(module_name: str) -> None:
    """Note the hooks of the middleware classes of ``module_name`` (a pre-reload hook)."""
    _hooks_before.pop(module_name, None)
    hooks = _middleware_hooks(module_name)
    if hooks:
        _hooks_before[module_name] = hooks


def _middleware_edits(module_name: str) -> list[str]:
    """The middleware classes of ``module_name`` that gained or lost a hook."""
    before = _hooks_before.pop(module_name, None)
    after = _middleware_hooks(module_name)
    if not before or after is None:
        return []
    edits = []
    for name, hooks in before.items():
        now = after.get(name, hooks)
        for verb, changed in (("gained", now - hooks), ("lost", hooks - now)):
            if changed:
                edits.append(f"{module_name}.{name} {verb} {', '.join(sorted(changed))}")
    return edits


def _ready_edits(module_name: str) -> list[tuple[str, str]]:
    """The app configs of ``module_name`` whose ``ready()`` does something else now than
    the one that ran: (``module.Config.ready()``, ``file:line``)."""
    module = sys.modules.get(module_name)
    found = []
    for (name, qualname), ran in _ready_ran.items():
        if name != module_name or module is None:
            continue
        cls: object = module
        for part in qualname.split("."):
            cls = getattr(cls, part, None)
        code = getattr(getattr(cls, "ready", None), "__code__", None)
        steps = _reloading.own_steps
        if isinstance(code, CodeType) and steps(code) != steps(ran):
            found.append(
                (f"{module_name}.{qualname}.ready()", f"{code.co_filename}:{code.co_firstlineno}")
            )
    return found


def _differs(old: object, new: object) -> bool:
    try:
        return bool(old != new)
    except Exception:  # a value that cannot be compared: taken as changed
        return True


# The settings module's settings (its upper-case names) before its reload.
_settings_before: dict[str, dict[str, object]] = {}


def _settings_of(module_name: str) -> dict[str, object] | None:
    module = sys.modules.get(module_name)
    if module is None:
        return None
    return {name: value for name, value in list(vars(module).items()) if name.isupper()}


def remember_settings(module_name: str) -> None:
    """Note the settings of the settings module, before its reload (a pre-reload hook)."""
    if module_name == os.environ.get("DJANGO_SETTINGS_MODULE"):
        before = _settings_of(module_name)
        if before is not None:
            _settings_before[module_name] = before


def _settings_edits(module_name: str) -> list[str]:
    """The settings that the new code of the settings module gained, lost or changed
    (none for a comment or a helper function edited: Django reads upper-case names)."""
    before = _settings_before.pop(module_name, None)
    after = _settings_of(module_name)
    if before is None or after is None:
        # Nothing ran (blank lines added at its end: no statement moved, no pre-reload
        # hook was called): no setting changed.
        return []
    return sorted(
        name
        for name in before.keys() | after.keys()
        if name not in before or name not in after or _differs(before[name], after[name])
    )


# module -> {name: the application object} of ``WSGI_APPLICATION``/``ASGI_APPLICATION``
# that the module defines, before its reload.
_applications_before: dict[str, dict[str, object]] = {}


def _applications_in(module_name: str) -> dict[str, object]:
    """The applications the settings name (``mysite.wsgi.application``) that
    ``module_name`` defines: what a server loaded at start-up, by name."""
    conf = sys.modules.get("django.conf")
    module = sys.modules.get(module_name)
    if conf is None or module is None or not conf.settings.configured:
        return {}
    found = {}
    for setting in ("WSGI_APPLICATION", "ASGI_APPLICATION"):
        path = getattr(conf.settings, setting, None)
        owner, _, name = path.rpartition(".") if isinstance(path, str) else ("", "", "")
        if owner == module_name and name in vars(module):
            found[name] = vars(module)[name]
    return found


def remember_application(module_name: str) -> None:
    """Note the applications ``module_name`` defines for the server (a pre-reload hook)."""
    found = _applications_in(module_name)
    if found:
        _applications_before[module_name] = found


def check_edit(hmr: HMR, module_name: str) -> None:
    """Refuse the edit of the settings module, or of a model's fields (a refusal check)."""
    before = _applications_before.pop(module_name, {})
    now = _applications_in(module_name)
    for name, application in before.items():
        if name in now and now[name] is not application:
            # Wrapped in a middleware, say: the server serves the one it loaded.
            hmr.refuse(
                DJANGO_APPLICATION,
                f"{module_name}.{name} is a new application",
                "the server serves the one it loaded at start-up",
                module=module_name,
            )
    if module_name == os.environ.get("DJANGO_SETTINGS_MODULE"):
        conf = sys.modules.get("django.conf")
        edits = _settings_edits(module_name)
        if conf is not None and conf.settings.configured and edits:
            hmr.refuse(
                DJANGO_SETTINGS,
                f"{module_name} changed {', '.join(edits)}",
                "Django read its settings at start-up",
                module=module_name,
            )
    for edit in _model_edits(module_name):
        hmr.refuse(
            DJANGO_MODEL_FIELDS,
            edit,
            "a migration may be needed (manage.py makemigrations)",
            module=module_name,
        )
    for edit in _middleware_edits(module_name):
        hmr.refuse(
            DJANGO_MIDDLEWARE,
            edit,
            "Django collected the middleware's hooks as it loaded it",
            module=module_name,
        )
    for ready, where in _ready_edits(module_name):
        from ..reload.refusals import Refusal

        hmr.reloader.refuse(
            Refusal(
                DJANGO_APP_READY,
                module_name,
                f"{ready} ran as Django started; its change",
                "it does not run again, and what it sets up now applies at a restart",
                location=where,
            )
        )


def _model_edits(module_name: str) -> list[str]:
    """What the new code of ``module_name`` changed in its models' fields."""
    before = _models_before.pop(module_name, None)
    after = _model_fields(module_name)
    if before is None or after is None:
        return []
    edits: list[str] = []
    for label, fields in after.items():
        old = before.get(label)
        if old is None:
            edits.append(f"{label} is a new model")
            continue
        gained = [name for name in fields if name not in old]
        lost = [name for name in old if name not in fields]
        changed = [name for name in fields if name in old and _differs(old[name], fields[name])]
        for verb, names in (("gained", gained), ("lost", lost), ("changed", changed)):
            if names:
                edits.append(f"{label} {verb} {', '.join(names)}")
    return edits


# -- the non-Python files Django's reloader watched -------------------------------


def _matches(relative: PurePath, pattern: str) -> bool:
    """Does a path below a watched folder match a ``watch_dir`` glob like ``**/*.mo``?"""
    parts = pattern.split("/")
    names = relative.parts
    if parts[0] == "**":
        parts = parts[1:]
        if len(names) < len(parts):
            return False
        names = names[len(names) - len(parts) :]
    elif len(names) != len(parts):
        return False
    return all(fnmatch.fnmatchcase(name, part) for name, part in zip(names, parts, strict=True))


class FileSignals:
    """The part of Django's reloader that other code talks to, without the restart.

    ``autoreload_started`` receivers call :meth:`watch_dir` (or
    :meth:`watch_file`); a change of such a file sends ``file_changed``.  When
    no receiver handles it (returns True), Django would have restarted: we
    say that a restart applies the change.
    """

    def __init__(self) -> None:
        self.directory_globs: dict[Path, set[str]] = {}
        self.extra_files: set[Path] = set()
        self._observer: BaseObserver | None = None
        self._stopped = False
        self._lock = threading.Lock()
        self._warned: set[Path] = set()

    def watch_dir(self, path: str | os.PathLike[str], glob: str) -> None:
        """Watch the files under ``path`` that match ``glob`` (Django's reloader API)."""
        self.directory_globs.setdefault(Path(path).absolute(), set()).add(glob)

    def watch_file(self, path: str | os.PathLike[str]) -> None:
        """Watch one more file (Django's reloader API)."""
        self.extra_files.add(Path(path).absolute())

    def run_when_ready(self, apps: _Apps) -> None:
        """Wait for Django's apps, collect what the receivers watch, and start watching."""
        apps.ready_event.wait()
        try:
            # As Django's reloader does: the URLconf imports the views, which
            # import what connects the receivers (template loaders...).
            from django.urls import get_resolver

            get_resolver().urlconf_module  # noqa: B018
        except Exception:
            log.debug("the URLconf did not import; the server will say why", exc_info=True)
        from django.utils.autoreload import autoreload_started

        autoreload_started.send(sender=self)
        self.start()

    def start(self) -> None:
        """Watch the folders named so far (a daemon watchdog observer)."""
        from watchdog.observers import Observer

        folders: dict[Path, bool] = {}
        for folder, globs in self.directory_globs.items():
            recursive = any(glob.startswith("**") for glob in globs)
            folders[folder] = folders.get(folder, False) or recursive
        for path in self.extra_files:
            folders.setdefault(path.parent, False)
        observer = Observer()
        observer.daemon = True
        # Duck-typed: watchdog calls only its dispatch().
        handler = cast("FileSystemEventHandler", _Handler(self))
        watched = []
        for folder, recursive in folders.items():
            if folder.is_dir():
                observer.schedule(handler, str(folder), recursive=recursive)
                watched.append(folder)
        with self._lock:
            if self._stopped:
                return
            observer.start()
            self._observer = observer
        for folder in watched:  # (said once its saves are seen)
            log.debug("watching %s for Django", folder)

    def stop(self) -> None:
        """Stop watching (also before :meth:`start`)."""
        with self._lock:
            self._stopped = True
            if self._observer is not None:
                self._observer.stop()
                self._observer = None

    def is_watched(self, path: Path) -> bool:
        """Did a receiver ask for this file?"""
        if path in self.extra_files:
            return True
        for folder, globs in self.directory_globs.items():
            if folder in path.parents:
                relative = path.relative_to(folder)
                if any(_matches(relative, glob) for glob in globs):
                    return True
        return False

    def changed(self, path: Path) -> None:
        """Tell Django's ``file_changed`` receivers about a watched file."""
        if path.suffix in (".py", ".pyc") or not self.is_watched(path):
            return  # Python files are the HMR watcher's
        from django.utils.autoreload import file_changed

        results = file_changed.send(sender=self, file_path=path)
        if any(handled for _receiver, handled in results):
            log.debug("Django refreshed what it derived from %s", path)
        elif path not in self._warned:
            self._warned.add(path)
            log.warning("%s changed; Django applies it only when the server restarts", path)


# watchdog also reports files opened and closed without a write: a template
# read by the loader must not reset the loader.
_WRITES = frozenset({"created", "modified", "moved", "deleted", "closed"})


class _Handler:
    """The watchdog event handler: every path a write event names."""

    def __init__(self, signals: FileSignals) -> None:
        self.signals = signals

    def dispatch(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in _WRITES:
            return
        for attr in ("src_path", "dest_path"):
            path = getattr(event, attr, "")
            if isinstance(path, bytes):
                path = os.fsdecode(path)
            if path:
                try:
                    self.signals.changed(Path(path))
                except Exception:
                    log.exception("Django's file_changed receivers failed for %s", path)
