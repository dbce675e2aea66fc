"""A workshop's own record of its participants, and the summary a teacher opens in a spreadsheet.

``participants.sqlite3`` (0600, beside ``summary.csv``) remembers, per participant (keyed by
their email, compared case-insensitively): the certificate name they were given, the roster line
they came from, their certificate's serial, their p12 password and flavour, and whether their
handout was written. It is what makes a run resumable after ``kill -9`` (a password is recorded
before the certificate it protects is signed), what keeps file names stable across re-runs
(the second "Maria García" stays ``maria-garcia-mgarcia``) and what keeps memory bounded for a
roster of any length (nothing is held per participant in memory). The certificates themselves
live in the workspace; their status is asked from it when the summary is written.

``summary.csv`` is written as Excel opens it: UTF-8 with a byte-order mark, the roster's own
delimiter, and every cell that a spreadsheet would run as a formula (starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return) prefixed with a quote (the OWASP rule).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..errors import KittylabError
from ..pki.files import write_atomically
from ..workspace.protocol import newer_schema

LEDGER_FILE = "participants.sqlite3"
SUMMARY_FILE = "summary.csv"
SUMMARY_FIELDS = (
    "certificate", "name", "email", "ou", "status", "issued", "serial", "expires", "p12", "p12_password", "handout",
    "revoked", "revocation_reason",
)
#: What a spreadsheet reads as the start of a formula (OWASP: CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

#: The layout of the tables below (``PRAGMA user_version``); a ledger without a version (0) predates versions
#: and is the same. A ledger of a newer version is refused in one line, as the workspace's store is.
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS person (
    email_key TEXT PRIMARY KEY,
    certificate TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    ou TEXT NOT NULL DEFAULT '',
    line INTEGER NOT NULL,
    run INTEGER NOT NULL,
    password TEXT,
    legacy INTEGER NOT NULL DEFAULT 0,
    serial TEXT,
    issued TEXT,
    expires TEXT,
    handout INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS issued_in (run INTEGER NOT NULL, certificate TEXT NOT NULL, name TEXT NOT NULL,
                                      line INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass
class Row:
    """One participant as the ledger knows them."""

    email_key: str
    certificate: str
    name: str
    email: str
    ou: str
    line: int
    run: int
    password: str | None
    legacy: bool
    serial: str | None
    issued: str | None
    expires: str | None
    handout: bool


def spreadsheet_cell(value: str) -> str:
    """``value`` as a spreadsheet shows it without running it: a formula-like start gets a ``'`` first."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


