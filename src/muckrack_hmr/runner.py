"""Running a script or a module as ``__main__``, exactly as ``python`` does."""

from __future__ import annotations

import builtins
import gc
import importlib.machinery
import importlib.util
import os
import sys
import types

__all__ = ["TargetError", "prepare_module", "prepare_script", "run_code"]


# Python 3.15 no longer sets ``__cached__`` in ``__main__`` (script or ``-m``).
_HAS_CACHED = sys.version_info < (3, 15)


class TargetError(Exception):
    """The script or module to run cannot be found or read (exit code 2)."""


def _fresh_main() -> types.ModuleType:
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    if sys.version_info < (3, 14):
        # python's __main__ always has one (3.10-3.13); set it as python does, in the dict.
        # From 3.14 on (PEP 649) there is none: the module's annotations come from the
        # ``__annotate__`` its code defines, and a dict here would hide them.
        main.__dict__["__annotations__"] = {}  # noqa: RUF063
    return main


def prepare_script(path: str, args: list[str]) -> tuple[types.CodeType, types.ModuleType]:
    """Compile ``path`` and set up ``sys.argv``, ``sys.path[0]`` and ``__main__``."""
    if os.path.isdir(path):
        raise TargetError(f"{path} is a folder; run a script file or use -m")
    try:
        with open(path, "rb") as handle:
            source = handle.read()
    except OSError as exc:
        raise TargetError(f"can't open file {path!r}: [Errno {exc.errno}] {exc.strerror}") from None
    filename = os.path.abspath(path)
    code = compile(source, filename, "exec", dont_inherit=True)
    main = _fresh_main()
    main.__dict__.update(
        __file__=filename,
        __spec__=None,  # as for ``python script.py``
        __package__=None,
        __loader__=importlib.machinery.SourceFileLoader("__main__", filename),
    )
    if _HAS_CACHED:
        main.__dict__["__cached__"] = None
    sys.argv[:] = [path, *args]
    # Python puts the script's folder, symlinks resolved, first on sys.path.
    script_dir = os.path.dirname(os.path.realpath(path))
    if sys.path and sys.path[0] in ("", os.getcwd()):
        sys.path[0] = script_dir
    else:
        sys.path.insert(0, script_dir)
    sys.modules["__main__"] = main
    return code, main


def prepare_module(name: str, args: list[str]) -> tuple[types.CodeType, types.ModuleType]:
    """Find ``name`` like ``python -m`` and set up ``sys.argv`` and ``__main__``."""
    if not name or name.startswith("."):
        raise TargetError(f"relative module names are not supported: {name!r}")
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as exc:
        raise TargetError(
            f"error while finding module specification for {name!r} ({exc})"
        ) from None
    if spec is None:
        raise TargetError(f"No module named {name}")
    if spec.submodule_search_locations is not None:
        # A package runs its __main__ submodule.
        main_name = f"{name}.__main__"
        try:
            spec = importlib.util.find_spec(main_name)
        except ImportError:
            spec = None
        if spec is None:
            raise TargetError(
                f"No module named {main_name}; "
                f"{name!r} is a package and cannot be directly executed"
            )
    loader = spec.loader
    if loader is None or not hasattr(loader, "get_code"):
        raise TargetError(f"{name!r} has no code object to run")
    try:
        code = loader.get_code(spec.name)
    except ImportError as exc:
        raise TargetError(str(exc)) from None
    if code is None:
        raise TargetError(f"No code object available for {name}")
    main = _fresh_main()
    main.__dict__.update(
        __file__=spec.origin,
        __spec__=spec,
        __package__=spec.parent,
        __loader__=loader,
    )
    if _HAS_CACHED:
        main.__dict__["__cached__"] = spec.cached
    sys.argv[:] = [spec.origin or name, *args]
    sys.modules["__main__"] = main
    return code, main


def run_code(code: types.CodeType, main: types.ModuleType) -> None:
    """Execute the prepared ``__main__``; exceptions propagate to the caller."""
    fresh_collector()
    exec(code, main.__dict__)


def fresh_collector() -> None:
    """Start the program with the garbage collector's counts at zero.

    What the CLI made first (its modules, the pure core, the watcher: some
    12,000 objects, 2-3 times what ``python`` has) left the collector's
    counts in mid-cycle, so the program's full collections came at other
    points of its start-up than under ``python``: at 5,000 modules one more
    of them, 140 ms.  One collection here (about 2 ms) sets every count back
    to zero, as in a fresh interpreter.
    """
    if gc.isenabled():
        gc.collect()
