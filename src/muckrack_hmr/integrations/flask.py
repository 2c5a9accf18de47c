"""Flask under HMR: routes added, edited or removed in a reload change the app's ``url_map``.

Flask protects its tables once the app has served a request (and a
blueprint once it is registered): ``@app.route`` then raises "The setup
method 'route' can no longer be called".  The guard is lifted only for our
reload, on the thread that runs it, while a module's new code runs (see
``_reloading``); it stays in force for everyone else.  During a reload:

* a route declared on a blueprint that is registered already reaches each
  app it was registered with, as it would have at registration;
* a ``def`` whose route decorator ran again (its path or methods changed)
  takes the place of its old rules, under the same endpoint, instead of
  failing on Flask's "View function mapping is overwriting an existing
  endpoint function";
* after the reload, the rules of a view whose ``def`` the edit removed go;
* any other setup method (a hook, an error handler, a template filter) is
  refused by name (``flask setup``): its table appends, so a restart applies it;
* a statement that made a new app in place of one that served requests
  (``app = create_app()`` run again because the config or a setup function it
  calls changed) is refused (``flask app``): the server goes on serving the app
  it loaded, with the config and extensions set up then, and the new one would
  serve nothing; so is one that made a new blueprint in place of one an app
  registered (``flask blueprint``): the app's routes come through the old one;
* an edit of what a function that set up an app once, as the program started
  (an app factory, an ``init(app)``), does itself is refused (``flask setup``):
  it does not run again.  The bodies of the hooks and views it made (closures)
  are patched as any function's.

If the module's reload fails, the app's tables are put back as they were.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import operator
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType, FrameType, ModuleType
from typing import TYPE_CHECKING

from . import _reloading
from ._imports import when_imported, wrap_method

if TYPE_CHECKING:
    from typing import Protocol

    from ..api import HMR

    # Flask's and werkzeug's objects, as far as this module uses them.
    class _Rule(Protocol):
        endpoint: str
        build_only: bool

        def build_compare_key(self) -> tuple[int, int, int]: ...

    class _Matcher(Protocol):
        def add(self, rule: _Rule) -> None: ...

        def update(self) -> None: ...

    class _Lock(Protocol):
        def __enter__(self) -> object: ...

        def __exit__(self, *exc: object) -> None: ...

    class _Map(Protocol):
        _rules_by_endpoint: dict[str, list[_Rule]]
        _matcher: _Matcher
        _remap: bool
        _remap_lock: _Lock
        merge_slashes: bool

    class _App(Protocol):
        url_map: _Map
        view_functions: dict[str, Callable[..., object]]
        _got_first_request: bool

    class _Blueprint(Protocol):
        name: str
        deferred_functions: list[Callable[[object], None]]
        _got_registered_once: bool


__all__ = [
    "FLASK_APP",
    "FLASK_BLUEPRINT",
    "FLASK_SETUP",
    "check_served_apps",
    "check_setup_functions",
    "drop_repeated_declarations",
    "enable",
    "forget_removed_views",
    "remember_served_apps",
    "remember_views",
]

log = logging.getLogger(__name__)

_MARK = "__muckrack_hmr__"

_apps: weakref.WeakSet[_App] = weakref.WeakSet()
# Flask's app class (once Flask is imported), told apart by type alone: a module may hold a
# werkzeug proxy (``current_app``), which answers for the app of the current context.
_app_class: list[type] = []
# Flask's Blueprint class, once flask.sansio.blueprints is imported.
_blueprint_class: list[type] = []
# module -> its top-level names bound to apps that served requests, to blueprints and
# extensions such an app uses, before its reload
_served: dict[str, dict[str, object]] = {}
# Each blueprint's setup states, one per registration: a route declared after
# the registration is applied to them.
_states: weakref.WeakKeyDictionary[_Blueprint, list[object]] = weakref.WeakKeyDictionary()
# The setup functions blueprint routes recorded, and the view each one adds.
_recorded: weakref.WeakKeyDictionary[Callable[[object], None], Callable[..., object]] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class _View:
    """A view that a top-level ``def`` of the reloading module made, served under ``endpoint``."""

    app: _App
    endpoint: str
    function: Callable[..., object]
    name: str


# module -> its views before its reload began
_before: dict[str, list[_View]] = {}
# The views a ``def``'s own decorator registered (``@app.route``, ``@bp.route``): not a
# statement after it (``app.add_url_rule("/b", view_func=b)``).
_by_their_def: weakref.WeakSet[Callable[..., object]] = weakref.WeakSet()
# (app id, endpoint) registered during the reload in progress on this thread's module.
_registered_now: set[tuple[int, str]] = set()


def _note_registration(view: Callable[..., object]) -> None:
    """``view`` is being registered: by its def's decorator when the def has not bound
    its name to it yet (the decorators run before the name is bound), or when a reload
    runs the def again with the live function (see reload.live_defs)."""
    name = getattr(view, "__name__", None)
    module = sys.modules.get(getattr(view, "__module__", None) or "")
    if module is None or not isinstance(name, str):
        return
    if vars(module).get(name) is not view or _reloading.made_again(view, view):
        with contextlib.suppress(TypeError):  # (not weakly referable)
            _by_their_def.add(view)


def enable(hmr: HMR) -> None:
    """Let reloads change Flask's routes (when Flask is imported)."""
    _reloading.enable(hmr)
    when_imported("flask.sansio.app", _wrap_app)
    when_imported("flask.sansio.blueprints", _wrap_blueprint)
    hmr.add_pre_reload_hook(remember_views)
    hmr.add_post_reload_hook(forget_removed_views)
    hmr.add_post_reload_hook(drop_repeated_declarations)
    hmr.add_pre_reload_hook(remember_served_apps)
    hmr.add_refusal_check(functools.partial(check_served_apps, hmr))
    hmr.add_refusal_check(functools.partial(check_setup_functions, hmr))
    when_imported("flask.config", _wrap_config)
    hmr.add_pre_reload_hook(remember_config_sources)
    hmr.add_post_reload_hook(follow_config_sources)


