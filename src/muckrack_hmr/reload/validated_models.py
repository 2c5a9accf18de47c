"""Models that validate with a schema built for their class: pydantic's, rebuilt in place.

pydantic builds each model's validator and serializer from a core schema
that names the class to instantiate.  A model whose class statement ran
again is patched in place (its identity stays), but the members it takes
from the new class are the new class's: ``Item.model_validate(...)`` would
make instances of the throwaway class, not of ``Item``.  So a patched model
rebuilds its schema for itself; so does a patched pydantic dataclass.
Parametrized generic models (``Page[Item]``) are classes pydantic made and
cached at the first subscription: those built from a patched model (its origin
or an argument) are rebuilt too, in place, and stay what ``Page[Item]`` gives.
And a model whose schema holds a patched one's (``items: list["Item"]``, named
by a string: its class statement read nothing that changed and did not run
again; or a model of the script, which never runs again) is rebuilt as well.

pydantic is never imported here: its models are known by the attributes it
sets, and its cache is looked for only when a model was patched.
"""

from __future__ import annotations

import logging
import sys
import typing
import weakref
from collections.abc import Iterable, MutableMapping

__all__ = ["generation", "rebuild_models", "rebuilt_since"]

log = logging.getLogger(__name__)

# What a parametrized model takes from a fresh parametrization of its changed origin.
_FIELD_STATE = (
    "__pydantic_fields__",
    "model_fields",
    "__pydantic_decorators__",
    "__pydantic_computed_fields__",
    "__class_vars__",
    "__private_attributes__",
    "__annotations__",
)


# How many schemas were rebuilt, and that count at each model's last rebuild: what a
# framework that copied a model's schema (a FastAPI route's parameters) compares with.
_generation = [0]
_rebuilt_at: weakref.WeakKeyDictionary[type, int] = weakref.WeakKeyDictionary()


def generation() -> int:
    """How many schemas were rebuilt so far (see rebuilt_since)."""
    return _generation[0]


def rebuilt_since(mark: int) -> set[type]:
    """The models whose schemas were rebuilt since ``generation()`` was ``mark``."""
    return {cls for cls, at in list(_rebuilt_at.items()) if at > mark}


def mentions(annotation: object, classes: set[type]) -> bool:
    """Does a type annotation (``list[Item] | None``, ``Annotated[Item, ...]``) name one
    of ``classes``?"""
    return _mentions(annotation, classes)


def _is_model(cls: type) -> bool:
    """A pydantic model, or a pydantic dataclass."""
    return "__pydantic_core_schema__" in cls.__dict__ and (
        hasattr(cls, "model_rebuild") or "__pydantic_fields__" in cls.__dict__
    )


def _rebuild(cls: type) -> None:
    # A model whose annotations name what only its class statement's frame could see
    # cannot be rebuilt from here: it keeps the schema it had (a mock would break it).
    before = dict(cls.__dict__)
    _generation[0] += 1
    _rebuilt_at[cls] = _generation[0]
    try:
        if hasattr(cls, "model_rebuild"):
            cls.model_rebuild(force=True, raise_errors=False)
        else:
            dataclasses = sys.modules["pydantic.dataclasses"]
            dataclasses.rebuild_dataclass(cls, force=True, raise_errors=False)
        complete = cls.__dict__.get("__pydantic_complete__", True)
    except Exception:
        log.debug("could not rebuild the schema of %s", cls.__qualname__, exc_info=True)
        complete = False
    if not complete:
        for name, value in before.items():
            if cls.__dict__.get(name, before) is not value:
                type.__setattr__(cls, name, value)


def rebuild_models(classes: Iterable[type], made: Iterable[type] = ()) -> list[type]:
    """Rebuild the schemas of the patched pydantic models among ``classes`` (in order),
    then of the parametrized models made from them, then of the other models whose
    schemas hold one of them (or of the classes ``made`` for them by the class
    statements that ran again); those others (the holders)."""
    models = [cls for cls in classes if _is_model(cls)]
    if not models:
        return []
    for cls in models:
        _rebuild(cls)
    changed = set(models)
    _refresh_parametrized(changed)
    made = set(made)
    try:
        return _rebuild_holders(changed | made, changed | made)
    except Exception:  # a model's own machinery: the patched ones are done already
        log.debug("could not look for the models that hold a patched one", exc_info=True)
        return []


