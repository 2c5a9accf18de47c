"""What the save pipeline hands its consumer: one burst of settled saves.

Imported by the pipeline when it first needs it, on its own thread: making
these dataclasses (and importing :mod:`dataclasses`) would cost the CLI's
start-up about 20 ms for objects that exist only once a file is saved.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FileSave", "ModuleSave", "SettledSaves"]


@dataclass(frozen=True)
class ModuleSave:
    """A project module's file saved with new code: the bytes judged finished are what runs."""

    name: str
    path: str
    source: bytes
    digest: bytes
    stamp: tuple[int, int] = (0, 0)
    """The file's (mtime_ns, inode) as it was read: another save of the same bytes has
    another."""


@dataclass(frozen=True)
class FileSave:
    """A file's content once its save settled (``source`` None: it is gone)."""

    path: str
    source: bytes | None


@dataclass(frozen=True)
class SettledSaves:
    """One burst of saves, judged finished: what to reload, or (plain files) what each holds.

    ``first_event`` is the pipeline's clock at the burst's first event: the
    save that a reload's latency is counted from.
    """

    first_event: float
    #: modules to reload, in the order found (module saves, then data files' readers)
    names: tuple[str, ...] = ()
    #: the modules whose file holds new code, with that code
    modules: tuple[ModuleSave, ...] = ()
    #: readers of a changed data file: they run again whole
    forced: frozenset[str] = frozenset()
    #: plain-file pipelines (``pytest --hmr``): each saved file's content
    files: tuple[FileSave, ...] = ()
    #: plain-file pipelines: folders that appeared in a watched folder
    folders: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.names or self.files or self.folders)

    def sources(self) -> dict[str, bytes]:
        """Module name -> the bytes to apply (``reload_result(sources=...)``)."""
        return {save.name: save.source for save in self.modules}

    def then(self, later: SettledSaves) -> SettledSaves:
        """This burst followed by ``later``: a file's later content wins."""
        files = {save.path: save for save in self.files}
        files.update((save.path, save) for save in later.files)
        modules = {save.name: save for save in self.modules}
        modules.update((save.name, save) for save in later.modules)
        return SettledSaves(
            first_event=min(self.first_event, later.first_event),
            names=tuple(dict.fromkeys((*self.names, *later.names))),
            modules=tuple(modules.values()),
            forced=self.forced | later.forced,
            files=tuple(files.values()),
            folders=tuple(dict.fromkeys((*self.folders, *later.folders))),
        )