def _wrap(
    cls: type, name: str, make: Callable[[Callable[..., object]], Callable[..., object]]
) -> None:
    wrap_method(cls, name, make, _MARK)


# The setup methods that declare routes (and blueprints, which carry routes).  Others
# (before_request, errorhandler...) keep the guard: their registries append, and a
# def whose decorator ran again would be called twice.
_ROUTING = frozenset(
    {
        "add_url_rule",
        "route",
        "get",
        "post",
        "put",
        "delete",
        "patch",
        "record",
        "register_blueprint",
    }
)


#: The refusal of a setup method that is not a route (a hook, an error handler, a
#: template filter...) declared again once the app served requests.
FLASK_SETUP = "flask setup"
# Where Flask keeps what those setup methods declare: a table put back as it was
# when the edit is refused.
_SETUP_TABLES = (
    "before_request_funcs",
    "after_request_funcs",
    "teardown_request_funcs",
    "template_context_processors",
    "url_value_preprocessors",
    "url_default_functions",
    "error_handler_spec",
    "teardown_appcontext_funcs",
    "shell_context_processors",
)


def _lifted(original: Callable[..., object]) -> Callable[..., object]:
    def _check_setup_finished(self: object, f_name: str) -> None:
        # The guard holds outside our reloads, and is lifted for routes.
        if _reloading.current() is None:
            original(self, f_name)
            _note_setup_function(self)
            return
        if f_name in _ROUTING:
            return
        if _declared_again(self, f_name):
            # A def that ran again (its signature or decorator's arguments edited)
            # declares its live function, which the table holds already: no new
            # setup.  Appended all the same, it is taken out at the reload's end (it
            # was called twice a request: in Flask before the first request, in
            # Quart, which never closes its setup, always).
            return
        try:
            original(self, f_name)
        except AssertionError:
            # Its table appends: a second run would call a hook twice, and what
            # a blueprint's registration copied is not declared again.  A restart
            # applies it: refused by name (--restart-on-refused restarts), and
            # the table is put back with the rest of the edit.
            refused = _reloading.kept(("setup", id(self)), lambda: _undo_setup(self))
            if refused is None:
                raise
            # Once per decorator: not again for the setup methods it calls.
            said = _OUTER.get(f_name) in refused or (f_name in _CALLED_BY_OTHERS and bool(refused))
            if not said and not _reloading.refuse(FLASK_SETUP, _setup_what(self, f_name)):
                raise
            refused.add(f_name)

    return _check_setup_finished


