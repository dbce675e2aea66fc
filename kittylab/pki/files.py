"""Writing files safely: atomically, and secrets readable by their owner only from the start."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterable

from ..errors import KittylabError

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644


def write_atomically(path: Path, data: bytes | Iterable[bytes], *, secret: bool = False) -> Path:
    """Write ``data`` (bytes, or pieces of them) to ``path``: readers see the old file or the whole new one, never half.

    Secrets (private keys, p12 files) are created with mode 0600 before a byte is written, so
    there is no moment when others can read them.
    """
    path = Path(path)
    mode = SECRET_MODE if secret else PUBLIC_MODE
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise KittylabError(f"cannot write in {path.parent}: {exc.strerror}") from None
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            for piece in (data,) if isinstance(data, bytes) else data:
                handle.write(piece)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise KittylabError(f"cannot write {path}: {exc.strerror}") from None
    return path


def read_input(source: bytes | str | os.PathLike, what: str) -> bytes:
    """Return the bytes of ``source``: bytes as they are, a str holding PEM as text, else a path."""
    if isinstance(source, bytes):
        return source
    if isinstance(source, str) and "-----BEGIN" in source:
        return source.encode()
    with open_input(source, what) as handle:
        try:
            return handle.read()
        except OSError as exc:
            raise KittylabError(f"cannot read {what} file {source}: {exc.strerror}") from None


def open_input(path: str | os.PathLike, what: str) -> BinaryIO:
    """Open an input file for reading bytes; a missing file or a folder is a one-line error."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise KittylabError(f"{what} file not found: {path}") from None
    except IsADirectoryError:
        raise KittylabError(f"{what} path is a directory, not a file: {path}") from None
    except OSError as exc:
        raise KittylabError(f"cannot read {what} file {path}: {exc.strerror}") from None


def read_password_file(path: str | os.PathLike) -> str:
    """Read a password as OpenSSL's ``-passin file:`` does: the first line, newline dropped."""
    data = read_input(Path(path), "password")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise KittylabError(f"password file {path} is not UTF-8 text") from None
    password = text.splitlines()[0] if text else ""
    if not password:
        raise KittylabError(f"password file {path} is empty: put the password on its first line")
    return password


def password_bytes(password: str | bytes) -> bytes:
    """A password or passphrase as UTF-8 bytes; text that cannot be encoded is a one-line error."""
    if isinstance(password, bytes):
        return password
    try:
        return password.encode("utf-8")
    except UnicodeEncodeError:
        raise KittylabError("the password is not valid text: it cannot be encoded as UTF-8") from None
