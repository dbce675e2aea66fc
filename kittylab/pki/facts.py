"""What a certificate says and where it stands, as plain data: the one source of facts and status.

``show``, ``list``, the cards, the dashboard, the handouts and the gallery all read them here, so
they never disagree (a certificate "expiring" on a card is "expiring" in ``kittylab show`` too).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    NameOID,
)

from .extensions import extension_value, is_ca
from .keys import describe_key
from .names import describe_san, readable_name, visible

#: A certificate counts as expiring within this many days of its end.
EXPIRING_DAYS = 30

#: The statuses of a certificate that works now (an expiring one still does): current and usable.
USABLE = frozenset({"valid", "expiring"})


def serial_hex(serial: int) -> str:
    """A serial number as OpenSSL prints it: upper-case hex with an even number of digits."""
    text = f"{serial:X}"
    return text if len(text) % 2 == 0 else "0" + text


def parse_serial(text: str) -> int | None:
    """Read a serial given as hex (``0x``-prefixed, with or without colons), or None if it is not one."""
    cleaned = text.strip().lower().removeprefix("0x").replace(":", "")
    if not cleaned or any(ch not in "0123456789abcdef" for ch in cleaned):
        return None
    return int(cleaned, 16)


def fingerprint(certificate: x509.Certificate) -> str:
    """The SHA-256 fingerprint, colon-separated as ``openssl x509 -fingerprint -sha256`` prints it."""
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def common_name(name: x509.Name) -> str:
    """The name's CN (what people call a certificate by), or the whole name when it has none."""
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else readable_name(name)


def when(moment: dt.datetime, *, seconds: bool = False) -> str:
    """A moment as people read it: ``2026-11-30 06:55 UTC`` (every date with a time that kittylab shows);
    ``seconds`` for a log, where several changes fall in one minute: ``2026-11-30 06:55:12 UTC``."""
    return f"{moment:%Y-%m-%d %H:%M{':%S' if seconds else ''}} UTC"


def date_status(
    start: dt.datetime, end: dt.datetime, *, now: dt.datetime | None = None, expiring_days: float = EXPIRING_DAYS
) -> str:
    """``expired``, ``not-yet-valid``, ``expiring`` (ends within 30 days) or ``valid``, by the dates alone."""
    now = now or dt.datetime.now(dt.timezone.utc)
    if end <= now:
        return "expired"
    if start > now:
        return "not-yet-valid"
    return "expiring" if end - now <= dt.timedelta(days=expiring_days) else "valid"


#: What the dates of a certificate read from a file allow to say when no store knows whether it was revoked:
#: ``valid`` and ``expiring`` would claim it was not, so they say that its dates hold and that nobody checked.
UNCHECKED = {"valid": "in date, unchecked", "expiring": "expiring, unchecked"}


def certificate_status(certificate: x509.Certificate, record: Record | None = None, *,
                       now: dt.datetime | None = None) -> str:
    """A certificate's status: its record's (:meth:`Record.status`) when a store knows it; else by its dates,
    ``in date, unchecked`` or ``expiring, unchecked`` where a CA may have revoked it (revocation not checked).
    A self-signed certificate (a root) has no issuer to revoke it: its dates say all."""
    if record is not None:
        return record.status(now=now)
    status = date_status(certificate.not_valid_before_utc, certificate.not_valid_after_utc, now=now)
    return status if certificate.issuer == certificate.subject else UNCHECKED.get(status, status)