# The setup methods that append a function to a table of the app's or blueprint's own.
_APPENDED_TO = {
    "before_request": "before_request_funcs",
    "after_request": "after_request_funcs",
    "teardown_request": "teardown_request_funcs",
    "context_processor": "template_context_processors",
    "url_value_preprocessor": "url_value_preprocessors",
    "url_defaults": "url_default_functions",
    "teardown_appcontext": "teardown_appcontext_funcs",
    "shell_context_processor": "shell_context_processors",
}
# Apps and blueprints a def that ran again declared its function on again, and in which
# of their tables (see _lifted).
_repeated: weakref.WeakKeyDictionary[object, set[str]] = weakref.WeakKeyDictionary()


def _lists_of(scaffold: object, attr: str) -> list[list[object]]:
    """The lists of functions ``scaffold``'s setup table ``attr`` holds."""
    table = getattr(scaffold, attr, None)
    if isinstance(table, list):
        return [table]
    if isinstance(table, dict):
        return [value for value in table.values() if isinstance(value, list)]
    return []


def _declared_again(scaffold: object, f_name: str) -> bool:
    """Does the setup method being called (``before_request(f)``...) declare a function
    its table holds already (a def that ran again: its live function)?  Read from the
    call's own frame: Flask's ``setupmethod`` asks its guard before it calls the method."""
    attr = _APPENDED_TO.get(f_name)
    if attr is None:
        return False
    frame: FrameType | None = sys._getframe(2)
    for _ in range(3):
        if frame is None:
            return False
        given = frame.f_locals.get("args") if frame.f_locals.get("self") is scaffold else None
        if isinstance(given, tuple):
            held = {id(each) for table in _lists_of(scaffold, attr) for each in table}
            if not any(callable(each) and id(each) in held for each in given):
                return False
            with contextlib.suppress(TypeError):  # (not weakly referable)
                _repeated.setdefault(scaffold, set()).add(attr)
            return True
        frame = frame.f_back
    return False


def drop_repeated_declarations(name: str) -> None:
    """After the reload of ``name`` (a post-reload hook): a function a table holds twice,
    declared again by a def that ran again, is held once (where it was first)."""
    for scaffold, attrs in list(_repeated.items()):
        for attr in attrs:
            for table in _lists_of(scaffold, attr):
                seen: set[int] = set()
                kept: list[object] = []
                for each in table:
                    if id(each) not in seen:
                        seen.add(id(each))
                        kept.append(each)
                if len(kept) != len(table):
                    table[:] = kept
    _repeated.clear()


# -- a factory's setup (``create_app()``, ``init(app)``) ------------------------------------


@dataclass
class _SetupFunction:
    """A function that set up apps or blueprints as it ran: the code it ran, and what."""

    code: CodeType
    scaffolds: weakref.WeakSet[object]


# (file, qualified name) of a function that called setup methods -> what it ran and set up.
_setup_functions: dict[tuple[str, str], _SetupFunction] = {}