class Ledger(contextlib.AbstractContextManager["Ledger"]):
    """The participants of one workshop folder (``out``); ``Ledger(None)`` keeps them in memory.

    Opened to read unless ``write`` (a roster run, under the workshop's lock): reading never creates,
    sets up or writes the file (SQLite opens it read-only; like every reader of a WAL database it may
    leave the empty ``-wal`` and the ``-shm`` index beside it, 0600 as the file), and a folder without
    records yet reads as empty. A folder that does not exist, or records of a newer kittylab, are one line.
    """

    def __init__(self, out: Path | None, *, write: bool = False) -> None:
        self.out = out
        self.path = out / LEDGER_FILE if out is not None else None
        self.run = 0
        if out is not None and not out.is_dir():
            raise KittylabError(f"cannot open the workshop's records in {out}: no such folder")
        try:
            self._db = self._open(write)
        except sqlite3.DatabaseError as exc:
            raise KittylabError(f"cannot open {self.path}: {exc} (delete it to start the workshop's records afresh)") from None

    def _open(self, write: bool) -> sqlite3.Connection:
        if self.path is None or not (write or self.path.exists()):
            return _empty()
        if write:
            # Created 0600 before SQLite opens it: it holds every participant's password.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
            db = sqlite3.connect(self.path, isolation_level=None)
        else:
            db = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=ro", uri=True, isolation_level=None)
        refusal = newer_schema(f"the workshop's records {self.path}", db.execute("PRAGMA user_version").fetchone()[0],
                               SCHEMA_VERSION)
        if refusal is not None:  # neither read nor written
            db.close()
            raise refusal
        if write:
            # WAL with synchronous=NORMAL: a commit survives kill -9 without an fsync per participant.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif db.execute("SELECT 1 FROM sqlite_master WHERE name = 'person'").fetchone() is None:
            db.close()  # created by a run cut before it set the file up: nothing recorded yet
            return _empty()
        return db

    def close(self) -> None:
        self._db.close()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta --------------------------------------------------------------------------------

    def get(self, key: str, default: str | None = None) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def start_run(self, *, delimiter: str) -> int:
        """A new run of the roster: rows it lists get this run's number (to tell duplicates)."""
        self.run = int(self.get("runs", "0")) + 1
        self.set("runs", str(self.run))
        self.set("delimiter", delimiter)
        return self.run

    # -- participants ------------------------------------------------------------------------

    def by_email(self, email_key: str) -> Row | None:
        return self._one("email_key = ?", email_key)

    def by_certificate(self, certificate: str) -> Row | None:
        return self._one("certificate = ?", certificate)

    def find(self, who: str, *, key: str, file_name: str) -> list[Row]:
        """Rows matching an email, a name (as written, or transliterated) or a certificate name."""
        rows = self._rows("email_key = ? OR certificate = ? OR lower(name) = ?", (key, who, who.casefold()))
        if not rows and file_name:
            rows = self._rows("certificate = ? OR certificate LIKE ?", (file_name, f"{file_name}-%"))
        return rows

    def claim(self, *, email_key: str, certificate: str, name: str, email: str, ou: str, line: int,
              password: str | None, legacy: bool) -> None:
        """Record a participant of this run and the password their p12 will get, before it is made."""
        self._db.execute(
            "INSERT INTO person (email_key, certificate, name, email, ou, line, run, password, legacy)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (email_key) DO UPDATE SET"
            " certificate = excluded.certificate, name = excluded.name, email = excluded.email, ou = excluded.ou,"
            " line = excluded.line, run = excluded.run,"
            " password = coalesce(excluded.password, person.password), legacy = excluded.legacy",
            (email_key, certificate, name, email, ou, line, self.run, password, int(legacy)),
        )

    def seen(self, email_key: str, *, line: int) -> None:
        """A participant listed again by this run (nothing to issue)."""
        self._db.execute("UPDATE person SET run = ?, line = ? WHERE email_key = ?", (self.run, line, email_key))

    def issued(self, certificate: str, *, serial: str, issued: str, expires: str, password: str | None,
               legacy: bool, new: bool) -> None:
        """Their certificate is recorded in the workspace (``new``: by this run); the handout comes next."""
        self._db.execute(
            "UPDATE person SET serial = ?, issued = ?, expires = ?, password = ?, legacy = ?, handout = 0"
            " WHERE certificate = ?",
            (serial, issued, expires, password, int(legacy), certificate),
        )
        if new:
            self._db.execute("INSERT INTO issued_in SELECT ?, certificate, name, line FROM person WHERE certificate = ?",
                             (self.run, certificate))

    def handed_out(self, certificates: list[str]) -> None:
        self._db.executemany("UPDATE person SET handout = 1 WHERE certificate = ?", [(c,) for c in certificates])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def rows(self, where: str = "1", parameters: tuple = ()) -> Iterator[Row]:
        """Rows in roster order, read a page at a time."""
        cursor = self._db.execute(f"SELECT * FROM person WHERE {where} ORDER BY line, certificate", parameters)
        while page := cursor.fetchmany(512):
            for values in page:
                yield _row(values)

    def issued_by_run(self) -> list[tuple[str, str]]:
        """(certificate, name) of everyone this run issued."""
        return self._db.execute(
            "SELECT certificate, name FROM issued_in WHERE run = ? ORDER BY line", (self.run,)
        ).fetchall()

    def _one(self, where: str, *parameters: object) -> Row | None:
        values = self._db.execute(f"SELECT * FROM person WHERE {where}", parameters).fetchone()
        return _row(values) if values else None

    def _rows(self, where: str, parameters: tuple) -> list[Row]:
        return [_row(values) for values in self._db.execute(f"SELECT * FROM person WHERE {where}", parameters)]


def _empty() -> sqlite3.Connection:
    """Records in memory: for ``Ledger(None)``, and for a folder that holds none yet."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(_SCHEMA)
    return db


def _row(values: tuple) -> Row:
    row = Row(*values)
    row.legacy, row.handout = bool(row.legacy), bool(row.handout)
    return row


def write_summary(ledger: Ledger, status_of: Callable[[Row], tuple[str, str, str]]) -> Path:
    """Rewrite ``summary.csv`` from the ledger (0600: it holds every password), as Excel reads it.

    ``status_of(row)`` says ``issued``, ``revoked``, ``superseded`` or ``not issued``, with the
    revocation's date and reason (empty unless revoked). Written a page of rows at a time,
    whatever the roster's length.
    """
    delimiter = ledger.get("delimiter", ",")

    def pieces() -> Iterator[bytes]:
        text = io.StringIO()
        writer = csv.writer(text, delimiter=delimiter, lineterminator="\r\n")
        text.write("\ufeff")
        writer.writerow(SUMMARY_FIELDS)
        for count, row in enumerate(ledger.rows(), 1):
            status, revoked, reason = status_of(row)
            cells = {
                "certificate": row.certificate, "name": row.name, "email": row.email, "ou": row.ou,
                "status": status, "revoked": revoked, "revocation_reason": reason, "issued": row.issued or "", "serial": row.serial or "",
                "expires": row.expires or "", "p12": ("legacy" if row.legacy else "modern") if row.password else "",
                "p12_password": (row.password or "") if row.serial else "",
                "handout": f"handouts/{row.certificate}/{row.certificate}.html" if row.handout else "",
            }
            writer.writerow([spreadsheet_cell(cells[field]) for field in SUMMARY_FIELDS])
            if count % 512 == 0:
                yield text.getvalue().encode("utf-8")
                text.seek(0)
                text.truncate()
        yield text.getvalue().encode("utf-8")

    return write_atomically(ledger.out / SUMMARY_FILE, pieces(), secret=True)


def read_summary(path: Path) -> list[dict[str, str]]:
    """The summary's rows, as a program (not a spreadsheet) reads them: the BOM and the delimiter handled."""
    text = path.read_text(encoding="utf-8-sig")
    delimiter = ";" if text.split("\n", 1)[0].count(";") > text.split("\n", 1)[0].count(",") else ","
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))
