"""Edits that cannot apply in place ("rude edits", as .NET names them), by kind.

A refused edit is not an error in the user's code: the new code ran, but
what it changed cannot reach the running program (an instance's layout, a
database table, settings read at start-up).  The engine then applies
nothing of that module's edit, as for a failure, and says in one line what
was refused, of which kind, and what to do; a restart applies it (the CLI
does that itself with ``--restart-on-refused``).

Kinds are plain strings: an integration may declare its own
(``__hmr__.refuse(kind, what, fix)``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

__all__ = [
    "CLASS_LAYOUT",
    "DJANGO_APPLICATION",
    "DJANGO_APP_READY",
    "DJANGO_MIDDLEWARE",
    "DJANGO_MODEL_FIELDS",
    "DJANGO_SETTINGS",
    "ENUM_CLASS",
    "ENUM_MEMBERS",
    "MODULE_MADE_PACKAGE",
    "RUNNING_SCRIPT",
    "Refusal",
    "RefusedEdit",
    "locate",
]

#: A class's bases, metaclass, ``__slots__`` or named-tuple fields changed.
CLASS_LAYOUT = "class layout"
#: A class became an enum, or an enum a plain class.
ENUM_CLASS = "enum <-> class"
#: An enum's members were removed, renamed or given new values.
ENUM_MEMBERS = "enum members"
#: What an AppConfig's ``ready()`` does, which ran as Django started, changed.
DJANGO_APP_READY = "django app ready"
#: A middleware class of ``settings.MIDDLEWARE`` gained or lost a hook method.
DJANGO_MIDDLEWARE = "django middleware"
#: The WSGI or ASGI application Django's settings name was made again.
DJANGO_APPLICATION = "django application"
#: A Django model gained, lost or changed a field.
DJANGO_MODEL_FIELDS = "django model fields"
#: The module named by ``DJANGO_SETTINGS_MODULE`` was saved.
DJANGO_SETTINGS = "django settings"
#: The script the program runs as ``__main__`` was saved.
RUNNING_SCRIPT = "running script"
#: A module's file became a package's ``__init__.py`` (``mod.py`` -> ``mod/__init__.py``).
MODULE_MADE_PACKAGE = "module made a package"


@dataclass(frozen=True)
class Refusal:
    """One edit that needs a restart: its kind, its module, what changed, and the fix."""

    kind: str
    """What sort of edit (``"class layout"``, ``"django model fields"``...)."""
    module: str
    """The module whose edit was not applied."""
    what: str
    """What changed, naming the object (``greet.models.Item gained title``)."""
    fix: str = ""
    """What else to do besides a restart (``a migration may be needed``), or nothing."""
    location: str = ""
    """Where the refused edit is: ``file:line`` of its statement, the file, or nothing."""

    def __str__(self) -> str:
        """The one log line: ``restart to apply: <what> at <location> (<kind>); <fix>``."""
        fix = f"; {self.fix}" if self.fix else ""
        at = f" at {self.location}" if self.location else ""
        return f"restart to apply: {self.what}{at} ({self.kind}){fix}"


class RefusedEdit(Exception):
    """What error handlers get for a module whose edit was refused (nothing of it applied)."""

    def __init__(self, refusals: list[Refusal]) -> None:
        super().__init__("; ".join(str(refusal) for refusal in refusals))
        self.refusals = refusals


def locate(refusals: list[Refusal], filename: str, source: bytes) -> list[Refusal]:
    """``refusals`` of the edit of ``filename`` (its new ``source``), each with where it is:
    the line of the class or function it names (``module.Outer.Inner ...``), or of the
    first member of it named after (``... gained color``), else the file."""
    tree: ast.Module | None = None
    located = []
    for refusal in refusals:
        if refusal.location:
            located.append(refusal)
            continue
        line = None
        prefix = refusal.module + "."
        if refusal.what.startswith(prefix):
            if tree is None:
                try:
                    tree = ast.parse(source, filename)
                except (SyntaxError, ValueError):
                    tree = ast.Module(body=[], type_ignores=[])
            qualname, _, rest = refusal.what[len(prefix) :].partition(" ")
            line = _line_of(tree, qualname.split("."))
            if line is not None:
                # ``models.Item gained color``: the line of the member it names.
                for word in re.findall(r"[A-Za-z_]\w*", rest):
                    member = _line_of(tree, [*qualname.split("."), word])
                    if member is not None:
                        line = member
                        break
        located.append(replace(refusal, location=f"{filename}:{line}" if line else filename))
    return located


def _line_of(tree: ast.Module, qualname: list[str]) -> int | None:
    """The line of the statement that binds ``qualname`` (its last one), if any: a class or
    function statement, or an assignment of the last name."""
    body: list[ast.stmt] = tree.body
    line = None
    for at, part in enumerate(qualname):
        last = at == len(qualname) - 1
        found = [statement for statement in _run_in(body) if _binds(statement, part, last)]
        if not found:
            return None
        line = found[-1].lineno
        body = getattr(found[-1], "body", [])
    return line


def _run_in(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements of ``body``, and of the blocks it runs (``if``, ``try``, ``with``...),
    in order: not those of the functions and classes it defines."""
    for statement in body:
        yield statement
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for field in ("body", "orelse", "finalbody"):
            yield from _run_in(getattr(statement, field, []))
        for block in (*getattr(statement, "handlers", ()), *getattr(statement, "cases", ())):
            yield from _run_in(block.body)


def _binds(statement: ast.stmt, name: str, assignment: bool) -> bool:
    if isinstance(statement, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
        return statement.name == name
    if not assignment:
        return False
    if isinstance(statement, ast.Assign):
        targets = statement.targets
        return any(isinstance(target, ast.Name) and target.id == name for target in targets)
    if isinstance(statement, ast.AnnAssign):
        return isinstance(statement.target, ast.Name) and statement.target.id == name
    return False