def _note_setup_function(scaffold: object) -> None:
    """Note the project function whose statements called a setup method of ``scaffold``
    (an app factory, an ``init(app)``): not the module's top level, which a reload runs."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith(_SETUP_CALLERS):
        frame = frame.f_back
    if frame is None or frame.f_code.co_name == "<module>":
        return
    code = frame.f_code
    key = (code.co_filename, getattr(code, "co_qualname", code.co_name))
    noted = _setup_functions.get(key)
    if noted is None:
        noted = _setup_functions[key] = _SetupFunction(code, weakref.WeakSet())
    with contextlib.suppress(TypeError):
        noted.scaffolds.add(scaffold)


# Modules whose frames stand between a setup method and the code that called it.
_SETUP_CALLERS = ("flask.", "werkzeug.", "muckrack_hmr.")


def check_setup_functions(hmr: HMR, name: str) -> None:
    """Refuse the edit of ``name`` if it changed what a function that set up an app or a
    blueprint once, as the program started, does itself (a refusal check): that function
    does not run again, and its new setup would never apply.  A function that set up
    several (a factory a test suite calls for each test) runs again: its edit applies."""
    module = sys.modules.get(name)
    filename = getattr(module, "__file__", None)
    if module is None or not isinstance(filename, str):
        return
    for (path, qualname), noted in list(_setup_functions.items()):
        if path != filename or len(noted.scaffolds) != 1:
            continue
        function: object = module
        for part in qualname.split("."):
            function = getattr(function, part, None)
        code = getattr(function, "__code__", None)
        steps = _reloading.own_steps
        if isinstance(code, CodeType) and steps(code) != steps(noted.code):
            from ..reload.refusals import Refusal

            reloader = hmr.reloader
            line = _reloading.own_change_at(
                reloader.sources.ran(name), reloader.applying(name), qualname
            )
            hmr.reloader.refuse(
                Refusal(
                    FLASK_SETUP,
                    name,
                    f"{name}.{qualname}() set up the app as the program started; its change",
                    "it does not run again, and its new setup applies at a restart",
                    location=f"{filename}:{line or code.co_firstlineno}",
                )
            )
            return


def _setup_what(scaffold: object, f_name: str) -> str:
    name = getattr(scaffold, "name", "?")
    if hasattr(scaffold, "url_map"):
        return f"@{f_name} on app {name!r} after it served requests"
    return f"@{f_name} on blueprint {name!r} after its registration"


# Setup methods that a decorator of another one calls: one declaration.
_OUTER = {
    "register_error_handler": "errorhandler",
    "add_template_filter": "template_filter",
    "add_template_global": "template_global",
    "add_template_test": "template_test",
    "add_app_template_filter": "app_template_filter",
    "add_app_template_global": "app_template_global",
    "add_app_template_test": "app_template_test",
}
# ... and the one every app-wide declaration of a blueprint calls (``before_app_request``,
# ``app_errorhandler``...): refused by name only when nothing else was.
_CALLED_BY_OTHERS = frozenset({"record_once"})


def _undo_setup(scaffold: object) -> set[str]:
    """Once per reload and app or blueprint: its setup tables, put back if the edit does
    not apply; the setup methods refused so far (none yet)."""
    tables = (getattr(scaffold, table, None) for table in _SETUP_TABLES)
    saved = [_snapshot(table) for table in tables if table is not None]
    environment = vars(scaffold).get("jinja_env")  # made at the first template
    if environment is not None:
        saved += [_snapshot(environment.filters), _snapshot(environment.globals)]
        saved.append(_snapshot(environment.tests))

    def undo() -> None:
        for snapshot in saved:
            _restore(snapshot)

    _reloading.on_failure(undo)
    return set()


_Snapshot = tuple[object, object]


def _snapshot(value: object) -> _Snapshot:
    """``value`` and, for a dict or a list, its content (nested ones too), to put back."""
    if isinstance(value, dict):
        return value, {key: _snapshot(item) for key, item in value.items()}
    if isinstance(value, list):
        return value, list(value)
    return value, None


def _restore(snapshot: _Snapshot) -> object:
    """Put each dict and list of a :func:`_snapshot` back as it was, in place."""
    value, saved = snapshot
    if isinstance(value, dict) and isinstance(saved, dict):
        value.clear()
        for key, item in saved.items():
            value[key] = _restore(item)
    elif isinstance(value, list) and isinstance(saved, list):
        value[:] = saved
    return value


def _wrap_app(module: ModuleType) -> None:
    cls = module.App
    _app_class[:] = [cls]

    def init(original: Callable[..., object]) -> Callable[..., object]:
        def __init__(self: _App, *args: object, **kwargs: object) -> None:
            original(self, *args, **kwargs)
            _apps.add(self)
            # Jinja checks a template's file before using it only in debug mode (by
            # default): a saved template would show only after a restart.  Unless the
            # program said otherwise, it checks here.
            config = getattr(self, "config", None)
            if isinstance(config, dict) and config.get("TEMPLATES_AUTO_RELOAD") is None:
                config["TEMPLATES_AUTO_RELOAD"] = True

        return __init__

    def add_rule(original: Callable[..., object]) -> Callable[..., object]:
        def add_url_rule(
            self: _App,
            rule: str,
            endpoint: str | None = None,
            view_func: Callable[..., object] | None = None,
            *args: object,
            **kwargs: object,
        ) -> None:
            if view_func is not None:
                _note_registration(view_func)
                if _reloading.current() is not None:
                    key = endpoint if endpoint is not None else getattr(view_func, "__name__", "")
                    _registered_now.add((id(self), str(key)))
            before = _keep_for_undo(self)
            if before is not None and view_func is not None:
                key = endpoint if endpoint is not None else getattr(view_func, "__name__", None)
                stale = _stale_endpoints(self, before, key, view_func)
                if stale:
                    # Its decorator ran again: the new rule replaces the old ones, with no
                    # moment between where a request to it finds no rule (a 404 under
                    # load) or a rule and no view.  The old rules serve the new view until
                    # the new rule is in, then go, in one swap of the matcher.
                    old = _rules_of(self, stale)
                    if key in stale:
                        self.view_functions[key] = view_func
                    original(self, rule, endpoint, view_func, *args, **kwargs)
                    _drop_rules(self, old, [e for e in stale if e != key])
                    log.debug("Flask endpoint %s made again", key)
                    return
            original(self, rule, endpoint, view_func, *args, **kwargs)

        return add_url_rule

    def register(original: Callable[..., object]) -> Callable[..., object]:
        def register_blueprint(self: _App, blueprint: object, **options: object) -> None:
            # (As Flask names the registration: ``name_prefix.name``.)
            own = options.get("name") or getattr(blueprint, "name", "")
            name = f"{options.get('name_prefix') or ''}.{own}".lstrip(".")
            blueprints = getattr(self, "blueprints", {})
            if (
                _reloading.current() is not None
                and isinstance(blueprints, dict)
                and blueprints.get(name) is blueprint
                and _reloading.refuse(
                    FLASK_SETUP,
                    f"app.register_blueprint of blueprint {name!r} again (other options)",
                    "Flask registers a blueprint once: its routes stay as first registered "
                    "until a restart",
                )
            ):
                return  # (refused: nothing of the edit applies)
            original(self, blueprint, **options)

        return register_blueprint

    _wrap(cls, "__init__", init)
    _wrap(cls, "add_url_rule", add_rule)
    _wrap(cls, "_check_setup_finished", _lifted)
    _wrap(cls, "register_blueprint", register)


def _wrap_blueprint(module: ModuleType) -> None:
    cls = module.Blueprint
    _blueprint_class[:] = [cls]

    def make_state(original: Callable[..., object]) -> Callable[..., object]:
        def make_setup_state(self: _Blueprint, *args: object, **kwargs: object) -> object:
            state = original(self, *args, **kwargs)
            _states.setdefault(self, []).append(state)
            return state

        return make_setup_state

    def record(original: Callable[..., object]) -> Callable[..., object]:
        def record(self: _Blueprint, func: Callable[[object], None]) -> None:
            registered = self._got_registered_once
            _keep_recorded_for_undo(self)
            original(self, func)
            if registered and _reloading.current() is not None:
                # Declared after the registration: applied to it now, as then.
                for state in list(_states.get(self, ())):
                    func(state)

        return record

    def add_rule(original: Callable[..., object]) -> Callable[..., object]:
        def add_url_rule(
            self: _Blueprint,
            rule: str,
            endpoint: str | None = None,
            view_func: Callable[..., object] | None = None,
            *args: object,
            **kwargs: object,
        ) -> None:
            functions = self.deferred_functions
            if (
                _reloading.current() is not None
                and view_func is not None
                and _reloading.defined_at_top(view_func, getattr(view_func, "__module__", ""))
            ):
                # The setup of the def's old rule goes: a later registration of
                # the blueprint must not add it back.
                _keep_recorded_for_undo(self)
                _forget_recorded(self, lambda old: _reloading.made_again(old, view_func))
            before = len(functions)
            if view_func is not None:
                _note_registration(view_func)
            original(self, rule, endpoint, view_func, *args, **kwargs)
            if view_func is not None:
                for func in functions[before:]:
                    _recorded[func] = view_func

        return add_url_rule

    _wrap(cls, "make_setup_state", make_state)
    _wrap(cls, "record", record)
    _wrap(cls, "add_url_rule", add_rule)
    _wrap(cls, "_check_setup_finished", _lifted)


def _keep_recorded_for_undo(blueprint: _Blueprint) -> None:
    """Once per reload and blueprint: its setup functions, put back if the reload fails."""
    _reloading.kept(("deferred", id(blueprint)), lambda: _undo_recorded(blueprint))


def _undo_recorded(blueprint: _Blueprint) -> bool:
    functions = blueprint.deferred_functions
    saved = list(functions)

    def undo() -> None:
        functions[:] = saved

    _reloading.on_failure(undo)
    return True


def _forget_recorded(blueprint: _Blueprint, which: Callable[[Callable[..., object]], bool]) -> None:
    functions = blueprint.deferred_functions
    kept = [func for func in functions if not (func in _recorded and which(_recorded[func]))]
    if len(kept) != len(functions):
        functions[:] = kept


# -- the app's tables ------------------------------------------------------------------


def _keep_for_undo(app: _App) -> dict[str, Callable[..., object]] | None:
    """Once per reload and app: its tables as they are, put back if the reload fails.

    The views as they were before the reload; None outside a reload.
    """
    return _reloading.kept(("app", id(app)), lambda: _undo_tables(app))


def _stale_endpoints(
    app: _App,
    before: dict[str, Callable[..., object]],
    endpoint: object,
    view: Callable[..., object],
) -> list[str]:
    """The endpoints the old function of ``view``'s def served, before this reload.

    The one of the same name always; others only for a top-level ``def`` (a
    factory's views share a def, and each is registered by its own statement).
    """
    top_level = _reloading.defined_at_top(view, getattr(view, "__module__", "")) is not None
    return [
        key
        for key, old in before.items()
        if (key == endpoint or top_level)
        and app.view_functions.get(key) is old
        and _reloading.made_again(old, view)
    ]


def _undo_tables(app: _App) -> dict[str, Callable[..., object]]:
    views = dict(app.view_functions)
    rules = {endpoint: list(rules) for endpoint, rules in app.url_map._rules_by_endpoint.items()}

    def undo() -> None:
        app.view_functions.clear()
        app.view_functions.update(views)
        _set_rules(app.url_map, rules)

    _reloading.on_failure(undo)
    return views


def _set_rules(url_map: _Map, rules: dict[str, list[_Rule]]) -> None:
    """Make ``rules`` the map's rules: werkzeug's matcher has no removal, so a new one."""
    matcher = type(url_map._matcher)(url_map.merge_slashes)  # type: ignore[call-arg]
    for endpoint_rules in rules.values():
        endpoint_rules.sort(key=lambda rule: rule.build_compare_key())
        for rule in endpoint_rules:
            if not rule.build_only:
                matcher.add(rule)
    matcher.update()  # sorted before any request sees it
    with url_map._remap_lock:
        url_map._rules_by_endpoint = rules
        url_map._matcher = matcher
        url_map._remap = True


def _drop_rules(app: _App, gone: list[_Rule], endpoints: list[str]) -> None:
    """Take the rules ``gone`` out of the app's ``url_map``, then the views of ``endpoints``."""
    ids = {id(rule) for rule in gone}
    rules = {}
    for endpoint, kept in app.url_map._rules_by_endpoint.items():
        left = [rule for rule in kept if id(rule) not in ids]
        if left:
            rules[endpoint] = left
    _set_rules(app.url_map, rules)
    for endpoint in endpoints:
        app.view_functions.pop(endpoint, None)


def _rules_of(app: _App, endpoints: list[str]) -> list[_Rule]:
    """The rules of ``endpoints`` in the app's ``url_map``."""
    by_endpoint = app.url_map._rules_by_endpoint
    return [rule for endpoint in endpoints for rule in by_endpoint.get(endpoint, ())]


def _drop_endpoints(app: _App, endpoints: list[str]) -> None:
    """Take the rules of ``endpoints`` out of the app's ``url_map``, and their views."""
    _drop_rules(app, _rules_of(app, endpoints), endpoints)


# -- config read from a module: app.config.from_object("webapp.config") ------------------


@dataclass
class _ConfigSource:
    """An app's config filled from a module's (or a class of a module's) upper-case names."""

    config: weakref.ref[dict[str, object]]
    module: str
    path: tuple[str, ...]  # a class's names in the module, or () for the module itself
    before: dict[str, object] | None = None


_config_sources: list[_ConfigSource] = []


def _wrap_config(module: ModuleType) -> None:
    def make(original: Callable[..., object]) -> Callable[..., object]:
        def from_object(self: dict[str, object], obj: object) -> object:
            done = original(self, obj)
            with contextlib.suppress(Exception):  # (never the program's call)
                _note_config_source(self, _imported(obj) if isinstance(obj, str) else obj)
            return done

        return from_object

    _wrap(module.Config, "from_object", make)


def _imported(name: str) -> object:
    """What ``from_object`` imported by ``name`` (``"pkg.settings"``, ``"pkg.settings.Base"``,
    ``"pkg.settings:Base"``), as imported already."""
    name = name.replace(":", ".")
    found = sys.modules.get(name)
    if found is None:
        module, _, attribute = name.rpartition(".")
        found = getattr(sys.modules.get(module), attribute, None)
    return found


def _note_config_source(config: dict[str, object], source: object) -> None:
    path: tuple[str, ...]
    if isinstance(source, ModuleType):
        name, path = source.__name__, ()
    elif isinstance(source, type) and "<" not in source.__qualname__:
        name, path = source.__module__, tuple(source.__qualname__.split("."))
    else:
        return
    _config_sources[:] = [each for each in _config_sources if each.config() is not None]
    _config_sources.append(_ConfigSource(weakref.ref(config), name, path))


def _upper_names(source: _ConfigSource) -> dict[str, object] | None:
    found: object = sys.modules.get(source.module)
    for part in source.path:
        found = getattr(found, part, None)
    if found is None:
        return None
    return {key: getattr(found, key) for key in dir(found) if key.isupper()}


def remember_config_sources(name: str) -> None:
    """Note the config values an app took from ``name`` (a pre-reload hook)."""
    for source in _config_sources:
        if source.module == name:
            source.before = _upper_names(source)


def follow_config_sources(name: str) -> None:
    """The config values an app took from ``name`` (``app.config.from_object``) follow its
    edit, as after a restart, unless the program set them otherwise since (a post-reload
    hook).  Before, the reload said it applied and ``app.config`` kept the old values."""
    for source in _config_sources:
        before, source.before = source.before, None
        config = source.config()
        if source.module != name or before is None or config is None:
            continue
        after = _upper_names(source) or {}
        for key in after.keys() | before.keys():
            old, new = before.get(key, _ABSENT), after.get(key, _ABSENT)
            if old is new or config.get(key, _ABSENT) is not old:
                continue  # unchanged, or set otherwise since
            if new is _ABSENT:
                config.pop(key, None)
            else:
                config[key] = new


_ABSENT = object()


# -- an app made again ----------------------------------------------------------------------

#: The refusal of a statement that made a new app in place of one that served requests.
FLASK_APP = "flask app"
#: ... and of one that made a new blueprint in place of one an app registered.
FLASK_BLUEPRINT = "flask blueprint"
#: ... and of one that made a new extension in place of one such an app was set up with.
FLASK_EXTENSION = "flask extension"


def remember_served_apps(name: str) -> None:
    """Note ``name``'s top-level names bound to apps that served requests, and to
    blueprints an app registered (a pre-reload hook)."""
    _served.pop(name, None)
    module = sys.modules.get(name)
    if module is None or not (_app_class or _blueprint_class):
        return
    extensions = _extensions_in_use()
    held = {
        key: value
        for key, value in module.__dict__.copy().items()
        if _in_use(value) or id(value) in extensions
    }
    if held:
        _served[name] = held


def _extensions_in_use() -> set[int]:
    """The ids of the extensions the apps that served requests were set up with (what
    ``init_app`` put in ``app.extensions``, Flask-Login's ``app.login_manager``)."""
    found: set[int] = set()
    for app in list(_apps):
        if not getattr(app, "_got_first_request", False):
            continue
        extensions = getattr(app, "extensions", None)
        values = list(extensions.values()) if isinstance(extensions, dict) else []
        values.append(getattr(app, "login_manager", None))
        found.update(
            id(value)
            for value in values
            if value is not None and not isinstance(value, type | ModuleType | dict | list)
        )
    return found


def _in_use(value: object) -> bool:
    """An app that served requests, or a blueprint an app registered."""
    if _app_class and issubclass(type(value), _app_class[0]):
        return bool(getattr(value, "_got_first_request", False))
    if _blueprint_class and issubclass(type(value), _blueprint_class[0]):
        return bool(getattr(value, "_got_registered_once", False))
    return False


def check_served_apps(hmr: HMR, name: str) -> None:
    """Refuse the edit of ``name`` if its new code bound a new app where one that served
    requests was, or a new blueprint where one an app registered was (a refusal check)."""
    for key, now in _reloading.replaced(name, _served.pop(name, None)):
        if _app_class and issubclass(type(now), _app_class[0]):
            hmr.refuse(
                FLASK_APP,
                f"{name}.{key} is a new Flask app",
                "the server serves the app made at start-up, with the config and extensions "
                "set up then",
                module=name,
            )
        elif _blueprint_class and issubclass(type(now), _blueprint_class[0]):
            hmr.refuse(
                FLASK_BLUEPRINT,
                f"{name}.{key} is a new Flask blueprint",
                "the app registered the one made at start-up, and its routes reach the app "
                "through it",
                module=name,
            )
        else:
            hmr.refuse(
                FLASK_EXTENSION,
                f"{name}.{key} is a new {type(now).__name__}",
                "the app was set up with the one made at start-up (init_app), and uses it",
                module=name,
            )


# -- views whose def is gone ---------------------------------------------------------------


def remember_views(name: str) -> None:
    """Note the views of ``name``'s top-level defs, before its reload (a pre-reload hook)."""
    _before.pop(name, None)
    _registered_now.clear()
    module = sys.modules.get(name)
    if module is None or not _apps:
        return
    namespace = module.__dict__
    views = [
        _View(app, endpoint, function, defined)
        for app in list(_apps)
        for endpoint, function in list(app.view_functions.items())
        if (defined := _reloading.defined_at_top(function, name)) is not None
        and defined in namespace
    ]
    if views:
        _before[name] = views


def forget_removed_views(name: str) -> None:
    """Drop the rules of views whose def the reload of ``name`` removed (a post-reload hook)."""
    views = _before.pop(name, [])
    module = sys.modules.get(name)
    if module is None:
        return
    namespace = module.__dict__
    for view in views:
        if view.app.view_functions.get(view.endpoint) is not view.function:
            continue
        if view.name in namespace and not (
            # Its def ran again and registered it no more: the route decorator went.
            view.function in _by_their_def
            and _reloading.ran_again(view.name, view.function)
            and (id(view.app), view.endpoint) not in _registered_now
        ):
            continue
        _drop_endpoints(view.app, [view.endpoint])
        for blueprint in list(_states):
            _forget_recorded(blueprint, functools.partial(operator.is_, view.function))
        log.debug(
            "Flask endpoint %s removed: its def is gone from %s, or its route", view.endpoint, name
        )
    _registered_now.clear()
