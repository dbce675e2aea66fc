"""The workspace: one folder holding the CA, everything it issued, and the store that records it.

Files are named as in the article (``kitty-ca.key``, ``picture-server.crt``,
``eager-client.p12``, ...). Every change follows one order so that a crash at any moment
leaves no half-written file and no lost record: secrets are written first (atomically, 0600),
then the store records the certificate in a transaction, then the certificate file is written;
a certificate file that a crash kept from being written is restored from the store on the
next open.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .ca import CA_DAYS, LEAF_DAYS, CertificateAuthority, Revocation, load_certificate, utcnow
from .csr import load_csr, make_csr
from .errors import KittylabError
from .files import write_atomically
from .keys import PrivateKey, generate_key, key_to_pem, load_key
from .pkcs12 import export_p12, generate_password
from .revocation import check_reason, crl_expiry_warning, load_crl
from .store import Record, Store, parse_serial
from .subjects import Subject, subject_of
from .verify import Verification, verify_certificate

DEFAULT_HOME = "kitty-workspace"
STORE_FILE = "kittylab.sqlite3"
CRL_DAYS = 30
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")  # \Z: $ would let "name\n" through


def check_name(name: str) -> str:
    """Return ``name`` if it can name files inside the workspace, else a one-line error."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name or name.endswith("."):
        raise KittylabError(
            f"bad name {name!r}: use 1-64 letters, digits, '.', '-' or '_' (it names files inside the workspace)"
        )
    return name


def default_home() -> Path:
    """``$KITTYLAB_HOME`` if set, else ``./kitty-workspace``."""
    return Path(os.environ.get("KITTYLAB_HOME") or DEFAULT_HOME)


@dataclass
class Issued:
    """What an issuance made: the store's record, the certificate, and the files written."""

    record: Record
    certificate: x509.Certificate
    files: dict[str, Path]
    key: PrivateKey | None = field(default=None, repr=False)
    p12_password: str | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.record.name


@dataclass
class Draft:
    """A certificate signed but not yet recorded, with the files it brings (key, CSR, p12).

    Made by :func:`draft_issue` (anywhere, e.g. in a worker process), recorded by
    :meth:`Workspace.record_drafts`.
    """

    name: str
    profile: str
    certificate: x509.Certificate
    secrets: dict[str, bytes] = field(default_factory=dict, repr=False)
    public: dict[str, bytes] = field(default_factory=dict)
    key: PrivateKey | None = field(default=None, repr=False)
    p12_password: str | None = field(default=None, repr=False)


def draft_issue(
    ca: CertificateAuthority,
    name: str,
    *,
    profile: str,
    subject: Subject,
    key: PrivateKey | str = "rsa2048",
    days: int = LEAF_DAYS,
    dns: Iterable[str] = (),
    ip: Iterable[str] = (),
    email: Iterable[str] = (),
    uri: Iterable[str] = (),
    p12: bool = False,
    p12_password: str | None = None,
    legacy_p12: bool = False,
    kdf_rounds: int | None = None,
    now: dt.datetime | None = None,
) -> Draft:
    """Make a key, a CSR and the CA's certificate for it (and a p12), touching neither disk nor store.

    The p12 gets ``p12_password``, or a generated one returned in ``Draft.p12_password``.
    """
    private_key = generate_key(key) if isinstance(key, str) else key
    csr = make_csr(private_key, subject, dns=dns, ip=ip, email=email, uri=uri)
    certificate = ca.sign(csr, profile=profile, days=days, now=now)
    secrets = {"key": key_to_pem(private_key)}
    generated = None
    if p12:
        generated = None if p12_password else generate_password()
        secrets["p12"] = export_p12(
            private_key,
            certificate,
            password=p12_password or generated,
            chain=[ca.certificate],
            name=name,
            legacy=legacy_p12,
            kdf_rounds=kdf_rounds,
        )
    public = {"csr": csr.public_bytes(serialization.Encoding.PEM)}
    return Draft(name, profile, certificate, secrets=secrets, public=public, key=private_key, p12_password=generated)


