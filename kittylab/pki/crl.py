"""Revocation reasons (RFC 5280) and reading CRLs."""

from __future__ import annotations

import datetime as dt
import os

from cryptography import x509

from ..errors import check_choice
from .extensions import extension_value
from .facts import when
from .files import load_pem_or_der

#: RFC 5280 reason codes by the names the command line uses.
REASONS: dict[str, x509.ReasonFlags] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "key-compromise": x509.ReasonFlags.key_compromise,
    "ca-compromise": x509.ReasonFlags.ca_compromise,
    "affiliation-changed": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessation-of-operation": x509.ReasonFlags.cessation_of_operation,
    "certificate-hold": x509.ReasonFlags.certificate_hold,
    "privilege-withdrawn": x509.ReasonFlags.privilege_withdrawn,
    "aa-compromise": x509.ReasonFlags.aa_compromise,
}
#: The name of each reason code, back from the code.
REASON_NAMES: dict[x509.ReasonFlags, str] = {flag: name for name, flag in REASONS.items()}
#: OpenSSL's spelling of each reason, for ``openssl ca -crl_reason``.
OPENSSL_REASONS = {
    "unspecified": "unspecified",
    "key-compromise": "keyCompromise",
    "ca-compromise": "CACompromise",
    "affiliation-changed": "affiliationChanged",
    "superseded": "superseded",
    "cessation-of-operation": "cessationOfOperation",
    "certificate-hold": "certificateHold",
    "privilege-withdrawn": "privilegeWithdrawn",
    "aa-compromise": "AACompromise",
}

#: Warn this long before the CRL's nextUpdate: after it, nginx and Apache refuse every client.
CRL_WARNING_DAYS = 7


def check_reason(reason: str) -> str:
    """Return ``reason`` if it is one of :data:`REASONS`, else a one-line error listing them."""
    return check_choice(reason, REASONS, "revocation reason")


def entry_reason(entry: x509.RevokedCertificate) -> str | None:
    """The name (a key of :data:`REASONS`) of the reason a CRL entry gives, or None where it gives none."""
    flag = extension_value(entry, x509.CRLReason)
    return None if flag is None else REASON_NAMES.get(flag.reason, flag.reason.name)


def load_crl(source: bytes | str | os.PathLike) -> x509.CertificateRevocationList:
    """Load a CRL from PEM or DER."""
    return load_pem_or_der(source, what="CRL", label="X509 CRL", pem=x509.load_pem_x509_crl,
                           der=x509.load_der_x509_crl, description="a certificate revocation list")


def crl_status(next_update: dt.datetime | None, *, now: dt.datetime | None = None) -> str:
    """``expired``, ``expiring`` (its next update within :data:`CRL_WARNING_DAYS` days, that day included) or
    ``valid``; a CRL without a next update never expires. The card and the warning both read it here."""
    now = now or dt.datetime.now(dt.timezone.utc)
    if next_update is None:
        return "valid"
    if next_update <= now:
        return "expired"
    return "expiring" if next_update - now <= dt.timedelta(days=CRL_WARNING_DAYS) else "valid"


def crl_expiry_warning(next_update: dt.datetime | None, *, now: dt.datetime | None = None) -> str | None:
    """A warning when no CRL was published, or it has expired or is expiring (:func:`crl_status`), else None."""
    if next_update is None:
        return "no CRL has been published: servers that check a CRL will refuse every client until one is"
    now = now or dt.datetime.now(dt.timezone.utc)
    status = crl_status(next_update, now=now)
    if status == "expired":
        return (
            f"the CRL expired on {when(next_update)}: nginx and Apache now refuse every client;"
            " publish a new one and reload the servers"
        )
    if status == "expiring":
        return (
            f"the CRL expires on {when(next_update)}, in {_humanize(next_update - now)}: publish a new one"
            " and reload the servers before then"
        )
    return None


def _humanize(delta: dt.timedelta) -> str:
    if delta >= dt.timedelta(days=1):
        days = round(delta / dt.timedelta(days=1))
        return f"{days} day{'s' if days != 1 else ''}"
    hours = int(delta.total_seconds() // 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}"
