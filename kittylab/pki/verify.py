"""Checking a certificate the way a TLS server would, saying which check failed.

``cryptography``'s own verifier checks no CRL, so revocation is checked here against the CA's
current CRL (itself checked: signed by the CA, not expired).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID

from ..errors import KittylabError

PURPOSES = {"client": ExtendedKeyUsageOID.CLIENT_AUTH, "server": ExtendedKeyUsageOID.SERVER_AUTH}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Verification:
    """The outcome of every check; ``ok`` only if all passed."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def __str__(self) -> str:
        lines = [f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in self.checks]
        lines.append("verified: OK" if self.ok else f"verification failed: {self.failures[0].detail}")
        return "\n".join(lines)


def verify_certificate(
    certificate: x509.Certificate,
    *,
    ca: x509.Certificate,
    crl: x509.CertificateRevocationList | None,
    purpose: str | None = None,
    now: dt.datetime | None = None,
) -> Verification:
    """Check chain, dates, usage for ``purpose`` (``client`` or ``server``) and revocation."""
    if purpose is not None and purpose not in PURPOSES:
        raise KittylabError(f"unknown purpose {purpose!r}: choose client or server")
    now = now or dt.datetime.now(dt.timezone.utc)
    result = Verification()
    add = result.checks.append
    add(_chain(certificate, ca))
    add(_dates("certificate", certificate, now))
    add(_dates("CA certificate", ca, now))
    if purpose is not None:
        add(_purpose(certificate, purpose))
    add(_revocation(certificate, ca, crl, now))
    return result


def _chain(certificate: x509.Certificate, ca: x509.Certificate) -> Check:
    name = "chain"
    if certificate.issuer != ca.subject:
        return Check(name, False, f"issued by {certificate.issuer.rfc4514_string()}, not by this CA")
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return Check(name, False, "the signature does not verify with the CA's key")
    return Check(name, True, f"signed by {ca.subject.rfc4514_string()}")


def _dates(what: str, certificate: x509.Certificate, now: dt.datetime) -> Check:
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    name = "dates" if what == "certificate" else "CA dates"
    if now < start:
        return Check(name, False, f"the {what} is not valid before {start:%Y-%m-%d %H:%M} UTC")
    if now >= end:
        return Check(name, False, f"the {what} expired on {end:%Y-%m-%d %H:%M} UTC")
    return Check(name, True, f"valid until {end:%Y-%m-%d}")


def _purpose(certificate: x509.Certificate, purpose: str) -> Check:
    name = f"purpose {purpose}"
    extensions = certificate.extensions
    try:
        if extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return Check(name, False, "this is a CA certificate, not a leaf")
    except x509.ExtensionNotFound:
        pass
    try:
        usages = list(extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        usages = None
    if usages is not None and PURPOSES[purpose] not in usages:
        allowed = ", ".join(u._name for u in usages) or "nothing"
        return Check(name, False, f"the extended key usage allows {allowed}, not TLS {purpose} authentication")
    try:
        if not extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature:
            return Check(name, False, "the key usage does not allow digitalSignature")
    except x509.ExtensionNotFound:
        pass
    if purpose == "server":
        try:
            extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return Check(name, False, "a server certificate needs subject alternative names")
    return Check(name, True, f"allowed for TLS {purpose} authentication")


def _revocation(
    certificate: x509.Certificate, ca: x509.Certificate, crl: x509.CertificateRevocationList | None, now: dt.datetime
) -> Check:
    name = "revocation"
    if crl is None:
        return Check(name, False, "no CRL published: run kittylab crl")
    if crl.issuer != ca.subject or not crl.is_signature_valid(ca.public_key()):
        return Check(name, False, "the CRL is not signed by this CA")
    if crl.next_update_utc is not None and crl.next_update_utc <= now:
        return Check(name, False, f"the CRL expired on {crl.next_update_utc:%Y-%m-%d %H:%M} UTC: publish a new one")
    entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
    if entry is not None:
        return Check(name, False, f"revoked on {entry.revocation_date_utc:%Y-%m-%d %H:%M} UTC")
    return Check(name, True, "not revoked")
