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

from dataclasses import dataclass

__all__ = [
    "CLASS_LAYOUT",
    "DJANGO_MODEL_FIELDS",
    "DJANGO_SETTINGS",
    "ENUM_CLASS",
    "ENUM_MEMBERS",
    "RUNNING_SCRIPT",
    "Refusal",
    "RefusedEdit",
]

#: A class's bases, metaclass, ``__slots__`` or named-tuple fields changed.
CLASS_LAYOUT = "class layout"
#: A class became an enum, or an enum a plain class.
ENUM_CLASS = "enum <-> class"
#: An enum's members were removed, renamed or given new values.
ENUM_MEMBERS = "enum members"
#: A Django model gained, lost or changed a field.
DJANGO_MODEL_FIELDS = "django model fields"
#: The module named by ``DJANGO_SETTINGS_MODULE`` was saved.
DJANGO_SETTINGS = "django settings"
#: The script the program runs as ``__main__`` was saved.
RUNNING_SCRIPT = "running script"


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

    def __str__(self) -> str:
        """The one log line: ``restart to apply: <what> (<kind>); <fix>``."""
        fix = f"; {self.fix}" if self.fix else ""
        return f"restart to apply: {self.what} ({self.kind}){fix}"


class RefusedEdit(Exception):
    """What error handlers get for a module whose edit was refused (nothing of it applied)."""

    def __init__(self, refusals: list[Refusal]) -> None:
        super().__init__("; ".join(str(refusal) for refusal in refusals))
        self.refusals = refusals
