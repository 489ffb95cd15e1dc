"""Files the auditor writes: report files (atomically, owner-only), and the files it keeps beside
its history (the scheduler's lock, the witness file of printed evidence-log heads) and the
directories they live in.

Whoever may write such a directory can plant a symbolic or hard link where one of these files goes;
a run following it truncated or appended to an unrelated file (issue 13, item 11). So these files
are opened without following links, and kept only when they are a regular file of this user with
a single name; and a directory every user may write (or another user's) is refused outright.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path


class UnsafePath(OSError):
    """A file or directory the auditor refuses to use; `strerror` says why, in words for the user."""

    def __init__(self, reason: str, path: Path) -> None:
        super().__init__(errno.EPERM, reason, str(path))


def file_problem(info: os.stat_result) -> str | None:
    """Why a file with this (l)stat must not be written by this user, or None."""
    if stat.S_ISLNK(info.st_mode):
        return "it is a symbolic link, which the auditor never writes through"
    if not stat.S_ISREG(info.st_mode):
        return "it is not a regular file"
    if info.st_uid != os.geteuid():
        return f"it belongs to another user (uid {info.st_uid})"
    if info.st_nlink != 1:
        return f"it has {info.st_nlink} names (hard links): it may be another file"
    return None


def open_own_file(path: Path, flags: int, mode: int = 0o600) -> int:
    """os.open(path, flags), creating it owner-only if absent, never through a link, and only if it
    is this user's regular file with one name (so it is never another file truncated or appended
    to). Non-blocking open, so a FIFO planted there fails instead of hanging the run."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO) and (problem := _lstat_problem(path)):
            raise UnsafePath(problem, path) from None
        raise
    try:
        problem = file_problem(os.fstat(fd))
        if problem:
            raise UnsafePath(problem, path)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_existing_file(path: Path) -> None:
    """UnsafePath when a file is already at `path` that open_own_file would refuse (checked before a
    scan, so the refusal comes before the work, not after)."""
    problem = _lstat_problem(path)
    if problem:
        raise UnsafePath(problem, path)


def directory_problem(directory: Path) -> str | None:
    """Why files the auditor keeps must not live in `directory`, or None. A directory that does not
    exist yet is judged by the nearest one that does, where it would be created."""
    current = Path(os.path.abspath(directory))
    while not current.exists() and current != current.parent:
        current = current.parent
    try:
        info = current.stat()
    except OSError:
        return None  # unreadable: whatever uses it explains
    where = "" if current == Path(os.path.abspath(directory)) else f" (where {directory} would be created)"
    if info.st_mode & stat.S_IWOTH:
        return (
            f"{current}{where} is writable by every user, who could replace the files kept there or "
            "plant links in their place; use a directory only its owner may write (chmod o-w)"
        )
    if info.st_uid not in (os.geteuid(), 0):
        return f"{current}{where} belongs to another user (uid {info.st_uid}), who could replace the files kept there"
    return None


def check_directory(directory: Path) -> None:
    problem = directory_problem(directory)
    if problem:
        raise UnsafePath(problem, directory)


def _lstat_problem(path: Path) -> str | None:
    try:
        return file_problem(os.lstat(path))
    except FileNotFoundError:
        return None


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """Write via a temporary file and rename, owner-only: a reader never sees half a report.

    A path that exists and is not a regular file (`/dev/null`, `/dev/stdout`, a FIFO) is written
    into as it is: renaming over it would replace a device with a file (as root, `/dev/null`)."""
    try:
        special = path.exists() and not path.is_file()
    except OSError:
        special = False
    if special:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
