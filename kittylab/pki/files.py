"""Writing files safely: atomically, and secrets readable by their owner only from the start."""

from __future__ import annotations

import os
import stat
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator, TypeVar

from cryptography import x509

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


#: The most kittylab reads of an input file, by what it holds (default :data:`MAX_INPUT`): a
#: file larger than that (``/dev/zero``, a log given by mistake) is refused in one line instead
#: of being read until memory runs out.
MAX_INPUT = 1 << 20
INPUT_LIMITS = {"password": 64 << 10, "CRL": 256 << 20, "index.txt": 256 << 20}


def read_input(source: bytes | str | os.PathLike, what: str) -> bytes:
    """Return the bytes of ``source``: bytes as they are, a str holding PEM as text, else a path.

    A file is read up to its limit (:data:`INPUT_LIMITS`); a larger one is a one-line error.
    """
    if isinstance(source, bytes):
        return source
    if isinstance(source, str) and "-----BEGIN" in source:
        return source.encode()
    limit = INPUT_LIMITS.get(what, MAX_INPUT)
    with open_input(source, what) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise KittylabError(f"cannot read {what} file {source}: {exc.strerror}") from None
    if len(data) > limit:
        raise KittylabError(
            f"the {what} file {source} is larger than {_size(limit)}: that is no {what} file (check the path)"
        )
    return data


def _size(count: int) -> str:
    return f"{count >> 20} MiB" if count >= 1 << 20 else f"{count >> 10} KiB"


def open_input(path: str | os.PathLike, what: str) -> BinaryIO:
    """Open an input file for reading bytes; a missing file, a folder or anything but a regular file
    (a FIFO would block for ever, a device never ends) is a one-line error."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # opening a FIFO does not wait
    except FileNotFoundError:
        raise KittylabError(f"{what} file not found: {path}") from None
    except OSError as exc:
        raise KittylabError(f"cannot read {what} file {path}: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise KittylabError(f"{what} path is a directory, not a file: {path}")
        raise KittylabError(f"{what} file {path} is not a regular file (a pipe or a device): give a file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


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


#: What cryptography raises for bytes that are not the object they claim to be.
MALFORMED = (ValueError, TypeError, x509.InvalidVersion, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)
T = TypeVar("T")


@contextmanager
def malformed_names_refused(what: str) -> Iterator[None]:
    """cryptography only *warns* about a malformed name it parses (an empty CN, a three-letter C):
    a warning would print beside the one-line error, so such a name is refused instead."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        try:
            yield
        except UserWarning as exc:
            raise KittylabError(f"the {what} has a malformed name: {exc}") from None


def load_pem_or_der(
    source: bytes | str | os.PathLike,
    *,
    what: str,
    label: str,
    pem: Callable[[bytes], T],
    der: Callable[[bytes], T],
    description: str,
    parse: Callable[[T], object] | None = None,
) -> T:
    """Load ``source`` (a path, bytes or PEM text) as PEM with ``label`` or as DER, or say in one line what it is not.

    ``parse`` touches the parts cryptography parses lazily (names, extensions), so that a
    malformed one is refused here rather than failing later.
    """
    data = read_input(source, what)
    try:
        if b"-----BEGIN" in data:
            if f"{label}-----".encode() not in data:  # also BEGIN NEW CERTIFICATE REQUEST
                raise ValueError("wrong PEM label")
            loaded = pem(data)
        else:
            loaded = der(data)
        if parse is not None:
            with malformed_names_refused(what):
                parse(loaded)
        return loaded
    except MALFORMED:
        raise KittylabError(f"not {description}: expected PEM (BEGIN {label}) or DER") from None
