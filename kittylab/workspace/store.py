"""The certificate store: every certificate the CA issued, in SQLite beside the workspace's files.

SQLite (from the standard library) gives transactions that survive a crash and a lock that
serializes writers across processes, so two processes issuing at once both succeed.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..errors import KittylabError
from ..pki.facts import Record, serial_hex

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
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_COLUMNS = "serial, name, profile, issuer, subject, not_before, not_after, pem, issued_at, revoked_at, reason, superseded_by"


class Store:
    """SQLite store of issued certificates and of the CA's counters (CRL number, CRL expiry)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout = 60000")
            if self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise KittylabError(f"cannot open the certificate store {self.path}: {exc}") from None

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One all-or-nothing change; other processes wait for it (``BEGIN IMMEDIATE``)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise KittylabError(f"cannot change the certificate store {self.path}: {exc}") from None
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException as exc:
            # A full disk makes SQLite roll back by itself: only roll back what is still open.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.DatabaseError):
                raise KittylabError(f"cannot save to the certificate store {self.path}: {exc}") from None
            raise

    def add(self, name: str, profile: str, issuer: str, certificate: x509.Certificate) -> Record:
        """Record a newly issued certificate; the name must not belong to a current certificate."""
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
        row = (
            serial_hex(certificate.serial_number),
            name,
            profile,
            issuer,
            certificate.subject.rfc4514_string(),
            certificate.not_valid_before_utc.isoformat(),
            certificate.not_valid_after_utc.isoformat(),
            pem,
            dt.datetime.now(dt.timezone.utc).isoformat(),
            None,
            None,
            None,
        )
        try:
            self._db.execute(f"INSERT INTO certificates ({_COLUMNS}) VALUES ({', '.join('?' * 12)})", row)
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

    def by_serial(self, serial: int) -> Record | None:
        return self._one("WHERE serial = ?", (serial_hex(serial),))

    def records(self) -> list[Record]:
        """Every certificate, oldest first."""
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM certificates ORDER BY issued_at, rowid").fetchall()
        return [_record(row) for row in rows]

    def revoked(self, issuer: str) -> list[Record]:
        """The revoked certificates of one CA, for its CRL."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM certificates WHERE issuer = ? AND revoked_at IS NOT NULL ORDER BY revoked_at",
            (issuer,),
        ).fetchall()
        return [_record(row) for row in rows]

    def mark_revoked(self, serial: int, *, when: dt.datetime, reason: str) -> None:
        self._db.execute(
            "UPDATE certificates SET revoked_at = ?, reason = ? WHERE serial = ?",
            (when.isoformat(), reason, serial_hex(serial)),
        )

    def mark_superseded(self, serial: int, *, by: int) -> None:
        self._db.execute(
            "UPDATE certificates SET superseded_by = ? WHERE serial = ?", (serial_hex(by), serial_hex(serial))
        )

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _one(self, where: str, args: tuple) -> Record | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM certificates {where} LIMIT 1", args).fetchone()
        return _record(row) if row else None


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
