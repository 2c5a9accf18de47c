"""Running a script or a module as ``__main__``, exactly as ``python`` does."""

from __future__ import annotations

import builtins
import importlib.machinery
import importlib.util
import os
import sys
import types

from . import collector
from .project import loaded_modules

__all__ = ["TargetError", "prepare_module", "prepare_script", "run_code", "unshadow"]


# Python 3.15 no longer sets ``__cached__`` in ``__main__`` (script or ``-m``).
_HAS_CACHED = sys.version_info < (3, 15)


class TargetError(Exception):
    """The script or module to run cannot be found or read; ``exit_code`` is python's
    for the same error (2 for a file it cannot open, 1 for a module it cannot find)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _holds_main(path: str, source: bytes | None) -> bool:
    """Does python run ``path`` as a folder or a zip file with a ``__main__`` (a zipapp)?"""
    if source is None:
        return True  # a folder
    if b"\0" not in source:
        return False  # text: no zip file
    import zipimport

    try:
        zipimport.zipimporter(path)
    except zipimport.ZipImportError:
        return False
    return True


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
    if path == "-":
        return _prepare_stdin(args)
    source = None
    if not os.path.isdir(path):
        try:
            with open(path, "rb") as handle:
                source = handle.read()
        except OSError as exc:
            raise TargetError(
                f"can't open file {path!r}: [Errno {exc.errno}] {exc.strerror}", exit_code=2
            ) from None
    if _holds_main(path, source):
        return _prepare_main_of(path, args)
    assert source is not None
    # Made absolute as python makes it: not normalized (``./app/../app/x.py`` stays).
    filename = path if os.path.isabs(path) else os.path.join(os.getcwd(), path)
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        if b"\0" not in source or (isinstance(exc, SyntaxError) and exc.filename):
            raise
        # compile() names no file for it (python reads the script itself, and does).
        line = source.count(b"\n", 0, source.index(b"\0")) + 1
        text = source.splitlines()[line - 1].partition(b"\0")[0].decode("utf-8", "replace")
        raise SyntaxError(
            "source code cannot contain null bytes", (filename, line, None, text)
        ) from None
    main = _fresh_main()
    main.__dict__.update(
        __file__=filename,
        __spec__=None,  # as for ``python script.py``
        __package__=None,
        __loader__=importlib.machinery.SourceFileLoader("__main__", filename),
    )
    if _HAS_CACHED:
        main.__dict__["__cached__"] = None
    # Python puts the script's folder, symlinks resolved, first on sys.path (not with
    # ``-P`` or PYTHONSAFEPATH).
    folder = None if _safe_path() else os.path.dirname(os.path.realpath(path))
    _become_main(main, [path, *args], folder)
    return code, main


def _prepare_stdin(args: list[str]) -> tuple[types.CodeType, types.ModuleType]:
    """``python - [args]``: the program is what stdin holds (its modules reload; it
    is never read again)."""
    code = compile(sys.stdin.buffer.read(), "<stdin>", "exec", dont_inherit=True)
    main = _fresh_main()
    main.__dict__.update(
        __file__="<stdin>",
        __spec__=None,
        __package__=None,
        __loader__=importlib.machinery.BuiltinImporter,
    )
    if _HAS_CACHED:
        main.__dict__["__cached__"] = None
    _become_main(main, ["-", *args], None if _safe_path() else "")
    return code, main


def _safe_path() -> bool:
    """``python -P`` (or PYTHONSAFEPATH): no folder of the program's goes first on
    ``sys.path`` (3.11+)."""
    return bool(getattr(sys.flags, "safe_path", 0))


def _become_main(main: types.ModuleType, argv: list[str], first: str | None) -> None:
    """``main`` is ``__main__`` now, with these ``sys.argv`` and ``first`` on ``sys.path``
    (in place of the CLI's own first entry, as python would have it; None: nothing)."""
    sys.argv[:] = argv
    if first is not None:
        if sys.path and sys.path[0] in ("", os.getcwd()):
            sys.path[0] = first
        else:
            sys.path.insert(0, first)
        unshadow(first)
    sys.modules["__main__"] = main


def unshadow(folder: str) -> list[str]:
    """Let the program's own modules in ``folder`` (first on its ``sys.path``) win over the
    standard modules of the same name that only the CLI loaded; those unloaded.

    Under python, a ``token.py`` or ``signal.py`` beside the script is what
    ``import token`` gives.  The CLI imported the standard ``token`` (``inspect``
    and ``logging`` bring a few dozen) before the program's folder came first:
    those are taken out of ``sys.modules``, and the program imports its own.
    The CLI keeps the objects it holds.  Modules python itself loads at start
    (``os``, ``io``...) stay, as under python.
    """
    import muckrack_hmr

    try:
        entries = set(os.listdir(folder or os.curdir))
    except OSError:
        return []
    before = muckrack_hmr._LOADED_BEFORE
    unloaded = []
    for name, module in loaded_modules().items():
        if (
            "." in name
            or name in before
            or name.startswith(("muckrack", "_"))
            or not ({name, f"{name}.py", f"{name}.pyc"} & entries)
        ):
            continue
        spec = importlib.machinery.PathFinder.find_spec(name, [folder])
        if spec is None or spec.origin == getattr(module, "__file__", None):
            continue
        for loaded in [name, *(each for each in list(sys.modules) if each.startswith(f"{name}."))]:
            sys.modules.pop(loaded, None)
        unloaded.append(name)
    return unloaded


def _prepare_main_of(path: str, args: list[str]) -> tuple[types.CodeType, types.ModuleType]:
    """``python folder`` or ``python app.pyz``: its ``__main__`` module, with the folder
    or the zip file first on ``sys.path``."""
    # Made absolute as python makes it: not normalized (``./app`` stays in it).
    entry = path if os.path.isabs(path) else os.path.join(os.getcwd(), path)
    spec = importlib.machinery.PathFinder.find_spec("__main__", [entry])
    loader = spec.loader if spec is not None else None
    code = None
    if spec is not None and loader is not None and hasattr(loader, "get_code"):
        code = loader.get_code("__main__")
    if spec is None or code is None:
        raise TargetError(f"can't find '__main__' module in {path!r}")
    main = _fresh_main()
    main.__dict__.update(__file__=spec.origin, __spec__=spec, __package__="", __loader__=loader)
    if _HAS_CACHED:
        main.__dict__["__cached__"] = spec.cached
    _become_main(main, [path, *args], entry)
    return code, main


def prepare_module(name: str, args: list[str]) -> tuple[types.CodeType, types.ModuleType]:
    """Find ``name`` like ``python -m`` and set up ``sys.argv`` and ``__main__``."""
    if not name or name.startswith("."):
        raise TargetError(f"relative module names are not supported: {name!r}")
    cwd = os.getcwd()
    if not _safe_path() and (not sys.path or sys.path[0] not in ("", cwd)):
        # python -m puts the working folder first (the shim took it out for the CLI's
        # own imports; the ``muckrack-hmr`` script never had it).
        sys.path.insert(0, cwd)
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
    if sys.path:
        unshadow(sys.path[0])
    return code, main


def run_code(code: types.CodeType, main: types.ModuleType) -> None:
    """Execute the prepared ``__main__``; exceptions propagate to the caller."""
    collector.start_fresh()
    _run_in_room(code, main.__dict__)


def _run_in_room(code: types.CodeType, namespace: dict[str, object]) -> None:
    exec(code, namespace)


# CPython 3.11-3.13 keep a thread's frames on a stack of 16 KB chunks, and free a chunk
# as soon as the frames leave it: code whose calls go back and forth over a chunk's end
# makes and frees one each time (a system call pair and a page fault, about 10 us; a loop
# of such calls on 3.14 and 3.15 faults no page: not done there).
# Imports nest deep, and the pure core's hook adds frames to each: a 1000-module
# start-up did it 167 times under the CLI, once under python.  So the program runs
# above a frame that reserves (unused, never written) stack slots: its chunk is made
# big enough to hold them and about 120 KB more, where the program's frames go, that
# stays until the program ends.
_ROOM = 16_000  # stack slots of _run_in_room's frame: 125 KB, in a chunk of 256 KB
if (3, 11) <= sys.version_info < (3, 14):
    _run_in_room.__code__ = _run_in_room.__code__.replace(co_stacksize=_ROOM)
