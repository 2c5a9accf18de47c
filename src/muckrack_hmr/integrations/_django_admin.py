"""Django's admin under HMR: an edited ``admin.py`` registers its ModelAdmins again.

An app's ``admin.py`` registers each model once (``@admin.register(Item)``
on a ModelAdmin, or ``admin.site.register(Item, ItemAdmin)``), and Django
refuses a second registration (``AlreadyRegistered``).  A reload that runs
such a statement again would fail, and keep failing at every later save.

* While a module's reload runs on this thread, ``AdminSite.register``
  replaces the registration of a model that is already registered: the new
  ModelAdmin takes the old one's place; if the module's reload fails, the old
  one is put back.  A model registered twice by the same run, and every
  registration outside a reload, still meet Django's ``AlreadyRegistered``.
* A ModelAdmin class whose statement the edit removed (the module no longer
  binds its name) is unregistered after the reload.
* The admin's URL patterns were built from the registry when the project's
  URLconf read ``admin.site.urls``, and call the ModelAdmins of that time:
  after a reload that changed a site's registry, the list of patterns the
  URL resolver holds is built again, in place, so the admin pages call the
  new ModelAdmins and list the models registered now.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import TYPE_CHECKING

from . import _reloading
from ._imports import wrap_method

if TYPE_CHECKING:
    from typing import Protocol

    class _Site(Protocol):
        """Django's ``AdminSite``, as far as this module uses it."""

        name: str
        _registry: dict[type, object]

        def get_urls(self) -> list[object]: ...


__all__ = ["enable_for", "follow_registrations", "note_registrations"]

_MARK = "__muckrack_hmr__"

# Every admin site that registered a model (Django's own ``admin.site`` and
# the project's AdminSite subclasses alike).
_sites: weakref.WeakSet[_Site] = weakref.WeakSet()
# The sites whose registry a reload changed: their URL patterns are built again.
_changed: weakref.WeakSet[_Site] = weakref.WeakSet()
# module -> (site, model, the name of the module's ModelAdmin class) before its reload
_before: dict[str, list[tuple[_Site, type, str]]] = {}


def enable_for(sites: ModuleType) -> None:
    """Let reloads register models again (``when_imported("django.contrib.admin.sites")``)."""
    wrap_method(sites.AdminSite, "register", _replacing, _MARK)


def _replacing(original: Callable[..., object]) -> Callable[..., object]:
    def register(
        self: _Site, model_or_iterable: object, admin_class: object = None, **options: object
    ) -> object:
        _sites.add(self)
        if _reloading.current() is None:
            return original(self, model_or_iterable, admin_class, **options)
        from django.db.models.base import ModelBase

        models: list[type] = (
            [model_or_iterable]
            if isinstance(model_or_iterable, ModelBase)
            else list(model_or_iterable)  # type: ignore[call-overload]  # Django's iterable
        )
        # The models this run registered already: a second time is the program's error.
        seen = _reloading.kept(("django admin", id(self)), set) or set()
        registry = self._registry
        before = {model: registry.get(model) for model in models if model not in seen}

        def undo() -> None:
            for model, model_admin in before.items():
                if model_admin is None:
                    registry.pop(model, None)
                else:
                    registry[model] = model_admin

        _reloading.on_failure(undo)
        for model in before:
            registry.pop(model, None)
        try:
            result = original(self, models, admin_class, **options)
        except BaseException:
            undo()  # the program may catch it, and its reload succeed
            raise
        seen.update(models)
        _changed.add(self)
        return result

    return register


def note_registrations(module_name: str) -> None:
    """Note the models registered with the module's top-level ModelAdmins (a pre-reload hook)."""
    _before.pop(module_name, None)
    module = sys.modules.get(module_name)
    if module is None or not _sites:
        return
    namespace = module.__dict__
    _before[module_name] = [
        (site, model, defined)
        for site in list(_sites)
        for model, model_admin in list(site._registry.items())
        if (defined := _reloading.defined_at_top(type(model_admin), module_name)) is not None
        and defined in namespace
    ]


def follow_registrations(module_name: str) -> None:
    """Unregister the ModelAdmins the edit removed; rebuild the changed sites' URL patterns.

    A post-reload hook: it runs before Django's URL resolvers are dropped.
    """
    module = sys.modules.get(module_name)
    for site, model, defined in _before.pop(module_name, ()):
        current = site._registry.get(model)
        gone = module is None or defined not in module.__dict__
        if gone and current is not None and type(current).__qualname__ == defined:
            del site._registry[model]
            _changed.add(site)
    sites = list(_changed)
    _changed.clear()
    if sites:
        _rebuild_urls(sites)


def _rebuild_urls(sites: Iterable[_Site]) -> None:
    """Build again, in place, the admin patterns the root URLconf's resolvers hold."""
    from django.conf import settings
    from django.urls import URLResolver

    by_name = {site.name: site for site in sites}
    root = sys.modules.get(getattr(settings, "ROOT_URLCONF", None) or "")
    pending = list(getattr(root, "urlpatterns", None) or ())
    seen: set[int] = set()
    while pending:
        entry = pending.pop()
        if not isinstance(entry, URLResolver) or id(entry) in seen:
            continue
        seen.add(id(entry))
        patterns = entry.urlconf_name
        if not isinstance(patterns, list):
            continue  # an app's URLconf module: not the admin's
        site = by_name.get(entry.namespace or "")
        if entry.app_name == "admin" and site is not None:
            patterns[:] = site.get_urls()
        else:
            pending.extend(patterns)