class Workspace:
    """A folder with a CA, its store and its files; the one object the notebooks and the CLI use.

    ``Workspace("kitty-workspace")`` opens (and creates) the folder. The CA key is loaded once,
    when first needed; pass ``ca_passphrase`` if it is encrypted.
    """

    def __init__(self, home: str | os.PathLike | None = None, *, ca_passphrase: str | None = None) -> None:
        self.home = Path(home) if home is not None else default_home()
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KittylabError(f"cannot create the workspace {self.home}: {exc.strerror}") from None
        if not self.home.is_dir():
            raise KittylabError(f"the workspace {self.home} is not a folder")
        self.store = Store(self.home / STORE_FILE)
        self._ca_passphrase = ca_passphrase
        self._ca: CertificateAuthority | None = None
        self.restore_missing_files()

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.home)!r})"

    # -- paths -----------------------------------------------------------------------------

    def path(self, name: str, suffix: str) -> Path:
        """The file ``NAME.SUFFIX`` inside the workspace (the name is checked so it cannot escape)."""
        return self.home / f"{check_name(name)}.{suffix}"

    @property
    def ca_name(self) -> str:
        name = self.store.get_meta("ca")
        if name is None:
            raise KittylabError(f"no CA in {self.home}: create one first (kittylab init)")
        return name

    @property
    def has_ca(self) -> bool:
        return self.store.get_meta("ca") is not None

    @property
    def ca_certificate_path(self) -> Path:
        return self.path(self.ca_name, "crt")

    @property
    def crl_path(self) -> Path:
        return self.path(self.ca_name, "crl")

    # -- the CA ----------------------------------------------------------------------------

    def init_ca(
        self,
        subject: Subject | str = "kitty-ca",
        *,
        key: PrivateKey | str = "rsa4096",
        days: int = CA_DAYS,
        passphrase: str | None = None,
    ) -> CertificateAuthority:
        """Steps 1-3: make the CA's key and self-signed certificate, and publish an empty CRL.

        The files are named after the CA's common name (``kitty-ca.key``, ``kitty-ca.crt``).
        """
        subject = subject_of(subject)
        name = check_name(subject.cn)
        if self.has_ca:
            raise KittylabError(f"{self.home} already has a CA ({self.ca_name}): use another workspace (--home)")
        ca = CertificateAuthority.create(subject, key=key, days=days)
        write_atomically(self.path(name, "key"), key_to_pem(ca.key, passphrase=passphrase), secret=True)
        with self.store.transaction():
            if self.store.get_meta("ca") is not None:
                raise KittylabError(f"{self.home} already has a CA: use another workspace (--home)")
            record = self.store.add(name, "ca", name, ca.certificate)
            self.store.set_meta("ca", name)
        self._write_certificate(record)
        self._ca_passphrase = passphrase
        self._ca = ca
        self.publish_crl()
        return ca

    @property
    def ca(self) -> CertificateAuthority:
        """The workspace's CA, its key loaded once and kept."""
        if self._ca is None:
            name = self.ca_name
            record = self.store.current(name)
            if record is None:
                raise KittylabError(f"the CA {name} has no current certificate in the store")
            key = load_key(self.path(name, "key"), passphrase=self._ca_passphrase)
            self._ca = CertificateAuthority(record.certificate, key)
        return self._ca

    def ca_key_is_encrypted(self) -> bool:
        """True if the CA's key file is protected by a passphrase."""
        return b"ENCRYPTED" in self.path(self.ca_name, "key").read_bytes()

    # -- issuing ---------------------------------------------------------------------------

    def issue(
        self,
        name: str,
        *,
        profile: str,
        subject: Subject | str | None = None,
        key: PrivateKey | str = "rsa2048",
        days: int = LEAF_DAYS,
        dns: Iterable[str] = (),
        ip: Iterable[str] = (),
        email: Iterable[str] = (),
        uri: Iterable[str] = (),
        p12: bool = False,
        p12_password: str | None = None,
        legacy_p12: bool = False,
        now: dt.datetime | None = None,
    ) -> Issued:
        """Make a key, a CSR and a certificate for ``name`` in one go (steps 4-8 or 11-14).

        The subject defaults to ``CN=name`` with the CA's O, C, ST and L. With ``p12`` a
        PKCS#12 file is written too, with ``p12_password`` or a generated one (returned once).
        """
        check_name(name)
        if name == self.ca_name:
            raise KittylabError(f"{name!r} is the CA's name: choose another name")
        subject = subject_of(subject) if subject is not None else self.default_subject(name)
        draft = draft_issue(
            self.ca, name, profile=profile, subject=subject, key=key, days=days, dns=dns, ip=ip, email=email,
            uri=uri, p12=p12, p12_password=p12_password, legacy_p12=legacy_p12, now=now,
        )
        issued = self.record_drafts([draft])[0]
        issued.key = draft.key
        issued.p12_password = draft.p12_password
        return issued

    def sign_csr(
        self,
        csr: x509.CertificateSigningRequest | bytes | str | os.PathLike,
        *,
        profile: str,
        name: str | None = None,
        days: int = LEAF_DAYS,
        dns: Iterable[str] = (),
        ip: Iterable[str] = (),
        email: Iterable[str] = (),
        uri: Iterable[str] = (),
        now: dt.datetime | None = None,
    ) -> Issued:
        """Step 7-8: the CA signs a CSR that someone sent it (``openssl ca -in NAME.csr``).

        The certificate is recorded under ``name`` (default: the CSR's CN) as ``NAME.crt``.
        """
        request = csr if isinstance(csr, x509.CertificateSigningRequest) else load_csr(csr)
        name = check_name(name or Subject.from_name(request.subject).cn)
        if name == self.ca_name:
            raise KittylabError(f"{name!r} is the CA's name: give the certificate another name (--name)")
        certificate = self.ca.sign(request, profile=profile, days=days, dns=dns, ip=ip, email=email, uri=uri, now=now)
        return self._record_issued(name, profile, certificate, secrets={}, public={})

    def default_subject(self, name: str) -> Subject:
        """``CN=name`` with the organization and place of the CA, as the article's subjects share them."""
        if not self.has_ca:
            return Subject(cn=name)
        ca = Subject.from_name(self.ca.certificate.subject)
        return Subject(cn=name, o=ca.o, c=ca.c, st=ca.st, l=ca.l)

    def export_p12(self, name: str, *, password: str | None = None, legacy: bool = False) -> tuple[Path, str | None]:
        """Step 14: bundle ``NAME.key`` and the current certificate into ``NAME.p12``.

        Returns the path and the generated password (None when ``password`` was given).
        """
        record = self.find(name)
        key_path = self.path(record.name, "key")
        if not key_path.exists():
            raise KittylabError(f"{key_path} is missing: the CA only has the certificate, the key stays with its owner")
        key = load_key(key_path)
        generated = None if password else generate_password()
        data = export_p12(
            key,
            record.certificate,
            password=password or generated,
            chain=[self.ca.certificate],
            name=record.name,
            legacy=legacy,
        )
        return write_atomically(self.path(record.name, "p12"), data, secret=True), generated

    def _record_issued(
        self, name: str, profile: str, certificate: x509.Certificate, *, secrets: dict, public: dict
    ) -> Issued:
        return self.record_drafts([Draft(name, profile, certificate, secrets=secrets, public=public)])[0]

    def record_drafts(self, drafts: list[Draft]) -> list[Issued]:
        """Record signed certificates in one transaction and write their files (a batch is one commit).

        Every name is checked first, so a name that already holds a current certificate fails the
        whole batch before any file is written; then, per certificate, secrets (0600), public
        files, the store's record, and after the commit the ``.crt`` files.
        """
        issued: list[Issued] = []
        with self.store.transaction():
            for draft in drafts:
                check_name(draft.name)
                if self.store.current(draft.name) is not None:
                    raise KittylabError(
                        f"{draft.name!r} already has a current certificate: revoke it first or choose another name"
                    )
            for draft in drafts:
                files: dict[str, Path] = {}
                for suffix, data in draft.secrets.items():
                    files[suffix] = write_atomically(self.path(draft.name, suffix), data, secret=True)
                for suffix, data in draft.public.items():
                    files[suffix] = write_atomically(self.path(draft.name, suffix), data)
                record = self.store.add(draft.name, draft.profile, self.ca_name, draft.certificate)
                issued.append(Issued(record=record, certificate=draft.certificate, files=files))
        for item in issued:
            item.files["crt"] = self._write_certificate(item.record)
        return issued

    def _write_certificate(self, record: Record) -> Path:
        return write_atomically(self.path(record.name, "crt"), record.pem.encode())

    def restore_missing_files(self) -> list[str]:
        """Rewrite current certificates' files that a crash kept from being written; return their names."""
        restored = []
        for record in self.store.records():
            if record.revoked_at or record.superseded_by:
                continue
            path = self.path(record.name, "crt")
            try:
                if path.read_bytes() == record.pem.encode():
                    continue
            except OSError:
                pass
            if os.access(self.home, os.W_OK):
                self._write_certificate(record)
                restored.append(record.name)
        return restored

    # -- looking up ------------------------------------------------------------------------

    def records(self, *, include_ca: bool = True) -> list[Record]:
        """Every certificate in the store, oldest first."""
        return [r for r in self.store.records() if include_ca or r.profile != "ca"]

    def find(self, name_or_serial: str | int) -> Record:
        """The current (else latest) certificate of a name, or the certificate with a serial."""
        if isinstance(name_or_serial, int):
            record = self.store.by_serial(name_or_serial)
        else:
            record = self.store.current(name_or_serial) or self.store.latest(name_or_serial)
            serial = parse_serial(name_or_serial) if record is None else None
            if serial is not None:
                record = self.store.by_serial(serial)
        if record is None:
            raise KittylabError(f"no certificate named or numbered {name_or_serial!r} in {self.home}")
        return record

    # -- revocation ------------------------------------------------------------------------

    def revoke(self, name_or_serial: str | int, *, reason: str = "unspecified") -> Record:
        """Revoke a certificate and publish a new CRL at once (servers must reload it)."""
        return self.revoke_many([name_or_serial], reason=reason)[0]

    def revoke_many(self, targets: Iterable[str | int], *, reason: str = "unspecified") -> list[Record]:
        """Revoke several certificates in one transaction, then publish one CRL listing them all.

        All or nothing: if one target is unknown, the CA itself or already revoked, none is revoked.
        """
        check_reason(reason)
        when = utcnow()
        with self.store.transaction():
            records = [self.find(target) for target in targets]
            for record in records:
                if record.profile == "ca":
                    raise KittylabError(f"{record.name} is the CA itself: a CA cannot revoke its own certificate")
                if record.revoked_at is not None:
                    raise KittylabError(
                        f"{record.name} (serial {record.serial_hex}) was already revoked on {record.revoked_at:%Y-%m-%d}"
                    )
            for record in records:
                self.store.mark_revoked(record.serial, when=when, reason=reason)
        self.publish_crl()
        return [self.find(record.serial) for record in records]

    def publish_crl(self, *, next_update_days: float | None = None) -> x509.CertificateRevocationList:
        """Sign a new CRL of everything revoked and write it to ``CA.crl`` (PEM).

        ``next_update_days`` (default 30, remembered) sets when it expires: after that,
        nginx and Apache refuse every client until a new CRL is published.
        """
        days = next_update_days if next_update_days is not None else float(self.store.get_meta("crl_days", CRL_DAYS))
        with self.store.transaction():
            number = int(self.store.get_meta("crl_number", "0")) + 1
            revoked = [
                Revocation(r.serial, r.revoked_at, r.reason or "unspecified") for r in self.store.revoked(self.ca_name)
            ]
            crl = self.ca.build_crl(revoked, number=number, next_update_days=days)
            write_atomically(self.crl_path, crl.public_bytes(serialization.Encoding.PEM))
            self.store.set_meta("crl_number", str(number))
            self.store.set_meta("crl_days", repr(days))
        return crl

    def current_crl(self) -> x509.CertificateRevocationList | None:
        """The CRL file as published, or None if there is none."""
        try:
            return load_crl(self.crl_path) if self.crl_path.exists() else None
        except KittylabError:
            return None

    def crl_warning(self, *, now: dt.datetime | None = None) -> str | None:
        """A warning if the CRL is missing, expired, or expires within a week."""
        crl = self.current_crl()
        return crl_expiry_warning(crl.next_update_utc if crl is not None else None, now=now)

    # -- checking --------------------------------------------------------------------------

    def verify(
        self, certificate: x509.Certificate | bytes | str | os.PathLike, *, purpose: str | None = None
    ) -> Verification:
        """Check a certificate against this CA: chain, dates, usage for ``purpose``, revocation."""
        cert = certificate if isinstance(certificate, x509.Certificate) else load_certificate(certificate)
        return verify_certificate(cert, ca=self.ca.certificate, crl=self.current_crl(), purpose=purpose)
