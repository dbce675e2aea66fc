"""Backup and restore of a whole workspace: consistent while other commands run, keys as they are.

:func:`backup` takes the workspace's lock (other writers wait; readers go on), copies the store
with SQLite's online backup and every other file of the workspace byte for byte (an encrypted
CA key stays encrypted: nothing is decrypted), and writes ``MANIFEST.sha256`` last. The backup
folder is readable by its owner only. :func:`restore` checks every file against the manifest,
then copies them into a new workspace folder and logs the restore in its audit log.

Compared with easy-rsa and ``openssl ca`` (back up the folder, hoping nothing writes meanwhile)
and step-ca (back up its database and its secrets separately), this is one command that cannot
catch a half-done change.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from pathlib import Path

from ..errors import KittylabError
from ..pki.files import write_atomically
from . import deploy
from .protocol import LOCK_FILE, STAGING, make_private_folder
from .workspace import STORE_FILE, Workspace

MANIFEST = "MANIFEST.sha256"
_SKIPPED = {LOCK_FILE, STAGING, STORE_FILE, f"{STORE_FILE}-journal", f"{STORE_FILE}-wal", f"{STORE_FILE}-shm"}


def _files(home: Path) -> list[Path]:
    """The workspace's own files (certificates, keys, CRLs, chain files, roster folders), not its lock or staging."""
    found = []
    for path in sorted(home.rglob("*")):
        relative = path.relative_to(home)
        if relative.parts[0] in _SKIPPED or relative.parts[0].startswith(f"{STORE_FILE}.damaged"):
            continue
        if path.is_file() and not path.is_symlink():
            found.append(path)
    return found


def _empty_folder(folder: Path, what: str) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise KittylabError(f"{folder} exists and is not empty: give a new folder for the {what}")


def backup(workspace: Workspace, destination: str | os.PathLike) -> list[Path]:
    """Copy the whole workspace into ``destination`` (a new folder, 0700); return the files written."""
    out = Path(destination)
    _empty_folder(out, "backup")
    if not workspace.has_ca:
        raise KittylabError(f"{workspace.home} has no CA to back up", fix="init")
    with workspace._writing(recover=False):  # other writers wait until the copy is whole
        make_private_folder(out)
        out.chmod(0o700)
        written = []
        source = sqlite3.connect(f"file:{workspace._store.path}?mode=ro", uri=True)
        target = sqlite3.connect(out / STORE_FILE)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        written.append(out / STORE_FILE)
        for path in _files(workspace.home):
            copy = out / path.relative_to(workspace.home)
            copy.parent.mkdir(parents=True, exist_ok=True)
            mode = path.stat().st_mode & 0o777
            write_atomically(copy, path.read_bytes(), secret=not mode & 0o044)
            written.append(copy)
        lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(out)}\n" for p in written]
        written.append(write_atomically(out / MANIFEST, "".join(lines).encode()))
        with workspace._store.transaction():  # logged in the workspace, after the copy (the copy does not hold it)
            workspace._audit("backup", name=str(out.resolve()), details={"files": len(written)})
    return written


def restore(source: str | os.PathLike, home: str | os.PathLike, **options) -> Workspace:
    """Make a new workspace at ``home`` from a backup folder, every file checked against its manifest.

    ``options`` go to :class:`Workspace` (e.g. ``passphrases``)."""
    folder, target = Path(source), Path(home)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise KittylabError(f"{folder} is not a kittylab backup: it has no {MANIFEST}")
    _empty_folder(target, "restored workspace")
    entries = []
    for line in manifest.read_text().splitlines():
        digest, _, name = line.partition("  ")
        path = folder / name
        if ".." in Path(name).parts or not path.is_file():
            raise KittylabError(f"the backup is incomplete: {name} is missing")
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise KittylabError(f"the backup is damaged: {name} does not match its checksum in {MANIFEST}")
        entries.append((name, path))
    make_private_folder(target)
    for name, path in entries:
        copy = target / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        if name == STORE_FILE:
            shutil.copyfile(path, copy)
            copy.chmod(0o644)
        else:
            write_atomically(copy, path.read_bytes(), secret=not path.stat().st_mode & 0o044)
    workspace = Workspace(target, **options)
    with workspace._writing(), workspace._store.transaction():
        # The deploy folder and hook are the original's (production's): a restored copy must not deploy there.
        forgotten = deploy.suspend(workspace)
        workspace._audit("restore", name=str(target), details={"from": str(folder.resolve()), "files": len(entries),
                                                               "deploy_suspended": forgotten})
    return workspace
