"""The certificate store: every certificate the CA issued, in SQLite beside the workspace's files.

SQLite (from the standard library) gives transactions that survive a crash. The store is the
workspace's own: only :mod:`kittylab.workspace` opens it, and only under the workspace's lock
does it change. It carries a schema version (``PRAGMA user_version``): a store from a newer
kittylab is refused by name, a damaged one is reported with what to do, and neither is written.
Opening never creates it; the first transaction does.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..errors import KittylabError
from ..pki.facts import Record, serial_hex, when
from ..pki.names import readable_name
from .protocol import newer_schema

#: The layout of the tables below; a store without a version (0) predates versions and is the same.
#: Version 2 adds the audit log (a store of version 1 gets it with its next change); version 3 the
#: index of names (an older store gets it with its next change too).
SCHEMA_VERSION = 3
_SCHEMA = """
CREATE TABLE IF NOT EXISTS certificates (
    serial TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    profile TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    not_before TEXT NOT NULL,
    not_after TEXT NOT NULL,
    pem TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    revoked_at TEXT,
    reason TEXT,
    superseded_by TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS one_current_per_name
    ON certificates(name) WHERE revoked_at IS NULL AND superseded_by IS NULL;
-- latest(name) and every lookup of a name that holds no current certificate (a batch asks for each
-- newcomer): without it each is a scan of the whole table, and a roster of N costs N^2.
CREATE INDEX IF NOT EXISTS by_name ON certificates(name, issued_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    user TEXT NOT NULL,
    host TEXT NOT NULL,
    command TEXT NOT NULL,
    action TEXT NOT NULL,
    name TEXT,
    serial TEXT,
    subject TEXT,
    reason TEXT,
    details TEXT
);
"""
#: The meta key of a CA's last CRL number (read and written only through the two methods of Store below).
_CRL_NUMBER = "crl_number:{}"
_AUDIT_COLUMNS = "time, user, host, command, action, name, serial, subject, reason, details"


@dataclass(frozen=True)
class AuditEntry:
    """One change to the workspace: when, who (user and host), the command, what and to which certificate."""

    time: dt.datetime
    user: str
    host: str
    command: str
    action: str
    name: str | None = None
    serial: str | None = None
    subject: str | None = None
    reason: str | None = None
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"time": self.time.isoformat(), "user": self.user, "host": self.host, "command": self.command,
                "action": self.action, "name": self.name, "serial": self.serial, "subject": self.subject,
                "reason": self.reason, "details": self.details}

    def describe(self) -> str:
        what = " ".join(part for part in (self.action, self.name or "", f"serial {self.serial}" if self.serial else "",
                                          f"({self.reason})" if self.reason else "") if part)
        return f"{when(self.time, seconds=True)} {self.user}@{self.host} {what}: {self.command}"
_COLUMNS = "serial, name, profile, issuer, subject, not_before, not_after, pem, issued_at, revoked_at, reason, superseded_by"


class StoreDamaged(KittylabError):
    """The store cannot be read: it is reported with what to do, and never written."""

    reason = ""  # what SQLite said


class Store:
    """SQLite store of issued certificates and of the CA's counters (CRL number, CRL expiry)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._empty = True
        self._checked = False
        self._closed = False

    def close(self) -> None:
        self._closed = True
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def exists(self) -> bool:
        """True if the store holds tables (a missing or emptied file holds nothing)."""
        return self._connection() is not None and not self._empty

    def damaged(self, exc: Exception) -> StoreDamaged:
        error = StoreDamaged(
            f"the certificate store {self.path} is damaged ({exc}); nothing was written to it. Keep a copy,"
            " then repair the workspace: that moves the store aside and rebuilds it from the workspace's"
            " certificates, CRLs and keys",
            fix="repair",
        )
        error.reason = str(exc)
        return error

    def _connection(self) -> sqlite3.Connection | None:
        """The open connection, or None while there is no store file (reading never creates one)."""
        if self._closed:
            raise KittylabError(f"the certificate store {self.path} was closed: open the workspace again")
        if self._db is None:
            if not self.path.exists():
                return None
            try:
                # mode=rw: opening never creates the file (it may have gone since the check above).
                db = sqlite3.connect(f"file:{self.path}?mode=rw", uri=True, timeout=60, isolation_level=None,
                                     check_same_thread=False)
            except sqlite3.DatabaseError as exc:
                if not self.path.exists():
                    return None
                raise KittylabError(f"cannot open the certificate store {self.path}: {exc}") from None
            try:
                db.execute("PRAGMA busy_timeout = 60000")
                version = db.execute("PRAGMA user_version").fetchone()[0]
                tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            except sqlite3.DatabaseError as exc:
                db.close()
                raise self.damaged(exc) from None
            refusal = newer_schema(f"the certificate store {self.path}", version, SCHEMA_VERSION)
            if refusal is not None:
                db.close()
                raise refusal
            self._db, self._empty = db, tables == 0
        return self._db

    def check(self) -> None:
        """Raise :class:`StoreDamaged` if SQLite finds the store damaged (a missing store is sound)."""
        if self._connection() is not None:
            self._create()

    def _create(self) -> sqlite3.Connection:
        """The connection for a change: the store file is created (0644, never through a link) if missing."""
        if not self.path.exists():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
                os.fchmod(fd, 0o644)  # whatever the umask
                os.close(fd)
            except OSError as exc:
                raise KittylabError(f"cannot create the certificate store {self.path}: {exc.strerror}") from None
        db = self._connection()
        if not self._checked:
            try:
                problems = db.execute("PRAGMA quick_check").fetchall()
            except sqlite3.DatabaseError as exc:
                raise self.damaged(exc) from None
            if problems != [("ok",)]:
                raise self.damaged(Exception(str(problems[0][0])))
            self._checked = True
        return db

    def _rows(self, sql: str, args: tuple = ()) -> list[tuple]:
        """Rows of a query; none while the store does not exist; damage is one line with advice."""
        db = self._connection()
        if db is None:
            return []
        try:
            if self._empty:  # another process may have made the tables since
                self._empty = not db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if self._empty:
                    return []
            return db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self.damaged(exc) from None

    def _execute(self, sql: str, args: tuple = ()) -> None:
        """A change inside :meth:`transaction` (its errors end the transaction as one line)."""
        self._db.execute(sql, args)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One all-or-nothing change (``BEGIN IMMEDIATE``); creates the store if there is none."""
        db = self._create()
        try:
            db.execute("BEGIN IMMEDIATE")
            if self._empty or db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self._empty = False
        except sqlite3.DatabaseError as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise KittylabError(f"cannot change the certificate store {self.path}: {exc}") from None
        try:
            yield
            self._commit()
        except BaseException as exc:
            # A full disk makes SQLite roll back by itself: only roll back what is still open. The
            # rollback itself can fail the same way (a file size limit): the first error is the one said.
            try:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                self._empty = not db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            except sqlite3.DatabaseError as again:
                if not isinstance(exc, sqlite3.DatabaseError):
                    exc = again
            if isinstance(exc, sqlite3.DatabaseError):
                raise KittylabError(f"cannot save to the certificate store {self.path}: {exc}") from None
            raise

    def log(self, actor: tuple[str, str, str], action: str, *, name: str | None = None, serial: str | None = None,
            subject: str | None = None, reason: str | None = None, details: dict | None = None) -> None:
        """Append to the audit log, inside the change's own transaction (so it is logged if and only if it happened)."""
        row = (dt.datetime.now(dt.timezone.utc).isoformat(), *actor, action, name, serial, subject, reason,
               json.dumps(details or {}, sort_keys=True))
        self._execute(f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES ({', '.join('?' * 10)})", row)

    def audit(self) -> list[AuditEntry]:
        """The audit log, oldest first (empty for a store that has none yet)."""
        if not self._rows("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'"):
            return []
        rows = self._rows(f"SELECT {_AUDIT_COLUMNS} FROM audit ORDER BY id")
        return [AuditEntry(dt.datetime.fromisoformat(r[0]), *r[1:9], details=json.loads(r[9] or "{}")) for r in rows]

    def _commit(self) -> None:
        self._db.execute("COMMIT")

    def add(self, name: str, profile: str, issuer: str, certificate: x509.Certificate) -> Record:
        """Record a newly issued certificate; the name must not belong to a current certificate."""
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
        row = (
            serial_hex(certificate.serial_number),
            name,
            profile,
            issuer,
            readable_name(certificate.subject),
            certificate.not_valid_before_utc.isoformat(),
            certificate.not_valid_after_utc.isoformat(),
            pem,
            dt.datetime.now(dt.timezone.utc).isoformat(),
            None,
            None,
            None,
        )
        try:
            self._execute(f"INSERT INTO certificates ({_COLUMNS}) VALUES ({', '.join('?' * 12)})", row)
        except sqlite3.IntegrityError:
            if self.current(name) is not None:
                raise KittylabError(
                    f"{name!r} already has a current certificate: revoke it first or choose another name"
                ) from None
            raise KittylabError(f"serial {row[0]} is already in the store") from None
        return _record(row)

    def current(self, name: str) -> Record | None:
        """The certificate that ``name`` holds now (neither revoked nor superseded), if any."""
        return self._one(
            "WHERE name = ? AND revoked_at IS NULL AND superseded_by IS NULL", (name,)
        )

    def latest(self, name: str) -> Record | None:
        """The newest certificate ever issued under ``name``."""
        return self._one("WHERE name = ? ORDER BY issued_at DESC, rowid DESC", (name,))

    def named(self, name: str) -> list[Record]:
        """Every certificate ever issued under ``name`` (current, superseded, revoked), newest first."""
        rows = self._rows(f"SELECT {_COLUMNS} FROM certificates WHERE name = ? ORDER BY issued_at DESC, rowid DESC",
                          (name,))
        return [_record(row) for row in rows]

    def by_serial(self, serial: int) -> Record | None:
        return self._one("WHERE serial = ?", (serial_hex(serial),))

    def records(self) -> list[Record]:
        """Every certificate, oldest first."""
        rows = self._rows(f"SELECT {_COLUMNS} FROM certificates ORDER BY issued_at, rowid")
        return [_record(row) for row in rows]

    def current_of(self, profile: str, *, limit: int = -1) -> list[Record]:
        """The current certificates (neither revoked nor superseded) of one profile, oldest first, at most ``limit``."""
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM certificates WHERE profile = ? AND revoked_at IS NULL AND superseded_by IS NULL"
            " ORDER BY issued_at, rowid LIMIT ?", (profile, limit),
        )
        return [_record(row) for row in rows]

    def revoked(self, issuer: str) -> list[Record]:
        """The revoked certificates of one CA, for its CRL."""
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM certificates WHERE issuer = ? AND revoked_at IS NOT NULL ORDER BY revoked_at",
            (issuer,),
        )
        return [_record(row) for row in rows]

    def mark_revoked(self, serial: int, *, when: dt.datetime, reason: str) -> None:
        self._execute(
            "UPDATE certificates SET revoked_at = ?, reason = ? WHERE serial = ?",
            (when.isoformat(), reason, serial_hex(serial)),
        )

    def mark_superseded(self, serial: int, *, by: int) -> None:
        self._execute(
            "UPDATE certificates SET superseded_by = ? WHERE serial = ?", (serial_hex(by), serial_hex(serial))
        )

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def set_meta(self, key: str, value: str) -> None:
        self._execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def next_crl_number(self, ca: str) -> int:
        """The number CA ``ca``'s next CRL gets: one more than the last it published (its CRLs count from 1)."""
        return int(self.get_meta(_CRL_NUMBER.format(ca), "0")) + 1

    def set_crl_number(self, ca: str, number: int) -> None:
        """Record ``number`` as the last CRL number CA ``ca`` used; its next CRL gets ``number + 1``."""
        self.set_meta(_CRL_NUMBER.format(ca), str(number))

    def _one(self, where: str, args: tuple) -> Record | None:
        rows = self._rows(f"SELECT {_COLUMNS} FROM certificates {where} LIMIT 1", args)
        return _record(rows[0]) if rows else None


def _record(row: tuple) -> Record:
    def when(text: str | None) -> dt.datetime | None:
        return dt.datetime.fromisoformat(text) if text else None

    return Record(
        serial=int(row[0], 16),
        name=row[1],
        profile=row[2],
        issuer=row[3],
        subject=row[4],
        not_before=when(row[5]),
        not_after=when(row[6]),
        pem=row[7],
        issued_at=when(row[8]),
        revoked_at=when(row[9]),
        reason=row[10],
        superseded_by=int(row[11], 16) if row[11] else None,
    )
