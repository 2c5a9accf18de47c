"""The inotify backend: the kernel's events for real files, one descriptor and one thread.

Every test watches real folders and changes real files; the events are read
from a queue with a bounded wait.  An event that must *not* come is checked
by its absence before a later marker event (inotify keeps one queue, in order).
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from muckrack_hmr.watch.backends import (
    CLOSED,
    CREATED,
    DELETED,
    FOLDER,
    MODIFIED,
    MOVED_AWAY,
    TOUCHED,
    choose_backend,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")

if sys.platform.startswith("linux"):
    from muckrack_hmr.watch.backends import inotify

WAIT = 10.0


class Seen:
    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()

    def __call__(self, path: str, kind: str) -> None:
        self.events.put((path, kind))

    def until(self, path: Path, kind: str) -> list[tuple[str, str]]:
        """Every event up to ``(path, kind)``, which must come within WAIT seconds."""
        got: list[tuple[str, str]] = []
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.1)
            except queue.Empty:
                continue
            got.append(event)
            if event == (str(path), kind):
                return got
        pytest.fail(f"no {kind} event for {path} within {WAIT:g} s; got {got}")


@pytest.fixture
def watching(tmp_path: Path) -> Iterator[tuple[inotify.InotifyBackend, Seen]]:
    seen = Seen()
    backend = inotify.InotifyBackend()
    backend.start(seen)
    backend.watch(str(tmp_path))
    try:
        yield backend, seen
    finally:
        backend.stop()


def test_the_default_backend_on_linux_is_inotify_checked() -> None:
    backend, why = choose_backend("auto", environ={})
    assert type(backend).__name__ == "CheckedBackend"
    assert isinstance(backend.primary, inotify.InotifyBackend)  # type: ignore[attr-defined]
    assert why == "the default"
    asked, why = choose_backend("inotify", environ={})
    assert isinstance(asked, inotify.InotifyBackend)
    assert why == "asked for"


def test_a_write_reports_modified_then_closed(
    tmp_path: Path, watching: tuple[inotify.InotifyBackend, Seen]
) -> None:
    _, seen = watching
    path = tmp_path / "a.py"
    path.write_text("X = 1\n")
    events = seen.until(path, CLOSED)
    assert (str(path), CREATED) in events
    assert (str(path), MODIFIED) in events
    assert events.index((str(path), MODIFIED)) < events.index((str(path), CLOSED))


def test_an_atomic_save_a_delete_a_touch_and_a_new_folder(
    tmp_path: Path, watching: tuple[inotify.InotifyBackend, Seen]
) -> None:
    _, seen = watching
    path = tmp_path / "a.py"
    path.write_text("X = 1\n")
    seen.until(path, CLOSED)

    temporary = tmp_path / "a.py.tmp"
    temporary.write_text("X = 2\n")
    os.replace(temporary, path)  # an editor's save: write aside, rename over
    events = seen.until(path, CREATED)
    assert (str(temporary), MOVED_AWAY) in events

    os.utime(path, (1, 1))
    seen.until(path, TOUCHED)
    (tmp_path / "sub").mkdir()
    seen.until(tmp_path / "sub", FOLDER)
    path.unlink()
    seen.until(path, DELETED)


def test_opens_and_reads_of_a_watched_file_report_nothing(
    tmp_path: Path, watching: tuple[inotify.InotifyBackend, Seen]
) -> None:
    """Every import opens and reads its module: those events stay in the kernel."""
    _, seen = watching
    module = tmp_path / "m.py"
    module.write_text("X = 1\n")
    seen.until(module, CLOSED)
    for _ in range(3):
        module.read_bytes()
    marker = tmp_path / "marker"
    marker.write_text("")
    events = seen.until(marker, CLOSED)  # the queue is in order: the reads came before
    assert [event for event in events if event[0] == str(module)] == []


def test_hundreds_of_folders_take_one_descriptor_and_one_thread(tmp_path: Path) -> None:
    folders = [tmp_path / f"pkg{i}" for i in range(300)]
    for folder in folders:
        folder.mkdir()

    def inotify_fds() -> int:
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):  # the listing's own descriptor, gone
                count += os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify"
        return count

    threads, fds = threading.active_count(), inotify_fds()
    seen = Seen()
    backend = inotify.InotifyBackend()
    backend.start(seen)
    try:
        for folder in folders:
            backend.watch(str(folder))
        assert threading.active_count() == threads + 1
        assert inotify_fds() == fds + 1
        last = folders[-1] / "m.py"
        last.write_text("X = 1\n")
        seen.until(last, CLOSED)
    finally:
        backend.stop()
    assert threading.active_count() == threads
    assert inotify_fds() == fds
    backend.stop()  # idempotent


def test_a_folder_deleted_and_made_again_is_watched_anew(tmp_path: Path) -> None:
    folder = tmp_path / "pkg"
    folder.mkdir()
    seen = Seen()
    backend = inotify.InotifyBackend()
    backend.start(seen)
    try:
        backend.watch(str(folder))
        (folder / "a.py").write_text("X = 1\n")
        seen.until(folder / "a.py", CLOSED)
        (folder / "a.py").unlink()
        folder.rmdir()  # a branch switch: the kernel drops the watch
        folder.mkdir()
        backend.rewatch(str(folder))
        (folder / "a.py").write_text("X = 2\n")
        seen.until(folder / "a.py", CLOSED)
    finally:
        backend.stop()


def test_a_folder_renamed_then_watched_under_its_new_name_reports_that_name_only(
    tmp_path: Path,
) -> None:
    """``pkg`` renamed ``pkg2`` (and its importer fixed): the watch follows the folder, so
    watching ``pkg2`` gave the same descriptor, and every event in it was reported under
    both names, the old one a missing file (each save waited for it: 110 ms late)."""
    folder = tmp_path / "pkg"
    folder.mkdir()
    seen = Seen()
    backend = inotify.InotifyBackend()
    backend.start(seen)
    try:
        backend.watch(str(folder))
        renamed = tmp_path / "pkg2"
        folder.rename(renamed)
        backend.watch(str(renamed))
        (renamed / "a.py").write_text("X = 1\n")
        events = seen.until(renamed / "a.py", CLOSED)
        assert {path for path, _ in events} == {str(renamed / "a.py")}
    finally:
        backend.stop()


def test_a_folder_that_is_not_there_is_refused_with_its_path(tmp_path: Path) -> None:
    backend = inotify.InotifyBackend()
    backend.start(Seen())
    try:
        with pytest.raises(OSError, match="inotify_add_watch: No such file") as caught:
            backend.watch(str(tmp_path / "missing"))
        assert caught.value.filename == str(tmp_path / "missing")
    finally:
        backend.stop()


def test_an_overflowed_queue_reports_every_watched_file_as_touched(
    tmp_path: Path, watching: tuple[inotify.InotifyBackend, Seen]
) -> None:
    """The kernel dropped events: every file is looked at (its content decides)."""
    backend, seen = watching
    (tmp_path / "a.py").write_text("X = 1\n")
    (tmp_path / "b.py").write_text("Y = 1\n")
    seen.until(tmp_path / "b.py", CLOSED)
    # The record the kernel writes when its queue is full: wd -1, IN_Q_OVERFLOW.
    overflow = inotify._HEADER.pack(-1, inotify.IN_Q_OVERFLOW, 0, 0)
    backend._dispatch(overflow)
    got = set()
    while not seen.events.empty():
        got.add(seen.events.get_nowait())
    assert {(str(tmp_path / "a.py"), TOUCHED), (str(tmp_path / "b.py"), TOUCHED)} <= got


def test_events_are_parsed_with_their_names() -> None:
    data = inotify._HEADER.pack(3, inotify.IN_CLOSE_WRITE, 0, 16) + b"a.py".ljust(16, b"\0")
    data += inotify._HEADER.pack(4, inotify.IN_CREATE | inotify.IN_ISDIR, 0, 0)
    events = inotify.events_of(data)
    made = inotify.IN_CREATE | 0x40000000
    assert events == [(3, inotify.IN_CLOSE_WRITE, b"a.py"), (4, made, b"")]
    assert inotify.kind_of(events[0][1]) == CLOSED
    assert inotify.kind_of(events[1][1]) == FOLDER
    assert inotify.kind_of(inotify.IN_DELETE | inotify.IN_ISDIR) is None
