"""Celery: a task added while the worker runs is served; a task's options made once.

A worker's consumer (in its main process) turns each task message into a
call through a table of the app's tasks (``Consumer.strategies``), built
once at start-up: a task that a reload added to ``app.tasks`` was refused as
"unregistered", in every pool, while the line said "reloaded".  After a
reload that brought new tasks, each live consumer builds its table again
(``update_strategies``, what its start-up does).

``@app.task(...)`` makes a task once: run again with the name registered
already, Celery returns the task it made, with the options it had then
(``max_retries``, ``rate_limit``, ``bind``...), and the new ones were dropped
without a word (``bind=True`` added left a task that passes no ``self`` to a
function that now takes it).  An edit that changes a task's options is refused
by name (``celery task``); ``--restart-on-refused`` restarts the worker.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

from . import _reloading
from ._imports import when_imported, wrap_method

if TYPE_CHECKING:
    from ..api import HMR

__all__ = ["CELERY_TASK", "enable", "serve_new_tasks"]

log = logging.getLogger(__name__)

_MARK = "__muckrack_hmr__"

#: The refusal of an edit that changes the options a task was made with.
CELERY_TASK = "celery task"


class _Consumer(Protocol):
    """What is used here of a worker's ``Consumer``."""

    app: object
    strategies: dict[str, object]

    def update_strategies(self) -> None: ...


# The workers' consumers of this process (its main process: the pool's children have none).
_consumers: weakref.WeakSet[_Consumer] = weakref.WeakSet()
# task name -> the arguments of the ``_task_from_fun`` call that made it (by app)
_made: weakref.WeakKeyDictionary[object, dict[str, dict[str, object]]] = weakref.WeakKeyDictionary()


def enable(hmr: HMR) -> None:
    """Follow Celery's tasks and consumers (when Celery is imported)."""
    _reloading.enable(hmr)
    when_imported("celery.app.base", _wrap_app)
    when_imported("celery.worker.consumer.consumer", _wrap_consumer)
    hmr.add_post_reload_hook(serve_new_tasks)


def _wrap_app(module: ModuleType) -> None:
    def make(original: Callable[..., object]) -> Callable[..., object]:
        def _task_from_fun(self: object, fun: Callable[..., object], **options: object) -> object:
            name = options.get("name") or self.gen_task_name(  # type: ignore[attr-defined]
                getattr(fun, "__name__", ""), getattr(fun, "__module__", "")
            )
            tasks = getattr(self, "_tasks", {})
            existed = name in tasks
            made = _made.setdefault(self, {})
            if existed and name in made and not _same(made[name], options):
                what = f"{getattr(fun, '__module__', '?')}.{getattr(fun, '__qualname__', name)}"
                _reloading.refuse(
                    CELERY_TASK,
                    f"{what} changed its task options",
                    "Celery made the task once, with the options it had then",
                )
            task = original(self, fun, **options)
            if not existed:
                made[str(name)] = dict(options)
            return task

        return _task_from_fun

    wrap_method(module.Celery, "_task_from_fun", make, _MARK)


def _same(made: dict[str, object], options: dict[str, object]) -> bool:
    """Are the options a task was made with ``options`` (a value that cannot tell: yes)?"""
    try:
        return bool(made == options)
    except Exception:
        return True


def _wrap_consumer(module: ModuleType) -> None:
    def make(original: Callable[..., object]) -> Callable[..., object]:
        def __init__(self: _Consumer, *args: object, **kwargs: object) -> None:
            original(self, *args, **kwargs)
            _consumers.add(self)

        return __init__

    wrap_method(module.Consumer, "__init__", make, _MARK)


def serve_new_tasks(name: str) -> None:
    """Each live consumer that lacks a task its app has (a reload of ``name`` added it)
    builds its table of tasks again (a post-reload hook)."""
    for consumer in list(_consumers):
        tasks = getattr(getattr(consumer, "app", None), "tasks", None)
        strategies = getattr(consumer, "strategies", None)
        if not isinstance(strategies, dict) or tasks is None:
            continue
        if all(task in strategies for task in list(tasks)):
            continue
        try:
            consumer.update_strategies()
        except Exception:  # never the worker's: it serves the tasks it knew
            log.warning("Celery could not take in the tasks %s added", name, exc_info=True)
            continue
        log.debug("Celery's worker serves the tasks %s added", name)
