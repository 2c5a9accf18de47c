"""Judging a saved file for the watcher: is the save finished, and is there new code to run?

Saves come in many shapes, and none may be missed or applied half-written:

* written in place, or truncated then written: a file still open for writing
  (inotify reports the close), empty, or that does not parse yet is given a
  little time (``SETTLE``) for the rest of the write before it is judged;
* written to a temporary file renamed over the original (vim, JetBrains,
  VS Code), deleted and created again, or renamed to a backup first: the
  watcher follows the path, not the file, and compares contents;
* a touch, or a save of the code that already runs, reloads nothing.
"""

from __future__ import annotations

import logging
import os
from stat import S_ISLNK, S_ISREG
from typing import TYPE_CHECKING

from ..capture import being_written, changed_since, digest
from ..reload.refusals import MODULE_MADE_PACKAGE, Refusal
from ..reload.sources import SETTLE
from .datafiles import DataFiles

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..api import HMR

__all__ = [
    "LOOK_AGAIN",
    "OPEN_PATIENCE",
    "SETTLE",
    "Judged",
    "Read",
    "SaveJudge",
    "Wait",
    "digest",
]

log = logging.getLogger(__name__)

#: How long a file that a writer still holds open is waited for (inotify
#: reports the close; other backends don't, and rely on SETTLE), before a
#: warning says so where the system can tell it is (:func:`being_written`).
OPEN_PATIENCE = 2.0
#: How often a file that a process holds open for writing is looked at again
#: (inotify reports its close at once).
LOOK_AGAIN = SETTLE / 4
# compile()'s flag for a parse only (ast.PyCF_ONLY_AST: importing ast costs start-up time).
_ONLY_AST = 0x400


# Plain classes, not dataclasses: this module is imported at start-up, and
# making a dataclass costs a compile of its generated methods.


class FileState:
    """What the watcher told the user about one file, so that it says it once."""

    __slots__ = ("failed", "problem", "waiting")

    def __init__(self) -> None:
        self.problem = ""  # the warning last logged for it ("" when fine)
        self.waiting = ""  # why the watcher waits for it ("" when it doesn't)
        # (digest, stamp) of the save whose reload failed (see ModuleSave.stamp)
        self.failed: tuple[bytes, tuple[int, int]] | None = None


class Judged:
    """A finished save with new code: the bytes to apply, and their digest."""

    __slots__ = ("digest", "source", "stamp")

    def __init__(self, source: bytes, digest: bytes, stamp: tuple[int, int] = (0, 0)) -> None:
        self.source = source
        self.digest = digest
        self.stamp = stamp  # the file's (mtime_ns, inode) as it was read

    def __repr__(self) -> str:
        return f"Judged({len(self.source)} bytes, digest={self.digest.hex()})"


class Read:
    """A plain file's content once its save is finished (None: the file is gone)."""

    __slots__ = ("source",)

    def __init__(self, source: bytes | None) -> None:
        self.source = source

    def __repr__(self) -> str:
        return "Read(gone)" if self.source is None else f"Read({len(self.source)} bytes)"


class Wait:
    """A file that looks unfinished: judge it again at ``until`` (or at its next event).

    ``writer``: a process holds the file open for writing (:func:`being_written`),
    so it is waited for however long the burst has lasted.
    """

    __slots__ = ("until", "why", "writer")

    def __init__(self, until: float, why: str, writer: bool = False) -> None:
        self.until = until
        self.why = why
        self.writer = writer

    def __repr__(self) -> str:
        return f"Wait(until={self.until!r}, why={self.why!r})"