def _rebuild_holders(done: set[type], changed: set[type]) -> list[type]:
    """Rebuild the models (but ``done``) whose schemas hold the schema of a ``changed``
    class: it was copied into theirs as they were built."""
    base = getattr(sys.modules.get("pydantic.main"), "BaseModel", None)
    if not isinstance(base, type):
        return []
    holders = [
        model
        for model in _subclasses(base)
        if model not in done
        and not _parametrized(model)  # (see _refresh_parametrized)
        and _holds(model.__dict__.get("__pydantic_core_schema__"), changed)
    ]
    for model in holders:
        _rebuild(model)
    return holders


def _parametrized(model: type) -> bool:
    """``Page[Item]``, made by pydantic from a generic model."""
    meta = model.__dict__.get("__pydantic_generic_metadata__") or {}
    return isinstance(meta, dict) and meta.get("origin") is not None


def _subclasses(base: type) -> list[type]:
    found: list[type] = []
    seen = {base}
    pending = [base]
    while pending:
        subclasses: list[type] = type.__subclasses__(pending.pop())
        for cls in subclasses:
            if cls not in seen:
                seen.add(cls)
                found.append(cls)
                pending.append(cls)
    return found


def _holds(schema: object, changed: set[type]) -> bool:
    """Does a core schema (dicts and lists of them) name a ``changed`` class?"""
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            held = node.get("cls")
            if held is not None and any(held is each for each in changed):
                return True
            pending.extend(value for value in node.values() if isinstance(value, dict | list))
        elif isinstance(node, list):
            pending.extend(value for value in node if isinstance(value, dict | list))
    return False


def _mentions(value: object, changed: set[type], depth: int = 0) -> bool:
    if isinstance(value, type) and value in changed:
        return True
    if depth > 8:
        return False
    return any(_mentions(arg, changed, depth + 1) for arg in typing.get_args(value))


def _refresh_parametrized(changed: set[type]) -> int:
    generics = sys.modules.get("pydantic._internal._generics")
    cache = getattr(generics, "_GENERIC_TYPES_CACHE", None)
    if not isinstance(cache, MutableMapping):
        return 0
    stale: dict[int, type] = {}
    for parametrized in list(cache.values()):
        meta = parametrized.__dict__.get("__pydantic_generic_metadata__") or {}
        origin, args = meta.get("origin"), tuple(meta.get("args") or ())
        if origin is None or id(parametrized) in stale:
            continue
        if origin in changed or any(_mentions(arg, changed) for arg in args):
            stale[id(parametrized)] = parametrized
    for parametrized in stale.values():
        meta = parametrized.__dict__["__pydantic_generic_metadata__"]
        origin, args = meta["origin"], tuple(meta["args"])
        if origin in changed:
            _take_fields(cache, parametrized, origin, args)
        _rebuild(parametrized)
    return len(stale)


def _take_fields(
    cache: MutableMapping[object, type], parametrized: type, origin: type, args: tuple[object, ...]
) -> None:
    """``parametrized`` takes the fields of a fresh parametrization of its changed
    ``origin``; the cache keeps giving ``parametrized``."""
    keys = [key for key, value in list(cache.items()) if value is parametrized]
    for key in keys:
        cache.pop(key, None)
    try:
        fresh = origin[args if len(args) != 1 else args[0]]  # type: ignore[index]
    except Exception:
        log.debug("could not parametrize %s again", origin.__qualname__, exc_info=True)
        fresh = None
    if fresh is not None and fresh is not parametrized:
        for name in _FIELD_STATE:
            if name in fresh.__dict__:
                type.__setattr__(parametrized, name, fresh.__dict__[name])
        for key, value in list(cache.items()):
            if value is fresh:
                cache[key] = parametrized
    for key in keys:
        cache[key] = parametrized