@dataclass(frozen=True)
class Record:
    """One certificate the CA issued, with what happened to it since."""

    serial: int
    name: str
    profile: str
    issuer: str
    subject: str
    not_before: dt.datetime
    not_after: dt.datetime
    pem: str = field(repr=False)
    issued_at: dt.datetime = field(repr=False)
    revoked_at: dt.datetime | None = None
    reason: str | None = None
    superseded_by: int | None = None

    @cached_property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.pem.encode())

    @property
    def serial_hex(self) -> str:
        return serial_hex(self.serial)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.certificate)

    def status(self, *, now: dt.datetime | None = None) -> str:
        """``revoked``, ``superseded``, ``expired``, ``not-yet-valid``, ``expiring`` (within 30 days) or ``valid``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.superseded_by is not None:
            return "superseded"
        return date_status(self.not_before, self.not_after, now=now)

    @property
    def usable(self) -> bool:
        """True while the certificate works: neither revoked, superseded, expired nor not yet valid."""
        return self.status() in USABLE


    def as_dict(self) -> dict:
        """A JSON-ready summary (no PEM, no secrets). ``issuer`` is the issuing CA's name in the workspace
        (kept for the scripts that read it; ``issuer_ca`` says the same), ``issuer_dn`` its distinguished
        name and ``is_ca`` whether this certificate is a CA's: the keys :func:`summarize` gives too."""
        return {
            "name": self.name,
            "serial": self.serial_hex,
            "profile": self.profile,
            "subject": self.subject,
            "issuer": self.issuer,
            "issuer_ca": self.issuer,
            "issuer_dn": readable_name(self.certificate.issuer),
            "is_ca": is_ca(self.certificate),
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "status": self.status(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "reason": self.reason,
            "fingerprint_sha256": self.fingerprint,
            "superseded_by": serial_hex(self.superseded_by) if self.superseded_by is not None else None,
        }



_KEY_USAGES = (
    ("digital_signature", "digitalSignature"),
    ("content_commitment", "nonRepudiation"),
    ("key_encipherment", "keyEncipherment"),
    ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"),
    ("key_cert_sign", "keyCertSign"),
    ("crl_sign", "cRLSign"),
)


def key_usages(certificate: x509.Certificate) -> list[str]:
    usage = extension_value(certificate, x509.KeyUsage)
    return [label for attribute, label in _KEY_USAGES if usage and getattr(usage, attribute)]


def extended_key_usages(certificate: x509.Certificate) -> list[str]:
    return [oid._name for oid in extension_value(certificate, x509.ExtendedKeyUsage) or []]


def alternative_names(certificate: x509.Certificate | x509.CertificateSigningRequest) -> list[str]:
    return [describe_san(name) for name in extension_value(certificate, x509.SubjectAlternativeName) or []]


def access_urls(certificate: x509.Certificate) -> dict[str, list[str]]:
    """Where a validator finds the issuer's CRL, OCSP responder and certificate (CDP and AIA)."""
    found: dict[str, list[str]] = {"crl": [], "ocsp": [], "ca_issuers": []}
    points = extension_value(certificate, x509.CRLDistributionPoints) or []
    found["crl"] = [n.value for p in points for n in p.full_name or () if isinstance(n, x509.UniformResourceIdentifier)]
    for description in extension_value(certificate, x509.AuthorityInformationAccess) or []:
        key = {AuthorityInformationAccessOID.OCSP: "ocsp", AuthorityInformationAccessOID.CA_ISSUERS: "ca_issuers"}.get(
            description.access_method)
        if key and isinstance(description.access_location, x509.UniformResourceIdentifier):
            found[key].append(description.access_location.value)
    return found


def profile_of(certificate: x509.Certificate) -> str:
    """The profile a certificate was made by, read from it: ``ca``, ``server``, ``client`` or ``imported``."""
    if is_ca(certificate):
        return "ca"
    usages = extension_value(certificate, x509.ExtendedKeyUsage)
    if usages is None:
        return "imported"
    if ExtendedKeyUsageOID.SERVER_AUTH in usages:
        return "server"
    return "client" if ExtendedKeyUsageOID.CLIENT_AUTH in usages else "imported"


def summarize(certificate: x509.Certificate, record: Record | None = None) -> dict:
    """The facts a person checks about a certificate, JSON-ready; the status comes from the store (for a
    certificate it does not know, from the dates: :func:`certificate_status`).

    Every summary has ``is_ca`` (a bool), ``issuer_dn`` (the issuer's distinguished name) and ``issuer_ca``
    (the issuing CA's name in the workspace, None when no record is known), with the meanings they have in
    :meth:`Record.as_dict`. The older keys keep theirs, for the scripts that read them: ``issuer`` is the
    distinguished name here; ``ca`` is a bool for a certificate without a record and the issuing CA's
    name for one with a record."""
    summary = {
        "name": record.name if record else None,
        "subject": readable_name(certificate.subject),
        "issuer": readable_name(certificate.issuer),
        "issuer_dn": readable_name(certificate.issuer),
        "issuer_ca": record.issuer if record else None,
        "is_ca": is_ca(certificate),
        "serial": serial_hex(certificate.serial_number),
        "not_before": certificate.not_valid_before_utc.isoformat(),
        "not_after": certificate.not_valid_after_utc.isoformat(),
        "key": describe_key(certificate.public_key()),
        "ca": is_ca(certificate),
        "key_usage": key_usages(certificate),
        "extended_key_usage": extended_key_usages(certificate),
        "subject_alternative_names": alternative_names(certificate),
        **{f"{key}_urls": urls for key, urls in access_urls(certificate).items()},
        "fingerprint_sha256": fingerprint(certificate),
        "fingerprint_sha1": certificate.fingerprint(hashes.SHA1()).hex(":").upper(),  # noqa: S303 - shown, as browsers do
        "status": certificate_status(certificate, record),
    }
    if record is not None:
        summary.update(
            profile=record.profile,
            revoked_at=record.revoked_at.isoformat() if record.revoked_at else None,
            reason=record.reason,
            superseded_by=serial_hex(record.superseded_by) if record.superseded_by is not None else None,
            ca=record.issuer,  # the issuing CA's name in the workspace (``issuer`` is its distinguished name)
        )
    return summary


#: The summary's keys that hold a moment (ISO 8601 in JSON; :func:`when` on a terminal).
_MOMENTS = ("not_before", "not_after", "revoked_at")


def format_summary(summary: dict) -> str:
    """The summary as aligned ``label: value`` lines for a terminal, every moment as :func:`when` shows it."""
    labels = [
        ("kind", "Kind"),
        ("name", "Name"),
        ("status", "Status"),
        ("profile", "Profile"),
        ("subject", "Subject"),
        ("issuer", "Issuer"),
        ("serial", "Serial"),
        ("not_before", "Not before"),
        ("not_after", "Not after"),
        ("key", "Key"),
        ("key_usage", "Key usage"),
        ("extended_key_usage", "Extended key usage"),
        ("subject_alternative_names", "Alternative names"),
        ("requested_names", "Requested names"),
        ("requested_extensions", "Asked extensions"),
        ("signature", "Signature"),
        ("crl_urls", "CRL"),
        ("ocsp_urls", "OCSP"),
        ("ca_issuers_urls", "CA issuers"),
        ("issues_with", "Issues with"),
        ("revoked_at", "Revoked at"),
        ("reason", "Reason"),
        ("superseded_by", "Superseded by"),
        ("fingerprint_sha256", "SHA-256 fingerprint"),
        ("fingerprint_sha1", "SHA-1 fingerprint"),
    ]
    width = max(len(label) for _, label in labels)
    lines = []
    for key, label in labels:
        value = summary.get(key)
        if value in (None, [], ""):
            continue
        if key in _MOMENTS:
            value = when(dt.datetime.fromisoformat(value).astimezone(dt.timezone.utc))
        elif isinstance(value, list):
            value = ", ".join(value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in value.items())
        lines.append(f"{label + ':':<{width + 1}} {visible(str(value))}")
    return "\n".join(lines)