class SaveJudge:
    """The contents the watcher knows of its files, and its judgement of each save."""

    def __init__(
        self,
        hmr: HMR,
        data: DataFiles | None,
        spread: Callable[[], bool] = lambda: False,
        refused: Callable[[Refusal, str], None] = lambda refusal, path: None,
    ) -> None:
        self.hmr = hmr
        # Told of an edit no reload can apply, with the file that holds it.
        self._refused = refused
        # Do saves go to worker processes too (see processes.supervisor)?
        self._spread = spread
        self.project = hmr.project
        self.data = data
        #: module file -> digest of what the watcher first saw (None: look at it)
        self.baselines: dict[str, bytes | None] = {}
        #: data file -> digest of the content its readers last read
        self.data_digests: dict[str, bytes | None] = {}
        self._states: dict[str, FileState] = {}

    def state(self, path: str) -> FileState:
        """What the watcher told the user about ``path``."""
        state = self._states.get(path)
        if state is None:
            state = self._states[path] = FileState()
        return state

    def problem(self, path: str, message: str) -> None:
        """Log ``message`` as a warning, once for as long as it holds."""
        state = self.state(path)
        if state.problem != message:
            state.problem = message
            log.warning("%s", message)

    def judge_module(
        self, path: str, name: str, last: float, now: float, open_for_writing: bool
    ) -> object:
        """The new content to reload (Judged), None to leave it, or a Wait."""
        settle = Wait(last + SETTLE, "")
        recent = now < settle.until
        if open_for_writing and now < last + OPEN_PATIENCE:
            return Wait(last + OPEN_PATIENCE, "still open for writing")
        try:
            link = S_ISLNK(os.lstat(path).st_mode)
        except FileNotFoundError:
            if recent:  # a rename or a delete-and-create in progress
                return Wait(settle.until, "missing")
            message = f"{path} was deleted; {name} keeps running its old code"
            package = os.path.join(os.path.splitext(path)[0], "__init__.py")
            refusal = None
            if os.path.isfile(package):
                # ``mod.py`` moved to ``mod/__init__.py``: another kind of module (a
                # package has a path, its relative imports start from itself).
                refusal = Refusal(
                    MODULE_MADE_PACKAGE,
                    name,
                    f"{path} became the package {package}",
                    f"{name} keeps running the code of {os.path.basename(path)} until then",
                )
                message = str(refusal)
            if self.state(path).problem != message:
                # What the module started goes with its file (its dispose callbacks).
                self.hmr.hooks.dispose(name)
                self.problem(path, message)
                if refusal is not None:
                    self._refused(refusal, package)  # (--restart-on-refused restarts)
            return None
        except OSError as exc:
            if recent:
                return Wait(settle.until, f"cannot look at it ({exc})")
            self.problem(path, f"cannot read {path} ({exc}); {name} keeps its old code")
            return None
        if link:
            target = os.path.realpath(path)
            if not self.project.contains_file(target):
                # Never execute a file from outside the roots, however it got there.
                self.problem(
                    path,
                    f"{path} is now a symlink to {target}, outside the project; "
                    f"not following it ({name} keeps its old code)",
                )
                return None
        try:
            with open(path, "rb") as handle:
                source = handle.read()
                figures = os.fstat(handle.fileno())
        except OSError as exc:
            # Windows refuses to open a file that an editor is still writing.
            if recent:
                return Wait(settle.until, f"cannot read it ({exc})")
            self.problem(path, f"cannot read {path} ({exc}); {name} keeps its old code")
            return None
        state = self.state(path)
        new = digest(source)
        if self._unchanged(name, path, source, new):
            if state.problem:
                log.info("%s is back, with the code that runs", path)
                state.problem = ""
            if not (self._spread() and self._saved_back(name)):
                self._recovered_unchanged(name)
                return None
            # A failed or refused edit saved back, with worker processes: a save all the
            # same, which each process's reload takes as the code that runs again
            # (``recovered``): taken here alone, the workers that failed it too were
            # told nothing, and stayed failing until a later save.
        if being_written(path):
            return self._writer(now)
        if changed_since(path, figures):
            return self._changed(now)
        if not source.strip():
            if recent:  # truncated; the write that brings the content follows
                return Wait(settle.until, "empty")
            self.problem(path, f"{path} is empty; {name} keeps running its old code")
            return None
        if b"\0" in source:
            if recent:
                return Wait(settle.until, "it holds null bytes")
            self.problem(
                path,
                f"{path} is not Python source (it holds null bytes); "
                f"{name} keeps running its old code",
            )
            return None
        reloader = self.hmr.reloader
        stamp = (figures.st_mtime_ns, figures.st_ino)
        if state.failed == (new, stamp) and (name in reloader.failing or name in reloader.refused):
            # The same broken or refused save looked at again (another event of it, or a
            # save of a file beside it): already reported.  The same bytes saved again
            # are tried again: what failed may be mended elsewhere (a file it reads).
            return None
        if recent:
            error = self.hmr.reloader.check_source(name, source)
            if error is not None:  # maybe the rest of the file is on its way
                return Wait(settle.until, f"it does not parse yet ({type(error).__name__})")
        state.problem = ""
        return Judged(source, new, stamp)

    @staticmethod
    def _writer(now: float) -> Wait:
        """A file some process holds open for writing: what it holds is no save yet."""
        return Wait(now + LOOK_AGAIN, "a process holds it open for writing", writer=True)

    @staticmethod
    def _changed(now: float) -> Wait:
        """A file written (and closed) after it was read: what was read may be its first
        part only.  Read again."""
        return Wait(now + LOOK_AGAIN, "it was written after it was read")

    def _unchanged(self, name: str, path: str, source: bytes, new: bytes) -> bool:
        """Is ``source`` the code ``name`` runs now?"""
        ran = self.hmr.sources.ran(name)
        if ran is not None:
            return bool(ran == source)
        baseline = self.baselines.get(path)
        return baseline is not None and baseline == new

    def _recovered_unchanged(self, name: str) -> None:
        """A module whose failed or refused edit is undone on disk is fine again."""
        if self.hmr.reloader.back_to_the_code_that_runs(name):
            from ..reload.reloader import ReloadResult

            self.hmr.hooks.report_result(ReloadResult(recovered=[name]))

    def _saved_back(self, name: str) -> bool:
        """Is ``name`` failing or refused, so that its file saved back to the code that runs
        makes it fine again?"""
        reloader = self.hmr.reloader
        return name in reloader.failing or name in reloader.refused

    def judge_file(
        self, path: str, last: float, now: float, open_for_writing: bool, known: bool
    ) -> object:
        """A plain file's save (``pytest --hmr``): its content (Read), a Wait, or None.

        The same signs of a save in progress as :meth:`judge_module`: a file
        open for writing, missing (``known``: one that existed), unreadable,
        empty, holding null bytes or (Python source) not parsing yet is given
        ``SETTLE`` for the rest.  Once settled, the content is what it is:
        the consumer compares it with what it knew.  None: nothing to report
        (a file not known that is gone, or not a regular file: a FIFO would block).
        """
        until = last + SETTLE
        recent = now < until
        if open_for_writing and now < last + OPEN_PATIENCE:
            return Wait(last + OPEN_PATIENCE, "still open for writing")
        try:
            regular = S_ISREG(os.stat(path).st_mode)
        except FileNotFoundError:
            if not known:
                return None  # an editor's temporary file, renamed into place
            # Renamed away, or deleted, and written again (a save), or gone.
            return Wait(until, "missing") if recent else Read(None)
        except OSError as exc:
            return Wait(until, f"cannot look at it ({exc})") if recent else Read(None)
        if not regular:
            return None
        try:
            with open(path, "rb") as handle:
                source = handle.read()
                figures = os.fstat(handle.fileno())
        except OSError as exc:
            return Wait(until, f"cannot read it ({exc})") if recent else Read(None)
        if being_written(path):
            return self._writer(now)
        if changed_since(path, figures):
            return self._changed(now)
        if recent:
            if not source.strip():
                return Wait(until, "empty")
            if b"\0" in source:
                return Wait(until, "it holds null bytes")
            if path.endswith((".py", ".pyw")):
                try:
                    compile(source, path, "exec", _ONLY_AST, dont_inherit=True)
                except (SyntaxError, ValueError) as exc:
                    return Wait(until, f"it does not parse yet ({type(exc).__name__})")
        return Read(source)

    def judge_data(self, path: str, last: float, now: float) -> object:
        """The modules to reload for a changed data file, None, or a Wait."""
        assert self.data is not None
        recent = now < last + SETTLE
        try:
            with open(path, "rb") as handle:
                content = handle.read()
                figures = os.fstat(handle.fileno())
        except OSError as exc:
            if recent:
                return Wait(last + SETTLE, f"cannot read it ({exc})")
            log.debug("%s is gone or unreadable; its readers are left alone", path)
            return None
        new = digest(content)
        if new == self.data_digests.get(path):
            return None
        if being_written(path):
            return self._writer(now)
        if changed_since(path, figures):
            return self._changed(now)
        if not content.strip() and recent:
            return Wait(last + SETTLE, "empty")
        self.data_digests[path] = new
        return [
            owner
            for owner in sorted(self.data.owners.get(path, ()))
            if self.hmr.reloader.why_not_reloadable(owner) is None
        ]
