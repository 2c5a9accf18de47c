"""Which folders are on a file system whose every write the kernel sees (Linux's mount table).

The OS's file events can only be missing where a file changes without this
kernel writing it: a network drive (NFS, SMB), a folder shared by a virtual
machine or Docker Desktop's host (9p, virtiofs, FUSE, vboxsf), WSL's Windows
drives.  On a local disk or in memory (ext4, XFS, btrfs, tmpfs, an overlay of
them...) every save goes through this kernel, and inotify reports it.  The
checked backend lists folders only where events may be missing: on a
laptop's own disk, nothing is polled while the program rests.
"""

from __future__ import annotations

import os
import sys
import threading

__all__ = ["LOCAL_TYPES", "events_are_local", "file_system_of", "parse_mountinfo"]

#: File systems written only through this kernel (every save is an inotify event).
LOCAL_TYPES = frozenset(
    {
        "bcachefs",
        "btrfs",
        "exfat",
        "ext2",
        "ext3",
        "ext4",
        "f2fs",
        "jfs",
        "msdos",
        "nilfs2",
        "ntfs3",
        "overlay",
        "ramfs",
        "reiserfs",
        "tmpfs",
        "vfat",
        "xfs",
        "zfs",
    }
)

_MOUNTINFO = "/proc/self/mountinfo"
_lock = threading.Lock()
_table: list[tuple[str, str]] | None = None  # (mount point, type), longest first


def _unescape(field: str) -> str:
    r"""The kernel writes a space, tab, newline and backslash in a path as \040, \011..."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit() and i + 4 <= len(field):
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[tuple[str, str]]:
    """``(mount point, file system type)`` of each line of a mountinfo, longest point first."""
    table = []
    for line in text.splitlines():
        fields = line.split()
        try:
            separator = fields.index("-", 6)
            point, kind = _unescape(fields[4]), fields[separator + 1]
        except (ValueError, IndexError):
            continue
        table.append((point, kind))
    table.sort(key=lambda entry: len(entry[0]), reverse=True)
    return table


def _mounts() -> list[tuple[str, str]]:
    global _table
    with _lock:
        if _table is None:
            try:
                with open(_MOUNTINFO, encoding="utf-8", errors="replace") as handle:
                    _table = parse_mountinfo(handle.read())
            except OSError:
                _table = []
        return _table


def file_system_of(folder: str, table: list[tuple[str, str]] | None = None) -> str | None:
    """The type of the file system ``folder`` is on (its mount with the longest point)."""
    path = os.path.realpath(folder)
    for point, kind in _mounts() if table is None else table:
        if path == point or path.startswith(point.rstrip("/") + "/"):
            return kind
    return None


def events_are_local(folder: str) -> bool:
    """Does every change to ``folder``'s files go through this kernel (Linux only)?

    Elsewhere, or where the mount table cannot be read: no (the events are checked).
    """
    if not sys.platform.startswith("linux"):
        return False
    return file_system_of(folder) in LOCAL_TYPES
