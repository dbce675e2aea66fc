"""The workspace's write protocol: one lock, staged files, and folders nobody else can write.

Every change to a workspace happens under :class:`WorkspaceLock` (an exclusive ``flock`` on
``.kittylab.lock``), so two processes never interleave their writes. Files that come with a
new certificate (its key, CSR and p12) are first written under a staged name in ``.staging/``
(``NAME.SUFFIX.SERIAL``); only after the store has committed the certificate do they take
their place. A crash before the commit leaves staged files of a serial the store does not
know (the next writer deletes them); a crash after it leaves staged files of a committed
serial (the next writer moves them into place). Either way the key on disk belongs to the
current certificate.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import threading
from pathlib import Path

from ..errors import KittylabError

LOCK_FILE = ".kittylab.lock"
STAGING = ".staging"


def make_private_folder(folder: Path) -> None:
    """Create ``folder`` (and its missing parents) writable by its owner only, whatever the umask."""
    missing = []
    for parent in (folder, *folder.parents):
        if parent.exists() or parent.is_symlink():
            break
        missing.append(parent)
    try:
        for parent in reversed(missing):
            os.mkdir(parent, 0o755)
            os.chmod(parent, 0o755)  # mkdir's mode is masked by the umask: set it exactly
    except FileExistsError:
        pass  # another process made it meanwhile
    except OSError as exc:
        raise KittylabError(f"cannot create the folder {folder}: {exc.strerror}") from None
    refuse_symlink(folder)
    if not folder.is_dir():
        raise KittylabError(f"{folder} is not a folder")


def refuse_symlink(path: Path) -> None:
    """kittylab never writes through a symbolic link: a link planted there could send a secret anywhere."""
    if path.is_symlink():
        raise KittylabError(f"{path} is a symbolic link: kittylab does not write through links (remove it)")


def writable_by_others(path: Path) -> bool:
    """True if group or others can write ``path`` (a link's own mode means nothing: links are refused where written)."""
    try:
        mode = os.stat(path, follow_symlinks=False).st_mode
    except OSError:
        return False
    return not stat.S_ISLNK(mode) and bool(mode & (stat.S_IWGRP | stat.S_IWOTH))


def permission_problem(home: Path, files: list[Path]) -> str | None:
    """One line saying which of ``home`` and ``files`` others can write and how to fix it, or None."""
    loose = [path for path in (home, *files) if writable_by_others(path)]
    if not loose:
        return None
    named = ", ".join(str(path) for path in loose)
    return (
        f"{named} {'is' if len(loose) == 1 else 'are'} writable by others: anyone on this machine could swap"
        f" the CRL or delete the CA key. Fix it with: chmod go-w {' '.join(str(p) for p in loose)}"
    )


def newer_schema(what: str, version: int, known: int) -> KittylabError | None:
    """The one line refusing ``what`` (a SQLite file, by name) when its ``PRAGMA user_version`` is newer than
    ``known``, the version this kittylab writes: a newer kittylab made it, and it is neither read nor written."""
    if version <= known:
        return None
    return KittylabError(f"{what} has schema version {version}, newer than this kittylab knows ({known}):"
                         " it was written by a newer kittylab; upgrade kittylab to use it")


class WorkspaceLock:
    """An exclusive lock on a workspace, re-entrant within one thread, released on exit.

    ``flock`` locks belong to the open file: two workspace objects (threads, processes) wait for
    each other, and a killed process's lock goes with it. Threads sharing one object wait for
    each other too (a thread lock in front of the file lock).
    """

    def __init__(self, home: Path) -> None:
        self.path = home / LOCK_FILE
        self._fd: int | None = None
        self._depth = 0
        self._threads = threading.RLock()
        self._owner: int | None = None

    @property
    def held(self) -> bool:
        """True if this thread holds the lock."""
        return self._depth > 0 and self._owner == threading.get_ident()

    def acquire(self) -> bool:
        """Take the lock (waiting for other writers); True if this call took it (not re-entered)."""
        self._threads.acquire()
        self._depth += 1
        if self._depth > 1:
            return False
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            self._depth -= 1
            self._threads.release()
            if exc.errno == errno.ELOOP:
                raise KittylabError(f"{self.path} is a symbolic link: remove it") from None
            raise KittylabError(f"cannot lock the workspace {self.path.parent}: {exc.strerror}") from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd, self._owner = fd, threading.get_ident()
        return True

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = self._owner = None
        self._threads.release()


def staged_name(name: str, suffix: str, serial: int) -> str:
    return f"{name}.{suffix}.{serial:x}"


def parse_staged(file_name: str) -> tuple[str, str, int] | None:
    """(name, suffix, serial) of a staged file's name, or None for anything else."""
    rest, _, serial = file_name.rpartition(".")
    name, _, suffix = rest.rpartition(".")
    try:
        return (name, suffix, int(serial, 16)) if name and suffix in ("key", "csr", "p12") else None
    except ValueError:
        return None


def fsync_folder(folder: Path) -> None:
    """Make renames and new names in ``folder`` survive a power loss."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
